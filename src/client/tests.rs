//! Client tests against the in-process fake cluster (`klamm-fake`) on
//! loopback.
//!
//! The fake links its own build of klamm, so what is handed to it (API
//! keys, error codes, faults) is named through `klamm_fake::klamm`, and
//! what it reports is plain data.

use std::time::Duration;

use bytes::Bytes;
use klamm_fake::klamm::protocol::error_codes::ErrorCode as FakeCode;
use klamm_fake::klamm::protocol::messages::{ApiKey as FakeApi, RequestBody as FakeBody};
use klamm_fake::{FakeCluster, Fault};
use tokio::net::TcpListener;

use super::*;
use crate::protocol::codec::Message;
use crate::protocol::error::DecodeError;
use crate::protocol::messages::*;
use crate::test_support::trace::Capture;
use crate::test_support::{bounded, eventually, list_offsets_requests};

/// A fake cluster of `brokers` brokers with `topics` (name, partitions;
/// replicated on every broker up to three), no auto-creation, keeping
/// every request for [`FakeCluster::history`].
async fn cluster(brokers: usize, topics: &[(&str, i32)]) -> FakeCluster {
    let mut b = FakeCluster::builder()
        .brokers(brokers)
        .auto_create_topics(false)
        .record_requests(true);
    for (name, partitions) in topics {
        b = b.topic(name, *partitions);
    }
    b.start().await.expect("fake cluster")
}

/// Metadata requests the cluster has handled.
fn metadata_requests(c: &FakeCluster) -> u64 {
    c.requests(None, FakeApi::Metadata)
}

/// The version of every Metadata request, in order.
fn metadata_versions(c: &FakeCluster) -> Vec<i16> {
    c.history()
        .iter()
        .filter(|r| r.api() == FakeApi::Metadata)
        .map(|r| r.version)
        .collect()
}

/// (version, timestamp) of every ListOffsets partition asked for.
fn list_offsets_sent(c: &FakeCluster) -> Vec<(i16, i64)> {
    let mut out = Vec::new();
    for r in c.history() {
        if let FakeBody::ListOffsets(req) = &r.body {
            for t in &req.topics {
                out.extend(t.partitions.iter().map(|p| (r.version, p.timestamp)));
            }
        }
    }
    out
}

/// The keys of every FindCoordinator request, in order.
fn coordinator_keys(c: &FakeCluster) -> Vec<Vec<String>> {
    c.history()
        .iter()
        .filter_map(|r| match &r.body {
            FakeBody::FindCoordinator(f) if r.version >= 4 => Some(f.coordinator_keys.clone()),
            FakeBody::FindCoordinator(f) => Some(vec![f.key.clone()]),
            _ => None,
        })
        .collect()
}

/// Writes `records` (timestamp, value) to `topic`-`partition` through a
/// producer of `client`, waiting for each to be acknowledged.
async fn produce(client: &Client, topic: &str, partition: i32, records: &[(i64, &str)]) {
    let producer = crate::producer::AsyncProducer::new(client.clone())
        .await
        .expect("producer");
    for (ts, value) in records {
        let record = crate::producer::ProducerRecord::new(topic, Bytes::from(value.to_string()))
            .with_partition(partition)
            .with_timestamp(*ts);
        producer
            .send(record)
            .await
            .expect("queued")
            .await
            .expect("written");
    }
    producer.close().await.expect("closed");
}

fn config(seeds: Vec<String>) -> Config {
    let mut c = Config::default();
    c.net.bootstrap_servers = seeds;
    c.net.request_timeout = Duration::from_secs(5);
    c.metadata.refresh_interval = None;
    c
}

#[tokio::test(start_paused = true)]
async fn bootstraps_past_seeds_that_are_down() {
    bounded(async {
        let fake = cluster(1, &[("t", 3)]).await;
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let client = Client::connect(config(vec![
            dead_addr,
            "127.0.0.1:1".into(),
            fake.bootstrap(),
        ]))
        .await
        .expect("bootstrap");
        assert_eq!(client.topics(), ["t"]);
        assert_eq!(client.partitions("t").await.unwrap(), [0, 1, 2]);
        client.close().await;
    })
    .await;
}

/// The pool traces a failed connect (the broker, the error, the backoff
/// before the next try) and the client that it moves on to the next
/// broker; the connect that works is traced as connected.
#[tokio::test(start_paused = true)]
async fn failed_connects_are_traced_with_the_broker_and_the_backoff() {
    let (capture, _capturing) = Capture::start();
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let mut c = config(vec![dead_addr.clone(), fake.bootstrap()]);
        c.net.reconnect_backoff = Duration::from_millis(50);
        let client = Client::connect(c).await.expect("bootstrap");

        let failed = capture.events("connect failed; backing off");
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].field("broker"), dead_addr);
        assert!(
            failed[0].field("error").contains("connecting to"),
            "{failed:?}"
        );
        // The first backoff: 50 ms with up to 20 % jitter either way.
        let delay = failed[0].field("delay");
        let ms: f64 = delay
            .strip_suffix("ms")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("delay {delay:?} is not in milliseconds"));
        assert!((40.0..60.0).contains(&ms), "delay {delay}");
        let moved_on = capture.events("broker unavailable; trying the next");
        assert_eq!(moved_on.len(), 1, "{moved_on:?}");
        assert_eq!(moved_on[0].field("broker"), dead_addr);
        let connected = capture.events("connected");
        assert_eq!(connected.len(), 1, "{connected:?}");
        assert_eq!(connected[0].field("broker"), fake.bootstrap());
        client.close().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn cluster_shape_accessors() {
    bounded(async {
        // Two brokers, one replica each: a-0 on broker 1, a-1 on broker 2.
        let fake = FakeCluster::builder()
            .brokers(2)
            .auto_create_topics(false)
            .topic_replicated("a", 2, 1)
            .start()
            .await
            .unwrap();
        // Broker 2 stops: a-1 has no leader and its replica is offline.
        fake.stop_broker(2).unwrap();
        assert_eq!(fake.leader("a", 1), None);
        let client = Client::connect(config(fake.addresses())).await.unwrap();
        assert_eq!(client.partitions("a").await.unwrap(), [0, 1]);
        assert_eq!(client.writable_partitions("a").await.unwrap(), [0]);
        let broker1 = fake.addresses()[0].clone();
        assert_eq!(client.leader("a", 0).await.unwrap().addr(), broker1);
        let err = client.leader("a", 1).await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::LEADER_NOT_AVAILABLE));
        assert!(err.is_retriable());
        assert_eq!(client.replicas("a", 0).await.unwrap(), [1]);
        assert_eq!(client.replicas("a", 1).await.unwrap(), [2]);
        assert_eq!(
            client.in_sync_replicas("a", 1).await.unwrap(),
            Vec::<i32>::new()
        );
        assert_eq!(client.offline_replicas("a", 1).await.unwrap(), [2]);
        assert_eq!(client.controller().await.unwrap().id, 1);
        // The leader change bumped a-1's epoch; the client keeps the
        // cluster's.
        let epoch = fake.leader_epoch("a", 1).unwrap();
        assert_eq!(epoch, 1);
        assert_eq!(
            client.metadata().partition("a", 1).unwrap().leader_epoch,
            epoch
        );
        let err = client.partitions("missing").await.unwrap_err();
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_refreshes_are_coalesced_into_one_request() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        let before = metadata_requests(&fake);
        fake.inject(
            FakeApi::Metadata,
            None,
            Fault::Delay(Duration::from_millis(200)),
            10,
        )
        .unwrap();
        let topics = vec!["t".to_string()];
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (c, t) = (client.clone(), topics.clone());
            tasks.push(tokio::spawn(
                async move { c.refresh_metadata(Some(&t)).await },
            ));
        }
        for t in tasks {
            t.await.unwrap().expect("refresh");
        }
        let sent = metadata_requests(&fake) - before;
        // The first caller's request only. (Where callers run on several
        // threads, one that asks before the first has even started may
        // send a second, a race the client allows; on this one thread
        // every caller has asked long before the answer, 200 ms later.)
        assert_eq!(
            sent, 1,
            "10 concurrent refreshes sent {sent} Metadata requests"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn stale_metadata_errors_trigger_a_refresh() {
    bounded(async {
        // t-0 on both brokers, led by broker 1.
        let fake = cluster(2, &[("t", 1)]).await;
        assert_eq!(fake.leader("t", 0), Some(1));
        let client = Client::connect(config(fake.addresses())).await.unwrap();
        let before = client.metadata_requests();
        client.report_error(ErrorCode::OFFSET_OUT_OF_RANGE); // not a metadata error
        client.report_error(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        eventually("a refresh", || client.metadata_requests() > before).await;
        assert_eq!(client.metadata_requests(), before + 1);
        // A leader that moved is seen after the refresh.
        fake.move_leader("t", 0, 2).unwrap();
        assert_eq!(client.metadata().partition("t", 0).unwrap().leader, 1);
        client.report_error(ErrorCode::FENCED_LEADER_EPOCH);
        eventually("the new leader", || {
            client.metadata().partition("t", 0).unwrap().leader == 2
        })
        .await;
        assert_eq!(client.leader("t", 0).await.unwrap().id, 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn metadata_refreshes_in_the_background() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let mut c = config(vec![fake.bootstrap()]);
        c.metadata.refresh_interval = Some(Duration::from_millis(50));
        let client = Client::connect(c).await.unwrap();
        let before = client.metadata_requests();
        // On the paused clock: one refresh each 50 ms, 8 in 425 ms.
        tokio::time::sleep(Duration::from_millis(425)).await;
        assert_eq!(client.metadata_requests() - before, 8, "refreshes");
        client.close().await;
        let after_close = metadata_requests(&fake);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            metadata_requests(&fake),
            after_close,
            "close stops the refresher"
        );
    })
    .await;
}

/// `metadata.max.age.ms` shorter than `metadata.refresh.interval.ms`
/// refreshes at the age; the age counts from the last refresh of every
/// known topic, whatever asked for it; a failed refresh is tried again
/// after `retry.backoff.ms`, not a whole period later.
#[tokio::test(start_paused = true)]
async fn metadata_is_refreshed_when_it_reaches_its_max_age() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let mut c = config(vec![fake.bootstrap()]);
        c.metadata.refresh_interval = Some(Duration::from_secs(300));
        c.metadata.max_age = Duration::from_millis(100);
        c.metadata.retry_backoff = Duration::from_millis(20);
        c.net.backoff_jitter = 0.0;
        let client = Client::connect(c).await.unwrap();
        let start = tokio::time::Instant::now();
        let at = |ms: u64| tokio::time::sleep_until(start + Duration::from_millis(ms));
        let count = || client.metadata_requests();
        let first = count();

        // At 100, 200, 300 and 400 ms (the interval alone: none before 300 s).
        at(450).await;
        assert_eq!(count() - first, 4, "refreshes by their age");

        // A refresh asked for at 450 ms moves the next one to 550 ms.
        client.refresh_metadata(None).await.unwrap();
        at(540).await;
        assert_eq!(count() - first, 5, "none at 500 ms");
        at(560).await;
        assert_eq!(count() - first, 6, "one at 550 ms");

        // The one due at 650 ms fails (the connection is cut); it is
        // tried again 20 ms later, then ages as before.
        fake.inject(FakeApi::Metadata, None, Fault::CutBeforeApply, 1)
            .unwrap();
        at(660).await;
        assert_eq!(count() - first, 6, "the cut refresh");
        assert_eq!(fake.faults_left(Some(FakeApi::Metadata)), 0, "was cut");
        at(700).await;
        assert_eq!(count() - first, 7, "retried after retry.backoff.ms");
        at(800).await;
        assert_eq!(count() - first, 8, "100 ms after the retry");
        client.close().await;
    })
    .await;
}

/// Every request names the client: "klamm" unless configured, and no
/// name at all (a null client id) only when set to "".
#[tokio::test(start_paused = true)]
async fn requests_carry_the_client_id() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        for (set, want) in [
            (None, Some("klamm")),
            (Some("billing"), Some("billing")),
            (Some(""), None),
        ] {
            let seen_before = fake.history().len();
            let mut c = config(vec![fake.bootstrap()]);
            if let Some(id) = set {
                c.net.client_id = id.to_string();
            }
            let client = Client::connect(c).await.unwrap();
            client
                .list_offsets("t", 0, OffsetSpec::Oldest)
                .await
                .unwrap();
            client.close().await;
            let ids: Vec<Option<String>> = fake.history()[seen_before..]
                .iter()
                .map(|r| r.client_id.clone())
                .collect();
            assert!(ids.len() >= 3, "{ids:?}");
            assert!(
                ids.iter().all(|id| id.as_deref() == want),
                "configured {set:?}: {ids:?}"
            );
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn list_offsets_and_coordinators() {
    bounded(async {
        let fake = cluster(1, &[("t", 2)]).await;
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        produce(&client, "t", 1, &[(1, "a"), (2, "b"), (3, "c")]).await;
        assert_eq!(fake.high_watermark("t", 1), Some(3));
        assert_eq!(
            client
                .list_offsets("t", 1, OffsetSpec::Oldest)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            client
                .list_offsets("t", 1, OffsetSpec::Newest)
                .await
                .unwrap(),
            3
        );
        let c = client.coordinator("g1").await.unwrap();
        assert_eq!((c.id, c.addr()), (1, fake.bootstrap()));
        // Cached: no second lookup.
        client.coordinator("g1").await.unwrap();
        assert_eq!(coordinator_keys(&fake).len(), 1);
        // Batched where the broker supports v4+.
        let both = client
            .coordinators(&["g2".into(), "g3".into()])
            .await
            .unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(
            coordinator_keys(&fake).last().unwrap(),
            &vec!["g2".to_string(), "g3".to_string()]
        );
        client.refresh_coordinator("g1").await.unwrap();
        assert_eq!(coordinator_keys(&fake).len(), 3);
        client.transaction_coordinator("tx").await.unwrap();
        assert_eq!(
            coordinator_keys(&fake).last().unwrap(),
            &vec!["tx".to_string()]
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn connections_are_shared_per_broker_and_class() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        let b = client.leader("t", 0).await.unwrap();
        let opened = fake.connections(1);
        let p1 = client.connection(&b, TrafficClass::Produce).await.unwrap();
        let p2 = client.connection(&b, TrafficClass::Produce).await.unwrap();
        let f = client.connection(&b, TrafficClass::Fetch).await.unwrap();
        assert_eq!(fake.connections(1), opened + 2, "one produce, one fetch");
        p1.close().await;
        eventually("p1 and p2 are the same connection: p2 closed", || {
            p2.is_closed()
        })
        .await;
        assert!(!f.is_closed(), "fetch has its own connection");
        // A closed connection is replaced on the next use.
        let p3 = client.connection(&b, TrafficClass::Produce).await.unwrap();
        assert!(!p3.is_closed());
        assert_eq!(fake.connections(1), opened + 3);
        let _ = Message::encoded_len(&MetadataRequest::default(), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn metadata_steps_down_to_v8_when_flexible_answers_have_trailing_bytes() {
    bounded(async {
        let fake = cluster(1, &[("t", 2)]).await;
        // The first Metadata answer carries a stray byte after its last
        // field, as librdkafka's mock cluster sends from v9 on.
        fake.inject(FakeApi::Metadata, None, Fault::TrailingBytes(1), 1)
            .unwrap();
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .expect("bootstrap despite the stray byte");
        assert_eq!(client.partitions("t").await.unwrap(), [0, 1]);
        // v13 once, then v8 at once, and v8 from then on for this broker
        // (though v13 answers are clean again).
        client.refresh_metadata(None).await.unwrap();
        assert_eq!(metadata_versions(&fake), [13, 8, 8]);
        client.close().await;

        // A broker whose answers decode keeps v13; other decode errors are
        // not retried at v8.
        let fake = cluster(1, &[("t", 1)]).await;
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        assert_eq!(metadata_versions(&fake), [13]);
        client.close().await;
        let e: Error = DecodeError::invalid("x").into();
        assert!(!has_trailing_bytes(&e));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_broker_killed_and_restarted_mid_request() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let mut c = config(vec![fake.bootstrap()]);
        c.net.reconnect_backoff = Duration::from_millis(50);
        c.net.reconnect_backoff_max = Duration::from_millis(200);
        let client = Client::connect(c).await.unwrap();
        let broker = client.leader("t", 0).await.unwrap();
        let conn = client
            .connection(&broker, TrafficClass::Other)
            .await
            .unwrap();

        // Killed while a request is in flight: it fails, retriably, at once.
        // (The Metadata request is held 1 s, so it is in flight when the
        // broker goes.)
        fake.inject(
            FakeApi::Metadata,
            None,
            Fault::Delay(Duration::from_secs(1)),
            1,
        )
        .unwrap();
        let in_flight = tokio::spawn({
            let conn = conn.clone();
            async move { conn.send(&MetadataRequest::default()).await }
        });
        eventually("the request reaches the broker", || {
            metadata_requests(&fake) > 1
        })
        .await;
        fake.stop_broker(1).unwrap();
        let err = in_flight.await.unwrap().unwrap_err();
        assert!(err.is_retriable(), "{err}");
        assert!(conn.is_closed());
        // While it is down, new connections fail (retriably) without hanging.
        let err = client
            .connection(&broker, TrafficClass::Other)
            .await
            .unwrap_err();
        assert!(err.is_retriable(), "{err}");

        // Restarted: after the backoff the client connects again.
        fake.start_broker(1).await.unwrap();
        let mut reconnected = None;
        for _ in 0..100 {
            match client.connection(&broker, TrafficClass::Other).await {
                Ok(c) => {
                    reconnected = Some(c);
                    break;
                }
                Err(e) => {
                    assert!(e.is_retriable(), "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let conn = reconnected.expect("reconnected after the restart");
        conn.send(&MetadataRequest::default())
            .await
            .expect("answered after the restart");
        produce(&client, "t", 0, &[(1, "after the restart")]).await;
        assert_eq!(
            client
                .list_offsets("t", 0, OffsetSpec::Newest)
                .await
                .unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn retriable_coordinator_errors_are_retried() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let mut c = config(vec![fake.bootstrap()]);
        c.metadata.retry_backoff = Duration::from_millis(10);
        let request_timeout = c.net.request_timeout;
        let client = Client::connect(c).await.unwrap();
        let unavailable = Fault::Error(FakeCode::COORDINATOR_NOT_AVAILABLE);
        // Eight COORDINATOR_NOT_AVAILABLE answers (as while Kafka creates
        // __consumer_offsets), then a coordinator: the lookup retries with
        // backoff for up to request.timeout.ms, not for a fixed number of
        // attempts.
        fake.inject(FakeApi::FindCoordinator, None, unavailable, 8)
            .unwrap();
        let b = client.coordinator("g").await.expect("found after retries");
        assert_eq!(b.id, 1);
        assert_eq!(
            coordinator_keys(&fake).len(),
            9,
            "eight failures, one success"
        );
        // Failures for longer than request.timeout.ms: the last error
        // surfaces, retriable, named by its code, before the deadline.
        fake.inject(FakeApi::FindCoordinator, None, unavailable, 1_000)
            .unwrap();
        let before = coordinator_keys(&fake).len();
        let started = tokio::time::Instant::now();
        let err = client.coordinator("other").await.unwrap_err();
        assert!(
            started.elapsed() <= request_timeout,
            "{:?}",
            started.elapsed()
        );
        assert!(coordinator_keys(&fake).len() - before > 9);
        assert_eq!(err.kafka_code(), Some(ErrorCode::COORDINATOR_NOT_AVAILABLE));
        assert!(err.is_retriable());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn rebootstrap_required_reconnects_to_the_seeds_and_asks_again() {
    bounded(async {
        let fake = cluster(1, &[("t", 2)]).await;
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        let v = client
            .connection(&client.leader("t", 0).await.unwrap(), TrafficClass::Other)
            .await
            .unwrap()
            .api_versions()
            .version_for(ApiKey::Metadata, "fake")
            .unwrap();
        assert_eq!(v, 13, "Metadata v13 is negotiated");
        let before = fake.connections(1);
        let asked = metadata_requests(&fake);
        // One REBOOTSTRAP_REQUIRED: every connection goes, the seeds are
        // asked again on a new one, and the refresh succeeds.
        let rebootstrap = Fault::Error(FakeCode::REBOOTSTRAP_REQUIRED);
        fake.inject(FakeApi::Metadata, None, rebootstrap, 1)
            .unwrap();
        client
            .refresh_metadata(Some(&["t".to_string()]))
            .await
            .expect("answered after the new bootstrap");
        assert_eq!(metadata_requests(&fake), asked + 2);
        assert!(fake.connections(1) > before, "a new connection to the seed");
        assert_eq!(client.partitions("t").await.unwrap(), [0, 1]);
        // Control: a cluster that keeps asking is not asked forever; the
        // error comes back typed.
        fake.inject(FakeApi::Metadata, None, rebootstrap, u64::MAX)
            .unwrap();
        let err = client
            .refresh_metadata(Some(&["t".to_string()]))
            .await
            .unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::REBOOTSTRAP_REQUIRED));
        assert!(!err.is_retriable());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn list_offsets_retries_a_leader_that_moved_until_default_api_timeout() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        let mut c = config(vec![fake.bootstrap()]);
        c.metadata.retry_backoff = Duration::from_millis(10);
        c.consumer.default_api_timeout = Duration::from_secs(5);
        let api_timeout = c.consumer.default_api_timeout;
        let client = Client::connect(c).await.unwrap();
        let metadata_before = metadata_requests(&fake);
        let not_leader = Fault::Error(FakeCode::NOT_LEADER_OR_FOLLOWER);
        // Three NOT_LEADER_OR_FOLLOWER answers (a leader paused and
        // replaced), then the offset: each retry asks for the topic's
        // metadata first.
        fake.inject(FakeApi::ListOffsets, None, not_leader, 3)
            .unwrap();
        let end = client.list_offsets("t", 0, OffsetSpec::Newest).await;
        assert_eq!(end.expect("answered after retries"), 0);
        assert_eq!(list_offsets_sent(&fake).len(), 4);
        assert!(metadata_requests(&fake) >= metadata_before + 3);
        // Control: a leader that never comes back surfaces the broker's
        // error, typed and retriable, within default.api.timeout.ms.
        fake.inject(FakeApi::ListOffsets, None, not_leader, u64::MAX)
            .unwrap();
        let started = tokio::time::Instant::now();
        let err = client
            .list_offset("t", 0, OffsetSpec::Oldest)
            .await
            .unwrap_err();
        assert!(started.elapsed() <= api_timeout, "{:?}", started.elapsed());
        assert!(list_offsets_sent(&fake).len() > 10);
        assert_eq!(err.kafka_code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert!(err.is_retriable());
    })
    .await;
}

#[tokio::test]
async fn list_offset_gives_timestamp_and_leader_epoch_with_the_offset() {
    bounded(async {
        // t-1 on both brokers, so its leader can move between writes.
        let fake = cluster(2, &[("t", 2)]).await;
        let client = Client::connect(config(fake.addresses())).await.unwrap();
        let first_epoch = fake.leader_epoch("t", 1).unwrap();
        produce(&client, "t", 1, &[(1_000, "a"), (2_000, "b"), (3_000, "c")]).await;
        let other = if fake.leader("t", 1) == Some(1) { 2 } else { 1 };
        fake.move_leader("t", 1, other).unwrap();
        let epoch = fake.leader_epoch("t", 1).unwrap();
        assert_ne!(epoch, first_epoch);
        // The largest timestamp (9000) is at offset 3, not at the end (10).
        let later = [
            (9_000, "d"),
            (4_000, "e"),
            (5_000, "f"),
            (6_000, "g"),
            (7_000, "h"),
            (8_000, "i"),
            (8_500, "j"),
        ];
        produce(&client, "t", 1, &later).await;
        assert_eq!(fake.high_watermark("t", 1), Some(10));
        let max = client
            .list_offset("t", 1, OffsetSpec::MaxTimestamp)
            .await
            .unwrap();
        assert_eq!(
            max,
            ListedOffset {
                offset: Some(3),
                timestamp: Some(9_000),
                leader_epoch: Some(epoch)
            }
        );
        // A record found by time carries the epoch it was written under.
        let by_time = client
            .list_offset("t", 1, OffsetSpec::Timestamp(2_000))
            .await
            .unwrap();
        assert_eq!(
            by_time,
            ListedOffset {
                offset: Some(1),
                timestamp: Some(2_000),
                leader_epoch: Some(first_epoch)
            }
        );
        // Past every record: Kafka answers offset and timestamp -1.
        let none = client
            .list_offset("t", 1, OffsetSpec::Timestamp(99_000))
            .await
            .unwrap();
        assert_eq!(
            none,
            ListedOffset {
                offset: None,
                timestamp: None,
                leader_epoch: None
            }
        );
        // list_offsets keeps its -1 for "no such record".
        assert_eq!(
            client
                .list_offsets("t", 1, OffsetSpec::Timestamp(99_000))
                .await
                .unwrap(),
            -1
        );
        let newest = client
            .list_offset("t", 1, OffsetSpec::Newest)
            .await
            .unwrap();
        assert_eq!(
            (newest.offset, newest.timestamp, newest.leader_epoch),
            (Some(10), None, Some(epoch))
        );
        // What went on the wire: the sentinels, at the highest version both
        // sides have.
        let leader = client.leader("t", 1).await.unwrap();
        let top = client
            .connection(&leader, TrafficClass::Other)
            .await
            .unwrap()
            .api_versions()
            .version_for(ApiKey::ListOffsets, "fake")
            .unwrap();
        assert!(top >= 7, "v{top}");
        assert_eq!(
            list_offsets_sent(&fake),
            [
                (top, -3),
                (top, 2_000),
                (top, 99_000),
                (top, 99_000),
                (top, -1)
            ]
        );
        assert_eq!(OffsetSpec::MaxTimestamp.timestamp(), -3);
        assert_eq!(OffsetSpec::Oldest.timestamp(), -2);
        assert_eq!(OffsetSpec::Newest.timestamp(), -1);
        assert_eq!(OffsetSpec::Timestamp(7).timestamp(), 7);
    })
    .await;
}

#[tokio::test]
async fn max_timestamp_needs_list_offsets_v7_and_fails_typed_before() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        fake.offer_versions(FakeApi::ListOffsets, 0, 6);
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        let err = client
            .list_offset("t", 0, OffsetSpec::MaxTimestamp)
            .await
            .unwrap_err();
        match &err {
            Error::UnsupportedVersion {
                api,
                broker_versions,
                ours,
                ..
            } => {
                assert_eq!(*api, ApiKey::ListOffsets);
                assert_eq!(*broker_versions, Some((0, 6)));
                assert_eq!(ours.0, 7, "MaxTimestamp needs v7");
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
        assert!(!err.is_retriable());
        assert!(err.to_string().contains("ListOffsets"), "{err}");
        // Nothing was sent for it; the other specs still work at v6.
        assert!(list_offsets_sent(&fake).is_empty());
        let oldest = client
            .list_offset("t", 0, OffsetSpec::Oldest)
            .await
            .unwrap();
        assert_eq!(oldest.offset, Some(0));
        assert_eq!(list_offsets_sent(&fake), [(6, -2)]);
        client.close().await;

        // The control: the same call against a broker with v7 is sent.
        let fake = cluster(1, &[("t", 1)]).await;
        fake.offer_versions(FakeApi::ListOffsets, 0, 7);
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        client
            .list_offset("t", 0, OffsetSpec::MaxTimestamp)
            .await
            .expect("v7 has MaxTimestamp");
        assert_eq!(list_offsets_sent(&fake), [(7, -3)]);
    })
    .await;
}

#[tokio::test]
async fn list_offset_v0_reads_the_old_style_offsets() {
    bounded(async {
        let fake = cluster(1, &[("t", 1)]).await;
        fake.offer_versions(FakeApi::ListOffsets, 0, 0);
        let client = Client::connect(config(vec![fake.bootstrap()]))
            .await
            .unwrap();
        let records: Vec<(i64, String)> = (0..17).map(|i| (1_000 + i, format!("r{i}"))).collect();
        let records: Vec<(i64, &str)> = records.iter().map(|(t, v)| (*t, v.as_str())).collect();
        produce(&client, "t", 0, &records).await;
        let newest = client
            .list_offset("t", 0, OffsetSpec::Newest)
            .await
            .unwrap();
        assert_eq!(
            newest,
            ListedOffset {
                offset: Some(17),
                timestamp: None,
                leader_epoch: None
            }
        );
        assert_eq!(list_offsets_sent(&fake), [(0, -1)]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn list_partition_offsets_asks_each_leader_once_and_retries_only_what_failed() {
    bounded(async {
        // Partitions 0-2 led by broker 1, 3-5 by broker 2.
        let fake = cluster(2, &[("t", 6)]).await;
        for p in 0..6 {
            fake.move_leader("t", p, if p < 3 { 1 } else { 2 }).unwrap();
        }
        let mut c = config(fake.addresses());
        c.metadata.retry_backoff = Duration::from_millis(10);
        c.consumer.default_api_timeout = Duration::from_secs(2);
        let client = Client::connect(c).await.unwrap();
        produce(&client, "t", 1, &[(1_000, "a"), (2_000, "b")]).await;
        produce(&client, "t", 4, &[(1_000, "c")]).await;
        let all: Vec<i32> = (0..6).collect();

        let ends = client
            .list_partition_offsets("t", &all, OffsetSpec::Newest)
            .await
            .expect("every partition answered");
        let ends: Vec<Option<i64>> = all.iter().map(|p| ends[p].offset).collect();
        assert_eq!(ends, [Some(0), Some(2), Some(0), Some(0), Some(1), Some(0)]);
        let mut asked = list_offsets_requests(&fake);
        asked.sort();
        assert_eq!(asked, [(1, vec![0, 1, 2]), (2, vec![3, 4, 5])]);

        // Broker 2 answers NOT_LEADER_OR_FOLLOWER once: the retry asks it
        // again for its three partitions only, not broker 1.
        let before = list_offsets_requests(&fake).len();
        fake.inject(
            FakeApi::ListOffsets,
            Some(2),
            Fault::Error(FakeCode::NOT_LEADER_OR_FOLLOWER),
            1,
        )
        .unwrap();
        let firsts = client
            .list_partition_offsets("t", &all, OffsetSpec::Oldest)
            .await
            .expect("answered after one retry");
        assert!(firsts.values().all(|f| f.offset == Some(0)));
        assert_eq!(firsts.len(), 6);
        let mut asked = list_offsets_requests(&fake).split_off(before);
        asked.sort();
        assert_eq!(
            asked,
            [(1, vec![0, 1, 2]), (2, vec![3, 4, 5]), (2, vec![3, 4, 5])]
        );

        // Control: one partition at a time is a request per partition.
        let before = list_offsets_requests(&fake).len();
        for &p in &all {
            client
                .list_offset("t", p, OffsetSpec::Oldest)
                .await
                .unwrap();
        }
        assert_eq!(list_offsets_requests(&fake).len() - before, 6);

        // A partition that never appears fails the whole lookup, typed,
        // once default.api.timeout.ms has gone by (unknown partitions are
        // retriable: metadata may be behind a topic's growth).
        let started = tokio::time::Instant::now();
        let err = client
            .list_partition_offsets("t", &[0, 9], OffsetSpec::Oldest)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() <= Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
    })
    .await;
}
