//! Produce records to a real broker and read them back, using klamm's
//! protocol layer over a plain blocking TCP connection.
//!
//! Run it with `scripts/quickstart` (it starts a local test broker when
//! `KLAMM_BROKERS` is not set), or against your own broker:
//! `KLAMM_BROKERS=host:9092 cargo run --example quickstart`.
//!
//! klamm's asynchronous producer and consumer are not built yet; this shows
//! the codecs they will stand on, against a real broker.

#[path = "../tests/support/wire.rs"]
mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use klamm::protocol::compression::Compression;
use klamm::protocol::messages::create_topics_request::CreatableTopic;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use klamm::protocol::messages::{ApiKey, CreateTopicsRequest, FetchRequest, ProduceRequest};
use klamm::protocol::records::{
    Batch, DecodeOptions, EncodeOptions, Header, Record, RecordBatch, decode_record_set,
};
use wire::{BoxError, Wire};

const TOPIC: &str = "klamm-quickstart";
/// Kafka's TOPIC_ALREADY_EXISTS error code.
const TOPIC_ALREADY_EXISTS: i16 = 36;

fn main() -> Result<(), BoxError> {
    let addr = std::env::var("KLAMM_BROKERS")
        .map_err(|_| "set KLAMM_BROKERS=host:port, or run scripts/quickstart")?;
    let addr = addr.split(',').next().unwrap_or_default().to_string();
    let mut wire = Wire::connect(&addr)?;
    let produce_v = wire
        .version(ApiKey::Produce)
        .ok_or("broker has no usable Produce version")?;
    let fetch_v = wire
        .version(ApiKey::Fetch)
        .ok_or("broker has no usable Fetch version")?
        .min(12);
    println!("connected to {addr}: Produce v{produce_v}, Fetch v{fetch_v}");

    let created = wire.call(
        &CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: TOPIC.into(),
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        },
        5,
    )?;
    match created.topics.first().map(|t| t.error_code) {
        Some(0) => println!("created topic {TOPIC}"),
        Some(TOPIC_ALREADY_EXISTS) => println!("topic {TOPIC} already exists"),
        other => return Err(format!("CreateTopics failed: {other:?}").into()),
    }

    // One lz4-compressed batch of five records with headers.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let mut batch = RecordBatch::new(0, now);
    for i in 0..5 {
        batch.records.push(
            Record::new(
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("hello #{i} from klamm"))),
            )
            .with_offset_delta(i)
            .with_header(Header::new("source", "quickstart")),
        );
    }
    let records = batch.encode_to_vec(&EncodeOptions::compressed(Compression::Lz4))?;
    let produced = wire.call(
        &ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(records.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        produce_v,
    )?;
    let p = produced
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or("empty Produce response")?;
    if p.error_code != 0 {
        return Err(format!("Produce failed with error code {}", p.error_code).into());
    }
    println!(
        "produced {} records at offsets {}..{}",
        batch.records.len(),
        p.base_offset,
        p.base_offset + 4
    );

    let fetched = wire.call(
        &FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: TOPIC.into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: p.base_offset,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
        fetch_v,
    )?;
    let part = fetched
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("empty Fetch response")?;
    if part.error_code != 0 {
        return Err(format!("Fetch failed with error code {}", part.error_code).into());
    }
    let set = decode_record_set(
        part.records.clone().unwrap_or_default(),
        &DecodeOptions::default(),
    )?;
    let mut consumed = 0;
    for b in &set.batches {
        if let Batch::V2(b) = b {
            for r in b.iter().filter(|r| r.offset >= p.base_offset) {
                let text =
                    |v: &Option<Bytes>| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
                println!(
                    "consumed offset {} key={:?} value={:?} headers={}",
                    r.offset,
                    text(&r.record.key),
                    text(&r.record.value),
                    r.record.headers.len()
                );
                consumed += 1;
            }
        }
    }
    if consumed < batch.records.len() {
        return Err(format!(
            "read back only {consumed} of {} records",
            batch.records.len()
        )
        .into());
    }
    println!(
        "done: {consumed} records produced and consumed (high watermark {})",
        part.high_watermark
    );
    Ok(())
}
