//! The `stable` assignor: balance, validity, a restarted member getting its
//! partitions back, and how few partitions a join or a leave moves — with
//! `range` as the control that moves more.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

/// One member of a simulated group: its member id changes on a restart,
/// its identity does not.
#[derive(Debug, Clone)]
struct Node {
    member_id: String,
    identity: String,
    owned: TopicPartitions,
    generation: Option<i32>,
}

/// A group whose leader is one assignor instance, rebalanced round by
/// round; every round is validated.
struct Group {
    nodes: Vec<Node>,
    topics: Vec<String>,
    generation: i32,
    leader: Leader,
    layout: ClusterLayout,
    /// The memory's clock (only the stable assignor reads it).
    now: Instant,
}

impl Group {
    fn new(leader: Leader, layout: ClusterLayout) -> Self {
        let topics = layout.topics().map(str::to_string).collect();
        Group {
            nodes: Vec::new(),
            topics,
            generation: 0,
            leader,
            layout,
            now: Instant::now(),
        }
    }

    /// A member of identity `identity` (and member id `member_id`) joins,
    /// owning nothing.
    fn join(&mut self, member_id: &str, identity: &str) {
        self.nodes.push(Node {
            member_id: member_id.to_string(),
            identity: identity.to_string(),
            owned: TopicPartitions::new(),
            generation: None,
        });
    }

    fn leave(&mut self, member_id: &str) {
        self.nodes.retain(|n| n.member_id != member_id);
    }

    /// The members as the leader gets them, through the wire format. Each
    /// member writes its own user data (its identity); eager members
    /// gave their partitions up before joining.
    fn members(&self) -> Vec<GroupMember> {
        let leader = self.leader.assignor();
        let cooperative = leader.rebalance_protocol() == RebalanceProtocol::Cooperative;
        self.nodes
            .iter()
            .map(|n| {
                let own = StableAssignor::new(n.identity.clone());
                let own: &dyn Assignor = match self.leader {
                    Leader::Stable(_) => &own,
                    Leader::Other(_) => leader,
                };
                let sub = Subscription {
                    topics: self.topics.clone(),
                    user_data: own.user_data(&n.owned, n.generation),
                    owned_partitions: if cooperative {
                        n.owned.clone()
                    } else {
                        TopicPartitions::new()
                    },
                    generation: n.generation,
                    rack: None,
                };
                GroupMember::from_join(n.member_id.clone(), None, sub.encode(3).unwrap()).unwrap()
            })
            .collect()
    }

    /// One rebalance: assign, check, and let every member take its part.
    fn round(&mut self) -> GroupAssignment {
        let members = self.members();
        let plan = match &self.leader {
            Leader::Stable(s) => s.assign_at(&members, &self.layout, self.now),
            Leader::Other(a) => a.assign(&members, &self.layout),
        }
        .unwrap();
        let protocol = self.leader.assignor().rebalance_protocol();
        check_valid_and_complete(&members, &self.layout, protocol, &plan).unwrap();
        self.generation += 1;
        for n in &mut self.nodes {
            n.owned = plan.members[&n.member_id].partitions.clone();
            n.generation = Some(self.generation);
        }
        plan
    }

    /// Rebalances until nothing is held back (two rounds at most).
    fn settle(&mut self) -> GroupAssignment {
        let first = self.round();
        if !first.needs_follow_up() {
            return first;
        }
        let second = self.round();
        assert!(!second.needs_follow_up(), "pending: {:?}", second.pending);
        second
    }

    /// Who owns each partition, by identity.
    fn owners(&self) -> BTreeMap<(String, i32), String> {
        let mut out = BTreeMap::new();
        for n in &self.nodes {
            for (t, ps) in &n.owned {
                for &p in ps {
                    out.insert((t.clone(), p), n.identity.clone());
                }
            }
        }
        out
    }

    fn owned_by(&self, identity: &str) -> TopicPartitions {
        let mut out = TopicPartitions::new();
        for n in self.nodes.iter().filter(|n| n.identity == identity) {
            for (t, ps) in &n.owned {
                out.entry(t.clone()).or_default().extend(ps);
            }
        }
        out
    }
}

/// A stable leader (identity `leader`) remembering for `retention`.
fn stable_leader(retention: Duration) -> Leader {
    Leader::Stable(Arc::new(
        StableAssignor::new("leader").with_retention(retention),
    ))
}

fn range_leader() -> Leader {
    Leader::Other(Arc::new(RangeAssignor))
}

/// The group's leader: the stable assignor is called with the test's
/// clock.
enum Leader {
    Stable(Arc<StableAssignor>),
    Other(Arc<dyn Assignor>),
}

impl Leader {
    fn assignor(&self) -> &dyn Assignor {
        match self {
            Leader::Stable(s) => s.as_ref(),
            Leader::Other(a) => a.as_ref(),
        }
    }
}

/// How many partitions changed owner (by identity) between two snapshots;
/// a partition with no owner before or after counts when it has one now.
fn moved(
    before: &BTreeMap<(String, i32), String>,
    after: &BTreeMap<(String, i32), String>,
) -> usize {
    after
        .iter()
        .filter(|(tp, owner)| before.get(*tp) != Some(*owner))
        .count()
}

/// `n` members `m0..` (identities `id0..`) settled on 60 partitions of two
/// topics.
fn settled_group(leader: Leader, n: usize) -> Group {
    let mut g = Group::new(leader, layout(&[("a", 24), ("b", 36)]));
    for i in 0..n {
        g.join(&format!("m{i}"), &format!("id{i}"));
        g.settle();
    }
    g
}

const LONG: Duration = Duration::from_secs(3600);

#[test]
fn by_name_and_the_table_know_stable() {
    let a = by_name("stable").unwrap();
    assert_eq!(a.name(), "stable");
    assert_eq!(a.rebalance_protocol(), RebalanceProtocol::Cooperative);
    let config = crate::config::Config::default();
    let c = configured("stable", &config).unwrap();
    assert_eq!(c.name(), "stable");
    assert!(configured("bogus", &config).is_err());
}

#[test]
fn a_restarted_member_gets_exactly_its_old_partitions_back() {
    let mut g = settled_group(stable_leader(LONG), 4);
    check_balanced(&g.round()).unwrap();
    let old = g.owned_by("id1");
    let before = g.owners();
    // m1 leaves (LeaveGroup on close): the others take its partitions.
    g.leave("m1");
    let without = g.settle();
    check_balanced(&without).unwrap();
    assert_eq!(moved(&before, &g.owners()), count(&old));
    // It comes back with a new member id, owning nothing.
    g.now += Duration::from_secs(5);
    g.join("m1-restarted", "id1");
    let first = g.round();
    assert!(
        first.needs_follow_up(),
        "the others must give them up first"
    );
    let back = g.settle();
    assert_eq!(back.members["m1-restarted"].partitions, old);
    assert_eq!(g.owners(), before, "everyone is back where they were");
}

#[test]
fn control_a_new_identity_does_not_take_the_leavers_partitions() {
    let mut g = settled_group(stable_leader(LONG), 4);
    let old = g.owned_by("id1");
    g.leave("m1");
    g.settle();
    g.join("m9", "id9");
    let plan = g.settle();
    check_balanced(&plan).unwrap();
    assert_ne!(plan.members["m9"].partitions, old);
}

#[test]
fn a_replaced_member_still_listed_hands_its_partitions_over() {
    let mut g = settled_group(stable_leader(LONG), 3);
    let old = g.owned_by("id2");
    // A quick restart: the old incarnation (m2) is still a member.
    g.join("m2-new", "id2");
    let first = g.round();
    assert!(
        first.members["m2"].partitions.is_empty(),
        "replaced: nothing"
    );
    assert!(
        first.members["m2-new"].partitions.is_empty(),
        "m2 still owns them"
    );
    assert_eq!(first.pending, old);
    // Its session expires; the follow-up hands them over.
    g.leave("m2");
    let second = g.settle();
    assert_eq!(second.members["m2-new"].partitions, old);
}

#[test]
fn the_memory_forgets_after_the_retention() {
    let mut g = settled_group(stable_leader(Duration::from_secs(10)), 3);
    let old = g.owned_by("id0");
    g.leave("m0");
    g.settle();
    g.now += Duration::from_secs(11);
    g.join("m0-late", "id0");
    let plan = g.settle();
    check_balanced(&plan).unwrap();
    assert_ne!(plan.members["m0-late"].partitions, old);
}

#[test]
fn a_static_member_is_known_by_its_instance_id() {
    let l = layout(&[("t", 4)]);
    let leader = StableAssignor::new("leader");
    let plain = |id: &str, instance: &str, owned: &[i32]| {
        let mut s = Subscription::new(["t"]);
        if !owned.is_empty() {
            s.owned_partitions = tp(&[("t", owned)]);
            s.generation = Some(3);
        }
        GroupMember::new(id, s).with_instance_id(instance)
    };
    let first = leader
        .assign(&[plain("a", "i-a", &[]), plain("b", "i-b", &[])], &l)
        .unwrap();
    let b_had = first.members["b"].partitions["t"].clone();
    let a_had = first.members["a"].partitions["t"].clone();
    // b leaves; a takes everything.
    leader.assign(&[plain("a", "i-a", &a_had)], &l).unwrap();
    // b comes back as a new member with the same instance id and no user
    // data: a gives b's partitions up for it.
    let next = leader
        .assign(
            &[plain("a", "i-a", &[0, 1, 2, 3]), plain("b2", "i-b", &[])],
            &l,
        )
        .unwrap();
    assert_eq!(next.pending["t"], b_had);
    assert_eq!(next.members["a"].partitions["t"], a_had);
}

#[test]
fn one_join_moves_only_the_newcomers_share_and_range_moves_more() {
    // 4 members, 60 partitions; a fifth joins: P/(N+1) = 12.
    let mut stable = settled_group(stable_leader(LONG), 4);
    let before = stable.owners();
    stable.join("m4", "id4");
    let plan = stable.settle();
    check_balanced(&plan).unwrap();
    let stable_moved = moved(&before, &stable.owners());
    assert_eq!(stable_moved, 12);
    assert_eq!(count(&stable.owned_by("id4")), 12);

    let mut range = settled_group(range_leader(), 4);
    let before = range.owners();
    range.join("m4", "id4");
    range.settle();
    let range_moved = moved(&before, &range.owners());
    assert!(range_moved > stable_moved, "range moved {range_moved}");
}

#[test]
fn one_leave_moves_only_the_leavers_partitions_and_range_moves_more() {
    let mut stable = settled_group(stable_leader(LONG), 5);
    let before = stable.owners();
    let leaver = count(&stable.owned_by("id2"));
    stable.leave("m2");
    let plan = stable.settle();
    check_balanced(&plan).unwrap();
    let stable_moved = moved(&before, &stable.owners());
    assert_eq!(stable_moved, leaver);

    let mut range = settled_group(range_leader(), 5);
    let before = range.owners();
    let leaver = count(&range.owned_by("id2"));
    range.leave("m2");
    range.settle();
    let range_moved = moved(&before, &range.owners());
    assert!(range_moved > leaver, "range moved {range_moved}");
}

#[test]
fn control_a_restart_under_range_lands_elsewhere() {
    // Range has no identity: the restarted member (a new member id, which
    // sorts elsewhere) gets another range.
    let mut g = settled_group(range_leader(), 4);
    let old = g.owned_by("id1");
    g.leave("m1");
    g.settle();
    g.join("z-m1-restarted", "id1");
    g.settle();
    assert_ne!(g.owned_by("id1"), old);
}

/// One change to the group.
#[derive(Debug, Clone)]
enum Op {
    Join,
    Leave(usize),
    /// Leave and come back at once with a new member id.
    Restart(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Join),
        (0..8usize).prop_map(Op::Leave),
        (0..8usize).prop_map(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over random joins, leaves and restarts: every round valid (checked
    /// in `round`), the settled group balanced, a leave moves only the
    /// leaver's partitions, and a restart puts everyone back.
    #[test]
    fn stable_stays_valid_balanced_and_sticky(
        partitions in prop::collection::vec(1..13i32, 1..4),
        ops in prop::collection::vec(op(), 1..12),
    ) {
        let topics: Vec<(String, i32)> =
            partitions.iter().enumerate().map(|(i, n)| (format!("t{i}"), *n)).collect();
        let l = topics.iter().fold(ClusterLayout::new(), |l, (t, n)| l.with_topic(t.clone(), *n));
        let mut g = Group::new(stable_leader(LONG), l);
        let mut next = 0;
        g.join("m0", "id0");
        g.settle();
        for op in ops {
            let before = g.owners();
            match op {
                Op::Join => {
                    next += 1;
                    g.join(&format!("m{next}"), &format!("id{next}"));
                    let plan = g.settle();
                    prop_assert!(check_balanced(&plan).is_ok(), "{:?}", plan);
                }
                Op::Leave(i) if g.nodes.len() > 1 => {
                    let n = g.nodes[i % g.nodes.len()].clone();
                    g.leave(&n.member_id);
                    let plan = g.settle();
                    prop_assert!(check_balanced(&plan).is_ok(), "{:?}", plan);
                    prop_assert_eq!(moved(&before, &g.owners()), count(&n.owned));
                }
                Op::Leave(_) => {}
                Op::Restart(i) => {
                    let n = g.nodes[i % g.nodes.len()].clone();
                    g.leave(&n.member_id);
                    g.settle();
                    next += 1;
                    g.join(&format!("{}-r{next}", n.member_id), &n.identity);
                    let plan = g.settle();
                    prop_assert!(check_balanced(&plan).is_ok(), "{:?}", plan);
                    prop_assert_eq!(g.owners(), before);
                }
            }
        }
    }
}
