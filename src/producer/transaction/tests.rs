//! TransactionManager tests against a scripted in-process cluster of two
//! fake brokers that play transaction and group coordinator.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::config::Config;
use crate::error::ErrorKind;
use crate::protocol::frame::{decode_request, encode_response, split_frame};
use crate::protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::metadata_response::MetadataResponseBroker;
use crate::protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use crate::protocol::messages::*;

const PRODUCER_ID: i64 = 4000;

/// What the fake cluster does and what it saw.
#[derive(Default)]
struct Script {
    /// Node ids of the coordinators (1 or 2).
    txn_coordinator: i32,
    group_coordinator: i32,
    /// Error codes to answer with next, per API, before acting normally.
    errors: HashMap<ApiKey, VecDeque<ErrorCode>>,
    /// The producer epoch the coordinator considers current.
    epoch: i16,
    /// The AddPartitionsToTxn versions advertised.
    add_partitions_versions: Option<(i16, i16)>,
    /// Every transactional request: (api, node, version).
    requests: Vec<(ApiKey, i32, i16)>,
    /// FindCoordinator lookups (key type, key).
    lookups: Vec<(i8, String)>,
    /// AddPartitionsToTxn requests, as (topic, partition) lists.
    added: Vec<Vec<(String, i32)>>,
    /// EndTxn `committed` flags.
    ended: Vec<bool>,
    /// TxnOffsetCommit entries: (group, generation, member, topic, partition, offset).
    offsets: Vec<(String, i32, String, String, i32, i64)>,
    /// InitProducerId transaction timeouts.
    timeouts: Vec<i32>,
    /// InitProducerId (producer id, epoch) sent.
    inits: Vec<(i64, i16)>,
    /// TxnOffsetCommit errors for single partitions, answered next.
    offset_errors: HashMap<(String, i32), VecDeque<ErrorCode>>,
    /// The partitions of every TxnOffsetCommit request.
    offset_requests: Vec<Vec<(String, i32)>>,
}

#[derive(Clone)]
struct Cluster {
    ports: [i32; 2],
    script: Arc<Mutex<Script>>,
}

impl Cluster {
    async fn start() -> Cluster {
        let a = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let b = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = |l: &TcpListener| i32::from(l.local_addr().expect("addr").port());
        let cluster = Cluster {
            ports: [port(&a), port(&b)],
            script: Arc::new(Mutex::new(Script {
                txn_coordinator: 1,
                group_coordinator: 2,
                ..Default::default()
            })),
        };
        for (node, listener) in [(1, a), (2, b)] {
            let c = cluster.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(c.clone().serve(node, stream));
                }
            });
        }
        cluster
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    fn push_errors(&self, api: ApiKey, codes: &[ErrorCode]) {
        self.script()
            .errors
            .entry(api)
            .or_default()
            .extend(codes.iter().copied());
    }

    fn requests(&self, api: ApiKey) -> Vec<(i32, i16)> {
        self.script()
            .requests
            .iter()
            .filter(|r| r.0 == api)
            .map(|r| (r.1, r.2))
            .collect()
    }

    fn client_config(&self, id: &str) -> Config {
        let mut c = Config::default();
        c.net.bootstrap_servers = vec![format!("127.0.0.1:{}", self.ports[0])];
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

    /// The scripted error for `api`, or the coordinator/epoch checks.
    fn answer_code(&self, api: ApiKey, node: i32, version: i16, epoch: Option<i16>) -> ErrorCode {
        let mut s = self.script();
        s.requests.push((api, node, version));
        if let Some(code) = s.errors.get_mut(&api).and_then(VecDeque::pop_front) {
            return code;
        }
        let coordinator = if api == ApiKey::TxnOffsetCommit {
            s.group_coordinator
        } else {
            s.txn_coordinator
        };
        if node != coordinator {
            return ErrorCode::NOT_COORDINATOR;
        }
        match epoch {
            Some(e) if e != s.epoch => ErrorCode::PRODUCER_FENCED,
            _ => ErrorCode::NONE,
        }
    }

    async fn serve(self, node: i32, mut stream: TcpStream) {
        let mut buf = BytesMut::new();
        loop {
            let frame = match split_frame(&mut buf, 1 << 24) {
                Ok(Some(f)) => f,
                Ok(None) => match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                },
                Err(_) => return,
            };
            let Ok((h, body)) = decode_request(frame.freeze()) else {
                return;
            };
            let (v, id) = (h.request_api_version, h.correlation_id);
            let mut out = BytesMut::new();
            let r = match body {
                RequestBody::ApiVersions(_) => {
                    let range = self.script().add_partitions_versions;
                    let resp = ApiVersionsResponse {
                        api_keys: ApiKey::ALL
                            .iter()
                            .map(|k| {
                                let (min, max) = match (k, range) {
                                    (ApiKey::AddPartitionsToTxn, Some(r)) => r,
                                    _ => (0, k.versions().1),
                                };
                                ApiVersion {
                                    api_key: k.code(),
                                    min_version: min,
                                    max_version: max,
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::ApiVersions, id, &resp, v)
                }
                RequestBody::Metadata(_) => {
                    let resp = MetadataResponse {
                        brokers: (1..=2)
                            .map(|n| MetadataResponseBroker {
                                node_id: n,
                                host: "127.0.0.1".into(),
                                port: self.ports[n as usize - 1],
                                ..Default::default()
                            })
                            .collect(),
                        controller_id: 1,
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::Metadata, id, &resp, v)
                }
                RequestBody::FindCoordinator(req) => {
                    let (key_type, key) = if v >= 4 {
                        (req.key_type, req.coordinator_keys.first().cloned())
                    } else {
                        (req.key_type, Some(req.key.clone()))
                    };
                    let key = key.unwrap_or_default();
                    let node_id = {
                        let mut s = self.script();
                        s.lookups.push((key_type, key.clone()));
                        if key_type == 1 {
                            s.txn_coordinator
                        } else {
                            s.group_coordinator
                        }
                    };
                    let port = self.ports[node_id as usize - 1];
                    let resp = if v >= 4 {
                        FindCoordinatorResponse {
                            coordinators: vec![Coordinator {
                                key,
                                node_id,
                                host: "127.0.0.1".into(),
                                port,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }
                    } else {
                        FindCoordinatorResponse {
                            node_id,
                            host: "127.0.0.1".into(),
                            port,
                            ..Default::default()
                        }
                    };
                    encode_response(&mut out, ApiKey::FindCoordinator, id, &resp, v)
                }
                RequestBody::InitProducerId(req) => {
                    let code = self.answer_code(ApiKey::InitProducerId, node, v, None);
                    let mut s = self.script();
                    s.timeouts.push(req.transaction_timeout_ms);
                    s.inits.push((req.producer_id, req.producer_epoch));
                    if code.is_ok() {
                        s.epoch += 1;
                    }
                    let resp = InitProducerIdResponse {
                        error_code: code.code(),
                        producer_id: if code.is_ok() { PRODUCER_ID } else { -1 },
                        producer_epoch: if code.is_ok() { s.epoch } else { -1 },
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::InitProducerId, id, &resp, v)
                }
                RequestBody::AddPartitionsToTxn(req) => {
                    let (epoch, topics) = if v >= 4 {
                        let t = req.transactions.first().cloned().unwrap_or_default();
                        (t.producer_epoch, t.topics)
                    } else {
                        (req.v3_and_below_producer_epoch, req.v3_and_below_topics)
                    };
                    let code = self.answer_code(ApiKey::AddPartitionsToTxn, node, v, Some(epoch));
                    let list: Vec<(String, i32)> = topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), *p)))
                        .collect();
                    self.script().added.push(list);
                    let results: Vec<AddPartitionsToTxnTopicResult> = topics
                        .iter()
                        .map(|t| AddPartitionsToTxnTopicResult {
                            name: t.name.clone(),
                            results_by_partition: t
                                .partitions
                                .iter()
                                .map(|p| AddPartitionsToTxnPartitionResult {
                                    partition_index: *p,
                                    partition_error_code: code.code(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect();
                    let resp = if v >= 4 {
                        AddPartitionsToTxnResponse {
                            results_by_transaction: vec![AddPartitionsToTxnResult {
                                transactional_id: req
                                    .transactions
                                    .first()
                                    .map(|t| t.transactional_id.clone())
                                    .unwrap_or_default(),
                                topic_results: results,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }
                    } else {
                        AddPartitionsToTxnResponse {
                            results_by_topic_v3_and_below: results,
                            ..Default::default()
                        }
                    };
                    encode_response(&mut out, ApiKey::AddPartitionsToTxn, id, &resp, v)
                }
                RequestBody::AddOffsetsToTxn(req) => {
                    let code = self.answer_code(
                        ApiKey::AddOffsetsToTxn,
                        node,
                        v,
                        Some(req.producer_epoch),
                    );
                    let resp = AddOffsetsToTxnResponse {
                        error_code: code.code(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::AddOffsetsToTxn, id, &resp, v)
                }
                RequestBody::TxnOffsetCommit(req) => {
                    let code = self.answer_code(
                        ApiKey::TxnOffsetCommit,
                        node,
                        v,
                        Some(req.producer_epoch),
                    );
                    let mut codes = HashMap::new();
                    if code.is_ok() {
                        let mut s = self.script();
                        let asked = req
                            .topics
                            .iter()
                            .flat_map(|t| {
                                t.partitions
                                    .iter()
                                    .map(|p| (t.name.clone(), p.partition_index))
                            })
                            .collect();
                        s.offset_requests.push(asked);
                        for t in &req.topics {
                            for p in &t.partitions {
                                let key = (t.name.clone(), p.partition_index);
                                if let Some(c) =
                                    s.offset_errors.get_mut(&key).and_then(VecDeque::pop_front)
                                {
                                    codes.insert(key, c);
                                    continue;
                                }
                                s.offsets.push((
                                    req.group_id.clone(),
                                    req.generation_id,
                                    req.member_id.clone(),
                                    t.name.clone(),
                                    p.partition_index,
                                    p.committed_offset,
                                ));
                            }
                        }
                    }
                    let resp = TxnOffsetCommitResponse {
                        topics: req
                            .topics
                            .iter()
                            .map(|t| TxnOffsetCommitResponseTopic {
                                name: t.name.clone(),
                                partitions: t
                                    .partitions
                                    .iter()
                                    .map(|p| TxnOffsetCommitResponsePartition {
                                        partition_index: p.partition_index,
                                        error_code: codes
                                            .get(&(t.name.clone(), p.partition_index))
                                            .unwrap_or(&code)
                                            .code(),
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::TxnOffsetCommit, id, &resp, v)
                }
                RequestBody::EndTxn(req) => {
                    let code = self.answer_code(ApiKey::EndTxn, node, v, Some(req.producer_epoch));
                    if code.is_ok() {
                        self.script().ended.push(req.committed);
                    }
                    let resp = EndTxnResponse {
                        error_code: code.code(),
                        ..Default::default()
                    };
                    encode_response(&mut out, ApiKey::EndTxn, id, &resp, v)
                }
                other => panic!("the fake cluster does not handle {:?}", other.api_key()),
            };
            r.expect("fake encodes");
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test finished in time")
}

async fn ready(cluster: &Cluster, id: &str) -> TransactionManager {
    let txn = cluster.manager(cluster.client_config(id)).await;
    txn.init_transactions().await.expect("init");
    txn
}

#[tokio::test]
async fn a_transaction_walks_the_state_machine() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = cluster.manager(cluster.client_config("tx-a")).await;
        assert_eq!(txn.state(), TransactionState::Uninitialized);
        assert_eq!(txn.producer_id_and_epoch(), None);
        let pid = txn.init_transactions().await.unwrap();
        assert_eq!(
            pid,
            ProducerIdAndEpoch {
                id: PRODUCER_ID,
                epoch: 1
            }
        );
        assert_eq!(txn.producer_id_and_epoch(), Some(pid));
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.script().timeouts, [30_000]);
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
        assert_eq!(cluster.script().added, want);
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
        assert_eq!(cluster.script().ended, [true, false]);
    })
    .await;
}

#[tokio::test]
async fn add_partitions_uses_the_v4_shape_where_only_v4_is_offered() {
    bounded(async {
        let cluster = Cluster::start().await;
        cluster.script().add_partitions_versions = Some((4, 5));
        let txn = ready(&cluster, "tx-v4").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 3), ("t", 4)]).await.unwrap();
        assert_eq!(cluster.requests(ApiKey::AddPartitionsToTxn), [(1, 5)]);
        assert_eq!(
            cluster.script().added,
            [vec![("t".to_string(), 3), ("t".to_string(), 4)]]
        );
        assert!(txn.is_partition_added("t", 4));
        txn.commit_transaction().await.unwrap();
    })
    .await;
}

#[tokio::test]
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

#[tokio::test]
async fn not_coordinator_rediscovers_the_moved_coordinator() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-move").await;
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        let lookups_before = cluster.script().lookups.len();
        // The coordinator moves to broker 2: broker 1 answers NOT_COORDINATOR.
        cluster.script().txn_coordinator = 2;
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.requests(ApiKey::EndTxn), [(1, 4), (2, 4)]);
        let lookups = cluster.script().lookups.clone();
        assert_eq!(lookups.len(), lookups_before + 1);
        assert_eq!(lookups.last().unwrap(), &(1, "tx-move".to_string()));
        assert_eq!(cluster.script().ended, [true]);

        // COORDINATOR_NOT_AVAILABLE also looks it up again.
        txn.begin_transaction().unwrap();
        cluster.push_errors(
            ApiKey::AddPartitionsToTxn,
            &[ErrorCode::COORDINATOR_NOT_AVAILABLE],
        );
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        assert_eq!(cluster.script().lookups.len(), lookups_before + 2);
        assert_eq!(txn.state(), TransactionState::InTransaction);
    })
    .await;
}

#[tokio::test]
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
        assert_eq!(cluster.script().ended, [true]);
        // Retries stay on the coordinator: no new lookups.
        assert_eq!(cluster.script().lookups.len(), 1);
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

#[tokio::test]
async fn a_second_instance_fences_the_first() {
    bounded(async {
        let cluster = Cluster::start().await;
        let first = ready(&cluster, "tx-fence").await;
        first.begin_transaction().unwrap();
        first.add_partitions(&[("t", 0)]).await.unwrap();
        let second = ready(&cluster, "tx-fence").await;
        assert_eq!(second.producer_id_and_epoch().unwrap().epoch, 2);

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
        assert!(cluster.script().ended.is_empty());

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

#[tokio::test]
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

#[tokio::test]
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
        assert_eq!(begin.kind(), ErrorKind::Config);
        assert!(begin.to_string().contains("ABORTABLE_ERROR"), "{begin}");
        txn.abort_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.script().ended, [false]);
        txn.begin_transaction().unwrap();
    })
    .await;
}

#[tokio::test]
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

#[tokio::test]
async fn calls_in_the_wrong_state_name_the_state() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = cluster.manager(cluster.client_config("tx-order")).await;
        let state_error = |e: Error, state: &str| {
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
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

#[tokio::test]
async fn offsets_go_to_the_group_coordinator() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-offsets").await;
        txn.begin_transaction().unwrap();
        let group = ConsumerGroupMetadata {
            group_id: "g1".into(),
            generation_id: 7,
            member_id: "m-1".into(),
            group_instance_id: None,
        };
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
        let want = vec![
            (
                "g1".to_string(),
                7,
                "m-1".to_string(),
                "in".to_string(),
                0,
                10,
            ),
            (
                "g1".to_string(),
                7,
                "m-1".to_string(),
                "in".to_string(),
                1,
                20,
            ),
        ];
        assert_eq!(cluster.script().offsets, want);
        assert!(cluster.script().lookups.contains(&(0, "g1".to_string())));
        // Offsets alone start the transaction: commit sends EndTxn.
        txn.commit_transaction().await.unwrap();
        assert_eq!(cluster.script().ended, [true]);

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

#[tokio::test]
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
        let err = txn.commit_transaction().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("EndTxn"), "{err}");
        assert!(err.to_string().contains("CONCURRENT_TRANSACTIONS"), "{err}");
        assert_eq!(txn.state(), TransactionState::Committing);
        state_is_kept_for_abort(&txn).await;
        cluster.script().errors.clear();
        txn.commit_transaction().await.unwrap();
        assert_eq!(txn.state(), TransactionState::Ready);
        assert_eq!(cluster.script().ended, [true]);
    })
    .await;
}

/// A commit under way cannot turn into an abort.
async fn state_is_kept_for_abort(txn: &TransactionManager) {
    let err = txn.abort_transaction().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("COMMITTING_TRANSACTION"), "{err}");
}

#[tokio::test]
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
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.script().ended, [false]);
        // EndTxn, then InitProducerId with the current id and epoch.
        assert_eq!(cluster.script().inits, [(-1, -1), (PRODUCER_ID, 1)]);
        assert_eq!(
            txn.producer_id_and_epoch(),
            Some(ProducerIdAndEpoch {
                id: PRODUCER_ID,
                epoch: 2
            })
        );
        assert_eq!(txn.state(), TransactionState::Ready);
        // The next transaction uses the new epoch (the fake fences epoch 1).
        txn.begin_transaction().unwrap();
        txn.add_partitions(&[("t", 0)]).await.unwrap();
        txn.commit_transaction().await.unwrap();

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
        assert_eq!(cluster.script().inits.last(), Some(&(PRODUCER_ID, 2)));
        assert_eq!(txn.producer_id_and_epoch().unwrap().epoch, 3);
        // A plain abort does not bump.
        txn.begin_transaction().unwrap();
        txn.abort_transaction().await.unwrap();
        assert_eq!(cluster.script().inits.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn only_failed_offsets_are_sent_again() {
    bounded(async {
        let cluster = Cluster::start().await;
        let txn = ready(&cluster, "tx-offsets-retry").await;
        txn.begin_transaction().unwrap();
        cluster.script().offset_errors.insert(
            ("in".into(), 1),
            [ErrorCode::UNKNOWN_TOPIC_OR_PARTITION].into(),
        );
        let group = ConsumerGroupMetadata::new("g2");
        txn.send_offsets_to_transaction(&[("in", 0, 5, None), ("in", 1, 6, None)], &group)
            .await
            .unwrap();
        let want: Vec<Vec<(String, i32)>> = vec![
            vec![("in".into(), 0), ("in".into(), 1)],
            vec![("in".into(), 1)],
        ];
        assert_eq!(cluster.script().offset_requests, want);
        let committed: Vec<(i32, i64)> = cluster
            .script()
            .offsets
            .iter()
            .map(|o| (o.4, o.5))
            .collect();
        assert_eq!(committed, [(0, 5), (1, 6)]);
    })
    .await;
}

#[tokio::test]
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
        let err = txn.init_transactions().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            err.to_string().contains("COORDINATOR_LOAD_IN_PROGRESS"),
            "{err}"
        );
        assert_eq!(txn.state(), TransactionState::Initializing);
        cluster.script().errors.clear();
        let pid = txn.init_transactions().await.unwrap();
        assert_eq!(pid.id, PRODUCER_ID);
        assert_eq!(txn.state(), TransactionState::Ready);
    })
    .await;
}
