//! The fake cluster for the TransactionManager tests: two in-process
//! brokers that play transaction and group coordinator from a script and
//! record what they were asked.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::super::*;
use crate::config::Config;
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

pub(super) const PRODUCER_ID: i64 = 4000;

/// What the fake cluster does and what it saw.
#[derive(Default)]
pub(super) struct Script {
    /// Node ids of the coordinators (1 or 2).
    pub(super) txn_coordinator: i32,
    pub(super) group_coordinator: i32,
    /// Error codes to answer with next, per API, before acting normally.
    pub(super) errors: HashMap<ApiKey, VecDeque<ErrorCode>>,
    /// The producer epoch the coordinator considers current.
    pub(super) epoch: i16,
    /// The AddPartitionsToTxn versions advertised.
    pub(super) add_partitions_versions: Option<(i16, i16)>,
    /// Every transactional request: (api, node, version).
    pub(super) requests: Vec<(ApiKey, i32, i16)>,
    /// FindCoordinator lookups (key type, key).
    pub(super) lookups: Vec<(i8, String)>,
    /// AddPartitionsToTxn requests, as (topic, partition) lists.
    pub(super) added: Vec<Vec<(String, i32)>>,
    /// EndTxn `committed` flags.
    pub(super) ended: Vec<bool>,
    /// TxnOffsetCommit entries: (group, generation, member, topic, partition, offset).
    pub(super) offsets: Vec<(String, i32, String, String, i32, i64)>,
    /// InitProducerId transaction timeouts.
    pub(super) timeouts: Vec<i32>,
    /// InitProducerId (producer id, epoch) sent.
    pub(super) inits: Vec<(i64, i16)>,
    /// TxnOffsetCommit errors for single partitions, answered next.
    pub(super) offset_errors: HashMap<(String, i32), VecDeque<ErrorCode>>,
    /// The partitions of every TxnOffsetCommit request.
    pub(super) offset_requests: Vec<Vec<(String, i32)>>,
}

#[derive(Clone)]
pub(super) struct Cluster {
    pub(super) ports: [i32; 2],
    pub(super) script: Arc<Mutex<Script>>,
}

impl Cluster {
    pub(super) async fn start() -> Cluster {
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
                while let Ok(stream) = crate::test_support::accept(&listener).await {
                    tokio::spawn(c.clone().serve(node, stream));
                }
            });
        }
        cluster
    }

    pub(super) fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    pub(super) fn push_errors(&self, api: ApiKey, codes: &[ErrorCode]) {
        self.script()
            .errors
            .entry(api)
            .or_default()
            .extend(codes.iter().copied());
    }

    pub(super) fn requests(&self, api: ApiKey) -> Vec<(i32, i16)> {
        self.script()
            .requests
            .iter()
            .filter(|r| r.0 == api)
            .map(|r| (r.1, r.2))
            .collect()
    }

    pub(super) fn client_config(&self, id: &str) -> Config {
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

    pub(super) async fn manager(&self, config: Config) -> TransactionManager {
        let client = Client::connect(config).await.expect("client connects");
        TransactionManager::new(client).expect("manager")
    }

    /// The scripted error for `api`, or the coordinator/epoch checks.
    pub(super) fn answer_code(
        &self,
        api: ApiKey,
        node: i32,
        version: i16,
        epoch: Option<i16>,
    ) -> ErrorCode {
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

    pub(super) async fn serve(self, node: i32, mut stream: TcpStream) {
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
                                    req.generation_id_or_member_epoch,
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
