//! ACLs on Apache Kafka's StandardAuthorizer: a SASL user without rights
//! gets TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED,
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED or CLUSTER_AUTHORIZATION_FAILED as
//! a typed, non-retriable broker error from the producer, the consumer and
//! the client — promptly, after a bounded number of requests, never a retry
//! loop that runs into a timeout.
//!
//! `scripts/kafka` makes `mallory` the only user ACLs apply to (the others
//! are super users), and resources without ACLs are open. Each test denies
//! mallory resources under a prefix of its own (created through a
//! super-user connection with CreateAcls), checks the denial, and shows the
//! control: alice, on the same listener, is allowed.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klamm::client::{ClientOptions, TrafficClass};
use klamm::config::{SaslMechanism, SecurityProtocol};
use klamm::consumer::{Consumer, StartOffset};
use klamm::net::Metrics;
use klamm::producer::transaction::ConsumerGroupMetadata;
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::create_acls_request::AclCreation;
use klamm::protocol::messages::{ApiKey, CreateAclsRequest};
use klamm::{Client, Config, Error, ErrorKind};
use support::auth::{Login, secure_config};

// Kafka's ACL enums (their wire values).
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const WRITE: i8 = 4;
const IDEMPOTENT_WRITE: i8 = 12;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

/// Counts the requests a client sends, per API.
#[derive(Default)]
struct Requests(Mutex<HashMap<ApiKey, u64>>);

impl Metrics for Requests {
    fn request_sent(&self, _broker: &str, api: ApiKey, _bytes: usize) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(api)
            .or_default() += 1;
    }
}

impl Requests {
    fn of(&self, api: ApiKey) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&api)
            .copied()
            .unwrap_or_default()
    }
}

/// A super-user client on the PLAINTEXT listener.
async fn admin(addr: &str) -> Client {
    Client::connect(support::read::config(addr))
        .await
        .expect("admin client")
}

/// Denies `operation` on a resource to mallory (through CreateAcls on the
/// admin client).
async fn deny(admin: &Client, resource_type: i8, name: &str, pattern: i8, operation: i8) {
    acl(admin, resource_type, name, pattern, operation, DENY).await
}

/// Adds an ACL for mallory. Once a resource has any ACL,
/// `allow.everyone.if.no.acl.found` no longer applies to it: only what is
/// allowed is.
async fn acl(
    admin: &Client,
    resource_type: i8,
    name: &str,
    pattern: i8,
    operation: i8,
    permission_type: i8,
) {
    let broker = admin.controller().await.expect("a broker");
    let conn = admin
        .connection(&broker, TrafficClass::Other)
        .await
        .expect("connection");
    let resp = conn
        .send(&CreateAclsRequest {
            creations: vec![AclCreation {
                resource_type,
                resource_name: name.to_string(),
                resource_pattern_type: pattern,
                principal: "User:mallory".into(),
                host: "*".into(),
                operation,
                permission_type,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("CreateAcls");
    assert_eq!(resp.results.len(), 1);
    assert_eq!(
        ErrorCode(resp.results[0].error_code),
        ErrorCode::NONE,
        "CreateAcls {name}: {:?}",
        resp.results[0].error_message
    );
}

/// A client logged in as `user` on the SASL_PLAINTEXT listener, counting
/// its requests.
async fn client_as(
    addr: &str,
    user: &'static str,
    password: &'static str,
    tune: impl FnOnce(&mut Config),
) -> (Client, Arc<Requests>) {
    let (mut config, mut options): (Config, ClientOptions) = secure_config(
        addr,
        SecurityProtocol::SaslPlaintext,
        None,
        false,
        Some(&Login::Password(SaslMechanism::ScramSha256, user, password)),
    );
    tune(&mut config);
    let requests = Arc::new(Requests::default());
    options.metrics = Some(requests.clone());
    let client = Client::connect_with(config, options)
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"));
    (client, requests)
}

fn assert_denied(err: &Error, code: ErrorCode) {
    assert_eq!(err.kind(), ErrorKind::Broker, "{err:?}");
    assert_eq!(err.kafka_code(), Some(code), "{err}");
    assert!(!err.is_retriable(), "{err}");
    eprintln!("as expected: {err}");
}

/// ACLs reach the broker's authorizer through the metadata log a moment
/// after CreateAcls answers: retry `attempt` (each a fresh client) until
/// it is denied, then return that error.
async fn until_denied<F, Fut>(what: &str, mut attempt: F) -> Error
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    for _ in 0..100 {
        match attempt().await {
            Err(e) if e.kind() == ErrorKind::Broker => return e,
            Err(e) => panic!("{what}: not an authorization error: {e:?}"),
            Ok(()) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("{what}: never denied")
}

#[test]
fn topic_acls_deny_metadata_produce_and_fetch() {
    let (Some(plain), Some(sasl)) = (support::broker(), support::sasl_listeners()) else {
        return;
    };
    support::run_within(120, async move {
        let prefix = support::unique_topic("klamm-acl-topic");
        let admin = admin(&plain).await;

        // Denied DESCRIBE (ALL on the prefix): the topic is invisible, so
        // a send fails at its metadata lookup.
        let hidden = format!("{prefix}-hidden");
        support::topics::create_topic(&admin, &hidden, 1).await;
        deny(&admin, TOPIC, &hidden, LITERAL, ALL).await;
        let err = until_denied("metadata of the hidden topic", || async {
            let (mallory, _) = client_as(&sasl.plaintext, "mallory", "mallory-secret", |c| {
                c.producer.idempotence = false;
            })
            .await;
            let producer = AsyncProducer::new(mallory.clone()).await?;
            let r = producer
                .send(ProducerRecord::new(hidden.as_str(), "x"))
                .await
                .map(|_| ());
            producer.close().await.ok();
            mallory.close().await;
            r
        })
        .await;
        assert_denied(&err, ErrorCode::TOPIC_AUTHORIZATION_FAILED);

        // Allowed DESCRIBE, denied WRITE (and, having ACLs now, READ is
        // no longer open either): metadata works, Produce is refused, and
        // the record fails with the broker's code — after one Produce
        // request, not a retry loop until delivery.timeout.ms.
        let readonly = format!("{prefix}-readonly");
        support::topics::create_topic(&admin, &readonly, 1).await;
        acl(&admin, TOPIC, &readonly, LITERAL, DESCRIBE, ALLOW).await;
        deny(&admin, TOPIC, &readonly, LITERAL, WRITE).await;
        let (mallory, requests) = client_as(&sasl.plaintext, "mallory", "mallory-secret", |c| {
            c.producer.idempotence = false;
        })
        .await;
        let err = until_denied("produce to the read-only topic", || async {
            let producer = AsyncProducer::new(mallory.clone()).await?;
            let r = async {
                let f = producer
                    .send(ProducerRecord::new(readonly.as_str(), "x").with_partition(0))
                    .await?;
                f.await.map(|_| ())
            }
            .await;
            producer.close().await.ok();
            r
        })
        .await;
        assert_denied(&err, ErrorCode::TOPIC_AUTHORIZATION_FAILED);
        assert!(
            matches!(
                err,
                Error::Broker {
                    api: ApiKey::Produce,
                    ..
                }
            ),
            "refused by Produce, not Metadata: {err}"
        );
        let produces = requests.of(ApiKey::Produce);
        assert!(
            (1..=5).contains(&produces),
            "{produces} Produce requests for a denied write"
        );

        // Not allowed READ: the partition consumer ends with the typed
        // error from Fetch.
        let err = until_denied("fetch from the unreadable topic", || async {
            let consumer = Consumer::new(mallory.clone());
            let mut pc = consumer
                .consume_partition(&readonly, 0, StartOffset::Oldest)
                .await?;
            let r = tokio::time::timeout(Duration::from_secs(5), pc.recv()).await;
            pc.close().await;
            match r {
                Ok(Some(Err(e))) => Err(e),
                Ok(Some(Ok(rec))) => panic!("mallory read {rec:?}"),
                Ok(None) | Err(_) => Ok(()),
            }
        })
        .await;
        assert_denied(&err, ErrorCode::TOPIC_AUTHORIZATION_FAILED);
        assert!(
            matches!(
                err,
                Error::Broker {
                    api: ApiKey::Fetch,
                    ..
                }
            ),
            "refused by Fetch: {err}"
        );
        mallory.close().await;

        // The control: alice writes and reads the same topic.
        let (alice, _) = client_as(&sasl.plaintext, "alice", "alice-secret", |_| {}).await;
        let producer = AsyncProducer::new(alice.clone()).await.expect("producer");
        producer
            .send(ProducerRecord::new(readonly.as_str(), "from alice").with_partition(0))
            .await
            .expect("send")
            .await
            .expect("alice may write");
        producer.close().await.expect("close");
        alice.close().await;
        admin.close().await;
    });
}

#[test]
fn transactional_id_and_group_acls_deny_transactions() {
    let (Some(plain), Some(sasl)) = (support::broker(), support::sasl_listeners()) else {
        return;
    };
    support::run_within(120, async move {
        let prefix = support::unique_topic("klamm-acl-txn");
        let admin = admin(&plain).await;
        let topic = format!("{prefix}-data");
        support::topics::create_topic(&admin, &topic, 1).await;
        deny(
            &admin,
            TRANSACTIONAL_ID,
            &format!("{prefix}-denied"),
            PREFIXED,
            ALL,
        )
        .await;
        deny(&admin, GROUP, &format!("{prefix}-group"), PREFIXED, ALL).await;

        // A transactional id mallory may not use.
        let denied_id = format!("{prefix}-denied-1");
        let err = until_denied("init_transactions", || async {
            let (mallory, _) = client_as(&sasl.plaintext, "mallory", "mallory-secret", |c| {
                c.producer.transactional_id = Some(denied_id.clone());
                c.producer.max_block = Duration::from_secs(20);
            })
            .await;
            let producer = AsyncProducer::new(mallory.clone()).await?;
            let r = producer.init_transactions().await;
            producer.close().await.ok();
            mallory.close().await;
            r
        })
        .await;
        assert_denied(&err, ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);

        // A group she may not use: the client's coordinator lookup, and
        // offsets sent to a transaction of an allowed transactional id.
        let group = format!("{prefix}-group-1");
        let (mallory, requests) = client_as(&sasl.plaintext, "mallory", "mallory-secret", |c| {
            c.producer.transactional_id = Some(format!("{prefix}-allowed"));
        })
        .await;
        let err = until_denied("coordinator of the group", || async {
            mallory.coordinator(&group).await.map(|_| ())
        })
        .await;
        assert_denied(&err, ErrorCode::GROUP_AUTHORIZATION_FAILED);
        let lookups = requests.of(ApiKey::FindCoordinator);
        assert!(
            lookups <= 5,
            "{lookups} FindCoordinator requests: a retry loop"
        );

        let producer = AsyncProducer::new(mallory.clone()).await.expect("producer");
        producer.init_transactions().await.expect("allowed id");
        producer.begin_transaction().expect("begin");
        let err = producer
            .send_offsets_to_transaction(
                &[(topic.as_str(), 0, 1, None)],
                &ConsumerGroupMetadata::new(group.clone()),
            )
            .await
            .expect_err("the group is denied");
        assert_denied(&err, ErrorCode::GROUP_AUTHORIZATION_FAILED);
        producer
            .abort_transaction()
            .await
            .expect("abort after the denial");
        producer.close().await.ok();
        mallory.close().await;

        // The control: alice uses the denied transactional id.
        let (alice, _) = client_as(&sasl.plaintext, "alice", "alice-secret", |c| {
            c.producer.transactional_id = Some(denied_id.clone());
        })
        .await;
        let producer = AsyncProducer::new(alice.clone()).await.expect("producer");
        producer.init_transactions().await.expect("alice may");
        producer.close().await.ok();
        alice.close().await;
        admin.close().await;
    });
}

/// The cluster resource: mallory may neither write idempotently nor write
/// any topic, so an idempotent producer's InitProducerId is refused with
/// CLUSTER_AUTHORIZATION_FAILED.
#[test]
fn cluster_acls_deny_the_idempotent_producer() {
    let (Some(plain), Some(sasl)) = (support::broker(), support::sasl_listeners()) else {
        return;
    };
    support::run_within(120, async move {
        let admin = admin(&plain).await;
        deny(&admin, CLUSTER, "kafka-cluster", LITERAL, IDEMPOTENT_WRITE).await;
        deny(&admin, TOPIC, "*", LITERAL, WRITE).await;
        let topic = support::unique_topic("klamm-acl-cluster");
        support::topics::create_topic(&admin, &topic, 1).await;
        let err = until_denied("the idempotent producer", || async {
            let (mallory, _) = client_as(&sasl.plaintext, "mallory", "mallory-secret", |c| {
                c.producer.idempotence = true;
            })
            .await;
            let r = async {
                let producer = AsyncProducer::new(mallory.clone()).await?;
                let f = producer
                    .send(ProducerRecord::new(topic.as_str(), "x").with_partition(0))
                    .await?;
                let r = f.await.map(|_| ());
                producer.close().await.ok();
                r
            }
            .await;
            mallory.close().await;
            r
        })
        .await;
        assert_denied(&err, ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
        admin.close().await;
    });
}
