//! Differential tests: the same scripted requests, valid and invalid,
//! against Apache Kafka 4.4.0 (the single node of `scripts/kafka`) and
//! against klamm-fake's one-broker cluster, and the client-visible outcome
//! of each (error names, offsets) must be the same. Where they differ on
//! purpose, `EXPECTED_DIFFERENCES` says so and why.
//!
//! Requests go over klamm's raw `Connection` at the version each side
//! negotiates, so the outcome compared is what a client sees, not bytes.
//!
//! Needs `KLAMM_TEST_BROKERS` (`scripts/test` starts the node); without it
//! the test fails unless `KLAMM_SKIP_BROKER_TESTS=1`.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use klamm::admin::{Admin, NewTopic};
use klamm::net::{Connection, ConnectionOptions};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::heartbeat_request::HeartbeatRequest;
use klamm::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use klamm::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use klamm::protocol::messages::metadata_request::MetadataRequestTopic;
use klamm::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use klamm::protocol::messages::*;
use klamm::protocol::records::{EncodeOptions, Record, RecordBatch};
use klamm::{Client, Config};
use klamm_fake::FakeCluster;

/// Scenarios whose outcomes differ on purpose, and why.
const EXPECTED_DIFFERENCES: &[(&str, &str)] = &[];

fn name(code: i16) -> String {
    ErrorCode::from(code).name().to_string()
}

/// A batch of `n` records of `size` bytes each, with idempotence fields
/// when `pid` is set.
fn batch(n: usize, size: usize, pid: Option<(i64, i16, i32)>) -> Bytes {
    let mut b = RecordBatch::new(0, 1_700_000_000_000);
    if let Some((id, epoch, seq)) = pid {
        b.producer_id = id;
        b.producer_epoch = epoch;
        b.base_sequence = seq;
    }
    for i in 0..n {
        b.records.push(
            Record::new(None, Some(Bytes::from(vec![b'x'; size]))).with_offset_delta(i as i32),
        );
    }
    Bytes::from(b.encode_to_vec(&EncodeOptions::default()).expect("batch"))
}

fn produce(topic: &str, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.to_string(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// "CODE" or "CODE@offset" of a one-partition Produce answer.
fn produced(r: &ProduceResponse) -> String {
    match r
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
    {
        Some(p) if p.error_code == 0 => format!("NONE@{}", p.base_offset),
        Some(p) => name(p.error_code),
        None => "no partition in the answer".into(),
    }
}

/// An OffsetCommit of `offset` for partition 0 of `topic` by `group`, from
/// outside any generation (as a tool commits); a member's commit sets the
/// member fields on it.
fn commit_one(group: &str, topic: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.to_string(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: topic.to_string(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The code of a one-partition OffsetCommit answer (`None` if it names no
/// partition).
fn commit_code(r: &OffsetCommitResponse) -> Option<i16> {
    r.topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.error_code)
}

/// The outcome of a one-partition OffsetCommit answer, by name.
fn committed(r: &OffsetCommitResponse) -> String {
    commit_code(r).map_or("no partition in the answer".into(), name)
}

/// Codes a client retries (after finding the coordinator again): a
/// coordinator still loading its state, or not yet known to be this node.
fn coordinator_not_ready(code: i16) -> bool {
    [
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_COORDINATOR,
    ]
    .iter()
    .any(|c| c.code() == code)
}

/// Sends `req` until its answer's `code` is not a coordinator still getting
/// ready, as a client does (a fresh node loads its offsets and transaction
/// logs on first use); at most 20 s.
async fn settled<R: Request>(
    conn: &Connection,
    coordinator: Option<(i8, &str)>,
    req: &R,
    code: impl Fn(&R::Response) -> i16,
) -> R::Response {
    let mut last = 0;
    for _ in 0..150 {
        // FindCoordinator first, as a client: it also makes the node
        // create the internal topic the coordinator lives on.
        if let Some((key_type, key)) = coordinator {
            let _ = conn
                .send(&FindCoordinatorRequest {
                    key_type,
                    coordinator_keys: vec![key.to_string()],
                    ..Default::default()
                })
                .await;
        }
        let r = conn.send(req).await.expect("request");
        last = code(&r);
        if !coordinator_not_ready(last) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!(
        "{}: the coordinator was not ready within 30 s (last {})",
        R::API_KEY.name(),
        name(last)
    );
}

/// Runs every scenario against the cluster at `addr`; `tag` makes the
/// topic and group names of this run its own.
async fn scenarios(addr: &str, tag: &str) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![addr.to_string()];
    let client = Client::connect(config).await.expect("client");
    let admin = Admin::new(client.clone());
    let topic = format!("diff-{tag}");
    let small = format!("diff-small-{tag}");
    let created = admin
        .create_topics(&[
            NewTopic::new(topic.as_str(), 1, 1),
            NewTopic::new(small.as_str(), 1, 1).with_config("max.message.bytes", "1000"),
        ])
        .await;
    for (t, r) in &created {
        r.as_ref().unwrap_or_else(|e| panic!("create {t}: {e}"));
    }
    // Wait until the leader serves the new topics.
    for t in [&topic, &small] {
        let mut led = false;
        for _ in 0..100 {
            led = client
                .refresh_metadata(Some(std::slice::from_ref(t)))
                .await
                .is_ok()
                && client.metadata().topics.get(t.as_str()).is_some_and(|m| {
                    !m.partitions.is_empty() && m.partitions.iter().all(|p| p.leader >= 0)
                });
            if led {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(led, "{t} has no leader after 10 s");
    }
    let conn = Connection::connect(addr, ConnectionOptions::default())
        .await
        .expect("connection");

    // Metadata and Produce.
    let r = conn
        .send(&MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(format!("diff-nope-{tag}")),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        })
        .await
        .expect("metadata");
    out.insert("metadata of an unknown topic", name(r.topics[0].error_code));
    let nope = format!("diff-nope-{tag}");
    let r = conn
        .send(&produce(&nope, -1, batch(1, 10, None)))
        .await
        .expect("produce");
    out.insert("produce to an unknown topic", produced(&r));
    let r = conn
        .send(&produce(&topic, 2, batch(1, 10, None)))
        .await
        .expect("produce");
    out.insert("produce with acks=2", produced(&r));
    let r = conn
        .send(&produce(&small, -1, batch(1, 3_000, None)))
        .await
        .expect("produce");
    out.insert("produce above max.message.bytes", produced(&r));
    let r = conn
        .send(&produce(&topic, -1, batch(3, 10, None)))
        .await
        .expect("produce");
    out.insert("produce three records", produced(&r));

    // Idempotence: a first batch, its retry, a gap, an older epoch.
    let pid = settled(
        &conn,
        None,
        &InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
        |r| r.error_code,
    )
    .await;
    out.insert("init producer id", name(pid.error_code));
    let (id, epoch) = (pid.producer_id, pid.producer_epoch);
    let first = batch(2, 10, Some((id, epoch, 0)));
    let r = conn
        .send(&produce(&topic, -1, first.clone()))
        .await
        .expect("produce");
    out.insert("idempotent first batch", produced(&r));
    let r = conn
        .send(&produce(&topic, -1, first))
        .await
        .expect("produce");
    out.insert("idempotent batch retried", produced(&r));
    let r = conn
        .send(&produce(&topic, -1, batch(1, 10, Some((id, epoch, 7)))))
        .await
        .expect("produce");
    out.insert("idempotent sequence gap", produced(&r));
    let r = conn
        .send(&produce(&topic, -1, batch(1, 10, Some((id, epoch, 2)))))
        .await
        .expect("produce");
    out.insert("idempotent next batch", produced(&r));

    // Reading: offsets and an out-of-range fetch.
    let lo = conn
        .send(&ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: topic.clone(),
                partitions: [-2i64, -1]
                    .iter()
                    .map(|&ts| ListOffsetsPartition {
                        partition_index: 0,
                        timestamp: ts,
                        current_leader_epoch: -1,
                        ..Default::default()
                    })
                    .take(1)
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("list offsets");
    let p = &lo.topics[0].partitions[0];
    out.insert(
        "earliest offset",
        format!("{}:{}", name(p.error_code), p.offset),
    );
    let fetch = |offset: i64| FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.clone(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let f = conn.send(&fetch(1_000)).await.expect("fetch");
    let p = &f.responses[0].partitions[0];
    out.insert("fetch past the end", name(p.error_code));
    let f = conn.send(&fetch(0)).await.expect("fetch");
    let p = &f.responses[0].partitions[0];
    out.insert(
        "fetch from 0",
        format!("{} hw {}", name(p.error_code), p.high_watermark),
    );

    // Groups, with no member in them.
    let group = format!("diff-group-{tag}");
    let r = settled(
        &conn,
        Some((0, &group)),
        &OffsetCommitRequest {
            generation_id_or_member_epoch: 3,
            member_id: "ghost".into(),
            ..commit_one(&group, &topic, 1)
        },
        |r| commit_code(r).unwrap_or(0),
    )
    .await;
    out.insert(
        "commit with a generation of a group that does not exist",
        committed(&r),
    );
    let r = settled(
        &conn,
        Some((0, &group)),
        &HeartbeatRequest {
            group_id: group.clone(),
            generation_id: 1,
            member_id: "ghost".into(),
            ..Default::default()
        },
        |r| r.error_code,
    )
    .await;
    out.insert("heartbeat of an unknown member", name(r.error_code));
    // A new member's JoinGroup with the given session timeout.
    let join = |session_timeout_ms: i32| JoinGroupRequest {
        group_id: group.clone(),
        session_timeout_ms,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::new(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = settled(&conn, Some((0, &group)), &join(10_000), |r| r.error_code).await;
    out.insert(
        "join without a member id",
        format!(
            "{} (id given: {})",
            name(r.error_code),
            !r.member_id.is_empty()
        ),
    );
    let r = settled(&conn, Some((0, &group)), &join(10), |r| r.error_code).await;
    out.insert("join with a 10 ms session", name(r.error_code));

    // A static member (group.instance.id) replaced by a newer instance:
    // the old member id is fenced.
    let statics = format!("diff-static-{tag}");
    let join_static = |member_id: String| JoinGroupRequest {
        group_id: statics.clone(),
        group_instance_id: Some("instance-1".into()),
        member_id,
        ..join(10_000)
    };
    let first = settled(
        &conn,
        Some((0, &statics)),
        &join_static(String::new()),
        |r| r.error_code,
    )
    .await;
    let sync = conn
        .send(&SyncGroupRequest {
            group_id: statics.clone(),
            generation_id: first.generation_id,
            member_id: first.member_id.clone(),
            group_instance_id: Some("instance-1".into()),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![sync_group_request::SyncGroupRequestAssignment {
                member_id: first.member_id.clone(),
                assignment: Bytes::new(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("sync");
    out.insert(
        "a static member joins and syncs",
        format!("{} / {}", name(first.error_code), name(sync.error_code)),
    );
    let second = conn
        .send(&join_static(String::new()))
        .await
        .expect("second join");
    out.insert(
        "a second instance with the same instance id joins",
        format!(
            "{} (new id: {})",
            name(second.error_code),
            second.member_id != first.member_id
        ),
    );
    let hb = conn
        .send(&HeartbeatRequest {
            group_id: statics.clone(),
            generation_id: first.generation_id,
            member_id: first.member_id.clone(),
            group_instance_id: Some("instance-1".into()),
            ..Default::default()
        })
        .await
        .expect("heartbeat");
    out.insert(
        "heartbeat of the replaced static member",
        name(hb.error_code),
    );
    let commit = conn
        .send(&OffsetCommitRequest {
            generation_id_or_member_epoch: first.generation_id,
            member_id: first.member_id.clone(),
            group_instance_id: Some("instance-1".into()),
            ..commit_one(&statics, &topic, 1)
        })
        .await
        .expect("commit");
    out.insert("commit of the replaced static member", committed(&commit));
    let rejoin = conn
        .send(&join_static(first.member_id.clone()))
        .await
        .expect("old join");
    out.insert(
        "join of the replaced static member",
        name(rejoin.error_code),
    );

    // Transactions never begun.
    let txn = format!("diff-txn-{tag}");
    let r = settled(
        &conn,
        Some((1, &txn)),
        &EndTxnRequest {
            transactional_id: txn.clone(),
            producer_id: 12_345,
            producer_epoch: 0,
            committed: true,
            ..Default::default()
        },
        |r| r.error_code,
    )
    .await;
    out.insert("end a transaction never begun", name(r.error_code));

    // AddPartitionsToTxn v4+ (the batched, broker-side form): verifying a
    // partition in the transaction and one not in it, at v4 and v5.
    let vtxn = format!("diff-verify-{tag}");
    let init = settled(
        &conn,
        Some((1, &vtxn)),
        &InitProducerIdRequest {
            transactional_id: Some(vtxn.clone()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
        |r| r.error_code,
    )
    .await;
    let topics = |names: &[&String]| {
        names
            .iter()
            .map(|n| add_partitions_to_txn_request::AddPartitionsToTxnTopic {
                name: (*n).clone(),
                partitions: [0].into(),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    let added = conn
        .send_version(
            &AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: vtxn.clone(),
                v3_and_below_producer_id: init.producer_id,
                v3_and_below_producer_epoch: init.producer_epoch,
                v3_and_below_topics: topics(&[&topic]),
                ..Default::default()
            },
            3,
        )
        .await
        .expect("add partitions v3");
    let added_topic = topic.as_str();
    let codes = |results: &[add_partitions_to_txn_response::AddPartitionsToTxnTopicResult]| {
        let mut codes: Vec<String> = results
            .iter()
            .flat_map(|t| {
                t.results_by_partition.iter().map(move |p| {
                    let which = if t.name == added_topic {
                        "added"
                    } else {
                        "other"
                    };
                    format!("{which}:{}", name(p.partition_error_code))
                })
            })
            .collect();
        codes.sort();
        codes.join(" ")
    };
    out.insert(
        "add a partition to a transaction (v3)",
        codes(&added.results_by_topic_v3_and_below),
    );
    for version in [4, 5] {
        let verified = conn
            .send_version(
                &AddPartitionsToTxnRequest {
                    transactions: vec![
                        add_partitions_to_txn_request::AddPartitionsToTxnTransaction {
                            transactional_id: vtxn.clone(),
                            producer_id: init.producer_id,
                            producer_epoch: init.producer_epoch,
                            verify_only: true,
                            topics: topics(&[&topic, &small]),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                version,
            )
            .await
            .expect("verify partitions");
        let inner = verified
            .results_by_transaction
            .first()
            .map(|t| codes(&t.topic_results))
            .unwrap_or_default();
        let label = if version == 4 {
            "verify partitions of a transaction (v4)"
        } else {
            "verify partitions of a transaction (v5)"
        };
        out.insert(label, format!("{} [{inner}]", name(verified.error_code)));
    }

    // Admin.
    let again = admin
        .create_topics(&[NewTopic::new(topic.as_str(), 1, 1)])
        .await;
    out.insert(
        "create an existing topic",
        again[&topic]
            .as_ref()
            .err()
            .and_then(|e| e.kafka_code())
            .map_or("NONE".into(), |c| c.name().to_string()),
    );
    let bad = admin
        .create_topics(&[NewTopic::new("bad name!", 1, 1)])
        .await;
    out.insert(
        "create a topic with a bad name",
        bad["bad name!"]
            .as_ref()
            .err()
            .and_then(|e| e.kafka_code())
            .map_or("NONE".into(), |c| c.name().to_string()),
    );
    // An offset committed for a topic about to be deleted (by a group
    // with no members, as a tool commits).
    let offsets_group = format!("diff-offsets-{tag}");
    let commit_small = commit_one(&offsets_group, &small, 3);
    let commit_answer = settled(&conn, Some((0, &offsets_group)), &commit_small, |r| {
        commit_code(r).unwrap_or(0)
    })
    .await;
    let fetch_small = OffsetFetchRequest {
        groups: vec![offset_fetch_request::OffsetFetchRequestGroup {
            group_id: offsets_group.clone(),
            topics: Some(vec![offset_fetch_request::OffsetFetchRequestTopics {
                name: small.clone(),
                partition_indexes: [0].into(),
                ..Default::default()
            }]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let fetched_offset = |r: &OffsetFetchResponse| {
        r.groups
            .first()
            .and_then(|g| g.topics.first())
            .and_then(|t| t.partitions.first())
            .map_or(-2, |p| p.committed_offset)
    };
    let before = conn.send(&fetch_small).await.expect("offset fetch");
    out.insert(
        "commit to a topic, then read it back",
        format!(
            "{} / {}",
            committed(&commit_answer),
            fetched_offset(&before)
        ),
    );
    let gone = admin.delete_topics(&[nope.as_str(), small.as_str()]).await;
    // Kafka drops the deleted topic's offsets soon after the deletion;
    // waited for up to 10 s.
    let mut after = -2;
    for _ in 0..100 {
        after = fetched_offset(&conn.send(&fetch_small).await.expect("offset fetch"));
        if after == -1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    out.insert("the offset of a deleted topic", after.to_string());
    for (what, t) in [
        ("delete an unknown topic", &nope),
        ("delete a topic", &small),
    ] {
        out.insert(
            what,
            gone[t.as_str()]
                .as_ref()
                .err()
                .and_then(|e| e.kafka_code())
                .map_or("NONE".into(), |c| c.name().to_string()),
        );
    }
    let _ = admin.delete_topics(&[topic.as_str()]).await;
    conn.close().await;
    client.close().await;
    out
}

#[test]
fn the_fake_cluster_answers_as_apache_kafka_does() {
    let Some(kafka) = support::broker() else {
        return;
    };
    support::run_within(180, async {
        let tag = format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let on_kafka = scenarios(&kafka, &tag).await;
        let fake = FakeCluster::start().await.expect("fake cluster");
        let on_fake = scenarios(&fake.addresses()[0], &tag).await;
        assert!(fake.problems().is_empty(), "{:?}", fake.problems());
        let mut differ = Vec::new();
        for (what, k) in &on_kafka {
            let f = on_fake.get(what).cloned().unwrap_or_default();
            let expected = EXPECTED_DIFFERENCES.iter().any(|(w, _)| w == what);
            eprintln!("{what}: Kafka {k}, fake {f}");
            if &f != k && !expected {
                differ.push(format!("{what}: Apache Kafka {k}, the fake {f}"));
            }
        }
        assert!(
            differ.is_empty(),
            "the fake differs:\n{}",
            differ.join("\n")
        );
        // The control: a scenario with a known, different outcome is seen
        // as different by the comparison.
        assert_ne!(
            on_kafka["produce three records"],
            on_kafka["produce with acks=2"]
        );
    });
}
