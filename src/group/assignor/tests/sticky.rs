//! `sticky` and `cooperative-sticky`: the Java client's documented
//! scenarios, claims and generations, holding back, racks.

use super::*;

/// A `sticky` member that owned `owned` in generation `generation`, said
/// the eager way (in its user data).
fn eager(id: &str, topics: &[&str], owned: TopicPartitions, generation: i32) -> GroupMember {
    let mut m = member(id, topics);
    m.subscription.user_data = StickyAssignor.user_data(&owned, Some(generation));
    m
}

/// A `cooperative-sticky` member that owns `owned` in `generation`.
fn cooperative(id: &str, topics: &[&str], owned: TopicPartitions, generation: i32) -> GroupMember {
    let mut m = member(id, topics);
    m.subscription.owned_partitions = owned;
    m.subscription.generation = Some(generation);
    m
}

const T4: &[&str] = &["t0", "t1", "t2", "t3"];

#[test]
fn java_documented_example_one_member_leaves() {
    // StickyAssignor's documentation: C0, C1, C2 on t0..t3 of two
    // partitions each get C0 [t0p0, t1p1, t3p0], C1 [t0p1, t2p0, t3p1],
    // C2 [t1p0, t2p1]; after C1 leaves, C0 and C2 keep theirs and split
    // C1's: C0 [t0p0, t1p1, t3p0, t2p0], C2 [t1p0, t2p1, t0p1, t3p1].
    let l = layout(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    let members = [member("C0", T4), member("C1", T4), member("C2", T4)];
    let first = StickyAssignor.assign(&members, &l).unwrap();
    let expected: BTreeMap<String, TopicPartitions> = [
        (
            "C0".to_string(),
            tp(&[("t0", &[0]), ("t1", &[1]), ("t3", &[0])]),
        ),
        (
            "C1".to_string(),
            tp(&[("t0", &[1]), ("t2", &[0]), ("t3", &[1])]),
        ),
        ("C2".to_string(), tp(&[("t1", &[0]), ("t2", &[1])])),
    ]
    .into();
    assert_eq!(partitions(&first), expected);

    let members = [
        eager("C0", T4, expected["C0"].clone(), 1),
        eager("C2", T4, expected["C2"].clone(), 1),
    ];
    let second = StickyAssignor.assign(&members, &l).unwrap();
    let expected: BTreeMap<String, TopicPartitions> = [
        (
            "C0".to_string(),
            tp(&[("t0", &[0]), ("t1", &[1]), ("t2", &[0]), ("t3", &[0])]),
        ),
        (
            "C2".to_string(),
            tp(&[("t0", &[1]), ("t1", &[0]), ("t2", &[1]), ("t3", &[1])]),
        ),
    ]
    .into();
    assert_eq!(partitions(&second), expected);
}

#[test]
fn java_documented_example_with_different_subscriptions() {
    // StickyAssignor's documentation: C0 on t0; C1 on t0, t1; C2 on t0,
    // t1, t2; t0, t1, t2 with 1, 2, 3 partitions: C0 [t0p0], C1 [t1p0,
    // t1p1], C2 [t2p0, t2p1, t2p2]. After C0 leaves: C1 [t1p0, t1p1,
    // t0p0], C2 [t2p0, t2p1, t2p2].
    let l = layout(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let (s0, s1, s2): (&[&str], &[&str], &[&str]) = (&["t0"], &["t0", "t1"], &["t0", "t1", "t2"]);
    let members = [member("C0", s0), member("C1", s1), member("C2", s2)];
    let first = StickyAssignor.assign(&members, &l).unwrap();
    assert_eq!(first.members["C0"].partitions, tp(&[("t0", &[0])]));
    assert_eq!(first.members["C1"].partitions, tp(&[("t1", &[0, 1])]));
    assert_eq!(first.members["C2"].partitions, tp(&[("t2", &[0, 1, 2])]));

    let members = [
        eager("C1", s1, first.members["C1"].partitions.clone(), 1),
        eager("C2", s2, first.members["C2"].partitions.clone(), 1),
    ];
    let second = StickyAssignor.assign(&members, &l).unwrap();
    assert_eq!(
        second.members["C1"].partitions,
        tp(&[("t0", &[0]), ("t1", &[0, 1])])
    );
    assert_eq!(second.members["C2"].partitions, tp(&[("t2", &[0, 1, 2])]));
}

#[test]
fn the_higher_generation_wins_a_disputed_partition() {
    // a and b both claim t-0; b's claim is newer. Each then has two.
    let l = layout(&[("t", 4)]);
    for assignor in [&StickyAssignor as &dyn Assignor, &CooperativeStickyAssignor] {
        let build = |owner: &str, topics: &[&str], owned: TopicPartitions, generation: i32| {
            if assignor.rebalance_protocol() == RebalanceProtocol::Eager {
                eager(owner, topics, owned, generation)
            } else {
                cooperative(owner, topics, owned, generation)
            }
        };
        let members = [
            build("a", &["t"], tp(&[("t", &[0, 1])]), 3),
            build("b", &["t"], tp(&[("t", &[0, 2])]), 4),
        ];
        let plan = assignor.assign(&members, &l).unwrap();
        let b = &plan.members["b"].partitions["t"];
        assert!(
            b.contains(&0) && b.contains(&2),
            "{}: {plan:?}",
            assignor.name()
        );
        assert!(
            plan.members["a"].partitions["t"].contains(&1),
            "{}",
            assignor.name()
        );
    }
}

#[test]
fn claims_tied_in_one_generation_cancel() {
    // a and b both claim t-0 in generation 5: neither keeps it on the
    // strength of its claim; it is placed afresh, on a (first of the two
    // least loaded). a owns it already, so cooperative hands it over at
    // once and b sees it revoked.
    let l = layout(&[("t", 4)]);
    let members = [
        cooperative("a", &["t"], tp(&[("t", &[0, 1])]), 5),
        cooperative("b", &["t"], tp(&[("t", &[0, 2, 3])]), 5),
    ];
    let plan = CooperativeStickyAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![0, 1]);
    assert_eq!(plan.members["b"].partitions["t"], vec![2, 3]);
    assert!(!plan.needs_follow_up());
    plan.validate(&members, &l, RebalanceProtocol::Cooperative)
        .unwrap();
    // Given to c, which does not own it, it is held back.
    let members = [
        cooperative("a", &["t"], tp(&[("t", &[0, 1])]), 5),
        cooperative("b", &["t"], tp(&[("t", &[0, 2])]), 5),
        cooperative("c", &["t"], tp(&[]), 5),
    ];
    let plan = CooperativeStickyAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.pending, tp(&[("t", &[0])]));
    plan.validate(&members, &l, RebalanceProtocol::Cooperative)
        .unwrap();
    // A stale generation does not block a member: c's old claim on t-1
    // loses to a's.
    let members = [
        cooperative("a", &["t"], tp(&[("t", &[1])]), 5),
        cooperative("c", &["t"], tp(&[("t", &[1, 2])]), 2),
    ];
    let plan = CooperativeStickyAssignor.assign(&members, &l).unwrap();
    assert!(plan.members["a"].partitions["t"].contains(&1));
}

#[test]
fn claims_on_topics_no_longer_subscribed_are_dropped() {
    // a owned u-0 but now only reads t: u-0 goes to b. Cooperative holds
    // it back until a has given it up.
    let l = layout(&[("t", 2), ("u", 1)]);
    let members = [
        eager("a", &["t"], tp(&[("t", &[0, 1]), ("u", &[0])]), 1),
        eager("b", &["t", "u"], tp(&[]), 1),
    ];
    let plan = StickyAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.members["b"].partitions["u"], vec![0]);
    let members = [
        cooperative("a", &["t"], tp(&[("t", &[0, 1]), ("u", &[0])]), 1),
        cooperative("b", &["t", "u"], tp(&[]), 1),
    ];
    let plan = CooperativeStickyAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.pending, tp(&[("u", &[0])]));
    assert_eq!(plan.members["a"].partitions["t"], vec![0, 1]);
}

#[test]
fn eager_members_without_user_data_fall_back_to_owned_partitions() {
    let l = layout(&[("t", 4)]);
    let mut a = member("a", &["t"]);
    a.subscription.owned_partitions = tp(&[("t", &[1, 3])]);
    a.subscription.generation = Some(2);
    let plan = StickyAssignor
        .assign(&[a, member("b", &["t"])], &l)
        .unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![1, 3]);
}

#[test]
fn cooperative_generation_may_come_from_user_data() {
    // A v1 subscription has no generation field: the user data gives it.
    let l = layout(&[("t", 2)]);
    let mut old = member("a", &["t"]);
    old.subscription.owned_partitions = tp(&[("t", &[0])]);
    old.subscription.user_data = CooperativeStickyAssignor.user_data(&tp(&[]), Some(9));
    let newer = cooperative("b", &["t"], tp(&[("t", &[0])]), 8);
    let plan = CooperativeStickyAssignor.assign(&[old, newer], &l).unwrap();
    // a's claim (generation 9) wins; b still claims it, so a keeps it.
    assert_eq!(plan.members["a"].partitions["t"], vec![0]);
    assert_eq!(plan.members["b"].partitions["t"], vec![1]);
}

#[test]
fn user_data_as_the_java_client_writes_it() {
    assert_eq!(StickyAssignor.user_data(&tp(&[("t", &[1])]), None), None);
    let data = StickyAssignor
        .user_data(&tp(&[("t", &[1])]), Some(3))
        .unwrap();
    assert_eq!(
        data.as_ref(),
        &[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3]
    );
    let data = CooperativeStickyAssignor.user_data(&tp(&[]), None).unwrap();
    assert_eq!(data.as_ref(), &[0xff, 0xff, 0xff, 0xff]);
}

fn racked(m: GroupMember, rack: &str) -> GroupMember {
    let mut m = m;
    m.subscription.rack = Some(rack.into());
    m
}

#[test]
fn new_partitions_go_to_members_in_their_racks() {
    // Partition p's replica is in r(p % 2); a is in r0, b in r1.
    let mut l = ClusterLayout::new();
    for p in 0..6 {
        l.add_partition("t", p, [format!("r{}", p % 2)]);
    }
    let members = [
        racked(member("a", &["t"]), "r0"),
        racked(member("b", &["t"]), "r1"),
    ];
    for assignor in [&StickyAssignor as &dyn Assignor, &CooperativeStickyAssignor] {
        let plan = assignor.assign(&members, &l).unwrap();
        assert_eq!(
            plan.members["a"].partitions["t"],
            vec![0, 2, 4],
            "{}",
            assignor.name()
        );
        assert_eq!(
            plan.members["b"].partitions["t"],
            vec![1, 3, 5],
            "{}",
            assignor.name()
        );
    }
}

#[test]
fn racks_do_not_break_balance_or_take_owned_partitions() {
    // Every replica is in r0 with a; b and c are elsewhere. a gets only
    // its share.
    let mut l = ClusterLayout::new();
    for p in 0..6 {
        l.add_partition("t", p, ["r0"]);
    }
    l.add_partition("t", 6, ["r1"]);
    let members = [
        racked(member("a", &["t"]), "r0"),
        racked(member("b", &["t"]), "r1"),
        member("c", &["t"]),
    ];
    let plan = StickyAssignor.assign(&members, &l).unwrap();
    check_balanced(&plan).unwrap();
    assert_eq!(plan.members["a"].partitions["t"].len(), 3);
    assert!(plan.members["b"].partitions["t"].contains(&6));
    // b owned partitions in r0: it keeps them although a matches them.
    let members = [
        racked(cooperative("a", &["t"], tp(&[]), 1), "r0"),
        racked(cooperative("b", &["t"], tp(&[("t", &[0, 1])]), 1), "r1"),
    ];
    let plan = CooperativeStickyAssignor.assign(&members, &l).unwrap();
    let b = &plan.members["b"].partitions["t"];
    assert!(b.contains(&0) && b.contains(&1), "{plan:?}");
}

#[test]
fn moves_prefer_partitions_that_leave_the_givers_rack() {
    // a owns all four; its rack r0 holds replicas of t-2 and t-3 only; b
    // joins in r1, which holds t-0 and t-1: a gives up t-0 and t-1.
    let mut l = ClusterLayout::new();
    for (p, rack) in [(0, "r1"), (1, "r1"), (2, "r0"), (3, "r0")] {
        l.add_partition("t", p, [rack]);
    }
    let members = [
        racked(eager("a", &["t"], tp(&[("t", &[0, 1, 2, 3])]), 1), "r0"),
        racked(member("b", &["t"]), "r1"),
    ];
    let plan = StickyAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![2, 3]);
    assert_eq!(plan.members["b"].partitions["t"], vec![0, 1]);
}
