//! A group that rebalances round after round: each member keeps what it
//! is assigned and reports it the way its assignor's protocol says (the
//! eager `sticky` in its user data, `cooperative-sticky` as owned
//! partitions with a generation). Every round is checked.

use super::*;

/// One simulated member.
#[derive(Debug, Clone)]
pub(super) struct SimMember {
    pub topics: Vec<String>,
    pub rack: Option<String>,
    pub owned: TopicPartitions,
    pub generation: Option<i32>,
}

/// A simulated group.
#[derive(Debug, Clone, Default)]
pub(super) struct Sim {
    pub members: BTreeMap<String, SimMember>,
    pub generation: i32,
}

impl Sim {
    pub fn join(&mut self, id: &str, topics: &[String], rack: Option<String>) {
        let m = SimMember {
            topics: topics.to_vec(),
            rack,
            owned: TopicPartitions::new(),
            generation: None,
        };
        self.members.insert(id.to_string(), m);
    }

    pub fn leave(&mut self, id: &str) {
        self.members.remove(id);
    }

    /// What each member owns now.
    pub fn owned(&self) -> BTreeMap<String, TopicPartitions> {
        self.members
            .iter()
            .map(|(id, m)| (id.clone(), m.owned.clone()))
            .collect()
    }

    /// The members as the leader sees them under `assignor`.
    pub fn members(&self, assignor: &dyn Assignor) -> Vec<GroupMember> {
        let cooperative = assignor.rebalance_protocol() == RebalanceProtocol::Cooperative;
        self.members
            .iter()
            .map(|(id, m)| {
                let subscription = Subscription {
                    topics: m.topics.clone(),
                    user_data: assignor.user_data(&m.owned, m.generation),
                    // Eager members gave everything up before joining.
                    owned_partitions: if cooperative {
                        m.owned.clone()
                    } else {
                        TopicPartitions::new()
                    },
                    generation: m.generation,
                    rack: m.rack.clone(),
                };
                // Through the wire format, as a real leader gets it.
                let bytes = subscription.encode(3).unwrap();
                GroupMember::from_join(id.clone(), None, bytes).unwrap()
            })
            .collect()
    }

    /// One rebalance: assigns, checks the answer, and lets every member
    /// take its assignment in the next generation.
    pub fn rebalance(
        &mut self,
        assignor: &dyn Assignor,
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, String> {
        let members = self.members(assignor);
        let protocol = assignor.rebalance_protocol();
        let plan = assignor
            .assign(&members, layout)
            .map_err(|e| e.to_string())?;
        check_valid_and_complete(&members, layout, protocol, &plan)?;
        if protocol == RebalanceProtocol::Cooperative {
            check_no_double_ownership(&self.owned(), &plan)?;
        }
        self.generation += 1;
        for (id, m) in self.members.iter_mut() {
            m.owned = plan.members[id].partitions.clone();
            m.generation = Some(self.generation);
        }
        Ok(plan)
    }

    /// Rebalances until nothing is held back; a cooperative group needs at
    /// most two rounds.
    pub fn settle(
        &mut self,
        assignor: &dyn Assignor,
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, String> {
        let first = self.rebalance(assignor, layout)?;
        if !first.needs_follow_up() {
            return Ok(first);
        }
        let second = self.rebalance(assignor, layout)?;
        if second.needs_follow_up() {
            return Err(format!(
                "still pending after two rounds: {:?}",
                second.pending
            ));
        }
        Ok(second)
    }
}

#[test]
fn a_cooperative_join_takes_two_rounds_and_never_double_owns() {
    let l = layout(&[("t", 6)]);
    let topics = vec!["t".to_string()];
    let mut sim = Sim::default();
    sim.join("a", &topics, None);
    sim.join("b", &topics, None);
    sim.settle(&CooperativeStickyAssignor, &l).unwrap();
    let before = sim.owned();
    sim.join("c", &topics, None);
    let first = sim.rebalance(&CooperativeStickyAssignor, &l).unwrap();
    assert!(first.members["c"].partitions.is_empty());
    assert_eq!(count(&first.pending), 2);
    check_only_newcomers_gain(&before, &first).unwrap();
    let second = sim.rebalance(&CooperativeStickyAssignor, &l).unwrap();
    assert!(!second.needs_follow_up());
    assert_eq!(second.members["c"].partitions, first.pending);
    check_only_newcomers_gain(&before, &second).unwrap();
    check_balanced(&second).unwrap();
}

#[test]
fn control_the_simulation_catches_a_double_owning_assignor() {
    /// Cooperative by name, but hands partitions over at once (the eager
    /// sticky assignment).
    #[derive(Debug)]
    struct Hasty;
    impl Assignor for Hasty {
        fn name(&self) -> &str {
            "hasty"
        }
        fn rebalance_protocol(&self) -> RebalanceProtocol {
            RebalanceProtocol::Cooperative
        }
        fn assign(
            &self,
            members: &[GroupMember],
            layout: &ClusterLayout,
        ) -> crate::Result<GroupAssignment> {
            // Sticky reads user data; give it the owned partitions there.
            let as_eager: Vec<GroupMember> = members
                .iter()
                .cloned()
                .map(|mut m| {
                    let s = &mut m.subscription;
                    s.user_data = StickyAssignor.user_data(&s.owned_partitions, s.generation);
                    m
                })
                .collect();
            StickyAssignor.assign(&as_eager, layout)
        }
    }
    let l = layout(&[("t", 4)]);
    let topics = vec!["t".to_string()];
    let mut sim = Sim::default();
    sim.join("a", &topics, None);
    sim.settle(&Hasty, &l).unwrap();
    sim.join("b", &topics, None);
    let err = sim.rebalance(&Hasty, &l).unwrap_err();
    assert!(err.contains("still owns") || err.contains("while"), "{err}");
}
