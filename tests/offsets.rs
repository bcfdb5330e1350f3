//! ListOffsets and DeleteRecords against Apache Kafka (the single node).
//!
//! - `Client::list_offset` with every [`OffsetSpec`]: earliest, latest,
//!   max-timestamp and by time, on a partition whose timestamps are out of
//!   order, so that the record with the largest timestamp is not the last
//!   one and "the first record at or after a time" is not the nearest in
//!   time; the timestamps and leader epochs that come with the offsets.
//! - DeleteRecords (the generated request, sent to the partition leader):
//!   the log start offset moves, ListOffsets earliest follows it, a Fetch
//!   below it is OFFSET_OUT_OF_RANGE, klamm's consumer starting at `Oldest`
//!   (or reset to it) starts there; deleting past the high watermark is
//!   OFFSET_OUT_OF_RANGE.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use klamm::client::{ListedOffset, OffsetSpec, TrafficClass};
use klamm::consumer::{
    Consumer, ConsumerOptions, OffsetResetPolicy, PartitionConsumer, StartOffset,
};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use klamm::protocol::messages::{ApiKey, DeleteRecordsRequest};
use klamm::{Client, Error, ErrorKind};
use support::read::{batches_of, config, fetch_once, read_partition};
use support::topics::create_topic;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes `(value, timestamp)` records to `topic`/`partition`, one flush
/// per group (so each group is its own batch); returns their offsets.
async fn produce(
    client: &Client,
    topic: &Arc<str>,
    partition: i32,
    groups: &[&[(String, i64)]],
) -> Vec<i64> {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut offsets = Vec::new();
    for group in groups {
        let mut futures = Vec::new();
        for (v, ts) in *group {
            let r = ProducerRecord::new(Arc::clone(topic), v.clone())
                .with_partition(partition)
                .with_timestamp(*ts);
            futures.push(producer.send(r).await.expect("send"));
        }
        producer.flush().await.expect("flush");
        for f in futures {
            offsets.push(f.await.expect("delivered").offset);
        }
    }
    producer.close().await.expect("close");
    offsets
}

#[test]
fn list_offset_earliest_latest_max_timestamp_and_by_time() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-offsets").into();
        create_topic(&client, &topic, 2).await;
        // A minute ago, so that no broker limit on timestamps applies.
        let t = now_ms() - 60_000;
        // Two batches; the largest timestamp (t+900) is inside the first,
        // at offset 3; the last record (offset 7) has t+700.
        let stamps = [100, 300, 200, 900, 400, 500, 600, 700];
        let records: Vec<(String, i64)> = stamps
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("r{i}"), t + d))
            .collect();
        let offsets = produce(&client, &topic, 0, &[&records[..4], &records[4..]]).await;
        assert_eq!(offsets, (0..8).collect::<Vec<i64>>());
        // The broker stored the timestamps as given (create time).
        let stored = read_partition(&client, &topic, 0).await;
        let stored_ts: Vec<i64> = stored.iter().map(|r| r.timestamp).collect();
        assert_eq!(stored_ts, records.iter().map(|r| r.1).collect::<Vec<_>>());

        let epoch = client
            .metadata()
            .partition(&topic, 0)
            .map(|p| p.leader_epoch)
            .expect("leader epoch in metadata");
        let list = |spec| {
            let client = client.clone();
            let topic = Arc::clone(&topic);
            async move {
                client
                    .list_offset(&topic, 0, spec)
                    .await
                    .expect("list_offset")
            }
        };

        let oldest = list(OffsetSpec::Oldest).await;
        assert_eq!(oldest.offset, Some(0));
        assert_eq!(oldest.timestamp, None, "no timestamp for earliest");
        let newest = list(OffsetSpec::Newest).await;
        assert_eq!(newest.offset, Some(8));
        assert_eq!(newest.timestamp, None, "no timestamp for latest");
        assert_eq!(newest.leader_epoch, Some(epoch));

        let max = list(OffsetSpec::MaxTimestamp).await;
        assert_eq!(
            max,
            ListedOffset {
                offset: Some(3),
                timestamp: Some(t + 900),
                leader_epoch: Some(epoch),
            },
            "the record with the largest timestamp, not the last record"
        );
        // The control: the last record is elsewhere, with another time.
        assert_ne!(max.offset, Some(newest.offset.unwrap_or_default() - 1));

        // The first record (in offset order) whose timestamp is at or
        // after the time.
        for (at, offset, ts) in [
            (t, 0, t + 100),
            (t + 100, 0, t + 100),
            (t + 250, 1, t + 300),
            // t+400 is at offset 4, but offset 3 (t+900) comes first.
            (t + 350, 3, t + 900),
            (t + 650, 3, t + 900),
        ] {
            let found = list(OffsetSpec::Timestamp(at)).await;
            assert_eq!(
                found,
                ListedOffset {
                    offset: Some(offset),
                    timestamp: Some(ts),
                    leader_epoch: Some(epoch),
                },
                "timestamp {}",
                at - t
            );
            assert_eq!(
                client
                    .list_offsets(&topic, 0, OffsetSpec::Timestamp(at))
                    .await
                    .expect("list_offsets"),
                offset
            );
        }
        // After every record: no offset.
        let none = list(OffsetSpec::Timestamp(t + 901)).await;
        assert_eq!((none.offset, none.timestamp), (None, None));
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Timestamp(t + 901))
                .await
                .expect("list_offsets"),
            -1
        );

        // An empty partition: earliest = latest = 0, no max timestamp.
        let empty = client
            .list_offset(&topic, 1, OffsetSpec::MaxTimestamp)
            .await
            .expect("max timestamp of an empty partition");
        assert_eq!((empty.offset, empty.timestamp), (None, None), "{empty:?}");
        for spec in [OffsetSpec::Oldest, OffsetSpec::Newest] {
            let o = client
                .list_offset(&topic, 1, spec)
                .await
                .expect("list_offset");
            assert_eq!(o.offset, Some(0), "{spec:?}");
        }
    });
}

/// DeleteRecords for one partition, sent to its leader: the new low
/// watermark, or the partition's error code as an [`Error::Broker`].
async fn delete_records(
    client: &Client,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, Error> {
    let leader = client.leader(topic, partition).await?;
    let conn = client.connection(&leader, TrafficClass::Other).await?;
    let resp = conn
        .send(&DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: topic.to_string(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: partition,
                    offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        })
        .await?;
    let p = resp
        .topics
        .iter()
        .filter(|t| t.name == topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .expect("DeleteRecords answers for the partition");
    let code = ErrorCode(p.error_code);
    if code.is_ok() {
        Ok(p.low_watermark)
    } else {
        Err(Error::Broker {
            api: ApiKey::DeleteRecords,
            code,
            context: Some(format!("{topic}/{partition} below {offset}")),
        })
    }
}

async fn first_record(pc: &mut PartitionConsumer) -> (i64, Bytes) {
    let r = tokio::time::timeout(Duration::from_secs(15), pc.recv())
        .await
        .expect("a record within 15 s")
        .expect("the partition consumer is open")
        .expect("a record, not an error");
    (r.offset, r.value.unwrap_or_default())
}

#[test]
fn delete_records_moves_the_log_start_for_list_offsets_fetch_and_the_consumer() {
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let mut cfg = config(&addr);
        cfg.producer.batch_size = 200;
        cfg.consumer.fetch_max_wait = Duration::from_millis(100);
        let client = Client::connect(cfg).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-delete").into();
        create_topic(&client, &topic, 1).await;
        let t = now_ms();
        let records: Vec<(String, i64)> = (0..100).map(|i| (format!("v{i}"), t + i)).collect();
        produce(&client, &topic, 0, &[&records[..]]).await;
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Oldest)
                .await
                .expect("oldest"),
            0
        );
        // Several small batches; the log start will move to the middle of
        // one of them (Kafka allows that).
        let before = fetch_once(&client, &topic, 0, 0, 0).await;
        let batches = batches_of(&before);
        let bounds: Vec<(i64, i64)> = batches
            .iter()
            .map(|b| (b.base_offset, b.last_offset()))
            .collect();
        assert!(batches.len() > 3, "{bounds:?}");
        let (base, last) = bounds[2];
        assert!(last - base >= 2, "{bounds:?}");
        let cut = base + (last - base) / 2;
        let at_cut = Bytes::from(format!("v{cut}"));

        let low = delete_records(&client, &topic, 0, cut)
            .await
            .expect("delete below the cut");
        assert_eq!(low, cut);
        let oldest = client
            .list_offset(&topic, 0, OffsetSpec::Oldest)
            .await
            .expect("oldest");
        assert_eq!(
            oldest.offset,
            Some(cut),
            "earliest moved to the new log start"
        );
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Newest)
                .await
                .expect("newest"),
            100,
            "the end did not move"
        );

        // A Fetch below the log start: OFFSET_OUT_OF_RANGE; at it: data,
        // and the answer names the new log start.
        let below = fetch_once(&client, &topic, 0, 10, 0).await;
        assert_eq!(ErrorCode(below.error_code), ErrorCode::OFFSET_OUT_OF_RANGE);
        let at = fetch_once(&client, &topic, 0, cut, 0).await;
        assert_eq!(ErrorCode(at.error_code), ErrorCode::NONE);
        assert_eq!(at.log_start_offset, cut);
        // The batch holding the cut is still returned whole: the records
        // before the cut in it are for the reader to skip.
        assert!(batches_of(&at)[0].base_offset < cut);
        let first = batches_of(&at)
            .into_iter()
            .flat_map(|b| b.iter().map(|r| r.offset).collect::<Vec<_>>())
            .find(|o| *o >= cut);
        assert_eq!(first, Some(cut));

        // klamm's consumer: Oldest starts at the new log start.
        let consumer = Consumer::new(client.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Oldest)
            .await
            .expect("consume from oldest");
        assert_eq!(first_record(&mut pc).await, (cut, at_cut.clone()));
        pc.close().await;
        consumer.close().await;
        // An offset below the log start is reset to it (policy Oldest) ...
        let mut options = ConsumerOptions::for_client(&client);
        options.offset_reset = OffsetResetPolicy::Oldest;
        let consumer = Consumer::with_options(client.clone(), options.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Offset(10))
            .await
            .expect("consume from 10");
        assert_eq!(first_record(&mut pc).await, (cut, at_cut.clone()));
        pc.close().await;
        consumer.close().await;
        // ... or ends the partition consumer with OFFSET_OUT_OF_RANGE
        // (policy Error).
        options.offset_reset = OffsetResetPolicy::Error;
        let consumer = Consumer::with_options(client.clone(), options);
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Offset(10))
            .await
            .expect("consume from 10");
        let err = tokio::time::timeout(Duration::from_secs(15), pc.recv())
            .await
            .expect("an answer within 15 s")
            .expect("an item")
            .expect_err("out of range");
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::OFFSET_OUT_OF_RANGE),
            "{err}"
        );
        consumer.close().await;

        // Deleting past the high watermark: OFFSET_OUT_OF_RANGE, and
        // nothing moves.
        let err = delete_records(&client, &topic, 0, 1_000)
            .await
            .expect_err("delete past the high watermark");
        assert_eq!(err.kind(), ErrorKind::Broker);
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::OFFSET_OUT_OF_RANGE),
            "{err}"
        );
        assert!(!err.is_retriable());
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Oldest)
                .await
                .expect("oldest"),
            cut
        );
        // The control: -1 deletes up to the high watermark.
        let low = delete_records(&client, &topic, 0, -1)
            .await
            .expect("delete all");
        assert_eq!(low, 100);
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Oldest)
                .await
                .expect("oldest"),
            100
        );
    });
}
