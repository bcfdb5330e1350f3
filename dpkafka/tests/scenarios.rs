//! dp-kafka's scenarios against Apache Kafka (`KLAMM_TEST_BROKERS`, which
//! `scripts/test` starts; without it these tests fail unless the run opts
//! out with `KLAMM_SKIP_BROKER_TESTS=1`).

#[path = "../../tests/support/env.rs"]
mod env;
#[path = "../../tests/support/libs.rs"]
mod libs;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::admin::Admin;
use klamm::group::GroupAdmin;
use klamm::{Client, Config as ClientConfig};
use klamm_dpkafka::{
    BatchHandler, ConsumerGroup, ConsumerGroupConfig, Handler, HandlerError, Message, Producer,
    ProducerConfig, State, Status,
};
use libs::{committed, create, produce};
use tokio::sync::watch;
use tokio::time::timeout;

const LONG: Duration = Duration::from_secs(60);

async fn client(broker: &str) -> Client {
    let config = ClientConfig::from_properties([("bootstrap.servers", broker)]).expect("config");
    Client::connect(config).await.expect("connect")
}

fn values(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("v{i}")).collect()
}

/// What handlers saw: (partition, offset, value), in handling order, and
/// a counter to wait on.
#[derive(Clone)]
struct Seen {
    log: Arc<Mutex<Vec<(i32, i64, String)>>>,
    count: watch::Sender<usize>,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            log: Arc::default(),
            count: watch::Sender::new(0),
        }
    }

    fn push(&self, m: &Message) {
        let mut log = self.log.lock().unwrap();
        log.push((
            m.partition(),
            m.offset(),
            String::from_utf8_lossy(m.data()).into_owned(),
        ));
        self.count.send_replace(log.len());
    }

    async fn until(&self, n: usize) {
        let mut rx = self.count.subscribe();
        timeout(LONG, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} records handled in time; saw {:?}", self.all()))
            .expect("counter alive");
    }

    fn all(&self) -> Vec<(i32, i64, String)> {
        self.log.lock().unwrap().clone()
    }

    fn offsets(&self) -> Vec<i64> {
        self.all().into_iter().map(|(_, o, _)| o).collect()
    }
}

/// Records every message; fails as `fail` says for (offset, nth time seen).
struct Recorder {
    seen: Seen,
    fail: fn(i64, usize) -> Option<HandlerError>,
}

impl Handler for Recorder {
    async fn handle(&self, _worker: usize, m: &Message) -> Result<(), HandlerError> {
        self.seen.push(m);
        let times = self
            .seen
            .all()
            .iter()
            .filter(|(p, o, _)| (*p, *o) == (m.partition(), m.offset()))
            .count();
        match (self.fail)(m.offset(), times) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn never(_: i64, _: usize) -> Option<HandlerError> {
    None
}

fn consumer_config(broker: &str, topic: &str, group: &str) -> ConsumerGroupConfig {
    let mut c = ConsumerGroupConfig::new([broker], topic, group);
    c.min_retry_period = Duration::from_millis(100);
    c.max_retry_period = Duration::from_secs(2);
    c
}

/// Every state of a normal life, in order: created (initialised at once),
/// started, consuming, stopped (the group left with the handled records
/// committed), closed; a closed consumer cannot start again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_lifecycle_passes_every_state_in_order() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (env::unique_topic("dp-life"), env::unique_topic("dp-life-g"));
    create(&client, &topic, 1).await;
    produce(&client, &topic, 1, &values(3)).await;

    let consumer = ConsumerGroup::new(consumer_config(&broker, &topic, &group))
        .await
        .expect("created");
    let mut transitions = consumer.transitions();
    assert_eq!(
        consumer.state(),
        State::Stopped,
        "the cluster was reached at once"
    );
    let seen = Seen::new();
    consumer
        .register_handler(Recorder {
            seen: seen.clone(),
            fail: never,
        })
        .expect("first handler");
    let second = consumer.register_handler(Recorder {
        seen: seen.clone(),
        fail: never,
    });
    assert!(matches!(
        second,
        Err(klamm_dpkafka::Error::HandlerRegistered)
    ));

    consumer.start().await.expect("start");
    timeout(LONG, consumer.wait_for(State::Consuming))
        .await
        .expect("consuming");
    seen.until(3).await;
    consumer.stop_and_wait().await.expect("stop");
    assert_eq!(consumer.state(), State::Stopped);
    assert_eq!(committed(&client, &group, &topic, 1).await, [3]);
    let members = GroupAdmin::new(client.clone())
        .describe_group(&group)
        .await
        .expect("describe")
        .members;
    assert!(
        members.is_empty(),
        "stopped means out of the group: {members:?}"
    );

    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close again");
    assert!(matches!(
        consumer.start().await,
        Err(klamm_dpkafka::Error::Closing)
    ));

    let mut all = Vec::new();
    while let Some(s) = timeout(LONG, transitions.next()).await.expect("ends") {
        all.push(s);
    }
    use State::*;
    assert_eq!(
        all,
        [
            Initialising,
            Stopped,
            Starting,
            Consuming,
            Stopping,
            Stopped,
            Closing
        ]
    );
    assert_eq!(seen.offsets(), [0, 1, 2]);
    client.close().await;
}

/// A TCP forwarder from a port of ours to the broker, started later, so
/// the consumer's only seed broker is down when it is created.
async fn forward(listener: tokio::net::TcpListener, broker: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let broker = broker.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&broker).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// The seed broker is down at construction: the constructor succeeds, the
/// health check says CRITICAL, `start` is accepted; once the broker is up
/// the consumer initialises in the background and consumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_created_while_the_broker_is_down_starts_once_it_is_up() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (env::unique_topic("dp-down"), env::unique_topic("dp-down-g"));
    create(&client, &topic, 1).await;
    produce(&client, &topic, 1, &values(2)).await;

    // A port nothing listens on yet.
    let seed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let consumer = ConsumerGroup::new(consumer_config(&seed, &topic, &group))
        .await
        .expect("created although the broker is down");
    assert_eq!(consumer.state(), State::Initialising);
    assert!(!consumer.is_initialised());
    let health = consumer.check_health().await;
    assert_eq!(health.status, Status::Critical);
    assert_eq!(
        health.message,
        format!("broker(s) not reachable at: [{seed}]")
    );

    let seen = Seen::new();
    consumer
        .register_handler(Recorder {
            seen: seen.clone(),
            fail: never,
        })
        .expect("handler");
    consumer.start().await.expect("start while initialising");
    assert_eq!(consumer.state(), State::Initialising);

    // Control: still down, it stays initialising.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(consumer.state(), State::Initialising);

    let listener = tokio::net::TcpListener::bind(&seed)
        .await
        .expect("the freed port again");
    let proxy = tokio::spawn(forward(listener, broker.clone()));
    timeout(LONG, consumer.wait_for(State::Consuming))
        .await
        .expect("consuming once the broker is up");
    seen.until(2).await;
    let health = consumer.check_health().await;
    assert_eq!(
        (health.status, health.message.as_str()),
        (Status::Ok, "kafka consumer group is healthy")
    );
    let mut transitions = consumer.transitions();
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(transitions.next().await.expect("a state"));
    }
    assert_eq!(
        first,
        [State::Initialising, State::Starting, State::Consuming],
        "start while initialising goes straight to starting"
    );
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    proxy.abort();
    client.close().await;
}

/// Batches of sizes and waits as configured.
struct Batches {
    sizes: Arc<Mutex<Vec<usize>>>,
    count: watch::Sender<usize>,
}

impl BatchHandler for Batches {
    async fn handle(&mut self, batch: &[Message]) -> Result<(), HandlerError> {
        let mut sizes = self.sizes.lock().unwrap();
        sizes.push(batch.len());
        self.count.send_replace(sizes.iter().sum());
        Ok(())
    }
}

/// Batch size 5 and wait 200 ms on 12 records: batches of 5, 5 and 2 (the
/// last one after the wait), all committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_gets_full_batches_then_the_rest_after_the_wait() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (
        env::unique_topic("dp-batch"),
        env::unique_topic("dp-batch-g"),
    );
    create(&client, &topic, 1).await;
    produce(&client, &topic, 1, &values(12)).await;

    let mut config = consumer_config(&broker, &topic, &group);
    config.batch_size = 5;
    config.batch_wait_time = Duration::from_millis(200);
    let consumer = ConsumerGroup::new(config).await.expect("created");
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let count = watch::Sender::new(0);
    let mut total = count.subscribe();
    consumer
        .register_batch_handler(Batches {
            sizes: sizes.clone(),
            count,
        })
        .expect("handler");
    consumer.start().await.expect("start");
    timeout(LONG, total.wait_for(|n| *n >= 12))
        .await
        .expect("12 records in time")
        .expect("alive");
    assert_eq!(*sizes.lock().unwrap(), [5, 5, 2]);
    consumer.stop_and_wait().await.expect("stop");
    assert_eq!(committed(&client, &group, &topic, 1).await, [12]);
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    client.close().await;
}

/// Counts handler calls in progress, and the most at once.
#[derive(Clone)]
struct Concurrency {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    seen: Seen,
}

impl Handler for Concurrency {
    async fn handle(&self, _worker: usize, m: &Message) -> Result<(), HandlerError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.seen.push(m);
        Ok(())
    }
}

/// Three partitions and five workers: at most three handler calls at once
/// (one record in hand per partition), and three are reached; each
/// partition's records are handled in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_hold_at_most_one_record_per_partition() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (
        env::unique_topic("dp-workers"),
        env::unique_topic("dp-workers-g"),
    );
    create(&client, &topic, 3).await;
    produce(&client, &topic, 3, &values(30)).await;

    let mut config = consumer_config(&broker, &topic, &group);
    config.num_workers = 5;
    let consumer = ConsumerGroup::new(config).await.expect("created");
    let handler = Concurrency {
        now: Arc::default(),
        most: Arc::default(),
        seen: Seen::new(),
    };
    consumer.register_handler(handler.clone()).expect("handler");
    consumer.start().await.expect("start");
    handler.seen.until(30).await;
    assert_eq!(handler.most.load(Ordering::SeqCst), 3);
    for p in 0..3 {
        let offsets: Vec<i64> = handler
            .seen
            .all()
            .into_iter()
            .filter(|(q, _, _)| *q == p)
            .map(|(_, o, _)| o)
            .collect();
        assert_eq!(offsets, (0..10).collect::<Vec<i64>>(), "partition {p}");
    }
    consumer.stop_and_wait().await.expect("stop");
    assert_eq!(committed(&client, &group, &topic, 3).await, [10, 10, 10]);
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    client.close().await;
}

/// A plain handler error commits its record; "do not commit" does not,
/// and the record comes again after a restart (the control: the record
/// with the plain error does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_refused_without_commit_is_delivered_again() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (env::unique_topic("dp-redo"), env::unique_topic("dp-redo-g"));
    create(&client, &topic, 1).await;
    produce(&client, &topic, 1, &values(3)).await;

    let consumer = ConsumerGroup::new(consumer_config(&broker, &topic, &group))
        .await
        .expect("created");
    let seen = Seen::new();
    consumer
        .register_handler(Recorder {
            seen: seen.clone(),
            fail: |offset, times| match (offset, times) {
                (1, 1) => Some(HandlerError::new("plain failure")),
                (2, 1) => Some(HandlerError::do_not_commit("store down")),
                _ => None,
            },
        })
        .expect("handler");
    consumer.start().await.expect("start");
    seen.until(3).await;
    consumer.stop_and_wait().await.expect("stop");
    assert_eq!(
        committed(&client, &group, &topic, 1).await,
        [2],
        "offset 1 (plain error) committed, offset 2 (do not commit) not"
    );

    consumer.start().await.expect("restart");
    seen.until(4).await;
    consumer.stop_and_wait().await.expect("stop");
    assert_eq!(seen.offsets(), [0, 1, 2, 2]);
    assert_eq!(committed(&client, &group, &topic, 1).await, [3]);
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    client.close().await;
}

/// A health verdict of WARNING stops consumption (the member leaves the
/// group and a new record is not handled), OK resumes it; a topic that
/// does not exist makes the health check say WARNING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_warning_stops_consumption_and_ok_resumes_it() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (
        env::unique_topic("dp-health"),
        env::unique_topic("dp-health-g"),
    );
    create(&client, &topic, 1).await;
    produce(&client, &topic, 1, &values(1)).await;

    let consumer = ConsumerGroup::new(consumer_config(&broker, &topic, &group))
        .await
        .expect("created");
    let seen = Seen::new();
    consumer
        .register_handler(Recorder {
            seen: seen.clone(),
            fail: never,
        })
        .expect("handler");
    consumer.on_health_update(Status::Ok).await;
    seen.until(1).await;
    assert_eq!(consumer.state(), State::Consuming);

    consumer.on_health_update(Status::Warning).await;
    timeout(LONG, consumer.wait_for(State::Stopped))
        .await
        .expect("stopped");
    let members = GroupAdmin::new(client.clone())
        .describe_group(&group)
        .await
        .expect("describe")
        .members;
    assert!(members.is_empty(), "{members:?}");
    produce(&client, &topic, 1, &["later".to_string()]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen.all().len(), 1, "nothing handled while stopped");

    consumer.on_health_update(Status::Critical).await;
    assert_eq!(consumer.state(), State::Stopped);
    consumer.on_health_update(Status::Ok).await;
    seen.until(2).await;
    assert_eq!(seen.all()[1].2, "later");
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");

    let missing = env::unique_topic("dp-missing");
    let absent = ConsumerGroup::new(consumer_config(&broker, &missing, &group))
        .await
        .expect("created");
    let health = absent.check_health().await;
    assert_eq!(health.status, Status::Warning);
    assert_eq!(
        health.message,
        format!("topic {missing} not available in broker(s): [{broker}]")
    );
    absent.close(Duration::from_secs(30)).await.expect("close");
    let described = Admin::new(client.clone())
        .describe_topics(&[missing.as_str()])
        .await;
    assert!(
        matches!(described.get(&missing), Some(Err(_))),
        "the health probe does not create the topic: {described:?}"
    );
    client.close().await;
}

#[derive(serde::Serialize)]
struct Event {
    order: u32,
}

/// The managed producer puts its request id (one per producer) and added
/// headers on every record; a consumer's handler reads them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producers_headers_reach_the_consumer() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (env::unique_topic("dp-prod"), env::unique_topic("dp-prod-g"));
    create(&client, &topic, 1).await;

    let mut config = ProducerConfig::new([broker.as_str()], &topic);
    config.min_brokers_healthy = 1;
    let producer = Producer::new(config).await.expect("producer");
    assert!(producer.is_initialised());
    let health = producer.check_health().await;
    assert_eq!(
        (health.status, health.message.as_str()),
        (Status::Ok, "kafka producer is healthy")
    );
    producer.add_header("source", "scenario");
    let trace = producer.headers()[0].1.clone();
    for order in [1, 2] {
        producer
            .send_json(&Event { order })
            .await
            .expect("sent")
            .await
            .expect("acknowledged");
    }
    producer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    assert!(matches!(
        producer.send_bytes("late").await,
        Err(klamm_dpkafka::Error::Closed)
    ));

    let consumer = ConsumerGroup::new(consumer_config(&broker, &topic, &group))
        .await
        .expect("created");
    let mut received = Vec::new();
    consumer.start().await.expect("start");
    for _ in 0..2 {
        let m = timeout(LONG, consumer.recv())
            .await
            .expect("a record")
            .expect("open");
        received.push((
            String::from_utf8_lossy(m.data()).into_owned(),
            m.request_id().map(str::to_string),
            m.header("source").map(str::to_string),
        ));
        m.commit_and_release().await.expect("committed");
    }
    assert_eq!(
        received,
        [
            (
                r#"{"order":1}"#.to_string(),
                Some(trace.clone()),
                Some("scenario".to_string())
            ),
            (
                r#"{"order":2}"#.to_string(),
                Some(trace.clone()),
                Some("scenario".to_string())
            ),
        ]
    );
    consumer.stop_and_wait().await.expect("stop");
    assert_eq!(committed(&client, &group, &topic, 1).await, [2]);
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    client.close().await;
}

/// A stop right after a start is not lost: the consumer ends stopped and
/// out of the group; a start right after a stop consumes. A consumer
/// closed while still initialising closes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_commands_are_not_lost_and_closing_while_initialising_works() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (
        env::unique_topic("dp-quick"),
        env::unique_topic("dp-quick-g"),
    );
    create(&client, &topic, 1).await;
    produce(&client, &topic, 1, &values(2)).await;

    let consumer = ConsumerGroup::new(consumer_config(&broker, &topic, &group))
        .await
        .expect("created");
    let seen = Seen::new();
    consumer
        .register_handler(Recorder {
            seen: seen.clone(),
            fail: never,
        })
        .expect("handler");
    consumer.start().await.expect("start");
    consumer.stop_and_wait().await.expect("stop at once");
    assert_eq!(consumer.state(), State::Stopped);
    let members = GroupAdmin::new(client.clone())
        .describe_group(&group)
        .await
        .expect("describe")
        .members;
    assert!(members.is_empty(), "{members:?}");
    consumer.stop().await.expect("stop");
    consumer.start().await.expect("start");
    seen.until(2).await;
    assert_eq!(consumer.state(), State::Consuming);
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");

    let seed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let down = ConsumerGroup::new(consumer_config(&seed, &topic, &group))
        .await
        .expect("created");
    down.start().await.expect("start while initialising");
    timeout(Duration::from_secs(10), down.close(Duration::from_secs(5)))
        .await
        .expect("close returns")
        .expect("closed");
    let mut transitions = down.transitions();
    let mut all = Vec::new();
    while let Some(s) = transitions.next().await {
        all.push(s);
    }
    assert_eq!(all, [State::Initialising, State::Closing]);
    client.close().await;
}

/// Stopping hands the batch gathered so far to the batch handler, and it
/// is committed before the group is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_hands_over_the_batch_gathered_so_far() {
    let Some(broker) = env::broker() else { return };
    let client = client(&broker).await;
    let (topic, group) = (
        env::unique_topic("dp-flush"),
        env::unique_topic("dp-flush-g"),
    );
    create(&client, &topic, 1).await;
    produce(&client, &topic, 1, &values(8)).await;

    let mut config = consumer_config(&broker, &topic, &group);
    config.batch_size = 5;
    // Long enough that only the stop can hand the rest over.
    config.batch_wait_time = Duration::from_secs(120);
    let consumer = ConsumerGroup::new(config).await.expect("created");
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let count = watch::Sender::new(0);
    let mut total = count.subscribe();
    consumer
        .register_batch_handler(Batches {
            sizes: sizes.clone(),
            count,
        })
        .expect("handler");
    consumer.start().await.expect("start");
    timeout(LONG, total.wait_for(|n| *n >= 5))
        .await
        .expect("the first batch")
        .expect("alive");
    // The other three follow the first batch within moments.
    tokio::time::sleep(Duration::from_secs(1)).await;
    consumer.stop_and_wait().await.expect("stop");
    assert_eq!(*sizes.lock().unwrap(), [5, 3]);
    assert_eq!(committed(&client, &group, &topic, 1).await, [8]);
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");
    client.close().await;
}

/// TLS as dp-kafka's security config gives it: the CA as PEM text with
/// literal `\n` sequences (as environment variables carry it), the client
/// certificate and key as files (the mTLS listener requires them) for the
/// consumer and as PEM text for the producer; the health checks probe over
/// TLS too. The control: without the client certificate the mTLS
/// listener refuses the producer, which never initialises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_pem_text_and_files_reaches_the_mtls_listener() {
    let Some(broker) = env::broker() else { return };
    let Some(mtls) = env::require("KLAMM_TEST_MTLS", "mTLS listener") else {
        return;
    };
    let Some(dir) = env::require("KLAMM_TEST_TLS_DIR", "TLS certificates") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("certificate file");
    let ca_text = read("ca.crt").replace('\n', "\\n");
    let client = client(&broker).await;
    let (topic, group) = (env::unique_topic("dp-tls"), env::unique_topic("dp-tls-g"));
    create(&client, &topic, 1).await;

    let mut pconfig = ProducerConfig::new([mtls.as_str()], &topic);
    pconfig.min_brokers_healthy = 1;
    pconfig.security = Some(klamm_dpkafka::SecurityConfig {
        root_ca_certs: Some(ca_text.clone()),
        client_cert: Some(read("client.crt")),
        client_key: Some(read("client.key")),
        insecure_skip_verify: false,
    });
    let producer = Producer::new(pconfig.clone()).await.expect("producer");
    timeout(LONG, producer.wait_initialised())
        .await
        .expect("initialised over mTLS")
        .expect("not closed");
    let health = producer.check_health().await;
    assert_eq!(
        (health.status, health.message.as_str()),
        (Status::Ok, "kafka producer is healthy")
    );
    producer
        .send_bytes("over tls")
        .await
        .expect("sent")
        .await
        .expect("acknowledged");
    producer
        .close(Duration::from_secs(30))
        .await
        .expect("close");

    let mut config = consumer_config(&mtls, &topic, &group);
    config.security = Some(klamm_dpkafka::SecurityConfig {
        root_ca_certs: Some(ca_text.clone()),
        client_cert: Some(dir.join("client.crt").display().to_string()),
        client_key: Some(dir.join("client.key").display().to_string()),
        insecure_skip_verify: false,
    });
    let consumer = ConsumerGroup::new(config).await.expect("consumer");
    assert!(consumer.is_initialised());
    consumer.start().await.expect("start");
    let m = timeout(LONG, consumer.recv())
        .await
        .expect("a record")
        .expect("open");
    assert_eq!(m.data(), b"over tls");
    m.commit_and_release().await.expect("commit");
    consumer
        .close(Duration::from_secs(30))
        .await
        .expect("close");

    // Control: no client certificate, no connection.
    pconfig.security = Some(klamm_dpkafka::SecurityConfig {
        root_ca_certs: Some(ca_text),
        ..klamm_dpkafka::SecurityConfig::default()
    });
    let refused = Producer::new(pconfig).await.expect("created anyway");
    assert!(!refused.is_initialised());
    assert_eq!(refused.check_health().await.status, Status::Critical);
    refused.close(Duration::from_secs(10)).await.expect("close");
    client.close().await;
}
