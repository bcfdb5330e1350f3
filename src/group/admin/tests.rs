//! The pure parts of the group admin: reading describe answers, lag
//! arithmetic, merging listings, the error steps, and `join_all`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;

use super::describe::{classic_group, consumer_group};
use super::*;
use crate::group::{Assignment, OffsetAndMetadata, Subscription, TopicPartition};
use crate::protocol::messages::OffsetDeleteResponse;
use crate::protocol::messages::consumer_group_describe_response as cgd;
use crate::protocol::messages::describe_groups_response as dg;
use crate::protocol::primitives::Uuid;

fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut a = Assignment::default();
    a.partitions.insert(topic.to_string(), partitions.to_vec());
    a.encode(3).unwrap()
}

fn member(id: &str, metadata: Bytes, assignment: Bytes) -> dg::DescribedGroupMember {
    dg::DescribedGroupMember {
        member_id: id.to_string(),
        group_instance_id: None,
        client_id: format!("client-{id}"),
        client_host: "/127.0.0.1".to_string(),
        member_metadata: metadata,
        member_assignment: assignment,
        ..Default::default()
    }
}

fn stable_group(protocol_type: &str, members: Vec<dg::DescribedGroupMember>) -> dg::DescribedGroup {
    dg::DescribedGroup {
        error_code: 0,
        group_id: "g".to_string(),
        group_state: "Stable".to_string(),
        protocol_type: protocol_type.to_string(),
        protocol_data: "range".to_string(),
        members,
        authorized_operations: i32::MIN,
        ..Default::default()
    }
}

#[test]
fn a_classic_consumer_group_has_its_members_decoded_and_one_bad_member_kept_raw() {
    let sub = Subscription::new(["orders"]).encode(3).unwrap();
    let garbage = Bytes::from_static(&[0, 3, 0xff, 0xff, 0xff]);
    let g = stable_group(
        "consumer",
        vec![
            member("a", sub.clone(), assignment("orders", &[0, 1])),
            member("b", sub.clone(), assignment("orders", &[2, 3])),
            member("c", garbage.clone(), Bytes::new()),
        ],
    );
    let d = classic_group(g, false);
    assert_eq!(d.group_type, GroupType::Classic);
    assert_eq!((d.state.as_str(), d.protocol.as_str()), ("Stable", "range"));
    assert!(d.exists());
    assert_eq!(d.authorized_operations, None);
    let a = &d.members[0];
    assert_eq!(a.subscription.as_ref().unwrap().topics, vec!["orders"]);
    assert_eq!(
        a.assignment.as_ref().unwrap().partitions["orders"],
        vec![0, 1]
    );
    assert!(a.decode_error.is_none());
    assert_eq!(a.client_id, "client-a");
    // The bad member: its metadata stays raw, with the error; its
    // assignment still decodes.
    let c = &d.members[2];
    assert!(c.subscription.is_none());
    assert!(c.decode_error.is_some());
    assert_eq!(c.metadata, garbage);
    assert_eq!(c.assignment, Some(Assignment::default()));
    // Owners: four partitions, two members.
    let owners = d.owners();
    let by: Vec<(String, &str)> = owners
        .iter()
        .map(|(tp, m)| (tp.to_string(), m.member_id.as_str()))
        .collect();
    assert_eq!(
        by,
        vec![
            ("orders/0".to_string(), "a"),
            ("orders/1".to_string(), "a"),
            ("orders/2".to_string(), "b"),
            ("orders/3".to_string(), "b"),
        ]
    );
}

#[test]
fn a_bad_assignment_is_kept_raw_with_its_error() {
    let sub = Subscription::new(["orders"]).encode(3).unwrap();
    let bad = Bytes::from_static(&[0, 1, 0, 0, 0, 9]);
    let d = classic_group(
        stable_group("consumer", vec![member("a", sub, bad.clone())]),
        false,
    );
    let a = &d.members[0];
    assert!(a.subscription.is_some());
    assert!(a.assignment.is_none());
    assert!(a.decode_error.is_some());
    assert_eq!(a.raw_assignment, bad);
    assert!(d.owners().is_empty());
}

#[test]
fn other_protocol_types_and_rebalancing_members_are_not_decoded() {
    // Kafka Connect's metadata is not the consumer protocol: left raw,
    // and no error for it.
    let connect = classic_group(
        stable_group(
            "connect",
            vec![member(
                "w",
                Bytes::from_static(b"\x00\x01xyz"),
                Bytes::new(),
            )],
        ),
        false,
    );
    let w = &connect.members[0];
    assert!(w.subscription.is_none() && w.assignment.is_none() && w.decode_error.is_none());
    assert_eq!(w.metadata, Bytes::from_static(b"\x00\x01xyz"));
    // Outside Stable the coordinator sends no metadata and no assignment.
    let mut g = stable_group("consumer", vec![member("a", Bytes::new(), Bytes::new())]);
    g.group_state = "PreparingRebalance".into();
    let d = classic_group(g, false);
    let a = &d.members[0];
    assert!(a.subscription.is_none());
    assert_eq!(a.assignment, Some(Assignment::default()));
    assert!(a.decode_error.is_none());
}

#[test]
fn an_unknown_group_is_dead() {
    // Kafka 4.4's answer to DescribeGroups v5 for a group it does not know.
    let answer = dg::DescribedGroup {
        group_id: "nobody".into(),
        group_state: "Dead".into(),
        authorized_operations: 3400,
        ..Default::default()
    };
    let d = classic_group(answer, true);
    assert!(!d.exists());
    assert!(d.members.is_empty());
    assert_eq!(d.authorized_operations, Some(3400));
    // A GROUP_ID_NOT_FOUND answer (DescribeGroups v6) has no state: Dead.
    let v6 = dg::DescribedGroup {
        error_code: ErrorCode::GROUP_ID_NOT_FOUND.0,
        group_id: "nobody".into(),
        ..Default::default()
    };
    assert_eq!(classic_group(v6, true).state, "Dead");
}

fn tps(id: u128, name: &str, partitions: &[i32]) -> cgd::TopicPartitions {
    cgd::TopicPartitions {
        topic_id: Uuid::from_u128(id),
        topic_name: name.to_string(),
        partitions: partitions.into(),
        ..Default::default()
    }
}

#[test]
fn a_consumer_group_is_read_with_topic_names_from_ids_where_missing() {
    let g = cgd::DescribedGroup {
        group_id: "g848".into(),
        group_state: "Reconciling".into(),
        group_epoch: 5,
        assignment_epoch: 4,
        assignor_name: "uniform".into(),
        authorized_operations: i32::MIN,
        members: vec![cgd::Member {
            member_id: "m1".into(),
            instance_id: Some("i1".into()),
            rack_id: Some("r1".into()),
            member_epoch: 4,
            client_id: "c1".into(),
            client_host: "/10.0.0.1".into(),
            subscribed_topic_names: vec!["orders".into(), "refunds".into()],
            subscribed_topic_regex: Some(String::new()),
            assignment: cgd::Assignment {
                topic_partitions: vec![
                    tps(1, "orders", &[2, 0]),
                    // No name: found by id; an unknown id: left out.
                    tps(2, "", &[1]),
                    tps(9, "", &[7]),
                ],
                ..Default::default()
            },
            target_assignment: cgd::Assignment {
                topic_partitions: vec![tps(1, "orders", &[0])],
                ..Default::default()
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let name_of = |id: &Uuid| (*id == Uuid::from_u128(2)).then(|| "refunds".to_string());
    let d = consumer_group(g, &name_of);
    assert_eq!(d.group_type, GroupType::Consumer);
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol, "uniform");
    assert_eq!((d.group_epoch, d.assignment_epoch), (Some(5), Some(4)));
    let m = &d.members[0];
    assert_eq!(m.member_epoch, Some(4));
    assert_eq!(m.group_instance_id.as_deref(), Some("i1"));
    let sub = m.subscription.as_ref().unwrap();
    assert_eq!(sub.topics, vec!["orders", "refunds"]);
    assert_eq!(sub.rack.as_deref(), Some("r1"));
    assert_eq!(m.subscribed_topic_regex, None, "an empty regex is none");
    let a = m.assignment.as_ref().unwrap();
    assert_eq!(a.partitions.len(), 2);
    assert_eq!(a.partitions["orders"], vec![0, 2]);
    assert_eq!(a.partitions["refunds"], vec![1]);
    let e = m.decode_error.as_ref().unwrap().to_string();
    assert!(e.contains(&Uuid::from_u128(9).to_string()), "{e}");
    assert_eq!(
        m.target_assignment.as_ref().unwrap().partitions["orders"],
        vec![0]
    );
    assert_eq!(d.owners().len(), 3);
}

fn listing(id: &str, state: &str) -> GroupListing {
    GroupListing {
        group_id: id.into(),
        protocol_type: "consumer".into(),
        state: Some(state.into()),
        group_type: Some("classic".into()),
    }
}

#[test]
fn listings_merge_sorted_with_each_group_once() {
    let merged = merge_listings(vec![
        vec![listing("b", "Stable"), listing("a", "Empty")],
        vec![],
        vec![listing("b", "PreparingRebalance"), listing("c", "Stable")],
    ]);
    let ids: Vec<&str> = merged.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b", "c"]);
    assert_eq!(merged[1].state.as_deref(), Some("Stable"), "the first kept");
}

#[test]
fn group_errors_retry_coordinator_codes_and_stop_on_others() {
    let step = |code| group_error::<()>(ApiKey::DeleteGroups, code, "g", None);
    assert!(matches!(
        step(ErrorCode::NOT_COORDINATOR),
        Step::Rediscover(_)
    ));
    assert!(matches!(
        step(ErrorCode::COORDINATOR_NOT_AVAILABLE),
        Step::Rediscover(_)
    ));
    assert!(matches!(
        step(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
        Step::Retry(_)
    ));
    for code in [
        ErrorCode::NON_EMPTY_GROUP,
        ErrorCode::GROUP_ID_NOT_FOUND,
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
    ] {
        match step(code) {
            Step::Stop(Error::Broker {
                api,
                code: c,
                context,
            }) => {
                assert_eq!((api, c), (ApiKey::DeleteGroups, code));
                assert_eq!(context.as_deref(), Some("group 'g'"));
            }
            _ => panic!("{code:?} must stop"),
        }
    }
    let with_message = group_error::<()>(
        ApiKey::ConsumerGroupDescribe,
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
        "g",
        Some("denied".into()),
    );
    let Step::Stop(e) = with_message else {
        panic!("must stop")
    };
    assert!(e.to_string().contains("group 'g': denied"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn join_all_runs_together_and_keeps_the_order() {
    let start = tokio::time::Instant::now();
    let out = join_all([30u64, 10, 20].map(|ms| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }))
    .await;
    assert_eq!(out, vec![30, 10, 20]);
    // Together: the longest, not the sum.
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert!(
        join_all(Vec::<std::future::Ready<u8>>::new())
            .await
            .is_empty()
    );
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn described_member(id: &str) -> MemberDescription {
    let d = classic_group(
        stable_group(
            "consumer",
            vec![member(id, Bytes::new(), assignment("unused", &[]))],
        ),
        false,
    );
    d.members.into_iter().next().unwrap()
}

#[test]
fn lag_is_end_minus_committed_and_never_negative() {
    let t = tp("t", 0);
    assert_eq!(
        PartitionLag::new(t.clone(), Some(10), Some(13)).lag,
        Some(3)
    );
    assert_eq!(
        PartitionLag::new(t.clone(), Some(13), Some(13)).lag,
        Some(0)
    );
    assert_eq!(PartitionLag::new(t.clone(), Some(0), Some(0)).lag, Some(0));
    // Control: the log end below the committed offset (records deleted
    // past it, a topic made again) would be negative; it is no lag.
    assert_eq!(10 - 13, -3);
    assert_eq!(
        PartitionLag::new(t.clone(), Some(13), Some(10)).lag,
        Some(0)
    );
    // No log end (the topic is gone): no lag.
    assert_eq!(PartitionLag::new(t.clone(), Some(13), None).lag, None);
    // No commit: no lag, whatever the log end.
    assert_eq!(PartitionLag::new(t.clone(), None, Some(10)).lag, None);
    // Extremes do not overflow.
    assert_eq!(offsets::lag_of(i64::MAX, i64::MIN), i64::MAX);
    assert_eq!(offsets::lag_of(i64::MIN, i64::MAX), 0);
}

#[test]
fn lag_rows_cover_committed_and_owned_partitions_and_a_partition_never_committed_has_none() {
    let mut committed = BTreeMap::new();
    committed.insert(tp("t", 0), OffsetAndMetadata::new(5));
    committed.insert(tp("t", 1), OffsetAndMetadata::new(12));
    let (a, b) = (described_member("a"), described_member("b"));
    let mut owners = BTreeMap::new();
    owners.insert(tp("t", 0), &a);
    owners.insert(tp("t", 2), &b);
    let mut ends = BTreeMap::new();
    ends.insert(tp("t", 0), Some(10));
    ends.insert(tp("t", 1), Some(10));
    ends.insert(tp("t", 2), Some(7));
    let rows = offsets::lag_rows(&committed, &owners, &ends);
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.partition.partition,
                r.committed,
                r.log_end,
                r.lag,
                r.member_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, Some(5), Some(10), Some(5), Some("a")),
            (1, Some(12), Some(10), Some(0), None),
            // Owned, never committed: no committed offset and no lag —
            // not a lag of 0, and not the whole log (7).
            (2, None, Some(7), None, Some("b")),
        ]
    );
    assert_eq!(rows[0].client_id.as_deref(), Some("client-a"));
    // A partition with no log end found (gone) keeps its commit.
    let rows = offsets::lag_rows(&committed, &BTreeMap::new(), &BTreeMap::new());
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.log_end.is_none() && r.lag.is_none()));
    assert_eq!(rows[1].committed, Some(12));
}

fn asked(tps: &[TopicPartition]) -> BTreeSet<TopicPartition> {
    tps.iter().cloned().collect()
}

fn broker_code(r: &Result<()>) -> Option<ErrorCode> {
    match r {
        Err(Error::Broker { code, .. }) => Some(*code),
        _ => None,
    }
}

#[test]
fn an_admin_commit_reports_each_partition_and_retries_only_coordinator_codes() {
    let all = asked(&[tp("t", 0), tp("t", 1), tp("u", 0)]);
    // A non-empty group: every partition refused with UNKNOWN_MEMBER_ID,
    // each on its own, saying why.
    let answers = vec![
        (tp("t", 0), ErrorCode::NONE),
        (tp("t", 1), ErrorCode::UNKNOWN_MEMBER_ID),
        (tp("u", 0), ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        // Not asked for: ignored.
        (tp("zz", 9), ErrorCode::NONE),
    ];
    let Step::Done(out) = offsets::commit_results("g", &all, answers) else {
        panic!("per-partition answers are done");
    };
    assert_eq!(out.len(), 3);
    assert!(out[&tp("t", 0)].is_ok());
    assert_eq!(
        broker_code(&out[&tp("t", 1)]),
        Some(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    let e = out[&tp("t", 1)].as_ref().unwrap_err().to_string();
    assert!(e.contains("group 'g', t/1") && e.contains("empty"), "{e}");
    // UNKNOWN_TOPIC_OR_PARTITION is retriable in general, but for an
    // admin commit it is the partition's answer (no retry until timeout).
    assert!(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.is_retriable());
    assert_eq!(
        broker_code(&out[&tp("u", 0)]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    // A coordinator code anywhere asks again.
    let moved = vec![
        (tp("t", 0), ErrorCode::NONE),
        (tp("t", 1), ErrorCode::NOT_COORDINATOR),
        (tp("u", 0), ErrorCode::NONE),
    ];
    assert!(matches!(
        offsets::commit_results("g", &all, moved),
        Step::Rediscover(_)
    ));
    let loading = vec![(tp("t", 0), ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)];
    assert!(matches!(
        offsets::commit_results("g", &all, loading),
        Step::Retry(_)
    ));
    // A partition the answer leaves out is an error of its own.
    let short = vec![(tp("t", 0), ErrorCode::NONE), (tp("t", 1), ErrorCode::NONE)];
    let Step::Done(out) = offsets::commit_results("g", &all, short) else {
        panic!("done");
    };
    assert!(out[&tp("t", 0)].is_ok() && out[&tp("t", 1)].is_ok());
    assert!(matches!(
        out[&tp("u", 0)],
        Err(Error::ProtocolViolation { .. })
    ));
}

fn delete_answer(group_code: ErrorCode, parts: &[(&str, i32, ErrorCode)]) -> OffsetDeleteResponse {
    use crate::protocol::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for (t, p, code) in parts {
        let part = OffsetDeleteResponsePartition {
            partition_index: *p,
            error_code: code.0,
            ..Default::default()
        };
        match topics.last_mut() {
            Some(last) if last.name == *t => last.partitions.push(part),
            _ => topics.push(OffsetDeleteResponseTopic {
                name: t.to_string(),
                partitions: vec![part],
                ..Default::default()
            }),
        }
    }
    OffsetDeleteResponse {
        error_code: group_code.0,
        topics,
        ..Default::default()
    }
}

#[test]
fn offset_delete_reports_each_partition_and_stops_on_a_group_error() {
    let all = asked(&[tp("t", 0), tp("t", 1)]);
    let answer = delete_answer(
        ErrorCode::NONE,
        &[
            ("t", 0, ErrorCode::NONE),
            ("t", 1, ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC),
        ],
    );
    let Step::Done(out) = offsets::delete_results("g", &all, answer) else {
        panic!("done");
    };
    assert!(out[&tp("t", 0)].is_ok());
    assert_eq!(
        broker_code(&out[&tp("t", 1)]),
        Some(ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC)
    );
    // The group-wide code: the call stops, naming the group.
    let gone = delete_answer(ErrorCode::GROUP_ID_NOT_FOUND, &[]);
    match offsets::delete_results("g", &all, gone) {
        Step::Stop(Error::Broker { api, code, context }) => {
            assert_eq!(
                (api, code),
                (ApiKey::OffsetDelete, ErrorCode::GROUP_ID_NOT_FOUND)
            );
            assert_eq!(context.as_deref(), Some("group 'g'"));
        }
        _ => panic!("must stop"),
    }
    let moved = delete_answer(ErrorCode::COORDINATOR_NOT_AVAILABLE, &[]);
    assert!(matches!(
        offsets::delete_results("g", &all, moved),
        Step::Rediscover(_)
    ));
    let rebalancing = delete_answer(ErrorCode::REBALANCE_IN_PROGRESS, &[]);
    assert!(matches!(
        offsets::delete_results("g", &all, rebalancing),
        Step::Retry(_)
    ));
}

#[test]
fn leave_group_reports_each_instance_and_stops_on_a_group_error() {
    use crate::protocol::messages::LeaveGroupResponse;
    use crate::protocol::messages::leave_group_response::MemberResponse;
    let ids: BTreeSet<String> = ["i-1", "i-2", "i-3"].map(String::from).into();
    let answer = LeaveGroupResponse {
        members: vec![
            MemberResponse {
                member_id: "i-1-uuid".into(),
                group_instance_id: Some("i-1".into()),
                error_code: 0,
                ..Default::default()
            },
            MemberResponse {
                member_id: String::new(),
                group_instance_id: Some("i-2".into()),
                error_code: ErrorCode::UNKNOWN_MEMBER_ID.0,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let Step::Done(out) = members::leave_results("g", &ids, answer) else {
        panic!("done");
    };
    assert!(out["i-1"].is_ok());
    assert_eq!(broker_code(&out["i-2"]), Some(ErrorCode::UNKNOWN_MEMBER_ID));
    let e = out["i-2"].as_ref().unwrap_err().to_string();
    assert!(e.contains("instance 'i-2'"), "{e}");
    // Left out of the answer: an error of its own.
    assert!(matches!(out["i-3"], Err(Error::ProtocolViolation { .. })));
    let denied = LeaveGroupResponse {
        error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED.0,
        ..Default::default()
    };
    assert!(matches!(
        members::leave_results("g", &ids, denied),
        Step::Stop(Error::Broker {
            code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
            ..
        })
    ));
    let moved = LeaveGroupResponse {
        error_code: ErrorCode::NOT_COORDINATOR.0,
        ..Default::default()
    };
    assert!(matches!(
        members::leave_results("g", &ids, moved),
        Step::Rediscover(_)
    ));
}
