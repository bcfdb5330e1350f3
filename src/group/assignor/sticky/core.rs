//! The sticky core: a balanced assignment that keeps what members own.
//!
//! 1. **Claims.** Each member's claimed partitions (what it owned, with
//!    the generation it owned them in) are checked: a claim on a partition
//!    the layout lacks, or of a topic the member no longer subscribes to,
//!    is dropped. When several members claim one partition the claim of
//!    the highest generation wins; two claims tied at the highest
//!    generation cancel each other (neither keeps the partition), as in
//!    the Java client. Every member keeps the partitions it won.
//! 2. **Placing the rest.** Partitions nobody kept are placed, those with
//!    the fewest possible members first: with rack matching on, first on
//!    a member in a replica's rack that is still below the share every
//!    member gets at least (`n / m`), then on a least-loaded subscribed
//!    member (a rack match breaks ties). Members already at their share
//!    (those that kept partitions) take nothing in the rack pass, so racks
//!    never pull a free partition away from a newcomer.
//! 3. **Balancing.** While some member holds a partition that a member
//!    with at least two fewer partitions could take, the most loaded such
//!    member gives one to the least loaded one it can. It gives a
//!    partition it did not own before if it has one, one that leaves its
//!    rack or joins the receiver's if it can, else its lowest. Every move
//!    lowers the sum of the squared loads, so this ends; at the end no
//!    single partition can move to a member two or more below its holder.
//!    When all members subscribe to the same topics, loads differ by at
//!    most one.
//!
//! Moves take from the most loaded members first and only while loads are
//! two or more apart, so with identical subscriptions a member never loses
//! a partition it owned unless it holds more than its share: when a member
//! leaves, the others keep all theirs; when one joins, only partitions for
//! the newcomer move.

use std::collections::BTreeSet;

use super::super::{ClusterLayout, GroupAssignment, GroupMember, rack, subscribed_topics};
use crate::group::TopicPartitions;

/// One member as the sticky core sees it.
pub(in crate::group::assignor) struct MemberData<'a> {
    /// The member.
    pub member: &'a GroupMember,
    /// The partitions it claims to own.
    pub owned: TopicPartitions,
    /// The generation it owned them in (-1 when unknown).
    pub generation: i32,
}

/// Computes the sticky assignment of `members` (in the Java order) into
/// `plan`, which has an entry for each of them.
pub(in crate::group::assignor) fn assign(
    members: &[MemberData<'_>],
    layout: &ClusterLayout,
    plan: &mut GroupAssignment,
) {
    let mut core = Core::new(members, layout);
    core.keep_claims(members);
    core.place_the_rest();
    core.balance();
    for (m, data) in members.iter().enumerate() {
        for &pid in &core.assigned[m] {
            let (t, p) = core.parts[pid];
            plan.give(&data.member.member_id, core.topics[t], p);
        }
    }
}

/// The working state: partitions and members by index, partitions ordered
/// by topic then partition id (so each topic's are one index range).
struct Core<'a> {
    /// Subscribed topics the layout has, in name order.
    topics: Vec<&'a str>,
    /// Index of each topic's first partition; one more entry at the end.
    topic_start: Vec<usize>,
    /// Each partition as (topic index, partition id).
    parts: Vec<(usize, i32)>,
    /// Each partition's replica racks.
    racks: Vec<&'a BTreeSet<String>>,
    /// Members subscribed to each topic, ascending.
    subscribers: Vec<Vec<usize>>,
    /// Topics each member subscribes to, ascending.
    member_topics: Vec<Vec<usize>>,
    /// Each member's rack.
    member_racks: Vec<Option<&'a str>>,
    /// Whether rack matching is on (see the `rack` module).
    use_racks: bool,
    /// The member whose claim on each partition won.
    kept_by: Vec<Option<usize>>,
    /// The holder of each partition so far.
    holder: Vec<Option<usize>>,
    /// The partitions of each member so far.
    assigned: Vec<BTreeSet<usize>>,
}

impl<'a> Core<'a> {
    fn new(members: &[MemberData<'a>], layout: &'a ClusterLayout) -> Self {
        let group: Vec<&GroupMember> = members.iter().map(|m| m.member).collect();
        let topics = subscribed_topics(&group, layout);
        let mut topic_start = Vec::with_capacity(topics.len() + 1);
        let mut parts = Vec::new();
        let mut racks = Vec::new();
        for (t, topic) in topics.iter().enumerate() {
            topic_start.push(parts.len());
            for (p, r) in layout.topic(topic).into_iter().flatten() {
                parts.push((t, *p));
                racks.push(r);
            }
        }
        topic_start.push(parts.len());
        let member_topics: Vec<Vec<usize>> = group
            .iter()
            .map(|m| {
                let mut ts: Vec<usize> = m
                    .subscription
                    .topics
                    .iter()
                    .filter_map(|t| topics.binary_search(&t.as_str()).ok())
                    .collect();
                ts.sort_unstable();
                ts.dedup();
                ts
            })
            .collect();
        let mut subscribers = vec![Vec::new(); topics.len()];
        for (m, ts) in member_topics.iter().enumerate() {
            for &t in ts {
                subscribers[t].push(m);
            }
        }
        let member_racks: Vec<Option<&str>> = group
            .iter()
            .map(|m| m.subscription.rack.as_deref())
            .collect();
        let use_racks = rack::worth_matching(member_racks.iter().copied(), &racks);
        let n = parts.len();
        Core {
            topics,
            topic_start,
            parts,
            racks,
            subscribers,
            member_topics,
            member_racks,
            use_racks,
            kept_by: vec![None; n],
            holder: vec![None; n],
            assigned: vec![BTreeSet::new(); members.len()],
        }
    }

    /// The index of a partition, if the layout has it and a member
    /// subscribes to its topic.
    fn pid(&self, topic: &str, partition: i32) -> Option<usize> {
        let t = self.topics.binary_search(&topic).ok()?;
        let (lo, hi) = (self.topic_start[t], self.topic_start[t + 1]);
        let i = self.parts[lo..hi]
            .binary_search_by_key(&partition, |&(_, p)| p)
            .ok()?;
        Some(lo + i)
    }

    fn subscribes(&self, m: usize, t: usize) -> bool {
        self.member_topics[m].binary_search(&t).is_ok()
    }

    fn matches(&self, m: usize, pid: usize) -> bool {
        self.use_racks && rack::matches(self.member_racks[m], self.racks[pid])
    }

    fn count(&self, m: usize) -> usize {
        self.assigned[m].len()
    }

    fn give(&mut self, pid: usize, m: usize) {
        if let Some(old) = self.holder[pid].replace(m) {
            self.assigned[old].remove(&pid);
        }
        self.assigned[m].insert(pid);
    }

    /// Step 1: settles competing claims and lets each winner keep its
    /// partitions.
    fn keep_claims(&mut self, members: &[MemberData<'_>]) {
        // Per partition: the highest generation claimed, and the member
        // that claimed it there (`None` once two members tie).
        let mut best: Vec<Option<(i32, Option<usize>)>> = vec![None; self.parts.len()];
        for (m, data) in members.iter().enumerate() {
            for (topic, partitions) in &data.owned {
                for &p in partitions {
                    let Some(pid) = self.pid(topic, p) else {
                        continue;
                    };
                    if !self.subscribes(m, self.parts[pid].0) {
                        continue;
                    }
                    let g = data.generation;
                    best[pid] = match best[pid] {
                        None => Some((g, Some(m))),
                        Some((bg, _)) if g > bg => Some((g, Some(m))),
                        Some((bg, who)) if g == bg && who != Some(m) => Some((bg, None)),
                        same => same,
                    };
                }
            }
        }
        for (pid, claim) in best.into_iter().enumerate() {
            if let Some((_, Some(m))) = claim {
                self.kept_by[pid] = Some(m);
                self.give(pid, m);
            }
        }
    }

    /// Step 2: places every partition nobody kept.
    fn place_the_rest(&mut self) {
        let mut free: Vec<usize> = (0..self.parts.len())
            .filter(|&pid| self.holder[pid].is_none())
            .collect();
        free.sort_by_key(|&pid| (self.subscribers[self.parts[pid].0].len(), pid));
        if self.use_racks {
            self.place_on_matching_racks(&free);
        }
        for pid in free {
            if self.holder[pid].is_some() {
                continue;
            }
            let best = self.subscribers[self.parts[pid].0]
                .iter()
                .copied()
                .min_by_key(|&m| (self.count(m), !self.matches(m, pid), m));
            if let Some(m) = best {
                self.give(pid, m);
            }
        }
    }

    /// Places free partitions on members in a replica's rack, each member
    /// up to the even share every member gets at least (`n / m`).
    fn place_on_matching_racks(&mut self, free: &[usize]) {
        let active = self.member_topics.iter().filter(|t| !t.is_empty()).count();
        let Some(floor) = self.parts.len().checked_div(active) else {
            return;
        };
        for &pid in free {
            let best = self.subscribers[self.parts[pid].0]
                .iter()
                .copied()
                .filter(|&m| self.matches(m, pid) && self.count(m) < floor)
                .min_by_key(|&m| (self.count(m), m));
            if let Some(m) = best {
                self.give(pid, m);
            }
        }
    }

    /// Step 3: moves single partitions from loaded members to members at
    /// least two below them until no such move is left.
    fn balance(&mut self) {
        let members = self.assigned.len();
        loop {
            let Some(lightest) = (0..members)
                .filter(|&m| !self.member_topics[m].is_empty())
                .map(|m| self.count(m))
                .min()
            else {
                return;
            };
            let mut order: Vec<usize> = (0..members).collect();
            order.sort_by_key(|&m| (std::cmp::Reverse(self.count(m)), m));
            let found = order
                .into_iter()
                .take_while(|&a| self.count(a) >= lightest + 2)
                .find_map(|a| self.find_move(a));
            match found {
                Some((pid, b)) => self.give(pid, b),
                None => return,
            }
        }
    }

    /// The best partition `a` can hand to a member two or more below it,
    /// and that member.
    fn find_move(&self, a: usize) -> Option<(usize, usize)> {
        let load = self.count(a);
        let mut receiver: Option<usize> = None;
        for &t in &self.member_topics[a] {
            let range = self.topic_start[t]..self.topic_start[t + 1];
            if self.assigned[a].range(range).next().is_none() {
                continue;
            }
            for &b in &self.subscribers[t] {
                if b != a
                    && self.count(b) + 2 <= load
                    && receiver.is_none_or(|r| (self.count(b), b) < (self.count(r), r))
                {
                    receiver = Some(b);
                }
            }
        }
        let b = receiver?;
        let pid = self.assigned[a]
            .iter()
            .copied()
            .filter(|&pid| self.subscribes(b, self.parts[pid].0))
            .min_by_key(|&pid| {
                let gain = i8::from(self.matches(b, pid)) - i8::from(self.matches(a, pid));
                (self.kept_by[pid] == Some(a), -gain, pid)
            })?;
        Some((pid, b))
    }
}
