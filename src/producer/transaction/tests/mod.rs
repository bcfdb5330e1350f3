//! TransactionManager tests against `klamm_fake`'s cluster of two brokers
//! on loopback: broker 1 coordinates the transactional ids, broker 2 the
//! groups. What the manager asked is read from the cluster's request
//! history, and what took effect from its logs, markers and offsets.
//!
//! The fake links a second build of klamm, so what the tests hand it (API
//! keys, error codes) crosses as plain numbers: see [`fake_api`] and
//! [`fake_code`].

use std::time::Duration;

use klamm_fake::klamm::protocol::error_codes::ErrorCode as FakeCode;
use klamm_fake::klamm::protocol::messages::{ApiKey as FakeApi, RequestBody as FakeBody};
use klamm_fake::{FakeCluster, Fault};

use super::*;
use crate::client::TrafficClass;
use crate::config::Config;
use crate::error::ErrorKind;
use crate::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use crate::protocol::messages::*;
use crate::test_support::bounded;

/// The broker that coordinates every transactional id of these tests.
const TXN_COORDINATOR: i32 = 1;
/// The broker that coordinates every group of these tests.
const GROUP_COORDINATOR: i32 = 2;

/// The fake's name for one of this build's API keys.
fn fake_api(api: ApiKey) -> FakeApi {
    FakeApi::from_code(api.code()).expect("the fake's klamm knows every API")
}

/// The fake's name for one of this build's error codes.
fn fake_code(code: ErrorCode) -> FakeCode {
    FakeCode(code.code())
}

struct Cluster {
    fake: FakeCluster,
}

/// A TxnOffsetCommit request as the cluster saw it.
#[derive(Debug, Clone, PartialEq)]
struct OffsetRequest {
    group: String,
    generation: i32,
    member: String,
    /// (topic, partition, offset).
    offsets: Vec<(String, i32, i64)>,
}

impl Cluster {
    async fn start() -> Cluster {
        let fake = FakeCluster::builder()
            .brokers(2)
            .topic("t", 5)
            .topic("u", 2)
            .topic("in", 2)
            .record_requests(true)
            .start()
            .await
            .expect("the fake cluster starts");
        Cluster { fake }
    }

    /// A transactional client of broker 1 alone (it learns of broker 2
    /// from metadata); `id` is coordinated by broker 1.
    fn client_config(&self, id: &str) -> Config {
        self.fake
            .place_coordinator(id, TXN_COORDINATOR)
            .expect("broker 1 exists");
        let mut c = Config::default();
        c.net.bootstrap_servers = vec![self.fake.addresses()[0].clone()];
        c.net.request_timeout = Duration::from_secs(5);
        c.metadata.refresh_interval = None;
        c.metadata.retry_backoff = Duration::from_millis(10);
        c.producer.idempotence = true;
        c.producer.transactional_id = Some(id.to_string());
        c.producer.transaction_timeout = Duration::from_secs(30);
        c.producer.retry_backoff = Duration::from_millis(5);
        c.producer.max_block = Duration::from_secs(10);
        c
    }

    async fn manager(&self, config: Config) -> TransactionManager {
        let client = Client::connect(config).await.expect("client connects");
        TransactionManager::new(client).expect("manager")
    }

    /// The next requests of `api` are answered with `codes`, one each, in
    /// order, and take no effect.
    fn push_errors(&self, api: ApiKey, codes: &[ErrorCode]) {
        for &code in codes {
            self.fake
                .inject(fake_api(api), None, Fault::Error(fake_code(code)), 1)
                .expect("the fake answers this API with errors");
        }
    }

    /// Every request of `api` the cluster handled: (broker, version).
    fn requests(&self, api: ApiKey) -> Vec<(i32, i16)> {
        let api = fake_api(api);
        self.fake
            .history()
            .iter()
            .filter(|r| r.api() == api)
            .map(|r| (r.broker, r.version))
            .collect()
    }

    /// Every FindCoordinator key asked for: (key type, key).
    fn lookups(&self) -> Vec<(i8, String)> {
        let mut out = Vec::new();
        for r in self.fake.history() {
            if let FakeBody::FindCoordinator(f) = r.body {
                if r.version >= 4 {
                    out.extend(f.coordinator_keys.into_iter().map(|k| (f.key_type, k)));
                } else {
                    out.push((f.key_type, f.key));
                }
            }
        }
        out
    }

    /// The partitions of every AddPartitionsToTxn request, v3 or v4 shape.
    fn added(&self) -> Vec<Vec<(String, i32)>> {
        let mut out = Vec::new();
        for r in self.fake.history() {
            if let FakeBody::AddPartitionsToTxn(a) = r.body {
                let topics = if r.version >= 4 {
                    a.transactions.into_iter().flat_map(|t| t.topics).collect()
                } else {
                    a.v3_and_below_topics
                };
                out.push(
                    topics
                        .into_iter()
                        .flat_map(|t| {
                            let name = t.name;
                            t.partitions.into_iter().map(move |p| (name.clone(), p))
                        })
                        .collect(),
                );
            }
        }
        out
    }

    /// How each transaction that had `topic`-`partition` ended, in order
    /// (true: committed), from the markers the coordinator wrote there.
    fn ended(&self, topic: &str, partition: i32) -> Vec<bool> {
        self.fake
            .markers(topic, partition)
            .iter()
            .map(|m| m.commit)
            .collect()
    }

    /// (producer id, epoch) of every InitProducerId request.
    fn inits(&self) -> Vec<(i64, i16)> {
        self.fake
            .history()
            .into_iter()
            .filter_map(|r| match r.body {
                FakeBody::InitProducerId(i) => Some((i.producer_id, i.producer_epoch)),
                _ => None,
            })
            .collect()
    }

    /// The transaction timeout of every InitProducerId request.
    fn timeouts(&self) -> Vec<i32> {
        self.fake
            .history()
            .into_iter()
            .filter_map(|r| match r.body {
                FakeBody::InitProducerId(i) => Some(i.transaction_timeout_ms),
                _ => None,
            })
            .collect()
    }

    /// The committed flag of every EndTxn request.
    fn end_requests(&self) -> Vec<bool> {
        self.fake
            .history()
            .into_iter()
            .filter_map(|r| match r.body {
                FakeBody::EndTxn(e) => Some(e.committed),
                _ => None,
            })
            .collect()
    }

    /// Every TxnOffsetCommit request.
    fn offset_requests(&self) -> Vec<OffsetRequest> {
        self.fake
            .history()
            .into_iter()
            .filter_map(|r| match r.body {
                FakeBody::TxnOffsetCommit(c) => Some(OffsetRequest {
                    group: c.group_id,
                    generation: c.generation_id_or_member_epoch,
                    member: c.member_id,
                    offsets: c
                        .topics
                        .into_iter()
                        .flat_map(|t| {
                            let name = t.name;
                            t.partitions
                                .into_iter()
                                .map(move |p| (name.clone(), p.partition_index, p.committed_offset))
                        })
                        .collect(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The producer id and epoch the coordinator holds for `id`.
    fn producer(&self, id: &str) -> ProducerIdAndEpoch {
        let (id, epoch) = self
            .fake
            .transactional_producer(id)
            .expect("the coordinator knows the transactional id");
        ProducerIdAndEpoch { id, epoch }
    }

    /// Makes a member of `group` (coordinated by broker 2) as a consumer
    /// does, with JoinGroup and SyncGroup, and returns its membership.
    async fn join_group(&self, group: &str) -> ConsumerGroupMetadata {
        self.fake
            .place_coordinator(group, GROUP_COORDINATOR)
            .expect("broker 2 exists");
        let mut config = self.client_config("joiner");
        config.producer.transactional_id = None;
        let client = Client::connect(config).await.expect("client connects");
        let broker = client.broker(GROUP_COORDINATOR).expect("broker 2 is known");
        let conn = client
            .connection(&broker, TrafficClass::Group)
            .await
            .expect("connects to broker 2");
        let mut join = JoinGroupRequest {
            group_id: group.to_string(),
            session_timeout_ms: 60_000,
            rebalance_timeout_ms: 60_000,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut joined = conn.send(&join).await.expect("JoinGroup");
        if ErrorCode(joined.error_code) == ErrorCode::MEMBER_ID_REQUIRED {
            join.member_id = joined.member_id.clone();
            joined = conn.send(&join).await.expect("JoinGroup");
        }
        assert_eq!(ErrorCode(joined.error_code), ErrorCode::NONE);
        let synced = conn
            .send(&SyncGroupRequest {
                group_id: group.to_string(),
                generation_id: joined.generation_id,
                member_id: joined.member_id.clone(),
                protocol_type: Some("consumer".into()),
                protocol_name: joined.protocol_name.clone(),
                ..Default::default()
            })
            .await
            .expect("SyncGroup");
        assert_eq!(ErrorCode(synced.error_code), ErrorCode::NONE);
        client.close().await;
        ConsumerGroupMetadata {
            group_id: group.to_string(),
            generation_id: joined.generation_id,
            member_id: joined.member_id,
            group_instance_id: None,
        }
    }
}

async fn ready(cluster: &Cluster, id: &str) -> TransactionManager {
    let txn = cluster.manager(cluster.client_config(id)).await;
    txn.init_transactions().await.expect("init");
    txn
}

#[tokio::test(start_paused = true)]
async fn a_transaction_walks_the_state_machine() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = cluster.manager(cluster.client_config("tx-a")).await;
        assert_eq!(txn.state(), TransactionState::Uninitialized);
        assert_eq!(txn.producer_id_and_epoch(), None);
        let pid = txn.init_transactions().await.unwrap();
        // What the coordinator gave: a new transactional id starts at 0.
        assert_eq!(pid, cluster.producer("tx-a"));
        assert_eq!(pid.epoch, 0);
        assert_eq!(txn.producer_id_and_epoch(), Some(pid));
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.timeouts(), [30_000]);
        assert_eq!(cluster.requests(ApiKey::InitProducerId), [(1, 5)]);

        txn.begin_transaction().unwrap();
        assert_eq!(txn.state(), TransactionState::InTransaction);
        txn.add_partitions(&[("t", 0), ("u", 1), ("t", 0), ("t", 2)])
            .await
            .unwrap();
        assert!(txn.is_partition_added("t", 2));
        assert!(!txn.is_partition_added("t", 1));
        // Already added: no request.
        txn.add_partitions(&[("u", 1), ("t", 0)]).await.unwrap();
        txn.add_partitions(&[("t", 1), ("t", 0)]).await.unwrap();
        let want: Vec<Vec<(String, i32)>> = vec![
            vec![("t".into(), 0), ("t".into(), 2), ("u".into(), 1)],
            vec![("t".into(), 1)],
        ];
        assert_eq!(cluster.added(), want);
        // Clients use AddPartitionsToTxn v3 even where v4+ is offered.
        assert_eq!(
            cluster.requests(ApiKey::AddPartitionsToTxn),
            [(1, 3), (1, 3)]
        );

        txn.commit_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert!(!txn.is_partition_added("t", 0));
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.ended("t", 0), [true, false]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn add_partitions_uses_the_v4_shape_where_only_v4_is_offered() {
    bounded(async {
        let cluster = Cluster::start().await;
        cluster
            .fake
            .offer_versions(fake_api(ApiKey::AddPartitionsToTxn), 4, 5);
        let txn = ready(&cluster, "tx-v4").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 3), ("t", 4)]).await.unwrap();
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn), [(1, 5)]);
        assert_eq!(
            cluster.added(),
            [vec![("t".to_string(), 3), ("t".to_string(), 4)]]
        );
        assert!(txn.is_partition_added("t", 4));
        txn.commit_transaction().await.unwrap();
        // The coordinator took them: each has the commit marker.
        assert_eq!(cluster.ended("t", 3), [true]);
        assert_eq!(cluster.ended("t", 4), [true]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_empty_transaction_ends_without_a_request() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-empty").await;
        txn.begin_transaction().unwrap();
        txn.commit_transaction().await.unwrap();
        txn.begin_transaction().unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert!(cluster.requests(ApiKey::EndTxn).is_empty());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn not_coordinator_rediscovers_the_moved_coordinator() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-move").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        let lookups_before = cluster.lookups().len();
        // The coordinator moves to broker 2: broker 1 answers NOT_COORDINATOR.
        cluster.fake.place_coordinator("tx-move", 2).unwrap();
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.requests(ApiKey::EndTxn), [(1, 4), (2, 4)]);
        let lookups = cluster.lookups();
        assert_eq!(lookups.len(), lookups_before + 1);
        assert_eq!(lookups.last().unwrap(), &(1, "tx-move".to_string()));
        assert_eq!(cluster.ended("t", 0), [true]);

        // COORDINATOR_NOT_AVAILABLE also looks it up again.
        txn.begin_transaction().unwrap();
        cluster.push_errors(
            ApiKey::AddPartitionsToTxn,
            &[ErrorCode::COORDINATOR_NOT_AVAILABLE],
        );
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        assert_eq!(cluster.lookups().len(), lookups_before + 2);
        assert_eq!(txn.state(), TransactionState::InTransaction);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_transactions_and_loading_are_retried() {
    bounded(async {
        let cluster = Cluster::start().await;
        cluster.push_errors(
            ApiKey::InitProducerId,
            &[
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                ErrorCode::CONCURRENT_TRANSACTIONS,
            ],
        );
        let txn = ready(&cluster, "tx-busy").await;
        assert_eq!(cluster.requests(ApiKey::InitProducerId).len(), 3);
        txn.begin_transaction().unwrap();
        cluster.push_errors(
            ApiKey::AddPartitionsToTxn,
            &[
                ErrorCode::CONCURRENT_TRANSACTIONS,
                ErrorCode::CONCURRENT_TRANSACTIONS,
            ],
        );
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn).len(), 3);
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::CONCURRENT_TRANSACTIONS]);
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.requests(ApiKey::EndTxn).len(), 2);
        assert_eq!(cluster.ended("t", 0), [true]);
        // Retries stay on the coordinator: no new lookups.
        assert_eq!(cluster.lookups().len(), 1);
    })
    .await;
}

fn assert_fenced(err: &Error, code: ErrorCode) {
    assert_eq!(err.kind(), ErrorKind::Broker, "{err}");
    assert_eq!(err.kafka_code(), Some(code), "{err}");
    assert!(!err.is_retriable());
    let text = err.to_string();
    assert!(text.contains("fenced by another instance"), "{text}");
    assert!(text.contains("must be closed"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_second_instance_fences_the_first() {
    bounded(async {
        let cluster = Cluster::start().await;
        let first = ready(&cluster, "tx-fence").await;
        first.begin_transaction().unwrap();
        first.add_partitions(&[("t", 0)]).await.unwrap();
        let first_pid = first.producer_id_and_epoch().unwrap();
        let second = ready(&cluster, "tx-fence").await;
        let second_pid = second.producer_id_and_epoch().unwrap();
        assert_eq!(
            second_pid,
            ProducerIdAndEpoch {
                id: first_pid.id,
                epoch: first_pid.epoch + 1
            }
        );
        assert_eq!(second_pid, cluster.producer("tx-fence"));

        let err = first.add_partitions(&[("t", 1)]).await.unwrap_err();
        assert_fenced(&err, ErrorCode::PRODUCER_FENCED);
        assert_eq!(first.state(), TransactionState::FatalError);
        // Every later call returns the same error.
        let again = first.commit_transaction().await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
        assert_fenced(
            &first.abort_transaction().await.unwrap_err(),
            ErrorCode::PRODUCER_FENCED,
        );
        assert_fenced(
            &first.begin_transaction().unwrap_err(),
            ErrorCode::PRODUCER_FENCED,
        );
        // None of first's calls ended its transaction: the only marker is
        // the abort the coordinator wrote when the second instance fenced it.
        let markers: Vec<(i16, bool)> = cluster
            .fake
            .markers("t", 0)
            .iter()
            .map(|m| (m.producer_epoch, m.commit))
            .collect();
        assert_eq!(markers, [(second_pid.epoch, false)]);

        // INVALID_PRODUCER_EPOCH on EndTxn is fencing too.
        second.begin_transaction().unwrap();
        second.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::INVALID_PRODUCER_EPOCH]);
        let err = second.commit_transaction().await.unwrap_err();
        assert_fenced(&err, ErrorCode::INVALID_PRODUCER_EPOCH);
        assert_eq!(second.state(), TransactionState::FatalError);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn authorization_failure_on_init_is_fatal() {
    bounded(async {
        let cluster = Cluster::start().await;
        cluster.push_errors(
            ApiKey::InitProducerId,
            &[ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED],
        );
        let txn = cluster.manager(cluster.client_config("tx-auth")).await;
        let err = txn.init_transactions().await.unwrap_err();
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        );
        assert!(err.to_string().contains("not authorized"), "{err}");
        assert_eq!(txn.state(), TransactionState::FatalError);
        let again = txn.init_transactions().await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn invalid_txn_state_makes_the_transaction_abortable() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-abortable").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::INVALID_TXN_STATE]);
        let err = txn.commit_transaction().await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::INVALID_TXN_STATE));
        assert!(err.to_string().contains("call abort_transaction"), "{err}");
        assert_eq!(txn.state(), TransactionState::AbortableError);
        // Only abort helps.
        let again = txn.commit_transaction().await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
        let add = txn.add_partitions(&[("t", 1)]).await.unwrap_err();
        assert_eq!(add.to_string(), err.to_string());
        let begin = txn.begin_transaction().unwrap_err();
        assert_eq!(begin.kind(), ErrorKind::State);
        assert!(begin.to_string().contains("ABORTABLE_ERROR"), "{begin}");
        txn.abort_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.ended("t", 0), [false]);
        txn.begin_transaction().unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_makes_the_transaction_abortable_or_fatal() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-batch").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.fail_transaction(&Error::Disconnected {
            broker: "b:1".into(),
            reason: "gone".into(),
        });
        assert_eq!(txn.state(), TransactionState::AbortableError);
        let err = txn.commit_transaction().await.unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        assert_eq!(err.kafka_code(), Some(ErrorCode::TRANSACTION_ABORTABLE));
        assert_eq!(txn.check_send().unwrap_err().to_string(), err.to_string());
        assert!(err.to_string().contains("call abort_transaction"), "{err}");
        txn.abort_transaction().await.unwrap();

        txn.begin_transaction().unwrap();
        txn.fail_transaction(&Error::Broker {
            api: ApiKey::Produce,
            code: ErrorCode::PRODUCER_FENCED,
            context: None,
        });
        assert_eq!(txn.state(), TransactionState::FatalError);
        assert_fenced(
            &txn.commit_transaction().await.unwrap_err(),
            ErrorCode::PRODUCER_FENCED,
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn calls_in_the_wrong_state_name_the_state() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = cluster.manager(cluster.client_config("tx-order")).await;
        let state_error = |e: Error, state: &str| {
            assert_eq!(e.kind(), ErrorKind::State, "{e}");
            assert!(e.to_string().contains(state), "{e}");
        };
        state_error(txn.begin_transaction().unwrap_err(), "UNINITIALIZED");
        state_error(txn.check_send().unwrap_err(), "UNINITIALIZED");
        state_error(txn.commit_transaction().await.unwrap_err(), "UNINITIALIZED");
        state_error(
            txn.add_partitions(&[("t", 0)]).await.unwrap_err(),
            "UNINITIALIZED",
        );
        txn.init_transactions().await.unwrap();
        state_error(txn.init_transactions().await.unwrap_err(), "READY");
        state_error(txn.commit_transaction().await.unwrap_err(), "READY");
        state_error(txn.abort_transaction().await.unwrap_err(), "READY");
        state_error(txn.check_send().unwrap_err(), "READY");
        let group = ConsumerGroupMetadata::new("g");
        state_error(
            txn.send_offsets_to_transaction(&[("t", 0, 1, None)], &group)
                .await
                .unwrap_err(),
            "READY",
        );
        txn.begin_transaction().unwrap();
        txn.check_send().unwrap();
        state_error(txn.begin_transaction().unwrap_err(), "IN_TRANSACTION");
        assert!(cluster.requests(ApiKey::EndTxn).is_empty());

        let mut config = cluster.client_config("x");
        config.producer.transactional_id = None;
        let client = Client::connect(config).await.unwrap();
        let err = TransactionManager::new(client).unwrap_err();
        assert_eq!(err.config_key(), Some("transactional.id"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn offsets_go_to_the_group_coordinator() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-offsets").await;
        txn.begin_transaction().unwrap();
        // A member of g1, as its consumer would hand it over: the
        // coordinator checks the generation and member id.
        let group = cluster.join_group("g1").await;
        assert!(group.generation_id > 0 && !group.member_id.is_empty());
        // The group coordinator (broker 2) first says it is loading.
        cluster.push_errors(
            ApiKey::TxnOffsetCommit,
            &[ErrorCode::COORDINATOR_LOAD_IN_PROGRESS],
        );
        txn.send_offsets_to_transaction(
            &[("in", 0, 10, Some("meta")), ("in", 1, 20, None)],
            &group,
        )
        .await
        .unwrap();
        assert_eq!(cluster.requests(ApiKey::AddOffsetsToTxn), [(1, 4)]);
        assert_eq!(cluster.requests(ApiKey::TxnOffsetCommit), [(2, 4), (2, 4)]);
        let sent = OffsetRequest {
            group: "g1".to_string(),
            generation: group.generation_id,
            member: group.member_id.clone(),
            offsets: vec![("in".to_string(), 0, 10), ("in".to_string(), 1, 20)],
        };
        // The refused request and its retry: the same offsets and member.
        assert_eq!(cluster.offset_requests(), [sent.clone(), sent]);
        assert!(cluster.lookups().contains(&(0, "g1".to_string())));
        // Pending in the transaction until it commits.
        assert_eq!(cluster.fake.committed("g1", "in", 0), None);
        // Offsets alone start the transaction: commit sends EndTxn.
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.end_requests(), [true]);
        assert_eq!(cluster.fake.committed("g1", "in", 0), Some(10));
        assert_eq!(cluster.fake.committed("g1", "in", 1), Some(20));

        // A rebalance (ILLEGAL_GENERATION) makes the transaction abortable.
        txn.begin_transaction().unwrap();
        cluster.push_errors(ApiKey::TxnOffsetCommit, &[ErrorCode::ILLEGAL_GENERATION]);
        let err = txn
            .send_offsets_to_transaction(&[("in", 0, 11, None)], &group)
            .await
            .unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::ILLEGAL_GENERATION));
        assert!(err.to_string().contains("rebalance"), "{err}");
        assert_eq!(txn.state(), TransactionState::AbortableError);
        txn.abort_transaction().await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_commit_that_times_out_can_be_resumed() {
    bounded(async {
        let cluster = Cluster::start().await;
        let mut config = cluster.client_config("tx-slow");
        config.producer.max_block = Duration::from_millis(300);
        let txn = cluster.manager(config).await;
        txn.init_transactions().await.unwrap();
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::CONCURRENT_TRANSACTIONS; 1000]);
        let started = tokio::time::Instant::now();
        let err = txn.commit_transaction().await.unwrap_err();
        // On the paused clock: retried until max.block.ms, to the
        // millisecond.
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("EndTxn"), "{err}");
        assert!(err.to_string().contains("CONCURRENT_TRANSACTIONS"), "{err}");
        assert_eq!(txn.state(), TransactionState::Committing);
        state_is_kept_for_abort(&txn).await;
        cluster.fake.clear_faults();
        txn.commit_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.ended("t", 0), [true]);
    })
    .await;
}

/// A retry whose backoff ends at or past max.block.ms is not started: it
/// would put a request on the wire and give up on it at once, and that
/// request could still land after the caller moved on (a commit resumed
/// later would then be the second). The backoff (0.1 ms) ends within the
/// 0.5 ms, but the clock's timers round it up to 1 ms.
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_after_max_block() {
    bounded(async {
        let cluster = Cluster::start().await;
        let mut config = cluster.client_config("tx-deadline");
        config.producer.max_block = Duration::from_micros(500);
        config.producer.retry_backoff = Duration::from_micros(100);
        let txn = cluster.manager(config).await;
        txn.init_transactions().await.unwrap();
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        cluster.push_errors(ApiKey::EndTxn, &[ErrorCode::CONCURRENT_TRANSACTIONS; 1000]);
        let err = txn.commit_transaction().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        // Anything still on its way has arrived 10 ms later.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            cluster.requests(ApiKey::EndTxn).len(),
            1,
            "EndTxn requests sent"
        );
    })
    .await;
}

/// A commit under way cannot turn into an abort.
async fn state_is_kept_for_abort(txn: &TransactionManager) {
    let err = txn.abort_transaction().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("COMMITTING_TRANSACTION"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_abort_after_a_failed_batch_bumps_the_epoch() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-bump").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.fail_transaction(&Error::Broker {
            api: ApiKey::Produce,
            code: ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            context: None,
        });
        assert_eq!(txn.state(), TransactionState::AbortableError);
        let first = txn.producer_id_and_epoch().unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.ended("t", 0), [false]);
        // EndTxn, then InitProducerId with the current id and epoch.
        assert_eq!(cluster.inits(), [(-1, -1), (first.id, first.epoch)]);
        let bumped = ProducerIdAndEpoch {
            id: first.id,
            epoch: first.epoch + 1,
        };
        assert_eq!(txn.producer_id_and_epoch(), Some(bumped));
        assert_eq!(cluster.producer("tx-bump"), bumped);
        assert_eq!(txn.state(), TransactionState::Ready);
        // The next transaction uses the new epoch (the coordinator fences
        // the old one).
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.ended("t", 0), [false, true]);

        // UNKNOWN_PRODUCER_ID from the coordinator also bumps after abort,
        // even when nothing reached the coordinator.
        txn.begin_transaction().unwrap();
        cluster.push_errors(
            ApiKey::AddPartitionsToTxn,
            &[ErrorCode::UNKNOWN_PRODUCER_ID],
        );
        let err = txn.add_partitions(&[("t", 1)]).await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ErrorCode::UNKNOWN_PRODUCER_ID));
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.inits().last(), Some(&(bumped.id, bumped.epoch)));
        assert_eq!(txn.producer_id_and_epoch().unwrap().epoch, bumped.epoch + 1);
        // A plain abort does not bump.
        txn.begin_transaction().unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.inits().len(), 3);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn only_failed_offsets_are_sent_again() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-offsets-retry").await;
        txn.begin_transaction().unwrap();
        cluster
            .fake
            .place_coordinator("g2", GROUP_COORDINATOR)
            .unwrap();
        cluster
            .fake
            .inject_partition_error(
                fake_api(ApiKey::TxnOffsetCommit),
                None,
                "in",
                1,
                fake_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                1,
            )
            .unwrap();
        let group = ConsumerGroupMetadata::new("g2");
        txn.send_offsets_to_transaction(&[("in", 0, 5, None), ("in", 1, 6, None)], &group)
            .await
            .unwrap();
        let want: Vec<Vec<(String, i32, i64)>> = vec![
            vec![("in".into(), 0, 5), ("in".into(), 1, 6)],
            vec![("in".into(), 1, 6)],
        ];
        let asked: Vec<Vec<(String, i32, i64)>> = cluster
            .offset_requests()
            .into_iter()
            .map(|r| r.offsets)
            .collect();
        assert_eq!(asked, want);
        // Both offsets were taken: they are the group's once it commits.
        txn.commit_transaction().await.unwrap();
        let committed: Vec<Option<i64>> = (0..2)
            .map(|p| cluster.fake.committed("g2", "in", p))
            .collect();
        assert_eq!(committed, [Some(5), Some(6)]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_init_that_timed_out_can_be_repeated() {
    bounded(async {
        let cluster = Cluster::start().await;
        let mut config = cluster.client_config("tx-slow-init");
        config.producer.max_block = Duration::from_millis(200);
        let txn = cluster.manager(config).await;
        cluster.push_errors(
            ApiKey::InitProducerId,
            &[ErrorCode::COORDINATOR_LOAD_IN_PROGRESS; 1000],
        );
        let started = tokio::time::Instant::now();
        let err = txn.init_transactions().await.unwrap_err();
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(200),
            "max.block.ms"
        );
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            err.to_string().contains("COORDINATOR_LOAD_IN_PROGRESS"),
            "{err}"
        );
        assert_eq!(txn.state(), TransactionState::Initializing);
        cluster.fake.clear_faults();
        let pid = txn.init_transactions().await.unwrap();
        assert_eq!(pid, cluster.producer("tx-slow-init"));
        assert_eq!(txn.state(), TransactionState::Ready);
    })
    .await;
}

/// Waits on the paused clock until the group coordinator has a
/// TxnOffsetCommit (whose answer it holds).
async fn offsets_held(cluster: &Cluster) {
    while cluster.requests(ApiKey::TxnOffsetCommit).is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_sender_goes_on_while_the_manager_is_busy() {
    use crate::producer::{AsyncProducer, ProducerRecord};
    bounded(async {
        let cluster = Cluster::start().await;
        let mut config = cluster.client_config("tx-busy");
        config.producer.linger = Duration::ZERO;
        let client = Client::connect(config).await.expect("client connects");
        let producer = AsyncProducer::new(client).await.expect("producer");
        producer.init_transactions().await.unwrap();
        producer.begin_transaction().unwrap();
        // t/0 joins the transaction with its first record.
        let record = |p: i32, v: &'static str| ProducerRecord::new("t", v).with_partition(p);
        producer.send(record(0, "a")).await.unwrap().await.unwrap();
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn).len(), 1);
        // The group coordinator holds its answer: sending the offsets keeps
        // the transaction manager busy (as a slow coordinator would, for up
        // to max.block.ms).
        let group = cluster.join_group("g-busy").await;
        cluster.fake.hold(fake_api(ApiKey::TxnOffsetCommit));
        let offsets = {
            let producer = producer.clone();
            tokio::spawn(async move {
                producer
                    .send_offsets_to_transaction(&[("in", 0, 5, None)], &group)
                    .await
            })
        };
        offsets_held(&cluster).await;
        // Meanwhile a record to a partition new to the transaction (on the
        // same broker as t/0, whose connection is open) waits for it to
        // join, which waits for the manager; a record to t/0, already in
        // the transaction, sent after it, goes out and is acknowledged.
        let leader = cluster.fake.leader("t", 0);
        let new = (1..5)
            .find(|&p| cluster.fake.leader("t", p) == leader)
            .expect("the fake puts more than one partition of t on a broker");
        let mut to_new = producer.send(record(new, "c")).await.unwrap();
        let to_joined = producer.send(record(0, "b")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), to_joined)
            .await
            .expect("acknowledged while the manager is busy")
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut to_new)
                .await
                .is_err(),
            "the new partition is not written before it joined the transaction"
        );
        assert!(cluster.fake.records("t", new).is_empty());
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn).len(), 1);
        // The manager is free again: the partition joins, its record goes
        // out.
        cluster.fake.release(fake_api(ApiKey::TxnOffsetCommit));
        offsets.await.unwrap().unwrap();
        to_new.await.unwrap();
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn).len(), 2);
        producer.commit_transaction().await.unwrap();
        assert_eq!(cluster.fake.records("t", 0).len(), 2);
        assert_eq!(cluster.fake.records("t", new).len(), 1);
        assert_eq!(cluster.fake.committed("g-busy", "in", 0), Some(5));
        producer.close().await.unwrap();
    })
    .await;
}
