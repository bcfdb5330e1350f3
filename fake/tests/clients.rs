//! klamm's clients against the fake cluster: what arrives is read from the
//! fake's logs (not only round-tripped), and each fault has a control run
//! that shows the check can fail.
mod support;

use std::time::Duration;

use bytes::Bytes;
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;
use klamm::{Client, Config};
use klamm_fake::{FakeCluster, Fault, TxnStatus};
use support::bounded;

fn config(cluster: &FakeCluster) -> Config {
    let mut config = support::config(cluster);
    config.net.client_id = "fake-tests".into();
    config
}

async fn produce(cluster: &FakeCluster, config: Config, topic: &str, values: &[&str]) {
    let client = Client::connect(config).await.unwrap();
    let producer = AsyncProducer::new(client.clone()).await.unwrap();
    let mut deliveries = Vec::new();
    for v in values {
        let d = producer
            .send(ProducerRecord::new(topic.to_string(), v.to_string()).with_partition(0))
            .await
            .unwrap();
        deliveries.push(d);
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    client.close().await;
    let _ = cluster;
}

fn values(cluster: &FakeCluster, topic: &str, p: i32) -> Vec<String> {
    cluster
        .records(topic, p)
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[tokio::test]
async fn every_codec_is_stored_as_sent_and_read_back() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("codecs", 1)
            .start()
            .await
            .unwrap();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut config = config(&cluster);
            config.producer.compression = codec;
            let before = cluster.high_watermark("codecs", 0).unwrap();
            produce(&cluster, config, "codecs", &["a", "b", "c"]).await;
            let stored = cluster.records("codecs", 0);
            let new: Vec<_> = stored.iter().filter(|r| r.offset >= before).collect();
            assert_eq!(new.len(), 3, "{codec:?}");
            // The codec is read off the stored batch, not inferred from a
            // round trip.
            assert!(
                new.iter().all(|r| r.compression == codec),
                "{codec:?}: {new:?}"
            );
        }
        // Read back through a consumer: the 15 records in order.
        let client = Client::connect(config(&cluster)).await.unwrap();
        let consumer = Consumer::new(client.clone());
        let mut part = consumer
            .consume_partition("codecs", 0, StartOffset::Oldest)
            .await
            .unwrap();
        for i in 0..15 {
            let r = part.recv().await.unwrap().unwrap();
            assert_eq!(r.offset, i);
            let want = ["a", "b", "c"][i as usize % 3];
            assert_eq!(r.value, Some(Bytes::from(want)));
        }
        part.close().await;
        consumer.close().await;
        client.close().await;
    })
    .await;
}

/// A Produce applied and then cut before its answer makes the producer
/// retry: the idempotent producer's retry is recognised (nothing written
/// twice); the control without idempotence writes it twice.
#[tokio::test]
async fn cut_after_apply_is_deduplicated_only_with_idempotence() {
    bounded(async {
        for idempotent in [true, false] {
            let cluster = FakeCluster::builder()
                .topic("dups", 1)
                .start()
                .await
                .unwrap();
            cluster
                .inject(ApiKey::Produce, None, Fault::CutAfterApply, 1)
                .unwrap();
            let mut config = config(&cluster);
            config.producer.idempotence = idempotent;
            if !idempotent {
                config.producer.max_in_flight_requests_per_connection = 1;
            }
            produce(&cluster, config, "dups", &["x"]).await;
            let got = values(&cluster, "dups", 0);
            if idempotent {
                assert_eq!(got, ["x"]);
                assert_eq!(cluster.duplicates("dups", 0), 1);
            } else {
                assert_eq!(got, ["x", "x"], "the control must show the duplicate");
                assert_eq!(cluster.duplicates("dups", 0), 0);
            }
            assert!(cluster.requests(None, ApiKey::Produce) >= 2);
        }
    })
    .await;
}

#[tokio::test]
async fn injected_errors_are_retried_and_a_moved_leader_followed() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("moves", 1)
            .start()
            .await
            .unwrap();
        let first = cluster.leader("moves", 0).unwrap();
        cluster
            .inject(
                ApiKey::Produce,
                Some(first),
                Fault::Error(ErrorCode::NOT_ENOUGH_REPLICAS),
                2,
            )
            .unwrap();
        produce(&cluster, config(&cluster), "moves", &["one"]).await;
        assert_eq!(cluster.requests(Some(first), ApiKey::Produce), 3);
        // Move the leader: the old one refuses, the producer finds the new.
        let next = cluster
            .broker_ids()
            .into_iter()
            .find(|&b| b != first)
            .unwrap();
        cluster.move_leader("moves", 0, next).unwrap();
        produce(&cluster, config(&cluster), "moves", &["two"]).await;
        assert_eq!(values(&cluster, "moves", 0), ["one", "two"]);
        assert!(cluster.requests(Some(next), ApiKey::Produce) >= 1);
        // An unknown broker and a non-replica are refused.
        assert!(cluster.move_leader("moves", 0, 9).is_err());
        assert!(cluster.move_leader("nope", 0, next).is_err());
    })
    .await;
}

#[tokio::test]
async fn a_stopped_leader_fails_over_and_comes_back() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("failover", 1)
            .start()
            .await
            .unwrap();
        let leader = cluster.leader("failover", 0).unwrap();
        produce(&cluster, config(&cluster), "failover", &["before"]).await;
        cluster.stop_broker(leader).unwrap();
        let new_leader = cluster.leader("failover", 0).unwrap();
        assert_ne!(new_leader, leader);
        produce(&cluster, config(&cluster), "failover", &["during"]).await;
        cluster.start_broker(leader).await.unwrap();
        cluster.move_leader("failover", 0, leader).unwrap();
        produce(&cluster, config(&cluster), "failover", &["after"]).await;
        assert_eq!(
            values(&cluster, "failover", 0),
            ["before", "during", "after"]
        );
    })
    .await;
}

#[tokio::test]
async fn transactions_commit_and_abort_with_markers() {
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("txn", 1)
            .start()
            .await
            .unwrap();
        let mut config = config(&cluster);
        config.producer.transactional_id = Some("fake-txn".into());
        let client = Client::connect(config).await.unwrap();
        let producer = AsyncProducer::new(client.clone()).await.unwrap();
        producer.init_transactions().await.unwrap();
        for (value, commit) in [("kept", true), ("dropped", false), ("kept-too", true)] {
            producer.begin_transaction().unwrap();
            let d = producer
                .send(ProducerRecord::new("txn", value).with_partition(0))
                .await
                .unwrap();
            // Written before the transaction ends, so an abort has a
            // record to abort.
            d.await.unwrap();
            if commit {
                producer.commit_transaction().await.unwrap();
            } else {
                producer.abort_transaction().await.unwrap();
            }
        }
        producer.close().await.unwrap();
        let status: Vec<(String, TxnStatus)> = cluster
            .records("txn", 0)
            .iter()
            .map(|r| {
                (
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                    r.transaction,
                )
            })
            .collect();
        assert_eq!(
            status,
            [
                ("kept".to_string(), TxnStatus::Committed),
                ("dropped".to_string(), TxnStatus::Aborted),
                ("kept-too".to_string(), TxnStatus::Committed),
            ]
        );
        // Three data records and three markers.
        assert_eq!(cluster.high_watermark("txn", 0), Some(6));
        assert_eq!(cluster.last_stable_offset("txn", 0), Some(6));
        // read_committed skips the aborted record (and the markers).
        let mut rc = Config::default();
        rc.net.bootstrap_servers = cluster.addresses();
        rc.consumer.isolation_level = klamm::config::IsolationLevel::ReadCommitted;
        let client = Client::connect(rc).await.unwrap();
        let consumer = Consumer::new(client.clone());
        let mut part = consumer
            .consume_partition("txn", 0, StartOffset::Oldest)
            .await
            .unwrap();
        let a = part.recv().await.unwrap().unwrap();
        let b = part.recv().await.unwrap().unwrap();
        assert_eq!(a.value, Some(Bytes::from("kept")));
        assert_eq!(b.value, Some(Bytes::from("kept-too")));
        part.close().await;
        consumer.close().await;
        client.close().await;
    })
    .await;
}

/// Two members of a classic group split a topic's partitions, read every
/// record once between them and commit where they finished; the fake's
/// coordinator holds the committed offsets.
#[tokio::test]
async fn a_group_of_two_splits_the_partitions_and_commits() {
    use klamm::group::{GroupConsumer, GroupEvent};
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("grouped", 4)
            .start()
            .await
            .unwrap();
        let client = Client::connect(config(&cluster)).await.unwrap();
        let producer = AsyncProducer::new(client.clone()).await.unwrap();
        let mut deliveries = Vec::new();
        for i in 0..40 {
            let r = ProducerRecord::new("grouped", format!("r{i}")).with_partition(i % 4);
            deliveries.push(producer.send(r).await.unwrap());
        }
        for d in deliveries {
            d.await.unwrap();
        }
        producer.close().await.unwrap();
        client.close().await;

        let seen: Arc<Mutex<Vec<(i32, i64)>>> = Arc::default();
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let mut members = Vec::new();
        for m in 0..2 {
            let mut c = config(&cluster);
            c.consumer.group_id = Some("fake-group".into());
            c.consumer.auto_offset_reset = klamm::config::OffsetReset::Earliest;
            c.net.client_id = format!("member-{m}");
            let seen = Arc::clone(&seen);
            let done_tx = done_tx.clone();
            let mut done_rx = done_rx.clone();
            members.push(tokio::spawn(async move {
                let client = Client::connect(c).await.unwrap();
                let mut group = GroupConsumer::new(client.clone(), ["grouped"])
                    .await
                    .unwrap();
                let mut owned: BTreeSet<i32> = BTreeSet::new();
                loop {
                    let event = tokio::select! {
                        e = group.recv() => e,
                        _ = done_rx.wait_for(|d| *d) => break,
                    };
                    match event.unwrap().unwrap() {
                        GroupEvent::Records(batch) => {
                            let mut s = seen.lock().unwrap();
                            s.extend(batch.records.iter().map(|r| (r.partition, r.offset)));
                            if s.len() >= 40 {
                                done_tx.send_replace(true);
                            }
                        }
                        GroupEvent::Assigned(tps) => owned.extend(tps.iter().map(|t| t.partition)),
                        GroupEvent::Revoked(tps) => {
                            for t in tps {
                                owned.remove(&t.partition);
                            }
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                group.commit().await.unwrap();
                group.close().await.unwrap();
                client.close().await;
                owned
            }));
        }
        let mut owned = Vec::new();
        for m in members {
            owned.push(m.await.unwrap());
        }
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 40, "every record read, none twice: {seen:?}");
        // At the end the two members owned the partitions between them.
        let all: BTreeSet<i32> = owned.iter().flatten().copied().collect();
        assert_eq!(all, (0..4).collect());
        assert!(owned[0].is_disjoint(&owned[1]), "{owned:?}");
        for p in 0..4 {
            assert_eq!(
                cluster.committed("fake-group", "grouped", p),
                Some(10),
                "partition {p}"
            );
        }
        assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());
    })
    .await;
}

#[tokio::test]
async fn the_admin_basics() {
    use klamm::admin::{Admin, AlterConfigOp, ConfigResource, NewTopic};
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .auto_create_topics(false)
            .start()
            .await
            .unwrap();
        let client = Client::connect(config(&cluster)).await.unwrap();
        let admin = Admin::new(client.clone());
        let created = admin
            .create_topics(&[
                NewTopic::new("made", 3, 2),
                NewTopic::new("bad name!", 1, 1),
            ])
            .await;
        let made = created.get("made").unwrap().as_ref().unwrap();
        assert_eq!(made.partitions, 3);
        let bad = created.get("bad name!").unwrap().as_ref().unwrap_err();
        assert_eq!(bad.kafka_code(), Some(ErrorCode::INVALID_TOPIC_EXCEPTION));
        // Again: it exists.
        let again = admin.create_topics(&[NewTopic::new("made", 3, 2)]).await;
        assert_eq!(
            again
                .get("made")
                .unwrap()
                .as_ref()
                .unwrap_err()
                .kafka_code(),
            Some(ErrorCode::TOPIC_ALREADY_EXISTS)
        );
        assert!(cluster.leader("made", 2).is_some());
        // A topic config set, then read back with its source.
        let topic = ConfigResource::topic("made");
        let set = admin
            .incremental_alter_configs(&[(
                topic.clone(),
                vec![AlterConfigOp::set("retention.ms", "1000")],
            )])
            .await;
        set.get(&topic).unwrap().as_ref().unwrap();
        let described = admin.describe_configs(std::slice::from_ref(&topic)).await;
        let entries = described.get(&topic).unwrap().as_ref().unwrap();
        let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(retention.value.as_deref(), Some("1000"));
        let cleanup = entries.iter().find(|e| e.name == "cleanup.policy").unwrap();
        assert_eq!(cleanup.value.as_deref(), Some("delete"), "a default");
        // An unknown config is refused.
        let bad = admin
            .incremental_alter_configs(&[(topic.clone(), vec![AlterConfigOp::set("no.such", "1")])])
            .await;
        assert_eq!(
            bad.get(&topic).unwrap().as_ref().unwrap_err().kafka_code(),
            Some(ErrorCode::INVALID_CONFIG)
        );
        // Deleted, then gone.
        let deleted = admin.delete_topics(&["made", "never-made"]).await;
        deleted.get("made").unwrap().as_ref().unwrap();
        assert_eq!(
            deleted
                .get("never-made")
                .unwrap()
                .as_ref()
                .unwrap_err()
                .kafka_code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
        assert!(cluster.leader("made", 0).is_none());
        assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());
        client.close().await;
    })
    .await;
}

/// The scripted broker answers what the test expects, in order, and tells
/// what came unscripted.
#[tokio::test]
async fn the_scripted_broker_answers_in_order_and_reports_the_unexpected() {
    use klamm::protocol::messages::{
        FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest,
    };
    use klamm_fake::ScriptedBroker;
    bounded(async {
        let broker = ScriptedBroker::start().await.unwrap();
        let metadata = broker.metadata_for(&[("events", 2)]);
        broker.always(move |_: MetadataRequest| metadata.clone());
        let mut c = Config::default();
        c.net.bootstrap_servers = vec![broker.addr()];
        let client = Client::connect(c).await.unwrap();
        let md = client.metadata();
        assert_eq!(md.brokers.len(), 1);
        // Expected but never sent: verify says so.
        broker.expect(|_: FindCoordinatorRequest| FindCoordinatorResponse::default());
        let err = broker.verify().unwrap_err();
        assert!(err.contains("FindCoordinator was expected"), "{err}");
        client.close().await;
        // Unscripted: a producer's InitProducerId has no answer.
        let broker = ScriptedBroker::start().await.unwrap();
        let metadata = broker.metadata_for(&[("events", 2)]);
        broker.always(move |_: MetadataRequest| metadata.clone());
        let mut c = Config::default();
        c.net.bootstrap_servers = vec![broker.addr()];
        c.producer.max_block = Duration::from_millis(300);
        let client = Client::connect(c).await.unwrap();
        assert!(AsyncProducer::new(client.clone()).await.is_err());
        let unexpected = broker.unexpected();
        assert!(
            unexpected.iter().any(|u| u.contains("InitProducerId")),
            "{unexpected:?}"
        );
        client.close().await;
    })
    .await;
}

/// A transaction coordinator moved by the test: the old broker answers
/// NOT_COORDINATOR, the producer finds the new one, and the history shows
/// where each transactional request went.
#[tokio::test]
async fn a_moved_transaction_coordinator_is_found_again() {
    use klamm::protocol::messages::RequestBody;
    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("moved", 1)
            .record_requests(true)
            .start()
            .await
            .unwrap();
        cluster.place_coordinator("mover", 1).unwrap();
        assert!(cluster.place_coordinator("mover", 9).is_err());
        let mut c = config(&cluster);
        c.producer.transactional_id = Some("mover".into());
        let client = Client::connect(c).await.unwrap();
        let producer = AsyncProducer::new(client.clone()).await.unwrap();
        producer.init_transactions().await.unwrap();
        producer.begin_transaction().unwrap();
        let d = producer
            .send(ProducerRecord::new("moved", "v").with_partition(0))
            .await
            .unwrap();
        d.await.unwrap();
        cluster.place_coordinator("mover", 3).unwrap();
        producer.commit_transaction().await.unwrap();
        producer.close().await.unwrap();
        let ends: Vec<(i32, bool)> = cluster
            .history()
            .iter()
            .filter_map(|r| match &r.body {
                RequestBody::EndTxn(e) => Some((r.broker, e.committed)),
                _ => None,
            })
            .collect();
        // The first EndTxn went to the old coordinator and was refused;
        // the retry reached the new one.
        assert_eq!(ends.first(), Some(&(1, true)));
        assert_eq!(ends.last(), Some(&(3, true)));
        assert_eq!(
            cluster.records("moved", 0)[0].transaction,
            TxnStatus::Committed
        );
        let inits: Vec<i32> = cluster
            .history()
            .iter()
            .filter(|r| r.api() == ApiKey::InitProducerId)
            .map(|r| r.broker)
            .collect();
        assert_eq!(inits, [1]);
        client.close().await;
    })
    .await;
}

/// A member given partitions with no committed offset resolves its
/// assignment's starts together: one ListOffsets per leader under
/// `earliest`, one ListOffsets and one watermark Fetch per leader under
/// `latest`, not one or two per partition.
#[tokio::test]
async fn a_member_starts_its_assignment_with_one_lookup_per_leader() {
    use klamm::config::OffsetReset;
    use klamm::group::{GroupConsumer, GroupEvent};
    use klamm::protocol::messages::RequestBody;
    use std::collections::BTreeSet;

    bounded(async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("starts", 6)
            .record_requests(true)
            .start()
            .await
            .unwrap();
        let leaders: BTreeSet<i32> = (0..6)
            .map(|p| cluster.leader("starts", p).unwrap())
            .collect();
        assert!(
            leaders.len() > 1,
            "the partitions spread over brokers: {leaders:?}"
        );
        let write = |round: usize| {
            let cluster = &cluster;
            async move {
                let client = Client::connect(config(cluster)).await.unwrap();
                let producer = AsyncProducer::new(client.clone()).await.unwrap();
                let mut deliveries = Vec::new();
                for p in 0..6 {
                    let r =
                        ProducerRecord::new("starts", format!("r{round}-{p}")).with_partition(p);
                    deliveries.push(producer.send(r).await.unwrap());
                }
                for d in deliveries {
                    d.await.unwrap();
                }
                producer.close().await.unwrap();
                client.close().await;
            }
        };
        write(0).await;
        write(1).await;
        let list_offsets = || {
            leaders
                .iter()
                .map(|&b| cluster.requests(Some(b), ApiKey::ListOffsets))
                .collect::<Vec<u64>>()
        };
        // Fetches of one byte that name partitions (a closing fetch
        // session's Fetch names none).
        let watermark_fetches = || {
            let history = cluster.history();
            leaders
                .iter()
                .map(|&b| {
                    history
                        .iter()
                        .filter(|r| r.broker == b)
                        .filter(|r| {
                            matches!(&r.body, RequestBody::Fetch(f)
                            if f.max_bytes == 1 && !f.topics.is_empty())
                        })
                        .count() as u64
                })
                .collect::<Vec<u64>>()
        };
        assert_eq!(list_offsets(), vec![0; leaders.len()]);

        for (reset, group, asked, first) in [
            (OffsetReset::Earliest, "from-earliest", 1, 0),
            (OffsetReset::Latest, "from-latest", 2, 2),
        ] {
            let mut c = config(&cluster);
            c.consumer.group_id = Some(group.into());
            c.consumer.auto_offset_reset = reset;
            let client = Client::connect(c).await.unwrap();
            let mut member = GroupConsumer::new(client.clone(), ["starts"])
                .await
                .unwrap();
            match member.recv().await.unwrap().unwrap() {
                GroupEvent::Assigned(tps) => assert_eq!(tps.len(), 6),
                other => panic!("expected the assignment, got {other:?}"),
            }
            // Each leader was asked once for the assignment's starts (and
            // under `latest` once more, then for its watermarks by Fetch).
            assert_eq!(list_offsets(), vec![asked; leaders.len()], "{group}");
            assert_eq!(
                watermark_fetches(),
                vec![asked - 1; leaders.len()],
                "{group}"
            );
            if reset == OffsetReset::Latest {
                write(2).await;
            }
            let mut firsts: Vec<(i32, i64)> = Vec::new();
            while firsts.len() < 6 {
                if let GroupEvent::Records(batch) = member.recv().await.unwrap().unwrap() {
                    for r in &batch.records {
                        if !firsts.iter().any(|(p, _)| *p == r.partition) {
                            firsts.push((r.partition, r.offset));
                        }
                    }
                }
            }
            firsts.sort();
            let expected: Vec<(i32, i64)> = (0..6).map(|p| (p, first)).collect();
            assert_eq!(firsts, expected, "{group}: where each partition started");
            member.close().await.unwrap();
            client.close().await;
        }

        // With a maximum message age, the first young-enough offsets are
        // looked up together too: one by-time ListOffsets per leader for
        // the partitions whose commits must be checked against them, and
        // nothing more, as every commit is young and is where they start.
        for p in 0..6 {
            assert!(
                cluster.committed("from-earliest", "starts", p).is_some(),
                "the first member committed partition {p}"
            );
        }
        let mut c = config(&cluster);
        c.consumer.group_id = Some("from-earliest".into());
        let client = Client::connect(c).await.unwrap();
        let options = klamm::group::GroupOptions {
            max_message_age: [("starts".to_string(), Duration::from_secs(3600))].into(),
            ..Default::default()
        };
        let mut member = GroupConsumer::with_options(client.clone(), ["starts"], options)
            .await
            .unwrap();
        match member.recv().await.unwrap().unwrap() {
            GroupEvent::Assigned(tps) => assert_eq!(tps.len(), 6),
            other => panic!("expected the assignment, got {other:?}"),
        }
        assert_eq!(list_offsets(), vec![3; leaders.len()], "max age");
        assert_eq!(watermark_fetches(), vec![1; leaders.len()], "max age");
        member.close().await.unwrap();
        client.close().await;
        assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());
    })
    .await;
}
