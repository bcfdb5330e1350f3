//! The four hot-path message cases of `benches/messages.rs` in a plain
//! loop, for counting instructions under `valgrind --tool=cachegrind`
//! (deterministic, unlike wall time on a shared machine):
//! `codec_ir <produce_request_encode|produce_response_decode|fetch_request_encode|fetch_response_decode|setup> <iterations>`.
//! `setup` builds the inputs and does nothing else, so its count can be
//! subtracted from the others.

use std::hint::black_box;

use bytes::BytesMut;
use klamm::protocol::codec::Message;
use klamm::protocol::messages::{FetchResponse, ProduceResponse};
use klamm_benches::messages::{
    FETCH_VERSION, PRODUCE_RESPONSE_VERSION, PRODUCE_VERSION, fetch_request, fetch_response,
    produce_request, produce_response,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, case, iters] = &args[..] else {
        eprintln!("usage: codec_ir <case> <iterations>");
        std::process::exit(2);
    };
    let iters: usize = iters.parse().expect("iterations");
    let produce_req = produce_request();
    let produce_resp = produce_response();
    let fetch_req = fetch_request();
    let fetch_resp = fetch_response();
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut total = 0usize;
    for _ in 0..iters {
        match case.as_str() {
            "setup" => {}
            "produce_request_encode" => {
                buf.clear();
                black_box(&produce_req)
                    .encode(&mut buf, PRODUCE_VERSION)
                    .expect("encodes");
                total += buf.len();
            }
            "produce_response_decode" => {
                let r = ProduceResponse::decode(
                    &mut black_box(&produce_resp).clone(),
                    PRODUCE_RESPONSE_VERSION,
                )
                .expect("decodes");
                total += r.responses.len();
            }
            "fetch_request_encode" => {
                buf.clear();
                black_box(&fetch_req)
                    .encode(&mut buf, FETCH_VERSION)
                    .expect("encodes");
                total += buf.len();
            }
            "fetch_response_decode" => {
                let r = FetchResponse::decode(&mut black_box(&fetch_resp).clone(), FETCH_VERSION)
                    .expect("decodes");
                total += r.responses.len();
            }
            other => {
                eprintln!("unknown case {other}");
                std::process::exit(2);
            }
        }
    }
    println!("{total}");
}
