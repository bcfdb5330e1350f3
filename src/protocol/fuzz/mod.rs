//! Fuzz entry points for the protocol decoders.
//!
//! Every function here takes arbitrary bytes and feeds them to one decoder
//! (or a decode/encode round trip). None of them may panic on any input: a
//! decoder must answer hostile bytes with an error. The functions panic
//! only to report a real bug, such as an encoder that cannot write back
//! what its decoder accepted, or a round trip that changes the bytes.
//!
//! They are shared by the cargo-fuzz crate in `fuzz/` (one
//! `fuzz_target!` per entry of [`TARGETS`], each calling [`run`]) and by
//! the replay test `tests/fuzz_corpus.rs`, which runs every file of the
//! committed corpus `fuzz/corpus/<target>/` through [`run`] on stable Rust.
//!
//! Decompression is capped at [`MAX_DECOMPRESSED`] (1 MiB) everywhere, so
//! a compression bomb cannot make the fuzzer run out of memory.
//!
//! ```
//! use klamm::protocol::fuzz;
//!
//! assert!(fuzz::TARGETS.contains(&"record_batch"));
//! assert!(fuzz::run("record_batch", b"not a batch"));
//! assert!(!fuzz::run("no_such_target", b""));
//! ```
//!
//! # Input layouts
//!
//! - `request_body`, `response_body`: byte 0 picks the API
//!   (`ApiKey::ALL[b0 % 76]`), byte 1 the version within that API's range
//!   (`min + b1 % (max - min + 1)`), the rest is the message body.
//! - `roundtrip`: byte 0 picks the mode (`b0 % 4`): 0 a request and 1 a
//!   response (then API and version bytes and the body, as above), 2 a v2
//!   record batch and 3 a legacy message set (the rest of the input).
//! - `request_frame`: a request frame without its size prefix; the same
//!   bytes are also split as a stream of size-prefixed frames.
//! - every other target: the whole input goes to the decoder.

use bytes::{Bytes, BytesMut};

use super::compression::{self, Compression};
use super::frame;
use super::messages::{ApiKey, RequestBody, ResponseBody};
use super::records::{
    DecodeOptions, EncodeOptions, LegacyBatch, LegacyMagic, RecordBatch, TimestampType,
    decode_record_set, encode_message_set,
};

/// The decompression cap for every target: 1 MiB.
pub const MAX_DECOMPRESSED: usize = 1024 * 1024;

/// The largest frame `request_frame` lets [`frame::split_frame`] accept.
pub const MAX_SPLIT_FRAME: usize = 4096;

/// The name of every fuzz target, in the order of the `fuzz/fuzz_targets`
/// files. [`run`] accepts exactly these names.
pub const TARGETS: &[&str] = &[
    "request_body",
    "response_body",
    "request_frame",
    "record_batch",
    "record_set",
    "message_set",
    "decompress_gzip",
    "decompress_snappy",
    "decompress_lz4",
    "decompress_zstd",
    "roundtrip",
];

/// Runs the target named `target` on `data`. Returns `false` (and does
/// nothing) when no target has that name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "request_body" => request_body(data),
        "response_body" => response_body(data),
        "request_frame" => request_frame(data),
        "record_batch" => record_batch(data),
        "record_set" => record_set(data),
        "message_set" => message_set(data),
        "decompress_gzip" => decompress_gzip(data),
        "decompress_snappy" => decompress_snappy(data),
        "decompress_lz4" => decompress_lz4(data),
        "decompress_zstd" => decompress_zstd(data),
        "roundtrip" => roundtrip(data),
        _ => return false,
    }
    true
}

fn opts(verify_crc: bool) -> DecodeOptions {
    DecodeOptions::default()
        .with_verify_crc(verify_crc)
        .with_max_decompressed_size(MAX_DECOMPRESSED)
}

/// Splits `data` into (API, version, body) by its first two bytes, or
/// `None` when it is shorter than two bytes.
pub fn select_api(data: &[u8]) -> Option<(ApiKey, i16, &[u8])> {
    let [a, v, body @ ..] = data else {
        return None;
    };
    let key = ApiKey::ALL[usize::from(*a) % ApiKey::ALL.len()];
    let (min, max) = key.versions();
    let span = i32::from(max) - i32::from(min) + 1;
    let version = (i32::from(min) + i32::from(*v) % span) as i16;
    Some((key, version, body))
}

/// The two-byte prefix [`select_api`] maps to `key` at `version`.
pub fn api_prefix(key: ApiKey, version: i16) -> [u8; 2] {
    let (min, _) = key.versions();
    [key.code() as u8, (version - min) as u8]
}

/// `RequestBody::decode` on the body, for the API and version the first
/// two bytes pick.
pub fn request_body(data: &[u8]) {
    if let Some((key, version, body)) = select_api(data) {
        let _ = RequestBody::decode(key, &mut Bytes::copy_from_slice(body), version);
    }
}

/// `ResponseBody::decode` on the body, for the API and version the first
/// two bytes pick.
pub fn response_body(data: &[u8]) {
    if let Some((key, version, body)) = select_api(data) {
        let _ = ResponseBody::decode(key, &mut Bytes::copy_from_slice(body), version);
    }
}

/// [`frame::decode_request`] on the whole input, then
/// [`frame::split_frame`] (at most [`MAX_SPLIT_FRAME`] bytes a frame) over
/// it as a stream, decoding each frame it yields.
pub fn request_frame(data: &[u8]) {
    let _ = frame::decode_request(Bytes::copy_from_slice(data));
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match frame::split_frame(&mut buf, MAX_SPLIT_FRAME) {
            Ok(Some(f)) => {
                assert!(f.len() <= MAX_SPLIT_FRAME, "split_frame exceeded its max");
                assert_eq!(before, buf.len() + 4 + f.len(), "split_frame lost bytes");
                let _ = frame::decode_request(f.freeze());
            }
            Ok(None) => {
                assert_eq!(before, buf.len(), "split_frame consumed a partial frame");
                break;
            }
            Err(_) => break,
        }
    }
}

/// [`RecordBatch::decode`] with and without CRC checks, reading every
/// derived value (offsets, timestamps, control records) of a decoded batch.
pub fn record_batch(data: &[u8]) {
    for verify in [false, true] {
        let mut buf = Bytes::copy_from_slice(data);
        if let Ok(batch) = RecordBatch::decode(&mut buf, &opts(verify)) {
            touch_batch(&batch);
        }
    }
}

fn touch_batch(batch: &RecordBatch) {
    let _ = batch.last_offset();
    let _ = batch.next_offset();
    let _ = batch.effective_max_timestamp();
    let _ = batch.delete_horizon_ms();
    for r in batch.iter() {
        let _ = (r.offset, r.timestamp);
        for h in &r.record.headers {
            let _ = h.key_str();
        }
    }
    batch.control_records().for_each(drop);
}

/// [`decode_record_set`] with and without CRC checks.
pub fn record_set(data: &[u8]) {
    for verify in [false, true] {
        if let Ok(set) = decode_record_set(Bytes::copy_from_slice(data), &opts(verify)) {
            assert!(set.truncated_bytes <= data.len());
            let _ = set.record_count();
            for b in &set.batches {
                let _ = b.next_offset();
                if let super::records::Batch::V2(batch) = b {
                    touch_batch(batch);
                }
            }
        }
    }
}

/// [`LegacyBatch::decode`] repeatedly over the input until it fails or the
/// input is used up, with and without CRC checks.
pub fn message_set(data: &[u8]) {
    for verify in [false, true] {
        let mut buf = Bytes::copy_from_slice(data);
        while !buf.is_empty() {
            let before = buf.len();
            match LegacyBatch::decode(&mut buf, &opts(verify)) {
                Ok(b) => {
                    assert!(buf.len() < before, "LegacyBatch::decode made no progress");
                    let _ = b.next_offset();
                }
                Err(_) => break,
            }
        }
    }
}

fn decompress_target(codec: Compression, data: &[u8]) {
    if let Ok(out) = compression::decompress(codec, data, MAX_DECOMPRESSED) {
        assert!(out.len() <= MAX_DECOMPRESSED, "{codec} exceeded its cap");
    }
    // And the other way: what klamm compresses must come back unchanged.
    let mut packed = Vec::new();
    compression::compress(codec, None, data, &mut packed)
        .unwrap_or_else(|e| panic!("{codec}: compressing {} bytes failed: {e}", data.len()));
    let back = compression::decompress(codec, &packed, data.len())
        .unwrap_or_else(|e| panic!("{codec}: decompressing own output failed: {e}"));
    assert!(
        back == data,
        "{codec}: compression round trip changed the data"
    );
}

/// [`compression::decompress`] of gzip input (capped), and a gzip
/// compress/decompress round trip of the input.
pub fn decompress_gzip(data: &[u8]) {
    decompress_target(Compression::Gzip, data);
}

/// [`compression::decompress`] of snappy input (xerial framing or a raw
/// block, capped), and a snappy round trip of the input.
pub fn decompress_snappy(data: &[u8]) {
    decompress_target(Compression::Snappy, data);
}

/// [`compression::decompress`] of LZ4 frames (capped), and LZ4 round trips
/// of the input in both the current and the magic-0 framing.
pub fn decompress_lz4(data: &[u8]) {
    decompress_target(Compression::Lz4, data);
    let mut packed = Vec::new();
    compression::compress_lz4_legacy_v0(data, &mut packed)
        .unwrap_or_else(|e| panic!("lz4 legacy: compressing failed: {e}"));
    let back = compression::decompress(Compression::Lz4, &packed, data.len())
        .unwrap_or_else(|e| panic!("lz4 legacy: decompressing own output failed: {e}"));
    assert!(back == data, "lz4 legacy: round trip changed the data");
}

/// [`compression::decompress`] of zstd frames (capped), and a zstd round
/// trip of the input.
pub fn decompress_zstd(data: &[u8]) {
    decompress_target(Compression::Zstd, data);
}

/// Decode/encode round trips; see the module documentation for the input
/// layout.
///
/// For messages: whatever decodes must encode (an error is a bug), to
/// exactly `encoded_len` bytes, which must decode again and re-encode to
/// the same bytes. Bytes are compared rather than values, since a float64
/// field may hold NaN.
///
/// For a v2 batch that decodes with its CRC checked: re-encoded without
/// compression it must decode to the same batch. For legacy messages that
/// decode with their CRC checked: re-encoded as plain messages they must
/// decode to the same keys, values, offsets and timestamps.
pub fn roundtrip(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Some((key, version, body)) = select_api(rest) {
                roundtrip_request(key, version, body);
            }
        }
        1 => {
            if let Some((key, version, body)) = select_api(rest) {
                roundtrip_response(key, version, body);
            }
        }
        2 => roundtrip_record_batch(rest),
        _ => roundtrip_message_set(rest),
    }
}

macro_rules! roundtrip_body {
    ($name:ident, $body:ty, $what:literal) => {
        fn $name(key: ApiKey, version: i16, body: &[u8]) {
            let Ok(value) = <$body>::decode(key, &mut Bytes::copy_from_slice(body), version) else {
                return;
            };
            let mut b2 = BytesMut::new();
            if let Err(e) = value.encode(&mut b2, version) {
                panic!(
                    "{} {key} v{version}: decoded but cannot encode: {e}\n{value:?}",
                    $what
                );
            }
            assert_eq!(
                value.encoded_len(version),
                b2.len(),
                "{} {key} v{version}: encoded_len disagrees with the bytes written\n{value:?}",
                $what
            );
            let b2 = b2.freeze();
            let mut rest = b2.clone();
            let again = match <$body>::decode(key, &mut rest, version) {
                Ok(v) => v,
                Err(e) => panic!(
                    "{} {key} v{version}: own encoding does not decode: {e}\n{value:?}\n{b2:?}",
                    $what
                ),
            };
            assert!(
                rest.is_empty(),
                "{} {key} v{version}: {} bytes left after decoding own encoding",
                $what,
                rest.len()
            );
            let mut b3 = BytesMut::new();
            if let Err(e) = again.encode(&mut b3, version) {
                panic!("{} {key} v{version}: re-encode failed: {e}", $what);
            }
            assert!(
                b3[..] == b2[..],
                "{} {key} v{version}: re-encoding changed the bytes\nfirst:  {b2:?}\nsecond: {b3:?}\n{value:?}",
                $what
            );
        }
    };
}

roundtrip_body!(roundtrip_request, RequestBody, "request");
roundtrip_body!(roundtrip_response, ResponseBody, "response");

fn roundtrip_record_batch(data: &[u8]) {
    let strict = opts(true);
    let Ok(mut batch) = RecordBatch::decode(&mut Bytes::copy_from_slice(data), &strict) else {
        return;
    };
    let encoded = batch
        .encode_to_vec(&EncodeOptions::default())
        .unwrap_or_else(|e| panic!("decoded v2 batch cannot be re-encoded: {e}\n{batch:?}"));
    let mut input = Bytes::from(encoded);
    let back = RecordBatch::decode(&mut input, &strict)
        .unwrap_or_else(|e| panic!("re-encoded v2 batch does not decode: {e}\n{batch:?}"));
    assert!(input.is_empty(), "re-encoded v2 batch left bytes over");
    batch.compression = Compression::None;
    assert_eq!(
        back, batch,
        "v2 batch changed in an uncompressed round trip"
    );
}

fn roundtrip_message_set(data: &[u8]) {
    let strict = opts(true);
    let mut buf = Bytes::copy_from_slice(data);
    while !buf.is_empty() {
        let Ok(batch) = LegacyBatch::decode(&mut buf, &strict) else {
            return;
        };
        // Under log-append time every message carries the wrapper's time.
        let ts_type = match batch.magic {
            LegacyMagic::V0 => TimestampType::CreateTime,
            LegacyMagic::V1 => batch.timestamp_type,
        };
        let mut out = Vec::new();
        encode_message_set(
            &batch.messages,
            batch.magic,
            ts_type,
            &EncodeOptions::default(),
            &mut out,
        )
        .unwrap_or_else(|e| panic!("decoded legacy messages cannot be re-encoded: {e}"));
        let mut input = Bytes::from(out);
        for m in &batch.messages {
            let back = LegacyBatch::decode(&mut input, &strict)
                .unwrap_or_else(|e| panic!("re-encoded legacy message does not decode: {e}"));
            assert_eq!(
                back.messages.len(),
                1,
                "a plain message decoded as a wrapper"
            );
            let b = &back.messages[0];
            assert_eq!((b.offset, &b.key, &b.value), (m.offset, &m.key, &m.value));
            if m.timestamp.is_some() {
                assert_eq!(b.timestamp, m.timestamp, "legacy timestamp changed");
            }
        }
        assert!(input.is_empty(), "re-encoded legacy set left bytes over");
    }
}

#[cfg(test)]
mod tests;
