//! Produce requests written by independent clients (librdkafka 2.16 through
//! confluent-kafka, and kafka-python 3.0.12), captured on the wire — see
//! `tests/fixtures/produce/README.md`. klamm must decode every frame, find
//! exactly the records the client was asked to send, and write the same
//! bytes back: the whole frame always (records are opaque to the Produce
//! message), and the record data itself when it is uncompressed.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use klamm::protocol::compression::Compression;
use klamm::protocol::frame::{decode_request, encode_request};
use klamm::protocol::messages::{ProduceRequest, RequestBody};
use klamm::protocol::records::{
    Batch, DecodeOptions, EncodeOptions, LegacyMagic, RecordBatch, decode_record_set,
    encode_message_set,
};
use serde_json::Value;

const DIR: &str = "tests/fixtures/produce";

struct Expected {
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
    timestamp: i64,
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn expected_records(fixture: &Value) -> Vec<Expected> {
    fixture["records"]
        .as_array()
        .expect("records list")
        .iter()
        .map(|r| Expected {
            key: opt_str(&r["key"]),
            value: opt_str(&r["value"]),
            headers: r["headers"]
                .as_array()
                .expect("headers list")
                .iter()
                .map(|h| {
                    let pair = h.as_array().map(|a| (a[0].clone(), a[1].clone()));
                    let (k, v) = pair.unwrap_or_else(|| (h["key"].clone(), h["value"].clone()));
                    (opt_str(&k).expect("header key"), opt_str(&v))
                })
                .collect(),
            timestamp: r["timestamp"].as_i64().expect("timestamp"),
        })
        .collect()
}

fn text(b: &Option<Bytes>) -> Option<String> {
    b.as_ref()
        .map(|b| String::from_utf8(b.to_vec()).expect("utf-8 fixture data"))
}

fn codec(name: &str) -> Compression {
    Compression::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .expect("known codec")
}

fn check_v2(name: &str, fixture: &Value, records: &Bytes, batch: &RecordBatch) {
    let want = expected_records(fixture);
    assert_eq!(
        batch.compression,
        codec(fixture["codec"].as_str().unwrap_or_default()),
        "{name}"
    );
    assert_eq!(batch.records.len(), want.len(), "{name}");
    for (r, w) in batch.iter().zip(&want) {
        assert_eq!(text(&r.record.key), w.key, "{name}");
        assert_eq!(text(&r.record.value), w.value, "{name}");
        assert_eq!(r.timestamp, w.timestamp, "{name}");
        let headers: Vec<(String, Option<String>)> = r
            .record
            .headers
            .iter()
            .map(|h| (h.key_str().expect("utf-8 key").to_owned(), text(&h.value)))
            .collect();
        assert_eq!(
            headers, w.headers,
            "{name}: headers keep order and duplicates"
        );
    }
    if fixture["idempotent"].as_bool() == Some(true) {
        assert!(batch.producer_id >= 0 && batch.base_sequence == 0, "{name}");
    }
    if batch.compression == Compression::None {
        let again = batch
            .encode_to_vec(&EncodeOptions::default())
            .expect("re-encode");
        assert_eq!(&again[..], &records[..], "{name}: re-encoded byte for byte");
    } else {
        // Compressed bytes depend on the compressor; the records must not.
        let again = batch
            .encode_to_vec(&EncodeOptions::compressed(batch.compression))
            .expect("re-encode");
        let back = RecordBatch::decode(&mut Bytes::from(again), &DecodeOptions::default())
            .expect("decode again");
        assert_eq!(back.records, batch.records, "{name}");
    }
}

fn check_legacy(name: &str, fixture: &Value, records: &Bytes, batches: &[Batch]) {
    let want = expected_records(fixture);
    let magic = match fixture["magic"].as_i64() {
        Some(0) => LegacyMagic::V0,
        Some(1) => LegacyMagic::V1,
        m => panic!("{name}: magic {m:?}"),
    };
    let legacy: Vec<_> = batches
        .iter()
        .map(|b| match b {
            Batch::Legacy(l) => l,
            Batch::V2(_) => panic!("{name}: expected a legacy message set"),
        })
        .collect();
    let messages: Vec<_> = legacy.iter().flat_map(|l| l.messages.iter()).collect();
    assert_eq!(messages.len(), want.len(), "{name}");
    let first = messages[0].offset;
    for (i, (m, w)) in messages.iter().zip(&want).enumerate() {
        assert_eq!(m.offset - first, i as i64, "{name}: consecutive offsets");
        assert_eq!(text(&m.key), w.key, "{name}");
        assert_eq!(text(&m.value), w.value, "{name}");
        match magic {
            LegacyMagic::V0 => assert_eq!(m.timestamp, None, "{name}"),
            LegacyMagic::V1 => assert_eq!(m.timestamp, Some(w.timestamp), "{name}"),
        }
    }
    let expected_codec = codec(fixture["codec"].as_str().unwrap_or_default());
    assert!(
        legacy
            .iter()
            .all(|l| l.compression == expected_codec && l.magic == magic),
        "{name}"
    );
    if expected_codec == Compression::None {
        let owned: Vec<_> = messages.iter().map(|m| (*m).clone()).collect();
        let mut again = Vec::new();
        encode_message_set(
            &owned,
            magic,
            legacy[0].timestamp_type,
            &EncodeOptions::default(),
            &mut again,
        )
        .expect("re-encode");
        assert_eq!(&again[..], &records[..], "{name}: re-encoded byte for byte");
    }
}

#[test]
fn every_captured_produce_request_decodes_to_what_the_client_sent() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(DIR).join("MANIFEST.json")).expect("manifest"),
    )
    .expect("manifest is JSON");
    let fixtures = manifest["fixtures"].as_array().expect("fixtures");
    let mut seen_codecs = std::collections::BTreeSet::new();
    for fixture in fixtures {
        let name = fixture["file"].as_str().expect("file");
        let file = std::fs::read(Path::new(DIR).join(name)).expect("fixture file");
        let size = u32::from_be_bytes(file[..4].try_into().expect("size prefix")) as usize;
        assert_eq!(size, file.len() - 4, "{name}: frame size prefix");
        let frame = Bytes::from(file.clone()).slice(4..);

        let (header, body) = decode_request(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        let RequestBody::Produce(req) = body else {
            panic!("{name}: not a Produce request")
        };
        let version = header.request_api_version;
        assert_eq!(
            i64::from(version),
            fixture["produce_api_version"].as_i64().expect("version"),
            "{name}"
        );
        assert_eq!(
            header.client_id.as_deref(),
            fixture["client_id"].as_str(),
            "{name}"
        );
        assert_eq!(
            i64::from(req.acks),
            fixture["acks"].as_i64().expect("acks"),
            "{name}"
        );
        assert_eq!(req.topic_data.len(), 1, "{name}");
        assert_eq!(
            req.topic_data[0].name,
            fixture["topic"].as_str().expect("topic"),
            "{name}"
        );
        let part = &req.topic_data[0].partition_data[0];
        let records = part.records.clone().expect("records present");

        // The records field is a zero-copy slice of the frame, at the offset
        // the capture tool found independently.
        let at = fixture["records_offset"].as_u64().expect("records_offset") as usize;
        let len = fixture["records_size"].as_u64().expect("records_size") as usize;
        assert_eq!(
            &records[..],
            &file[at..at + len],
            "{name}: records field location"
        );

        // The whole frame re-encodes byte for byte.
        let mut again = BytesMut::new();
        encode_request::<ProduceRequest, _>(
            &mut again,
            header.correlation_id,
            header.client_id.as_deref(),
            &req,
            version,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            &again[..],
            &file[..],
            "{name}: frame re-encoded byte for byte"
        );

        let set = decode_record_set(records.clone(), &DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!set.is_truncated(), "{name}");
        match fixture["magic"].as_i64() {
            Some(2) => {
                assert_eq!(set.batches.len(), 1, "{name}: one batch");
                let Batch::V2(batch) = &set.batches[0] else {
                    panic!("{name}: expected a v2 batch")
                };
                check_v2(name, fixture, &records, batch);
            }
            _ => check_legacy(name, fixture, &records, &set.batches),
        }
        seen_codecs.insert((
            fixture["magic"].as_i64(),
            fixture["codec"].as_str().map(str::to_owned),
        ));
    }
    assert!(fixtures.len() >= 23, "all captures checked");
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        assert!(
            seen_codecs.contains(&(Some(2), Some(codec.to_string()))),
            "v2 {codec} covered"
        );
    }
}
