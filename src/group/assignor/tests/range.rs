//! `range`: the Java client's documented outputs, co-partitioning and
//! racks.

use super::*;

#[test]
fn java_documented_example() {
    // RangeAssignor's documentation: C0 and C1 subscribed to t0 and t1,
    // three partitions each.
    let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
    let l = layout(&[("t0", 3), ("t1", 3)]);
    let plan = RangeAssignor.assign(&members, &l).unwrap();
    let expected: BTreeMap<String, TopicPartitions> = [
        ("C0".to_string(), tp(&[("t0", &[0, 1]), ("t1", &[0, 1])])),
        ("C1".to_string(), tp(&[("t0", &[2]), ("t1", &[2])])),
    ]
    .into();
    assert_eq!(partitions(&plan), expected);
    assert!(!plan.needs_follow_up());
}

#[test]
fn ranges_are_contiguous_and_the_first_members_get_the_extra() {
    // 8 partitions over 3 members: 3, 3, 2.
    let members = [
        member("c", &["t"]),
        member("a", &["t"]),
        member("b", &["t"]),
    ];
    let plan = RangeAssignor
        .assign(&members, &layout(&[("t", 8)]))
        .unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![0, 1, 2]);
    assert_eq!(plan.members["b"].partitions["t"], vec![3, 4, 5]);
    assert_eq!(plan.members["c"].partitions["t"], vec![6, 7]);
    // Fewer partitions than members: the last get nothing.
    let plan = RangeAssignor
        .assign(&members, &layout(&[("t", 2)]))
        .unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![0]);
    assert_eq!(plan.members["b"].partitions["t"], vec![1]);
    assert!(plan.members["c"].partitions.is_empty());
}

#[test]
fn each_topic_is_split_among_its_own_subscribers() {
    let members = [
        member("a", &["t0"]),
        member("b", &["t0", "t1"]),
        member("c", &["t1"]),
    ];
    let plan = RangeAssignor
        .assign(&members, &layout(&[("t0", 3), ("t1", 4), ("other", 5)]))
        .unwrap();
    assert_eq!(plan.members["a"].partitions, tp(&[("t0", &[0, 1])]));
    assert_eq!(
        plan.members["b"].partitions,
        tp(&[("t0", &[2]), ("t1", &[0, 1])])
    );
    assert_eq!(plan.members["c"].partitions, tp(&[("t1", &[2, 3])]));
}

fn racked(id: &str, topics: &[&str], rack: &str) -> GroupMember {
    let mut m = member(id, topics);
    m.subscription.rack = Some(rack.into());
    m
}

#[test]
fn members_take_partitions_in_their_rack_first() {
    // Partition p's only replica is in rack r(p % 3); members in r0, r1, r2.
    let members = [
        racked("a", &["t"], "r1"),
        racked("b", &["t"], "r2"),
        racked("c", &["t"], "r0"),
    ];
    let mut l = ClusterLayout::new();
    for p in 0..6 {
        l.add_partition("t", p, [format!("r{}", p % 3)]);
    }
    let plan = RangeAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![1, 4]);
    assert_eq!(plan.members["b"].partitions["t"], vec![2, 5]);
    assert_eq!(plan.members["c"].partitions["t"], vec![0, 3]);
}

#[test]
fn racks_never_unbalance_a_topic() {
    // Every replica is in r0, where only a lives: a still gets its share
    // only, the rest goes to the others in order.
    let members = [
        racked("a", &["t"], "r0"),
        racked("b", &["t"], "r1"),
        member("c", &["t"]),
    ];
    let mut l = ClusterLayout::new();
    for p in 0..7 {
        l.add_partition("t", p, if p == 6 { vec!["r1"] } else { vec!["r0"] });
    }
    let plan = RangeAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![0, 1, 2]);
    assert_eq!(plan.members["b"].partitions["t"], vec![3, 6]);
    assert_eq!(plan.members["c"].partitions["t"], vec![4, 5]);
    check_balanced_per_topic(&members, &plan).unwrap();
}

#[test]
fn co_partitioned_topics_stay_together_under_rack_matching() {
    // t0 and t1 have the same subscribers and partitions: partition p of
    // both goes to one member, chosen where both replicas are in its rack.
    let members = [
        racked("a", &["t0", "t1"], "r0"),
        racked("b", &["t0", "t1"], "r1"),
    ];
    let mut l = ClusterLayout::new();
    for (p, rack) in [(0, "r1"), (1, "r0"), (2, "r1"), (3, "r0")] {
        l.add_partition("t0", p, [rack]);
        l.add_partition("t1", p, [rack, "r9"]);
    }
    let plan = RangeAssignor.assign(&members, &l).unwrap();
    assert_eq!(
        plan.members["a"].partitions,
        tp(&[("t0", &[1, 3]), ("t1", &[1, 3])])
    );
    assert_eq!(
        plan.members["b"].partitions,
        tp(&[("t0", &[0, 2]), ("t1", &[0, 2])])
    );
}

#[test]
fn without_rack_differences_the_plain_ranges_stand() {
    // Every partition has replicas in both racks: matching changes nothing
    // and the output is the plain one, even for the member without a rack.
    let members = [member("a", &["t"]), racked("b", &["t"], "r1")];
    let mut l = ClusterLayout::new();
    for p in 0..4 {
        l.add_partition("t", p, ["r0", "r1"]);
    }
    let plan = RangeAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![0, 1]);
    assert_eq!(plan.members["b"].partitions["t"], vec![2, 3]);
}
