//! Shared by the transaction tests (`tests/transactions.rs`,
//! `tests/producer_transactions.rs`): the two peers, reading a partition's
//! data and markers back with raw Fetch, a group's committed offsets, the
//! fenced error.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use klamm::client::TrafficClass;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use klamm::protocol::messages::{ApiKey, OffsetFetchRequest};
use klamm::protocol::records::{ControlRecordType, DecodeOptions};
use klamm::{Client, Config, Error, ErrorKind};

use super::mock::MockCluster;

/// Which peer a test runs against.
pub enum Peer {
    /// Apache Kafka (the single node).
    Kafka(String),
    Mock(MockCluster),
}

impl Peer {
    pub fn kafka() -> Option<Peer> {
        super::broker().map(Peer::Kafka)
    }

    pub fn mock() -> Option<Peer> {
        super::mock::mock().map(Peer::Mock)
    }

    pub fn config(&self, transactional_id: &str) -> Config {
        let mut config = Config::default();
        config.net.bootstrap_servers = match self {
            Peer::Kafka(addr) => vec![addr.clone()],
            Peer::Mock(m) => m.addrs(),
        };
        config.net.client_id = "klamm-txn-test".into();
        config.net.request_timeout = Duration::from_secs(5);
        config.producer.idempotence = true;
        config.producer.transactional_id = Some(transactional_id.to_string());
        config.producer.transaction_timeout = Duration::from_secs(30);
        config.producer.max_block = Duration::from_secs(15);
        config
    }

    /// librdkafka 2.16's mock writes control batches with CRC 0.
    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions::default().with_verify_crc(matches!(self, Peer::Kafka(_)))
    }

    pub async fn create_topic(&self, client: &Client, topic: &str, partitions: i32) {
        match self {
            Peer::Mock(m) => m.create_topic(topic, partitions, 1),
            Peer::Kafka(_) => super::topics::create_topic(client, topic, partitions).await,
        }
        client
            .refresh_metadata(Some(&[topic.to_string()]))
            .await
            .expect("metadata");
    }
}

#[derive(Debug, Default)]
pub struct Log {
    pub values: Vec<(i64, bool, String)>,
    pub markers: Vec<(i64, ControlRecordType)>,
}

/// The partition's data values (with producer id and transactional flag)
/// and control markers, read raw to the high watermark.
pub async fn fetch(peer: &Peer, client: &Client, topic: &str, partition: i32) -> Log {
    let batches =
        super::read::stored_batches_with(client, topic, partition, &peer.decode_options()).await;
    let mut log = Log::default();
    for b in &batches {
        if b.is_control {
            for c in b.control_records() {
                log.markers
                    .push((b.producer_id, c.expect("control record").record_type));
            }
        } else {
            for r in &b.records {
                let v = r.value.as_deref().unwrap_or_default();
                log.values.push((
                    b.producer_id,
                    b.is_transactional,
                    String::from_utf8_lossy(v).into_owned(),
                ));
            }
        }
    }
    log
}

/// Fetches until the partition holds a control marker (markers are written
/// after EndTxn answers), or panics after 10 s.
pub async fn fetch_with_marker(peer: &Peer, client: &Client, topic: &str, partition: i32) -> Log {
    let start = Instant::now();
    loop {
        let log = fetch(peer, client, topic, partition).await;
        if !log.markers.is_empty() {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no transaction marker in {topic}/{partition}: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The group's committed offset of `topic`/`partition` (OffsetFetch for an
/// explicit topic, v7 at most: tansu's answer for all topics is malformed).
pub async fn committed(
    client: &Client,
    group: &str,
    topic: &str,
    partition: i32,
) -> (i64, Option<String>) {
    let coordinator = client.coordinator(group).await.expect("group coordinator");
    let conn = client
        .connection(&coordinator, TrafficClass::Other)
        .await
        .expect("connection");
    let version = conn
        .api_versions()
        .version_for(ApiKey::OffsetFetch, conn.broker())
        .expect("OffsetFetch version")
        .min(7);
    let req = OffsetFetchRequest {
        group_id: group.to_string(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: topic.to_string(),
            partition_indexes: [partition].into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let resp = conn.send_version(&req, version).await.expect("OffsetFetch");
    assert_eq!(ErrorCode(resp.error_code), ErrorCode::NONE, "OffsetFetch");
    let p = resp
        .topics
        .iter()
        .find(|t| t.name == topic)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .expect("OffsetFetch answers for the partition");
    (p.committed_offset, p.metadata.clone())
}

pub fn assert_fenced(err: &Error) {
    assert_eq!(err.kind(), ErrorKind::Broker, "{err}");
    assert!(
        matches!(
            err.kafka_code(),
            Some(ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH)
        ),
        "{err}"
    );
    assert!(!err.is_retriable(), "{err}");
    let text = err.to_string();
    assert!(text.contains("fenced by another instance"), "{text}");
    assert!(text.contains("must be closed"), "{text}");
}

/// The tests share one mock cluster and inject errors into it; they take
/// turns.
pub static MOCK: Mutex<()> = Mutex::new(());

pub fn mock_turn() -> Option<(Peer, MutexGuard<'static, ()>)> {
    let guard = MOCK.lock().unwrap_or_else(|p| p.into_inner());
    let peer = Peer::mock()?;
    if let Peer::Mock(m) = &peer {
        for api in [
            ApiKey::InitProducerId,
            ApiKey::AddPartitionsToTxn,
            ApiKey::AddOffsetsToTxn,
            ApiKey::TxnOffsetCommit,
            ApiKey::EndTxn,
        ] {
            m.clear_errors(api.code());
        }
    }
    Some((peer, guard))
}

pub fn mock_cluster(peer: &Peer) -> &MockCluster {
    match peer {
        Peer::Mock(m) => m,
        Peer::Kafka(_) => unreachable!("a mock test got Kafka"),
    }
}
