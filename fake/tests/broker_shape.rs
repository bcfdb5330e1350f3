//! The controls that shape what a broker offers and answers: the versions
//! of an API, answers with trailing bytes, the epochs in ListOffsets
//! answers and the connections a broker accepted. Each is checked with a
//! control run where the shaping is absent.
mod support;

use klamm::client::{ListedOffset, OffsetSpec, TrafficClass};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::messages::ApiKey;
use klamm::{Client, Error};
use klamm_fake::{FakeCluster, Fault};
use support::{bounded, config};

fn metadata_versions(cluster: &FakeCluster) -> Vec<i16> {
    cluster
        .history()
        .iter()
        .filter(|r| r.api() == ApiKey::Metadata)
        .map(|r| r.version)
        .collect()
}

#[tokio::test]
async fn offered_versions_are_narrowed_at_build_and_at_run_time() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .topic("t", 1)
            .offer_versions(ApiKey::ListOffsets, 0, 6)
            .start()
            .await
            .unwrap();
        let client = Client::connect(config(&cluster)).await.unwrap();
        let err = client
            .list_offset("t", 0, OffsetSpec::MaxTimestamp)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedVersion {
                    api: ApiKey::ListOffsets,
                    broker_versions: Some((0, 6)),
                    ..
                }
            ),
            "{err:?}"
        );
        client.close().await;
        // Control: offered again, a new client's MaxTimestamp is answered.
        cluster.offer_versions(ApiKey::ListOffsets, 0, i16::MAX);
        let client = Client::connect(config(&cluster)).await.unwrap();
        let listed = client
            .list_offset("t", 0, OffsetSpec::MaxTimestamp)
            .await
            .unwrap();
        assert_eq!(listed.offset, None, "an empty log has no largest timestamp");
        client.close().await;
    })
    .await;
}

#[tokio::test]
async fn trailing_bytes_in_an_answer_make_klamm_step_down_metadata() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .topic("t", 1)
            .record_requests(true)
            .start()
            .await
            .unwrap();
        cluster
            .inject(ApiKey::Metadata, None, Fault::TrailingBytes(2), 1)
            .unwrap();
        let client = Client::connect(config(&cluster)).await.unwrap();
        assert_eq!(client.partitions("t").await.unwrap(), [0]);
        assert_eq!(metadata_versions(&cluster), [13, 8]);
        client.close().await;
        // Control: without the fault v13 is read as it is.
        let cluster = FakeCluster::builder()
            .topic("t", 1)
            .record_requests(true)
            .start()
            .await
            .unwrap();
        let client = Client::connect(config(&cluster)).await.unwrap();
        assert_eq!(metadata_versions(&cluster), [13]);
        client.close().await;
    })
    .await;
}

#[tokio::test]
async fn offsets_found_by_time_carry_the_epoch_they_were_written_under() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(2)
            .topic("t", 1)
            .start()
            .await
            .unwrap();
        let client = Client::connect(config(&cluster)).await.unwrap();
        let producer = AsyncProducer::new(client.clone()).await.unwrap();
        let send = |ts: i64| {
            let producer = &producer;
            async move {
                let record = ProducerRecord::new("t", format!("at {ts}"))
                    .with_partition(0)
                    .with_timestamp(ts);
                producer.send(record).await.unwrap().await.unwrap()
            }
        };
        send(1_000).await;
        let before = cluster.leader_epoch("t", 0).unwrap();
        let other = if cluster.leader("t", 0) == Some(1) {
            2
        } else {
            1
        };
        cluster.move_leader("t", 0, other).unwrap();
        let after = cluster.leader_epoch("t", 0).unwrap();
        assert_eq!(after, before + 1);
        send(2_000).await;
        let records = cluster.records("t", 0);
        assert_eq!(
            records.iter().map(|r| r.leader_epoch).collect::<Vec<_>>(),
            [before, after]
        );
        let at = |ts| client.list_offset("t", 0, OffsetSpec::Timestamp(ts));
        let want = |offset, timestamp, epoch| ListedOffset {
            offset: Some(offset),
            timestamp: Some(timestamp),
            leader_epoch: Some(epoch),
        };
        assert_eq!(at(500).await.unwrap(), want(0, 1_000, before));
        assert_eq!(at(1_500).await.unwrap(), want(1, 2_000, after));
        let newest = client
            .list_offset("t", 0, OffsetSpec::Newest)
            .await
            .unwrap();
        assert_eq!((newest.offset, newest.leader_epoch), (Some(2), Some(after)));
        producer.close().await.unwrap();
        client.close().await;
    })
    .await;
}

#[tokio::test]
async fn connections_are_counted_per_broker() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(2)
            .topic("t", 1)
            .start()
            .await
            .unwrap();
        assert_eq!((cluster.connections(1), cluster.connections(2)), (0, 0));
        let client = Client::connect(config(&cluster)).await.unwrap();
        let leader = client.leader("t", 0).await.unwrap();
        let before = cluster.connections(leader.id);
        client
            .connection(&leader, TrafficClass::Fetch)
            .await
            .unwrap();
        assert_eq!(cluster.connections(leader.id), before + 1);
        // Control: the same class again reuses the connection.
        client
            .connection(&leader, TrafficClass::Fetch)
            .await
            .unwrap();
        assert_eq!(cluster.connections(leader.id), before + 1);
        client.close().await;
    })
    .await;
}

/// Stopping a broker moves only the coordinators it held, as the leaders
/// of `__consumer_offsets` partitions move in Kafka; the others stay put.
/// The control: some coordinators were on the stopped broker and did move.
#[tokio::test]
async fn stopping_a_broker_moves_only_its_coordinators() {
    bounded(async {
        let cluster = FakeCluster::builder().brokers(4).start().await.unwrap();
        let client = Client::connect(config(&cluster)).await.unwrap();
        let groups: Vec<String> = (0..40).map(|i| format!("group-{i}")).collect();
        let mut before = Vec::new();
        for g in &groups {
            before.push(client.coordinator(g).await.unwrap().id);
        }
        let stopped = before[0];
        cluster.stop_broker(stopped).unwrap();
        let mut moved = 0;
        for (g, was) in groups.iter().zip(&before) {
            let now = client.refresh_coordinator(g).await.unwrap().id;
            if *was == stopped {
                assert_ne!(now, stopped, "{g}");
                moved += 1;
            } else {
                assert_eq!(now, *was, "{g} moved though its broker runs");
            }
        }
        assert!(
            moved > 0 && moved < groups.len(),
            "{moved} of {} moved",
            groups.len()
        );
        client.close().await;
    })
    .await;
}
