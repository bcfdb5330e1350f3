//! Tests of the assignors: golden cases from the Java client's documented
//! outputs, unit cases, and properties checked over generated groups.
//!
//! The checkers here are used by all the files; each has a control test
//! showing it reports a broken assignment.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

mod props;
mod range;
mod round_robin;
mod simulation;
mod stable;
mod sticky;

/// A dynamic member subscribed to `topics`.
fn member(id: &str, topics: &[&str]) -> GroupMember {
    GroupMember::new(id, Subscription::new(topics.iter().copied()))
}

/// Topic partitions from a literal.
fn tp(entries: &[(&str, &[i32])]) -> TopicPartitions {
    entries
        .iter()
        .map(|(t, p)| (t.to_string(), p.to_vec()))
        .collect()
}

/// A layout of topics with partition counts and no racks.
fn layout(topics: &[(&str, i32)]) -> ClusterLayout {
    topics
        .iter()
        .fold(ClusterLayout::new(), |l, (t, n)| l.with_topic(*t, *n))
}

/// Each member's partitions, by member id.
fn partitions(plan: &GroupAssignment) -> BTreeMap<String, TopicPartitions> {
    plan.members
        .iter()
        .map(|(id, a)| (id.clone(), a.partitions.clone()))
        .collect()
}

/// The (topic, partition) pairs of `tps`.
fn pairs(tps: &TopicPartitions) -> BTreeSet<(String, i32)> {
    tps.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
        .collect()
}

fn count(tps: &TopicPartitions) -> usize {
    tps.values().map(Vec::len).sum()
}

/// Valid (see [`GroupAssignment::validate`]) and complete: every partition
/// of a subscribed topic is assigned or pending.
fn check_valid_and_complete(
    members: &[GroupMember],
    layout: &ClusterLayout,
    protocol: RebalanceProtocol,
    plan: &GroupAssignment,
) -> Result<(), String> {
    plan.validate(members, layout, protocol)
        .map_err(|v| v.to_string())?;
    let missing = plan.unassigned(members, layout);
    if !missing.is_empty() {
        return Err(format!("unassigned: {missing:?}"));
    }
    if protocol == RebalanceProtocol::Eager && plan.needs_follow_up() {
        return Err("an eager assignor held partitions back".into());
    }
    Ok(())
}

/// The members' total loads differ by at most one.
fn check_balanced(plan: &GroupAssignment) -> Result<(), String> {
    let loads: Vec<usize> = plan
        .members
        .values()
        .map(|a| count(&a.partitions))
        .collect();
    match (loads.iter().min(), loads.iter().max()) {
        (Some(lo), Some(hi)) if hi - lo > 1 => Err(format!("unbalanced loads {loads:?}")),
        _ => Ok(()),
    }
}

/// For each topic, the loads of its subscribers differ by at most one.
fn check_balanced_per_topic(members: &[GroupMember], plan: &GroupAssignment) -> Result<(), String> {
    let topics: BTreeSet<&String> = members
        .iter()
        .flat_map(|m| &m.subscription.topics)
        .collect();
    for topic in topics {
        let loads: Vec<usize> = members
            .iter()
            .filter(|m| m.subscription.topics.contains(topic))
            .map(|m| {
                plan.members[&m.member_id]
                    .partitions
                    .get(topic)
                    .map_or(0, Vec::len)
            })
            .collect();
        if let (Some(lo), Some(hi)) = (loads.iter().min(), loads.iter().max()) {
            if hi - lo > 1 {
                return Err(format!("{topic}: unbalanced loads {loads:?}"));
            }
        }
    }
    Ok(())
}

/// Every member of `kept` still has all it had `before`.
fn check_kept(
    before: &BTreeMap<String, TopicPartitions>,
    after: &GroupAssignment,
    kept: &[&str],
) -> Result<(), String> {
    for id in kept {
        let had = pairs(&before[*id]);
        let has = pairs(&after.members[*id].partitions);
        let lost: Vec<_> = had.difference(&has).collect();
        if !lost.is_empty() {
            return Err(format!("{id} lost {lost:?}"));
        }
    }
    Ok(())
}

/// No member of `before` gained a partition: only members not in `before`
/// (newcomers) receive partitions that moved.
fn check_only_newcomers_gain(
    before: &BTreeMap<String, TopicPartitions>,
    after: &GroupAssignment,
) -> Result<(), String> {
    for (id, had) in before {
        let Some(a) = after.members.get(id) else {
            continue;
        };
        let gained: Vec<_> = pairs(&a.partitions)
            .difference(&pairs(had))
            .cloned()
            .collect();
        if !gained.is_empty() {
            return Err(format!("{id} gained {gained:?}"));
        }
    }
    Ok(())
}

/// No partition is given to a member that did not own it while another
/// owned it before this rebalance (what the cooperative protocol forbids),
/// checked directly on the owned sets rather than through `validate`.
fn check_no_double_ownership(
    owned_before: &BTreeMap<String, TopicPartitions>,
    after: &GroupAssignment,
) -> Result<(), String> {
    for (id, a) in &after.members {
        let own = owned_before.get(id).map(pairs).unwrap_or_default();
        for pair in pairs(&a.partitions).difference(&own) {
            for (other, had) in owned_before {
                if other != id && pairs(had).contains(pair) {
                    return Err(format!("{pair:?} given to {id} while {other} owns it"));
                }
            }
        }
    }
    Ok(())
}

// --- Controls: each checker reports a broken assignment. ---

fn plan_of(entries: &[(&str, TopicPartitions)]) -> GroupAssignment {
    GroupAssignment {
        members: entries
            .iter()
            .map(|(id, p)| {
                let a = Assignment {
                    partitions: p.clone(),
                    user_data: None,
                };
                (id.to_string(), a)
            })
            .collect(),
        pending: TopicPartitions::new(),
    }
}

#[test]
fn control_valid_and_complete_reports_each_breach() {
    let members = [member("a", &["t"]), member("b", &["t", "u"])];
    let l = layout(&[("t", 2), ("u", 1)]);
    let eager = RebalanceProtocol::Eager;
    let good = plan_of(&[
        ("a", tp(&[("t", &[0])])),
        ("b", tp(&[("t", &[1]), ("u", &[0])])),
    ]);
    assert_eq!(check_valid_and_complete(&members, &l, eager, &good), Ok(()));

    let twice = plan_of(&[
        ("a", tp(&[("t", &[0, 1])])),
        ("b", tp(&[("t", &[1]), ("u", &[0])])),
    ]);
    let missing = plan_of(&[("a", tp(&[("t", &[0])])), ("b", tp(&[("u", &[0])]))]);
    let unsubscribed = plan_of(&[
        ("a", tp(&[("t", &[0]), ("u", &[0])])),
        ("b", tp(&[("t", &[1])])),
    ]);
    let unknown = plan_of(&[
        ("a", tp(&[("t", &[0, 7])])),
        ("b", tp(&[("t", &[1]), ("u", &[0])])),
    ]);
    let stranger = plan_of(&[("a", tp(&[("t", &[0, 1])])), ("x", tp(&[("u", &[0])]))]);
    let mut pending_and_assigned = good.clone();
    pending_and_assigned.pending = tp(&[("u", &[0])]);
    for (what, bad) in [
        ("twice", twice),
        ("missing", missing),
        ("unsubscribed", unsubscribed),
        ("unknown", unknown),
        ("stranger", stranger),
        ("pending and assigned", pending_and_assigned),
    ] {
        assert!(
            check_valid_and_complete(&members, &l, eager, &bad).is_err(),
            "{what}"
        );
    }
    // Held back under the eager protocol.
    let mut held = plan_of(&[("a", tp(&[("t", &[0])])), ("b", tp(&[("t", &[1])]))]);
    held.pending = tp(&[("u", &[0])]);
    assert!(check_valid_and_complete(&members, &l, eager, &held).is_err());
    assert!(check_valid_and_complete(&members, &l, RebalanceProtocol::Cooperative, &held).is_ok());

    // Cooperative: given to b while a still owns it.
    let mut a = member("a", &["t"]);
    a.subscription.owned_partitions = tp(&[("t", &[1])]);
    let coop_members = [a, member("b", &["t", "u"])];
    let err = good
        .validate(&coop_members, &l, RebalanceProtocol::Cooperative)
        .unwrap_err();
    assert!(
        matches!(err, Violation::StillOwned { partition: 1, .. }),
        "{err}"
    );
    assert!(good.validate(&coop_members, &l, eager).is_ok());
}

#[test]
fn control_balance_checkers_report_imbalance() {
    let members = [member("a", &["t"]), member("b", &["t"])];
    let even = plan_of(&[("a", tp(&[("t", &[0, 2])])), ("b", tp(&[("t", &[1])]))]);
    let uneven = plan_of(&[("a", tp(&[("t", &[0, 1, 2])])), ("b", tp(&[]))]);
    assert!(check_balanced(&even).is_ok());
    assert!(check_balanced(&uneven).is_err());
    assert!(check_balanced_per_topic(&members, &even).is_ok());
    assert!(check_balanced_per_topic(&members, &uneven).is_err());
}

#[test]
fn control_stickiness_checkers_report_moves() {
    let before: BTreeMap<String, TopicPartitions> = [
        ("a".to_string(), tp(&[("t", &[0, 1])])),
        ("b".to_string(), tp(&[("t", &[2, 3])])),
    ]
    .into();
    let kept = plan_of(&[
        ("a", tp(&[("t", &[0])])),
        ("b", tp(&[("t", &[2, 3])])),
        ("c", tp(&[("t", &[1])])),
    ]);
    let shuffled = plan_of(&[
        ("a", tp(&[("t", &[0, 2])])),
        ("b", tp(&[("t", &[3])])),
        ("c", tp(&[("t", &[1])])),
    ]);
    assert!(check_kept(&before, &kept, &["b"]).is_ok());
    assert!(check_kept(&before, &kept, &["a"]).is_err());
    assert!(check_only_newcomers_gain(&before, &kept).is_ok());
    assert!(check_only_newcomers_gain(&before, &shuffled).is_err());
    assert!(check_no_double_ownership(&before, &kept).is_err());
    let withheld = plan_of(&[
        ("a", tp(&[("t", &[0])])),
        ("b", tp(&[("t", &[2, 3])])),
        ("c", tp(&[])),
    ]);
    assert!(check_no_double_ownership(&before, &withheld).is_ok());
}

// --- Shared behaviour of every built-in assignor. ---

fn built_ins() -> Vec<Arc<dyn Assignor>> {
    [
        "range",
        "roundrobin",
        "sticky",
        "cooperative-sticky",
        "stable",
    ]
    .iter()
    .filter_map(|n| by_name(n))
    .collect()
}

#[test]
fn by_name_knows_the_five_built_ins() {
    let names: Vec<String> = built_ins().iter().map(|a| a.name().to_string()).collect();
    assert_eq!(
        names,
        [
            "range",
            "roundrobin",
            "sticky",
            "cooperative-sticky",
            "stable"
        ]
    );
    assert!(by_name("Range").is_none());
    let err = by_name_or_config_error("bogus").unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Config);
    assert!(err.to_string().contains("bogus"));
}

#[test]
fn a_member_id_twice_is_a_protocol_error() {
    let members = [member("a", &["t"]), member("a", &["t"])];
    for a in built_ins() {
        let err = a.assign(&members, &layout(&[("t", 2)])).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol, "{}", a.name());
    }
}

#[test]
fn odd_inputs_give_valid_answers() {
    let l = layout(&[("t", 3), ("empty", 0)]);
    let mut weird = member("w", &["t", "t", "missing", "empty"]);
    weird.subscription.owned_partitions =
        tp(&[("t", &[-1, 2, 2, 99]), ("missing", &[0]), ("", &[0])]);
    weird.subscription.generation = Some(i32::MAX);
    weird.subscription.user_data = Some(bytes::Bytes::from_static(&[0xff; 9]));
    let groups: Vec<Vec<GroupMember>> = vec![
        vec![],
        vec![member("nothing", &[])],
        vec![weird.clone(), member("x", &["missing"])],
        vec![weird, member("y", &["t"]), member("z", &["empty"])],
    ];
    for a in built_ins() {
        for members in &groups {
            let plan = a.assign(members, &l).unwrap();
            assert_eq!(plan.members.len(), members.len());
            check_valid_and_complete(members, &l, a.rebalance_protocol(), &plan)
                .unwrap_or_else(|e| panic!("{}: {e}", a.name()));
        }
    }
}

#[test]
fn static_members_come_first_ordered_by_instance_id() {
    // "z" is static, so it goes before the dynamic "a"; among static
    // members the instance id decides, not the member id.
    let members = [
        member("a", &["t"]),
        member("z", &["t"]).with_instance_id("i-2"),
        member("y", &["t"]).with_instance_id("i-1"),
    ];
    let l = layout(&[("t", 3)]);
    for name in ["range", "roundrobin"] {
        let plan = by_name(name).unwrap().assign(&members, &l).unwrap();
        assert_eq!(plan.members["y"].partitions["t"], vec![0], "{name}");
        assert_eq!(plan.members["z"].partitions["t"], vec![1], "{name}");
        assert_eq!(plan.members["a"].partitions["t"], vec![2], "{name}");
    }
}

#[test]
fn member_ids_compare_as_java_strings() {
    // U+FF5E sorts after U+1F600 in Rust's order but before it in Java's
    // (UTF-16: 0xFF5E < 0xD83D).
    let (fullwidth, emoji) = ("\u{ff5e}", "\u{1f600}");
    assert!(fullwidth < emoji);
    assert_eq!(java_cmp(fullwidth, emoji), std::cmp::Ordering::Greater);
    let members = [member(fullwidth, &["t"]), member(emoji, &["t"])];
    let plan = RangeAssignor
        .assign(&members, &layout(&[("t", 2)]))
        .unwrap();
    assert_eq!(plan.members[emoji].partitions["t"], vec![0]);
}

#[test]
fn encoded_plans_decode_back() {
    let members = [member("a", &["t"]), member("b", &["t"])];
    let plan = RangeAssignor
        .assign(&members, &layout(&[("t", 3)]))
        .unwrap();
    let encoded = plan.encode(3).unwrap();
    for (id, bytes) in encoded {
        assert_eq!(Assignment::decode(bytes).unwrap(), plan.members[&id]);
    }
}
