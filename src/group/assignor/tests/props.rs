//! Properties over generated groups: topics of 0–7 partitions, 1–6
//! members with equal or different subscriptions, racks or none, and
//! random (also conflicting and stale) claims.

use proptest::prelude::*;

use super::simulation::Sim;
use super::*;

const RACKS: [&str; 3] = ["r0", "r1", "r2"];

/// A generated group: the layout, and each member's topics and rack.
#[derive(Debug, Clone)]
struct Scenario {
    layout: ClusterLayout,
    topics: Vec<String>,
    members: Vec<(String, Vec<String>, Option<String>)>,
}

impl Scenario {
    fn identical(&self) -> bool {
        self.members.windows(2).all(|w| w[0].1 == w[1].1)
    }

    fn sim(&self) -> Sim {
        let mut sim = Sim::default();
        for (id, topics, rack) in &self.members {
            sim.join(id, topics, rack.clone());
        }
        sim
    }

    fn total_partitions(&self) -> usize {
        self.topics
            .iter()
            .map(|t| self.layout.partitions(t).count())
            .sum()
    }
}

/// `equal`: every member subscribes to every topic.
fn scenario(equal: bool) -> impl Strategy<Value = Scenario> {
    let racks = prop::collection::vec(0..3usize, 0..3);
    let topics = prop::collection::vec(prop::collection::vec(racks, 0..8), 1..5);
    let member = (
        prop::collection::vec(any::<bool>(), 4),
        prop::option::of(0..3usize),
    );
    (topics, prop::collection::vec(member, 1..7), any::<bool>()).prop_map(
        move |(topics, members, use_racks)| {
            let mut layout = ClusterLayout::new();
            let names: Vec<String> = (0..topics.len()).map(|t| format!("t{t}")).collect();
            for (name, partitions) in names.iter().zip(&topics) {
                layout.add_topic(name.clone(), 0);
                for (p, racks) in partitions.iter().enumerate() {
                    let racks = racks.iter().filter(|_| use_racks).map(|r| RACKS[*r]);
                    layout.add_partition(name.clone(), p as i32, racks);
                }
            }
            let members = members
                .into_iter()
                .enumerate()
                .map(|(i, (pick, rack))| {
                    let mut topics: Vec<String> = names
                        .iter()
                        .zip(&pick)
                        .filter(|(_, p)| equal || **p)
                        .map(|(t, _)| t.clone())
                        .collect();
                    if topics.is_empty() {
                        topics.push(names[0].clone());
                    }
                    let rack = rack.filter(|_| use_racks).map(|r| RACKS[r].to_string());
                    (format!("m{i}"), topics, rack)
                })
                .collect();
            Scenario {
                layout,
                topics: names,
                members,
            }
        },
    )
}

/// Per member (by index): the (topic index, partition) pairs it claims,
/// and its generation.
type Claims = Vec<(Vec<(usize, i32)>, Option<i32>)>;

/// Random claims, also on partitions and topics that do not exist.
fn claims() -> impl Strategy<Value = Claims> {
    let owned = prop::collection::vec((0..5usize, -1..9i32), 0..6);
    prop::collection::vec((owned, prop::option::of(-1..4i32)), 6)
}

fn assignors() -> [&'static dyn Assignor; 4] {
    [
        &RangeAssignor,
        &RoundRobinAssignor,
        &StickyAssignor,
        &CooperativeStickyAssignor,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the input, every assignor's answer is valid, assigns every
    /// partition once (or holds it back, cooperative only) and only to
    /// subscribers.
    #[test]
    fn every_answer_is_valid_and_complete(s in scenario(false), claims in claims()) {
        for assignor in assignors() {
            let mut members: Vec<GroupMember> = s.sim().members(assignor);
            for (m, (owned, generation)) in members.iter_mut().zip(&claims) {
                let sub = &mut m.subscription;
                for (t, p) in owned {
                    sub.owned_partitions.entry(format!("t{t}")).or_default().push(*p);
                }
                sub.generation = *generation;
                sub.user_data = assignor.user_data(&sub.owned_partitions, *generation);
            }
            let plan = assignor.assign(&members, &s.layout).unwrap();
            let checked = check_valid_and_complete(&members, &s.layout, assignor.rebalance_protocol(), &plan);
            prop_assert!(checked.is_ok(), "{}: {:?}", assignor.name(), checked);
        }
    }

    /// With equal subscriptions loads differ by at most one: per topic for
    /// `range`, in total for the others.
    #[test]
    fn equal_subscriptions_are_balanced(s in scenario(true)) {
        for assignor in assignors() {
            let mut sim = s.sim();
            let plan = sim.settle(assignor, &s.layout);
            prop_assert!(plan.is_ok(), "{}: {:?}", assignor.name(), plan);
            let plan = plan.unwrap_or_default();
            let members = sim.members(assignor);
            let balanced = if assignor.name() == "range" {
                check_balanced_per_topic(&members, &plan)
            } else {
                check_balanced(&plan)
            };
            prop_assert!(balanced.is_ok(), "{}: {:?}", assignor.name(), balanced);
        }
    }

    /// Sticky: after a member leaves, everyone else keeps all it had, in
    /// one round (cooperative too: nothing moves between live members),
    /// and loads stay balanced.
    #[test]
    fn after_a_leave_the_others_keep_everything(s in scenario(true), who in any::<prop::sample::Index>()) {
        prop_assume!(s.members.len() >= 2);
        for assignor in [&StickyAssignor as &dyn Assignor, &CooperativeStickyAssignor] {
            let mut sim = s.sim();
            prop_assert!(sim.settle(assignor, &s.layout).is_ok());
            let before = sim.owned();
            let leaver = s.members[who.index(s.members.len())].0.clone();
            sim.leave(&leaver);
            let plan = sim.rebalance(assignor, &s.layout);
            prop_assert!(plan.is_ok(), "{}: {:?}", assignor.name(), plan);
            let plan = plan.unwrap_or_default();
            prop_assert!(!plan.needs_follow_up(), "{}: {:?}", assignor.name(), plan.pending);
            let survivors: Vec<&str> = sim.members.keys().map(String::as_str).collect();
            let kept = check_kept(&before, &plan, &survivors);
            prop_assert!(kept.is_ok(), "{}: {:?}", assignor.name(), kept);
            prop_assert!(check_balanced(&plan).is_ok(), "{}", assignor.name());
        }
    }

    /// Sticky: after a member joins, only partitions for the newcomer
    /// move, each old member giving up no more than its load above the new
    /// even share (cooperative: over its two rounds, never owned twice).
    #[test]
    fn after_a_join_only_the_newcomer_gains(s in scenario(true), rack in prop::option::of(0..3usize)) {
        for assignor in [&StickyAssignor as &dyn Assignor, &CooperativeStickyAssignor] {
            let mut sim = s.sim();
            prop_assert!(sim.settle(assignor, &s.layout).is_ok());
            let before = sim.owned();
            let topics = s.members[0].1.clone();
            sim.join("newcomer", &topics, rack.map(|r| RACKS[r].to_string()));
            let plan = sim.settle(assignor, &s.layout);
            prop_assert!(plan.is_ok(), "{}: {:?}", assignor.name(), plan);
            let plan = plan.unwrap_or_default();
            let gained = check_only_newcomers_gain(&before, &plan);
            prop_assert!(gained.is_ok(), "{}: {:?}", assignor.name(), gained);
            prop_assert!(check_balanced(&plan).is_ok(), "{}", assignor.name());
            let share = s.total_partitions() / sim.members.len();
            for (id, had) in &before {
                let has = count(&plan.members[id].partitions);
                prop_assert!(count(had).saturating_sub(has) <= count(had).saturating_sub(share), "{} {id}", assignor.name());
            }
        }
    }
}

#[test]
fn control_scenarios_can_have_different_subscriptions() {
    // The generator does produce what the properties claim to cover.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut differing = 0;
    for _ in 0..50 {
        let s = scenario(false).new_tree(&mut runner).unwrap().current();
        differing += usize::from(!s.identical());
        assert!(
            scenario(true)
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .identical()
        );
    }
    assert!(differing > 0);
}
