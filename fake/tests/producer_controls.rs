//! The controls a producer's tests use: what each batch sent was answered
//! (`produced`), a refusal for one partition of a request
//! (`inject_partition_error` on Produce), held answers (`hold`, `release`), the faults still
//! waiting (`faults_left`), producer ids that start at a high epoch
//! (`first_producer_epoch`) and a topic described with an error
//! (`metadata_topic_error`). Each has a control that shows its check can
//! fail.
mod support;

use std::time::Duration;

use bytes::Bytes;
use klamm::net::{Connection, ConnectionOptions};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::metadata_request::MetadataRequestTopic;
use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use klamm::protocol::messages::{
    ApiKey, InitProducerIdRequest, MetadataRequest, ProduceRequest, ProduceResponse,
};
use klamm::protocol::records::{EncodeOptions, Record, RecordBatch};
use klamm::{Client, Config};
use klamm_fake::{FakeCluster, Fault};
use support::{bounded, config};

async fn producer(config: Config) -> AsyncProducer {
    AsyncProducer::new(Client::connect(config).await.unwrap())
        .await
        .unwrap()
}

async fn connect(cluster: &FakeCluster) -> Connection {
    let opts = ConnectionOptions {
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    Connection::connect(&cluster.addresses()[0], opts)
        .await
        .unwrap()
}

/// A batch of `n` records without idempotence.
fn batch(n: usize) -> Bytes {
    let mut b = RecordBatch::new(0, 1_700_000_000_000);
    for i in 0..n {
        b.records.push(
            Record::new(None, Some(Bytes::from(format!("r{i}")))).with_offset_delta(i as i32),
        );
    }
    Bytes::from(b.encode_to_vec(&EncodeOptions::default()).unwrap())
}

/// `n` bytes that do not compress.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One Produce request carrying a batch for each of `partitions` of `t`.
fn produce_to(partitions: &[i32]) -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: partitions
                .iter()
                .map(|&index| PartitionProduceData {
                    index,
                    records: Some(batch(2)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The error code of each partition of a Produce answer, by partition.
async fn produce_codes(conn: &Connection, partitions: &[i32]) -> Vec<(i32, ErrorCode)> {
    let resp = conn.send(&produce_to(partitions)).await.unwrap();
    let mut out: Vec<(i32, ErrorCode)> = resp
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .map(|p| (p.index, ErrorCode::from(p.error_code)))
        .collect();
    out.sort();
    out
}

/// `produced` gives each batch sent with its producer fields and its
/// answer: a retry the leader recognised is there twice, the second time
/// as a duplicate at the first write's offset; a batch over the limit is
/// there with MESSAGE_TOO_LARGE; without `record_requests` it is empty.
#[tokio::test]
async fn produced_gives_each_batch_sent_and_its_answer() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .record_requests(true)
            .max_message_bytes(400)
            .topic("t", 1)
            .start()
            .await
            .unwrap();
        cluster
            .inject(ApiKey::Produce, None, Fault::CutAfterApply, 1)
            .unwrap();
        let mut cfg = config(&cluster);
        cfg.producer.compression = Compression::Zstd;
        let p = producer(cfg).await;
        p.send(ProducerRecord::new("t", "a").with_partition(0))
            .await
            .unwrap()
            .await
            .unwrap();
        let err = p
            .send(ProducerRecord::new("t", noise(500)).with_partition(0))
            .await
            .unwrap()
            .await
            .expect_err("too large");
        assert_eq!(err.kafka_code(), Some(ErrorCode::MESSAGE_TOO_LARGE));
        p.close().await.unwrap();
        let sent = cluster.produced("t", 0);
        assert_eq!(sent.len(), 3, "{sent:#?}");
        let (first, retry, big) = (&sent[0], &sent[1], &sent[2]);
        assert!(first.producer_id >= 0 && first.producer_epoch == 0);
        assert_eq!(
            (
                first.base_sequence,
                first.records,
                first.error,
                first.base_offset
            ),
            (0, 1, ErrorCode::NONE, 0)
        );
        assert!(!first.duplicate && !first.transactional);
        assert_eq!(first.compression, Compression::Zstd);
        assert_eq!(first.broker, 1);
        // The retry: the same batch, recognised.
        assert_eq!(
            (retry.base_sequence, retry.size, retry.base_offset),
            (0, first.size, 0)
        );
        assert!(retry.duplicate);
        assert_eq!(cluster.duplicates("t", 0), 1);
        // Control: the batch over the limit is refused, and so recorded.
        assert_eq!(
            (big.error, big.base_offset),
            (ErrorCode::MESSAGE_TOO_LARGE, -1)
        );
        assert!(big.size > 400 && first.size < 400);
        assert_eq!(big.base_sequence, 1);

        let quiet = FakeCluster::builder().topic("t", 1).start().await.unwrap();
        let p = producer(config(&quiet)).await;
        p.send(ProducerRecord::new("t", "a").with_partition(0))
            .await
            .unwrap()
            .await
            .unwrap();
        p.close().await.unwrap();
        assert!(quiet.produced("t", 0).is_empty(), "kept only when asked");
    })
    .await;
}

/// One Produce request to two partitions, an error injected for one: it
/// gets the code, nothing written (its batch is still in `produced`, with
/// the error), and the other is written; the error is used up after
/// `times` writes (the control: the same request then succeeds).
#[tokio::test]
async fn a_partition_error_fails_one_partition_of_a_produce() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .record_requests(true)
            .topic("t", 2)
            .start()
            .await
            .unwrap();
        cluster
            .inject_partition_error(ApiKey::Produce, None, "t", 1, ErrorCode::INVALID_RECORD, 1)
            .unwrap();
        let conn = connect(&cluster).await;
        assert_eq!(
            produce_codes(&conn, &[0, 1]).await,
            [(0, ErrorCode::NONE), (1, ErrorCode::INVALID_RECORD)]
        );
        assert_eq!(cluster.records("t", 0).len(), 2);
        assert!(cluster.records("t", 1).is_empty());
        let refused = cluster.produced("t", 1);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].error, ErrorCode::INVALID_RECORD);
        assert_eq!(
            produce_codes(&conn, &[0, 1]).await,
            [(0, ErrorCode::NONE), (1, ErrorCode::NONE)]
        );
        assert_eq!(cluster.records("t", 1).len(), 2);
    })
    .await;
}

/// A held answer waits while the connection's next request is read and
/// handled; released, both answers come, in order. The control: before
/// the release the first answer has not come.
#[tokio::test]
async fn held_answers_wait_while_later_requests_are_handled() {
    bounded(async {
        let cluster = FakeCluster::builder().topic("t", 1).start().await.unwrap();
        let conn = connect(&cluster).await;
        cluster.hold(ApiKey::Produce);
        let version = conn
            .api_versions()
            .version_for(ApiKey::Produce, conn.broker())
            .unwrap();
        let mut first = Box::pin(
            conn.queue_version(&produce_to(&[0]), version)
                .await
                .unwrap(),
        );
        let second = conn
            .queue_version(&produce_to(&[0]), version)
            .await
            .unwrap();
        let handled = async {
            while cluster.requests(None, ApiKey::Produce) < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        handled.await;
        assert_eq!(cluster.records("t", 0).len(), 4, "both written already");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut first)
                .await
                .is_err(),
            "the answer is held"
        );
        cluster.release(ApiKey::Produce);
        let a = first.await.unwrap();
        let b = second.await.unwrap();
        let offset = |r: &ProduceResponse| r.responses[0].partition_responses[0].base_offset;
        assert_eq!((offset(&a), offset(&b)), (0, 2));
        // Released, answers go out at once again.
        let c = conn.send(&produce_to(&[0])).await.unwrap();
        assert_eq!(offset(&c), 4);
    })
    .await;
}

/// `faults_left` counts what the injected faults still have to do.
#[tokio::test]
async fn faults_left_counts_the_faults_not_yet_hit() {
    bounded(async {
        let cluster = FakeCluster::builder().topic("t", 1).start().await.unwrap();
        assert_eq!(cluster.faults_left(None), 0);
        let code = Fault::Error(ErrorCode::NOT_ENOUGH_REPLICAS);
        cluster.inject(ApiKey::Produce, None, code, 2).unwrap();
        cluster
            .inject(ApiKey::Fetch, None, Fault::CutBeforeApply, 1)
            .unwrap();
        assert_eq!(cluster.faults_left(None), 3);
        let conn = connect(&cluster).await;
        assert_eq!(
            produce_codes(&conn, &[0]).await,
            [(0, ErrorCode::NOT_ENOUGH_REPLICAS)]
        );
        assert_eq!(cluster.faults_left(None), 2);
        cluster.clear_faults();
        assert_eq!(cluster.faults_left(None), 0);
        cluster
            .inject(ApiKey::Produce, None, code, u64::MAX)
            .unwrap();
        cluster.inject(ApiKey::Produce, None, code, 1).unwrap();
        assert_eq!(cluster.faults_left(None), u64::MAX);
    })
    .await;
}

/// New producer ids start at the epoch asked for; the ones given before
/// (the control) at 0.
#[tokio::test]
async fn first_producer_epoch_moves_where_new_ids_start() {
    bounded(async {
        let cluster = FakeCluster::builder().topic("t", 1).start().await.unwrap();
        let conn = connect(&cluster).await;
        let before = conn.send(&InitProducerIdRequest::default()).await.unwrap();
        cluster.first_producer_epoch(i16::MAX - 1);
        let after = conn.send(&InitProducerIdRequest::default()).await.unwrap();
        assert_eq!(before.producer_epoch, 0);
        assert_eq!(after.producer_epoch, i16::MAX - 1);
        assert_ne!(before.producer_id, after.producer_id);
    })
    .await;
}

/// The next Metadata answers describing the topic carry the error and no
/// partitions, whether the request names it or asks for every topic; the
/// answer after them describes it as it is (the control), and a denied
/// topic is not auto-created.
#[tokio::test]
async fn metadata_topic_error_describes_a_topic_with_an_error() {
    bounded(async {
        let cluster = FakeCluster::builder().topic("t", 2).start().await.unwrap();
        let conn = connect(&cluster).await;
        let ask = |topic: Option<&str>| MetadataRequest {
            topics: topic.map(|t| {
                vec![MetadataRequestTopic {
                    name: Some(t.into()),
                    ..Default::default()
                }]
            }),
            allow_auto_topic_creation: true,
            ..Default::default()
        };
        cluster.metadata_topic_error("t", ErrorCode::TOPIC_AUTHORIZATION_FAILED, 2);
        cluster.metadata_topic_error("new", ErrorCode::TOPIC_AUTHORIZATION_FAILED, 1);
        for request in [ask(None), ask(Some("t"))] {
            let resp = conn.send(&request).await.unwrap();
            let t = &resp.topics[0];
            assert_eq!(
                ErrorCode::from(t.error_code),
                ErrorCode::TOPIC_AUTHORIZATION_FAILED
            );
            assert!(t.partitions.is_empty());
            assert!(!resp.brokers.is_empty(), "the rest of the answer stands");
        }
        let resp = conn.send(&ask(Some("t"))).await.unwrap();
        assert_eq!(resp.topics[0].error_code, 0);
        assert_eq!(resp.topics[0].partitions.len(), 2);
        let denied = conn.send(&ask(Some("new"))).await.unwrap();
        assert_eq!(
            ErrorCode::from(denied.topics[0].error_code),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED
        );
        assert!(cluster.records("new", 0).is_empty());
        assert!(cluster.leader("new", 0).is_none(), "not created");
    })
    .await;
}
