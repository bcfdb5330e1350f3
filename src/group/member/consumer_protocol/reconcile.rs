//! Reconciliation under the consumer protocol, without I/O: what the
//! member owns, the assignment the coordinator wants it to have (by topic
//! id), and the next step from one to the other.
//!
//! Steps come one at a time and always against the newest target: first
//! every owned partition the target no longer holds is revoked, and only
//! when nothing is left to revoke are the new partitions assigned. A
//! target whose topic ids cannot all be named yet is reconciled as far as
//! it can be; the rest waits, and the engine refreshes metadata.

use std::collections::{BTreeMap, BTreeSet};

use crate::group::TopicPartitions;
use crate::protocol::messages::consumer_group_heartbeat_response::Assignment;
use crate::protocol::primitives::Uuid;

/// Partitions by topic id.
pub(crate) type IdPartitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// Partitions by topic id, each topic with the name it resolved to.
pub(crate) type Named = BTreeMap<Uuid, (String, BTreeSet<i32>)>;

/// The assignment the coordinator wants the member to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The member epoch the assignment came with.
    pub(crate) epoch: i32,
    pub(crate) partitions: IdPartitions,
}

impl Target {
    /// A target from a heartbeat answer's assignment. Broker input is
    /// cleaned up rather than trusted: the zero topic id and negative
    /// partitions are dropped, duplicates merged, empty topics left out.
    pub(crate) fn from_assignment(epoch: i32, assignment: &Assignment) -> Target {
        let mut partitions = IdPartitions::new();
        for t in &assignment.topic_partitions {
            if t.topic_id == Uuid::ZERO {
                tracing::warn!(epoch, "an assignment names the zero topic id; ignored");
                continue;
            }
            partitions
                .entry(t.topic_id)
                .or_default()
                .extend(t.partitions.iter().copied().filter(|p| *p >= 0));
        }
        partitions.retain(|_, ps| !ps.is_empty());
        Target { epoch, partitions }
    }
}

/// What the member should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing (left) to reconcile.
    Idle,
    /// Give these up; report back with [`Reconciler::revoked`] once the
    /// consumer has let go of them.
    Revoke(Named),
    /// Take these (possibly none: the first assignment after a join is
    /// always announced); report back with [`Reconciler::assigned`].
    Assign {
        added: Named,
        /// The member epoch the assignment came with.
        epoch: i32,
    },
}

/// The member's side of reconciliation.
#[derive(Debug)]
pub(crate) struct Reconciler {
    owned: Named,
    target: Option<Target>,
    /// Ids of the target that could not be named at the last step.
    unresolved: BTreeSet<Uuid>,
    /// No assignment has been announced since the member (re)joined.
    announce: bool,
}

impl Default for Reconciler {
    fn default() -> Self {
        Reconciler::new()
    }
}

impl Reconciler {
    /// A member that owns nothing and has not joined.
    pub(crate) fn new() -> Self {
        Reconciler {
            owned: Named::new(),
            target: None,
            unresolved: BTreeSet::new(),
            announce: true,
        }
    }

    /// The coordinator sent an assignment: it becomes the target (an
    /// older one never replaces a newer one).
    pub(crate) fn set_target(&mut self, target: Target) {
        if self.target.as_ref().is_some_and(|t| t.epoch > target.epoch) {
            tracing::debug!(
                epoch = target.epoch,
                "an assignment older than the pending one; ignored"
            );
            return;
        }
        self.target = Some(target);
    }

    /// The next step towards the newest target; `names` resolves topic
    /// ids the member does not own yet.
    pub(crate) fn next(&mut self, names: impl Fn(&Uuid) -> Option<String>) -> Step {
        let Some(target) = &self.target else {
            return Step::Idle;
        };
        self.unresolved.clear();
        let mut wanted = Named::new();
        for (id, ps) in &target.partitions {
            let name = match self.owned.get(id) {
                Some((name, _)) => Some(name.clone()),
                None => names(id),
            };
            match name {
                Some(name) => {
                    wanted.insert(*id, (name, ps.clone()));
                }
                None => {
                    self.unresolved.insert(*id);
                }
            }
        }
        let revoke = minus(&self.owned, &wanted);
        if !revoke.is_empty() {
            return Step::Revoke(revoke);
        }
        let added = minus(&wanted, &self.owned);
        if !added.is_empty() || self.announce {
            return Step::Assign {
                added,
                epoch: target.epoch,
            };
        }
        if self.unresolved.is_empty() {
            self.target = None;
        }
        Step::Idle
    }

    /// The consumer let go of `partitions`.
    pub(crate) fn revoked(&mut self, partitions: &Named) {
        for (id, (_, ps)) in partitions {
            if let Some((_, owned)) = self.owned.get_mut(id) {
                owned.retain(|p| !ps.contains(p));
            }
        }
        self.owned.retain(|_, (_, ps)| !ps.is_empty());
    }

    /// The consumer was told of `partitions`.
    pub(crate) fn assigned(&mut self, partitions: &Named) {
        for (id, (name, ps)) in partitions {
            self.owned
                .entry(*id)
                .or_insert_with(|| (name.clone(), BTreeSet::new()))
                .1
                .extend(ps.iter().copied());
        }
        self.announce = false;
    }

    /// The membership is gone: forgets everything and returns what was
    /// owned. The next assignment is announced again.
    pub(crate) fn lose_all(&mut self) -> Named {
        self.target = None;
        self.unresolved.clear();
        self.announce = true;
        std::mem::take(&mut self.owned)
    }

    /// What the member owns.
    pub(crate) fn owned(&self) -> &Named {
        &self.owned
    }

    /// The owned partitions by topic id (what heartbeats report).
    pub(crate) fn owned_ids(&self) -> IdPartitions {
        ids(&self.owned)
    }

    /// Topic ids of the target that could not be named at the last step.
    pub(crate) fn unresolved(&self) -> &BTreeSet<Uuid> {
        &self.unresolved
    }
}

/// The partitions of `a` that are not in `b`.
pub(crate) fn minus(a: &Named, b: &Named) -> Named {
    let mut out = Named::new();
    for (id, (name, ps)) in a {
        let other = b.get(id).map(|(_, o)| o);
        let left: BTreeSet<i32> = ps
            .iter()
            .copied()
            .filter(|p| !other.is_some_and(|o| o.contains(p)))
            .collect();
        if !left.is_empty() {
            out.insert(*id, (name.clone(), left));
        }
    }
    out
}

/// By topic id only.
pub(crate) fn ids(named: &Named) -> IdPartitions {
    named
        .iter()
        .map(|(id, (_, ps))| (*id, ps.clone()))
        .collect()
}

/// By topic name, for the consumer (two ids of one name are merged).
pub(crate) fn by_name(named: &Named) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for (name, ps) in named.values() {
        let v = out.entry(name.clone()).or_default();
        v.extend(ps.iter().copied());
        v.sort_unstable();
        v.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::consumer_group_heartbeat_response::TopicPartitions as RespTp;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);

    fn names(id: &Uuid) -> Option<String> {
        match id.as_u128() {
            0xa => Some("a".into()),
            0xb => Some("b".into()),
            _ => None,
        }
    }

    fn target(epoch: i32, parts: &[(Uuid, &[i32])]) -> Target {
        Target {
            epoch,
            partitions: parts
                .iter()
                .map(|(id, ps)| (*id, ps.iter().copied().collect()))
                .collect(),
        }
    }

    fn named(parts: &[(Uuid, &str, &[i32])]) -> Named {
        parts
            .iter()
            .map(|(id, n, ps)| (*id, (n.to_string(), ps.iter().copied().collect())))
            .collect()
    }

    /// Runs steps to the end, the consumer agreeing at once, and returns
    /// them.
    fn run(r: &mut Reconciler, names: impl Fn(&Uuid) -> Option<String>) -> Vec<Step> {
        let mut steps = Vec::new();
        for _ in 0..10 {
            let s = r.next(&names);
            match &s {
                Step::Idle => return steps,
                Step::Revoke(p) => r.revoked(p),
                Step::Assign { added, .. } => r.assigned(added),
            }
            steps.push(s);
        }
        panic!("reconciliation does not end: {steps:?}");
    }

    #[test]
    fn the_first_assignment_is_announced_even_when_empty() {
        let mut r = Reconciler::new();
        r.set_target(target(3, &[]));
        assert_eq!(
            run(&mut r, names),
            [Step::Assign {
                added: Named::new(),
                epoch: 3
            }]
        );
        // Control: the same empty target again is nothing to do.
        r.set_target(target(4, &[]));
        assert_eq!(run(&mut r, names), []);
    }

    #[test]
    fn revokes_before_it_assigns() {
        let mut r = Reconciler::new();
        r.set_target(target(1, &[(A, &[0, 1, 2])]));
        run(&mut r, names);
        r.set_target(target(2, &[(A, &[0]), (B, &[0])]));
        let steps = run(&mut r, names);
        assert_eq!(
            steps,
            [
                Step::Revoke(named(&[(A, "a", &[1, 2])])),
                Step::Assign {
                    added: named(&[(B, "b", &[0])]),
                    epoch: 2
                },
            ]
        );
        assert_eq!(r.owned(), &named(&[(A, "a", &[0]), (B, "b", &[0])]));
        // Control: while the revocation is not reported done, the next
        // step is the same revocation, never the assignment.
        r.set_target(target(3, &[(B, &[0, 1])]));
        let first = r.next(names);
        assert_eq!(first, Step::Revoke(named(&[(A, "a", &[0])])));
        assert_eq!(r.next(names), first, "nothing is assigned before it");
    }

    #[test]
    fn a_newer_target_mid_reconciliation_is_what_the_next_step_follows() {
        let mut r = Reconciler::new();
        r.set_target(target(1, &[(A, &[0, 1, 2, 3])]));
        run(&mut r, names);
        // Epoch 2 moves 2 and 3 away and brings b-0.
        r.set_target(target(2, &[(A, &[0, 1]), (B, &[0])]));
        let Step::Revoke(p) = r.next(names) else {
            panic!("a revocation first")
        };
        // While the consumer is at it, epoch 3 arrives: b-0 is not this
        // member's any more, a-1 goes too.
        r.set_target(target(3, &[(A, &[0])]));
        r.revoked(&p);
        let rest = run(&mut r, names);
        assert_eq!(
            rest,
            [Step::Revoke(named(&[(A, "a", &[1])]))],
            "the newest target: one more revocation, and b-0 never assigned"
        );
        assert_eq!(r.owned(), &named(&[(A, "a", &[0])]));
        // Control: an older target arriving late is ignored.
        r.set_target(target(5, &[(A, &[0])]));
        r.set_target(target(4, &[(A, &[0, 1, 2])]));
        assert_eq!(run(&mut r, names), []);
    }

    #[test]
    fn unresolved_topic_ids_wait_and_the_rest_is_reconciled() {
        let c = Uuid::from_u128(0xc);
        let mut r = Reconciler::new();
        r.set_target(target(1, &[(A, &[0]), (c, &[0, 1])]));
        assert_eq!(
            run(&mut r, names),
            [Step::Assign {
                added: named(&[(A, "a", &[0])]),
                epoch: 1
            }]
        );
        assert_eq!(r.unresolved().iter().collect::<Vec<_>>(), [&c]);
        // Still not resolvable: nothing more, the target is kept.
        assert_eq!(run(&mut r, names), []);
        assert_eq!(r.unresolved().len(), 1);
        // Metadata names it: its partitions are assigned.
        let more = |id: &Uuid| {
            if *id == c {
                Some("c".to_string())
            } else {
                names(id)
            }
        };
        assert_eq!(
            run(&mut r, more),
            [Step::Assign {
                added: named(&[(c, "c", &[0, 1])]),
                epoch: 1
            }]
        );
        assert!(r.unresolved().is_empty());
        // Control: once resolved, nothing is left pending.
        assert_eq!(run(&mut r, names), []);
    }

    #[test]
    fn owned_topics_keep_their_names_when_metadata_forgets_them() {
        let mut r = Reconciler::new();
        r.set_target(target(1, &[(A, &[0, 1])]));
        run(&mut r, names);
        r.set_target(target(2, &[(A, &[0])]));
        assert_eq!(
            run(&mut r, |_| None),
            [Step::Revoke(named(&[(A, "a", &[1])]))]
        );
    }

    #[test]
    fn losing_everything_announces_the_next_assignment() {
        let mut r = Reconciler::new();
        r.set_target(target(1, &[(A, &[0])]));
        run(&mut r, names);
        let lost = r.lose_all();
        assert_eq!(lost, named(&[(A, "a", &[0])]));
        assert!(r.owned().is_empty());
        assert_eq!(run(&mut r, names), [], "no target after a loss");
        r.set_target(target(1, &[(A, &[0])]));
        assert_eq!(
            run(&mut r, names),
            [Step::Assign {
                added: named(&[(A, "a", &[0])]),
                epoch: 1
            }]
        );
    }

    #[test]
    fn broker_assignments_are_cleaned_up() {
        let a = Assignment {
            topic_partitions: vec![
                RespTp {
                    topic_id: A,
                    partitions: [2, -1, 2, 0].into(),
                    ..Default::default()
                },
                RespTp {
                    topic_id: A,
                    partitions: [1].into(),
                    ..Default::default()
                },
                RespTp {
                    topic_id: Uuid::ZERO,
                    partitions: [0].into(),
                    ..Default::default()
                },
                RespTp {
                    topic_id: B,
                    partitions: [-5].into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let t = Target::from_assignment(7, &a);
        assert_eq!(t, target(7, &[(A, &[0, 1, 2])]));
    }

    #[test]
    fn names_merge_ids_of_one_topic() {
        let n = named(&[(A, "t", &[1]), (B, "t", &[0, 1])]);
        assert_eq!(by_name(&n)["t"], [0, 1]);
        assert_eq!(ids(&n).len(), 2);
    }
}
