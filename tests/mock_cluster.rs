//! The Client and Connection against librdkafka's mock cluster
//! (`scripts/mock-cluster`): several brokers, leader moves, injected
//! errors, brokers taken down and brought back.
//!
//! The mock's state (queued errors, brokers down) is cluster-wide, so the
//! tests here take turns through one lock, and each uses its own topic.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use klamm::client::{OffsetSpec, TrafficClass};
use klamm::net::{Connection, ConnectionOptions};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::{ApiKey, MetadataRequest};
use klamm::{Client, Config, Error};
use support::mock::MockCluster;

/// The tests share one mock cluster; they take turns.
static MOCK: Mutex<()> = Mutex::new(());

/// Per-request limit in these tests: a broker that is down accepts TCP
/// connections but never answers, so requests to it end by this timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The mock (or None to skip), with the lock held.
fn setup() -> Option<(MockCluster, std::sync::MutexGuard<'static, ()>)> {
    let guard = MOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mock = support::mock::mock()?;
    // Leftovers of a test that failed half-way.
    for api in [ApiKey::ListOffsets, ApiKey::FindCoordinator] {
        mock.clear_errors(api.code());
    }
    for b in 1..=mock.addrs().len() as i32 {
        mock.up(b);
    }
    Some((mock, guard))
}

fn config(mock: &MockCluster) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = mock.addrs();
    config.net.client_id = "klamm-mock-test".into();
    config.net.request_timeout = REQUEST_TIMEOUT;
    config
}

/// Polls `f` every 50 ms until it returns Some, or panics after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Metadata request for no topics at v8 (the mock's v9+ answers carry a
/// stray byte; see `api_versions_negotiation_with_the_mock`).
async fn metadata_v8(conn: &Connection) -> klamm::Result<()> {
    let req = MetadataRequest {
        topics: Some(vec![]),
        ..Default::default()
    };
    conn.send_version(&req, 8).await.map(|_| ())
}

/// Brings a broker back up when dropped, even when the test panics.
struct UpOnDrop<'a>(&'a MockCluster, i32);

impl Drop for UpOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.try_command(&format!("up {}", self.1));
    }
}

#[test]
fn api_versions_negotiation_with_the_mock() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    support::run_within(60, async {
        let addr = &mock.addrs()[0];
        // klamm asks with ApiVersions v3 first; the mock refuses it with a
        // bare UNSUPPORTED_VERSION and the connection falls back to v0.
        let conn = Connection::connect(addr, ConnectionOptions::default())
            .await
            .expect("connect and negotiate");
        let v = conn.api_versions();
        // Asked with v5, the mock answered a bare UNSUPPORTED_VERSION (no
        // ranges), so klamm retried with v0; v0 got the full table.
        assert_eq!(v.broker_range(ApiKey::ApiVersions), Some((0, 2)));
        assert_eq!(v.broker_range(ApiKey::Metadata), Some((0, 13)));
        assert_eq!(v.broker_range(ApiKey::ListOffsets), Some((0, 7)));
        assert_eq!(v.broker_range(ApiKey::FindCoordinator), Some((0, 3)));
        // The highest version both sides speak.
        assert_eq!(v.version_for(ApiKey::Metadata, addr).unwrap(), 13);
        assert_eq!(v.version_for(ApiKey::ListOffsets, addr).unwrap(), 7);
        assert_eq!(v.version_for(ApiKey::FindCoordinator, addr).unwrap(), 3);
        assert_eq!(v.version_for(ApiKey::Produce, addr).unwrap(), 10);
        // By hand Fetch stays at v12 (names); the fetcher may go to the
        // mock's v16 by topic id.
        assert_eq!(v.version_for(ApiKey::Fetch, addr).unwrap(), 12);
        assert_eq!(v.version_up_to(ApiKey::Fetch, addr, 18).unwrap(), 16);

        // The mock's flexible Metadata answers (v9+) end with a stray byte,
        // which klamm's decoder rejects (the Client steps down to v8 for
        // such a broker); v8 names every broker.
        let err = conn
            .send(&MetadataRequest::default())
            .await
            .expect_err("Metadata v12 from the mock has a trailing byte");
        assert!(matches!(err, Error::Decode(_)), "{err}");
        assert!(
            !conn.is_closed(),
            "a decode error does not close the connection"
        );
        let md = conn
            .send_version(&MetadataRequest::default(), 8)
            .await
            .expect("Metadata v8");
        let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
        ids.sort();
        let want: Vec<i32> = (1..=mock.addrs().len() as i32).collect();
        assert_eq!(ids, want);
        for b in &md.brokers {
            let expected = &mock.addrs()[(b.node_id - 1) as usize];
            assert_eq!(&format!("{}:{}", b.host, b.port), expected);
        }
        conn.close().await;
    });
}

#[test]
fn metadata_refresh_after_a_leader_move() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    let brokers = mock.addrs().len() as i32;
    assert!(brokers >= 2, "the mock needs at least 2 brokers");
    support::run_within(60, async {
        let topic = support::unique_topic("klamm-mock-leader");
        mock.create_topic(&topic, 2, brokers.min(3));
        let client = Client::connect(config(&mock)).await.expect("bootstrap");
        assert_eq!(client.partitions(&topic).await.expect("partitions"), [0, 1]);
        let old = client.leader(&topic, 0).await.expect("leader").id;
        let other = client.leader(&topic, 1).await.expect("leader 1").id;
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Oldest)
                .await
                .unwrap(),
            0
        );

        let new = old % brokers + 1;
        mock.set_leader(&topic, 0, new);
        let before = client.metadata_requests();

        // The cache still names the old leader, which refuses with
        // NOT_LEADER_OR_FOLLOWER; list_offsets refreshes the topic's
        // metadata and asks the new leader.
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Oldest)
                .await
                .expect("answered by the new leader after a refresh"),
            0
        );
        let now = client.leader(&topic, 0).await.expect("leader").id;
        assert_eq!(now, new);
        assert!(client.metadata_requests() > before);
        // The other partition did not move.
        assert_eq!(client.leader(&topic, 1).await.unwrap().id, other);
        // And the request now goes to the new leader.
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Oldest)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Newest)
                .await
                .unwrap(),
            0
        );
        client.close().await;
    });
}

#[test]
fn a_broker_taken_down_and_brought_back() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    let addrs = mock.addrs();
    assert!(addrs.len() >= 2, "the mock needs at least 2 brokers");
    support::run_within(60, async {
        let client = Client::connect(config(&mock)).await.expect("bootstrap");
        let down_id = 1;
        let b = client.broker(down_id).expect("broker 1 in the metadata");
        let conn = client
            .connection(&b, TrafficClass::Other)
            .await
            .expect("connection to broker 1");
        metadata_v8(&conn).await.expect("broker 1 answers");

        mock.down(down_id);
        let _up = UpOnDrop(&mock, down_id);
        let bound = REQUEST_TIMEOUT + Duration::from_secs(3);

        // The open connection fails, retriably, and in bounded time.
        let err = tokio::time::timeout(bound, metadata_v8(&conn))
            .await
            .expect("a request to a downed broker ends")
            .expect_err("the downed broker does not answer");
        eprintln!("open connection to the downed broker: {err}");
        assert!(err.is_retriable(), "{err}");
        // New connections to it fail too, retriably and in bounded time (were
        // it to accept TCP and never answer, the request timeout would end
        // the ApiVersions exchange).
        let started = Instant::now();
        let err = tokio::time::timeout(bound, client.connection(&b, TrafficClass::Other))
            .await
            .expect("connecting to a downed broker ends")
            .expect_err("no connection to a downed broker");
        eprintln!("new connection to the downed broker: {err}");
        assert!(err.is_retriable(), "{err}");
        assert!(started.elapsed() < bound);

        // The cluster stays usable through the other brokers: a refresh, and
        // a new client whose first seed is the downed broker.
        tokio::time::timeout(bound * 2, client.refresh_metadata(None))
            .await
            .expect("refresh ends")
            .expect("refresh through the other brokers");
        let mut cfg = config(&mock);
        cfg.net.bootstrap_servers = addrs.clone(); // broker 1 first
        let second = tokio::time::timeout(bound * 2, Client::connect(cfg))
            .await
            .expect("bootstrap ends")
            .expect("bootstrap past the downed broker");
        // (The mock leaves a downed broker out of its Metadata answers.)
        let known = second.metadata();
        for id in (1..=addrs.len() as i32).filter(|&id| id != down_id) {
            assert!(known.brokers.contains_key(&id), "broker {id} known");
        }
        second.close().await;

        // Back up: after the reconnect backoff a connection works again.
        mock.up(down_id);
        let conn = eventually(
            "a connection to broker 1 again",
            Duration::from_secs(20),
            || async {
                let c = client.connection(&b, TrafficClass::Other).await.ok()?;
                metadata_v8(&c).await.ok().map(|_| c)
            },
        )
        .await;
        assert!(!conn.is_closed());
        client.close().await;
    });
}

#[test]
fn injected_retriable_errors() {
    let Some((mock, _guard)) = setup() else {
        return;
    };
    let brokers = mock.addrs().len() as i32;
    support::run_within(60, async {
        let client = Client::connect(config(&mock)).await.expect("bootstrap");

        // The next FindCoordinator requests, at whichever broker, make the
        // mock drop the connection (librdkafka's `_TRANSPORT`): a retriable
        // disconnect. The Client retries retriable coordinator errors, moving
        // on to the other brokers and then trying again after a backoff; more
        // failures than brokers make it go round twice.
        let drops = vec!["_TRANSPORT"; brokers as usize + 1];
        mock.command(&format!(
            "errors {} {}",
            ApiKey::FindCoordinator.code(),
            drops.join(" ")
        ));
        let group = support::unique_topic("klamm-mock-group");
        let c = client
            .coordinator(&group)
            .await
            .expect("coordinator after retries");
        assert!((1..=brokers).contains(&c.id), "coordinator {c:?}");
        assert!(client.broker(c.id).is_some());

        // An injected error *code* for FindCoordinator cannot be retried: the
        // mock's error answer carries a null Host, which the schema does not
        // allow, so klamm (like the Java client) rejects the answer as
        // malformed instead of reading its COORDINATOR_NOT_AVAILABLE (15).
        mock.push_errors(
            ApiKey::FindCoordinator.code(),
            &[ErrorCode::COORDINATOR_NOT_AVAILABLE.code()],
        );
        let err = client
            .coordinator(&support::unique_topic("klamm-mock-group15"))
            .await
            .expect_err("malformed error answer");
        assert!(matches!(err, Error::Decode(_)), "{err}");
        assert!(!err.is_retriable());
        mock.clear_errors(ApiKey::FindCoordinator.code());

        // A pinned coordinator is what FindCoordinator reports.
        let pinned = support::unique_topic("klamm-mock-pinned");
        mock.set_group_coordinator(&pinned, brokers);
        assert_eq!(client.coordinator(&pinned).await.unwrap().id, brokers);

        // ListOffsets: two injected NOT_LEADER_OR_FOLLOWER (6) answers are
        // retried, each after a metadata refresh; the third try succeeds.
        let topic = support::unique_topic("klamm-mock-errors");
        mock.create_topic(&topic, 1, brokers.min(3));
        assert_eq!(client.partitions(&topic).await.unwrap(), [0]);
        mock.push_errors(
            ApiKey::ListOffsets.code(),
            &[
                ErrorCode::NOT_LEADER_OR_FOLLOWER.code(),
                ErrorCode::NOT_LEADER_OR_FOLLOWER.code(),
            ],
        );
        let before = client.metadata_requests();
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Newest)
                .await
                .expect("answered after the injected errors"),
            0
        );
        assert!(
            client.metadata_requests() >= before + 2,
            "one refresh per retried answer"
        );

        // A non-retriable code stays non-retriable.
        mock.push_errors(
            ApiKey::ListOffsets.code(),
            &[ErrorCode::TOPIC_AUTHORIZATION_FAILED.code()],
        );
        let err = client
            .list_offsets(&topic, 0, OffsetSpec::Oldest)
            .await
            .expect_err("the injected error");
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        );
        assert!(!err.is_retriable());
        assert_eq!(
            client
                .list_offsets(&topic, 0, OffsetSpec::Oldest)
                .await
                .unwrap(),
            0
        );
        client.close().await;
    });
}
