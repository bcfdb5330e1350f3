//! Shared data builders for the klamm vs kafka-protocol benchmarks in
//! `benches/`. Every builder is deterministic, and each one produces the
//! same logical content for both libraries so the two sides do the same
//! work.

use bytes::{Bytes, BytesMut};
use klamm::protocol::codec::Message;
use klamm::protocol::compression::Compression;
use klamm::protocol::records::{EncodeOptions, Record, RecordBatch};

/// Base offset of the generated batches.
pub const BASE_OFFSET: i64 = 1_000_000;
/// Base timestamp of the generated batches (ms).
pub const BASE_TS: i64 = 1_700_000_000_000;
/// Size of every generated record value.
pub const VALUE_LEN: usize = 100;

/// A small xorshift generator, so the data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

const WORDS: [&str; 16] = [
    "user", "click", "page", "view", "order", "cart", "session", "product", "search", "login",
    "error", "status", "ok", "region", "eu-west", "checkout",
];

/// `n` (key, value) pairs: keys like `key-000042` (10 bytes), values of
/// exactly [`VALUE_LEN`] bytes of word-and-number text, so they compress
/// moderately (like log or JSON payloads), neither trivially nor not at all.
pub fn payloads(n: usize, seed: u64) -> Vec<(Bytes, Bytes)> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|i| {
            let key = Bytes::from(format!("key-{i:06}"));
            let mut v = String::with_capacity(VALUE_LEN + 16);
            while v.len() < VALUE_LEN {
                let r = rng.next();
                v.push_str(WORDS[(r & 15) as usize]);
                v.push('=');
                v.push_str(&((r >> 8) % 100_000).to_string());
                v.push(' ');
            }
            v.truncate(VALUE_LEN);
            (key, Bytes::from(v))
        })
        .collect()
}

/// A klamm batch of the given records (offset and timestamp deltas = index).
pub fn klamm_batch(base_offset: i64, payloads: &[(Bytes, Bytes)]) -> RecordBatch {
    let mut batch = RecordBatch::new(base_offset, BASE_TS);
    batch.records = payloads
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            Record::new(Some(k.clone()), Some(v.clone()))
                .with_offset_delta(i as i32)
                .with_timestamp_delta(i as i64)
        })
        .collect();
    batch
}

/// The same records as kafka-protocol `Record`s. The sequence numbers are
/// chosen so that kafka-protocol keeps them in one batch (offset minus
/// sequence must be constant) with base sequence -1, like klamm's default,
/// so uncompressed both libraries produce identical bytes.
pub fn kp_records(
    base_offset: i64,
    payloads: &[(Bytes, Bytes)],
) -> Vec<kafka_protocol::records::Record> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, (k, v))| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: base_offset + i as i64,
            sequence: i as i32 - 1,
            timestamp: BASE_TS + i as i64,
            key: Some(k.clone()),
            value: Some(v.clone()),
            headers: Default::default(),
        })
        .collect()
}

/// kafka-protocol's codec enum for a klamm codec.
pub fn kp_compression(c: Compression) -> kafka_protocol::records::Compression {
    use kafka_protocol::records::Compression as K;
    match c {
        Compression::None => K::None,
        Compression::Gzip => K::Gzip,
        Compression::Snappy => K::Snappy,
        Compression::Lz4 => K::Lz4,
        Compression::Zstd => K::Zstd,
    }
}

/// A Metadata response (`brokers` brokers, `topics` × `partitions`
/// partitions, 3 replicas each, all in sync), encoded by klamm at `version`.
pub fn metadata_response_bytes(topics: usize, partitions: usize, version: i16) -> Bytes {
    use klamm::protocol::messages::MetadataResponse;
    use klamm::protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use klamm::protocol::primitives::Uuid;
    let brokers = (0..3)
        .map(|id| MetadataResponseBroker {
            node_id: id,
            host: format!("broker-{id}.kafka.internal"),
            port: 9092,
            rack: Some(format!("rack-{id}")),
            ..Default::default()
        })
        .collect();
    let topics = (0..topics)
        .map(|t| MetadataResponseTopic {
            error_code: 0,
            name: Some(format!("events.topic-{t:03}")),
            topic_id: Uuid::from_u128(0x1234_5678_9abc_def0_0000_0000_0000_0000 | t as u128),
            is_internal: false,
            partitions: (0..partitions)
                .map(|p| {
                    let leader = (p % 3) as i32;
                    let replicas = vec![leader, (leader + 1) % 3, (leader + 2) % 3];
                    MetadataResponsePartition {
                        error_code: 0,
                        partition_index: p as i32,
                        leader_id: leader,
                        leader_epoch: 7,
                        isr_nodes: replicas.as_slice().into(),
                        replica_nodes: replicas.as_slice().into(),
                        offline_replicas: Default::default(),
                        ..Default::default()
                    }
                })
                .collect(),
            topic_authorized_operations: -2147483648,
            ..Default::default()
        })
        .collect();
    let resp = MetadataResponse {
        throttle_time_ms: 0,
        brokers,
        cluster_id: Some("klamm-bench-cluster".to_string()),
        controller_id: 1,
        topics,
        cluster_authorized_operations: -2147483648,
        ..Default::default()
    };
    let mut buf = BytesMut::with_capacity(resp.encoded_len(version));
    resp.encode(&mut buf, version)
        .expect("encode MetadataResponse");
    buf.freeze()
}

/// A Fetch response for one topic with `partitions` partitions, each whose
/// `records` holds `batches` uncompressed v2 batches of `per_batch` records
/// of [`VALUE_LEN`]-byte values, encoded by klamm at `version`. Returns the
/// bytes and the total record count.
pub fn fetch_response_bytes(
    partitions: usize,
    batches: usize,
    per_batch: usize,
    version: i16,
) -> (Bytes, usize) {
    use klamm::protocol::messages::FetchResponse;
    use klamm::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use klamm::protocol::primitives::Uuid;
    let data = payloads(per_batch, 0x5eed);
    let mut total = 0;
    let parts = (0..partitions)
        .map(|p| {
            let mut records = BytesMut::new();
            for b in 0..batches {
                let batch = klamm_batch((b * per_batch) as i64, &data);
                batch
                    .encode(&mut records, &EncodeOptions::default())
                    .expect("encode batch");
                total += per_batch;
            }
            PartitionData {
                partition_index: p as i32,
                error_code: 0,
                high_watermark: (batches * per_batch) as i64,
                last_stable_offset: (batches * per_batch) as i64,
                log_start_offset: 0,
                aborted_transactions: None,
                preferred_read_replica: -1,
                records: Some(records.freeze()),
                ..Default::default()
            }
        })
        .collect();
    let resp = FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        responses: vec![FetchableTopicResponse {
            topic: "events".to_string(),
            topic_id: Uuid::from_u128(0xfeed_beef),
            partitions: parts,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut buf = BytesMut::with_capacity(resp.encoded_len(version));
    resp.encode(&mut buf, version)
        .expect("encode FetchResponse");
    (buf.freeze(), total)
}

/// The hot-path messages of `benches/messages.rs` and `examples/codec_ir.rs`
/// (records inside are opaque bytes here):
/// - ProduceRequest v9: 1 topic, 16 partitions of 16 KiB records;
/// - ProduceResponse v10: the answer to it;
/// - FetchRequest v12: 100 partitions of one topic;
/// - FetchResponse v12: 100 partitions with 1 KiB of records each.
pub mod messages {
    use bytes::{Bytes, BytesMut};
    use klamm::protocol::codec::Message;
    use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use klamm::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use klamm::protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use klamm::protocol::messages::{FetchRequest, FetchResponse, ProduceRequest, ProduceResponse};

    /// Version of the ProduceRequest.
    pub const PRODUCE_VERSION: i16 = 9;
    /// Version of the ProduceResponse.
    pub const PRODUCE_RESPONSE_VERSION: i16 = 10;
    /// Version of the FetchRequest and FetchResponse.
    pub const FETCH_VERSION: i16 = 12;

    /// The ProduceRequest, built in code.
    pub fn produce_request() -> ProduceRequest {
        let records = Bytes::from(vec![7u8; 16 * 1024]);
        ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: "bench-topic".into(),
                partition_data: (0..16)
                    .map(|p| PartitionProduceData {
                        index: p,
                        records: Some(records.clone()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The ProduceResponse, as bytes on the wire.
    pub fn produce_response() -> Bytes {
        let resp = ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "bench-topic".into(),
                partition_responses: (0..16)
                    .map(|p| PartitionProduceResponse {
                        index: p,
                        base_offset: 1_000_000 + i64::from(p),
                        log_start_offset: 0,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut b = BytesMut::new();
        resp.encode(&mut b, PRODUCE_RESPONSE_VERSION)
            .expect("encodes");
        b.freeze()
    }

    /// The FetchRequest, built in code.
    pub fn fetch_request() -> FetchRequest {
        FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 << 20,
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: "bench-topic".into(),
                partitions: (0..100)
                    .map(|p| FetchPartition {
                        partition: p,
                        current_leader_epoch: 3,
                        fetch_offset: 123_456,
                        log_start_offset: -1,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The FetchResponse, as bytes on the wire.
    pub fn fetch_response() -> Bytes {
        let records = Bytes::from(vec![9u8; 1024]);
        let resp = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "bench-topic".into(),
                partitions: (0..100)
                    .map(|p| PartitionData {
                        partition_index: p,
                        high_watermark: 2_000_000,
                        last_stable_offset: 2_000_000,
                        log_start_offset: 0,
                        records: Some(records.clone()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut b = BytesMut::new();
        resp.encode(&mut b, FETCH_VERSION).expect("encodes");
        b.freeze()
    }
}
