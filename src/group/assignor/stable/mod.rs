//! The `stable` assignor: sarama-consumer's idea (a partition stays with
//! its member while the group changes around it) carried over restarts by
//! a stable member identity.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::sticky::core::{self, MemberData};
use super::sticky::hold_back_owned_elsewhere;
use super::{
    Assignor, ClusterLayout, GroupAssignment, GroupMember, RebalanceProtocol, sorted_members,
};
use crate::config::Config;
use crate::error::Error;
use crate::group::TopicPartitions;

mod memory;
mod user_data;

use memory::Memory;

/// How long the leader remembers a departed identity's partitions unless
/// told otherwise: Java's default `session.timeout.ms`.
const DEFAULT_RETENTION: Duration = Duration::from_secs(45);

/// The `stable` assignor (cooperative): a balanced assignment in which a
/// member keeps its partitions while others join and leave, and a member
/// that restarts gets its partitions back.
///
/// In the classic protocol a dynamic member that restarts joins with a new
/// member id and owns nothing, so ownership alone cannot bring its
/// partitions back. Each `stable` member therefore names a **stable
/// identity** in its subscription's user data ([`Assignor::user_data`],
/// layout in the `user_data` module: identity, owned partitions,
/// generation). The group consumer builds the assignor with
/// [`StableAssignor::from_config`]: the identity is `group.instance.id`
/// when set, else `group.stable.id`, else `client.id@<host name>`.
/// Identities should be unique in the group; two members in one process
/// with the same `client.id` need `group.stable.id`.
///
/// What the leader computes, over the members in the Java order:
///
/// 1. **Claims.** A member claims the partitions it owns (the
///    subscription's owned partitions, else those in its user data) at the
///    generation it owns them in. A member that owns nothing is a
///    *returning* member when its identity held partitions before: it
///    claims them at a generation above every other, so its claim wins.
///    Its partitions come from (a) other members of this rebalance with
///    the same identity that still own partitions (its earlier
///    incarnation, not yet expired) — those are *replaced*: they get
///    nothing, their claims pass to the returning member; else (b) the
///    leader's memory of the identity (below). With several owning-nothing
///    members of one identity, the first in member order returns; the
///    others are new. Claims are then settled as in [`StickyAssignor`]
///    (partitions and topics that are gone are dropped; the highest
///    generation wins, ties cancel).
/// 2. **Balance.** The sticky core ([`StickyAssignor`]) keeps every won
///    claim, places the rest on the least loaded members and moves single
///    partitions from members two or more above others. With identical
///    subscriptions loads differ by at most one (replaced members aside),
///    a member leaving moves only its partitions, and a member joining
///    moves only the partitions it receives (about P/(N+1)).
/// 3. **Memory.** The leader records what each identity present was given
///    (partitions held back for it included) in this assignor instance.
///    An identity missing from an assignment is marked departed at that
///    moment and forgotten once the retention (the `session.timeout.ms`
///    of [`StableAssignor::from_config`], 45 s by default) has passed
///    since. So a member restarted within that time gets exactly its old
///    partitions back (balance permitting), even though the others took
///    them over meanwhile. The memory lives in the leader: when the leader
///    itself restarts, the new leader starts with none, and a returning
///    member is then placed like a new one.
/// 4. **Cooperative hand-over** (KIP-429), as in
///    [`CooperativeStickyAssignor`]: a partition given to a member that
///    does not own it while another member claims it is held back
///    ([`GroupAssignment::pending`]); its owner gives it up and the
///    follow-up rebalance hands it over (from the memory, which recorded
///    it for the new member).
///
/// Unlike the other built-ins the answer depends on the instance's memory,
/// so the same input can give different assignments on different leaders.
/// sarama-consumer's `stable&consistent` variant (matching topics
/// partitioned alike) is not provided.
///
/// ```
/// use klamm::group::assignor::{Assignor, ClusterLayout, GroupMember, StableAssignor};
/// use klamm::group::{Subscription, TopicPartitions};
///
/// let layout = ClusterLayout::new().with_topic("t", 4);
/// let leader = StableAssignor::new("a");
/// // A member as identity `id` subscribes, owning `owned` since generation 1.
/// let join = |member_id: &str, id: &str, owned: &[i32]| {
///     let owned: TopicPartitions = [("t".to_string(), owned.to_vec())].into();
///     let owned = if owned["t"].is_empty() { TopicPartitions::new() } else { owned };
///     let mut sub = Subscription::new(["t"]);
///     sub.user_data = StableAssignor::new(id).user_data(&owned, Some(1));
///     sub.owned_partitions = owned;
///     sub.generation = Some(1);
///     GroupMember::new(member_id, sub)
/// };
/// let first = leader.assign(&[join("m1", "a", &[]), join("m2", "b", &[])], &layout).unwrap();
/// let b_had = first.members["m2"].partitions.clone();
/// let a_had = &first.members["m1"].partitions["t"];
///
/// // `b` restarts: a new member id, nothing owned, the same identity.
/// let again = leader.assign(&[join("m1", "a", a_had), join("m3", "b", &[])], &layout).unwrap();
/// assert_eq!(again.members["m3"].partitions, b_had);
/// ```
///
/// [`StickyAssignor`]: super::StickyAssignor
/// [`CooperativeStickyAssignor`]: super::CooperativeStickyAssignor
#[derive(Debug)]
pub struct StableAssignor {
    identity: String,
    retention: Duration,
    memory: Mutex<Memory>,
}

impl Default for StableAssignor {
    /// The assignor of a member with the default configuration:
    /// identity `klamm@<host name>`, retention 45 s.
    fn default() -> Self {
        StableAssignor::from_config(&Config::default())
    }
}

impl StableAssignor {
    /// An assignor for a member of stable identity `identity` (an empty
    /// one is replaced by the default, `klamm@<host name>`), remembering
    /// departed identities for 45 s.
    ///
    /// ```
    /// use klamm::group::assignor::StableAssignor;
    ///
    /// assert_eq!(StableAssignor::new("worker-3").identity(), "worker-3");
    /// assert!(StableAssignor::new("").identity().starts_with("klamm@"));
    /// ```
    pub fn new(identity: impl Into<String>) -> Self {
        let identity = identity.into();
        let identity = if identity.is_empty() {
            Self::default_identity("klamm")
        } else {
            identity
        };
        StableAssignor {
            identity,
            retention: DEFAULT_RETENTION,
            memory: Mutex::new(Memory::default()),
        }
    }

    /// The same assignor remembering a departed identity's partitions for
    /// `retention` after it left.
    ///
    /// ```
    /// use std::time::Duration;
    /// use klamm::group::assignor::StableAssignor;
    ///
    /// let a = StableAssignor::new("w").with_retention(Duration::from_secs(10));
    /// assert_eq!(a.retention(), Duration::from_secs(10));
    /// ```
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The assignor a group consumer with `config` uses: identity
    /// `group.instance.id`, else `group.stable.id`, else
    /// `client.id@<host name>`; retention `session.timeout.ms`.
    ///
    /// ```
    /// use klamm::Config;
    /// use klamm::group::assignor::StableAssignor;
    ///
    /// let mut config = Config::default();
    /// config.consumer.group_stable_id = Some("billing-2".into());
    /// assert_eq!(StableAssignor::from_config(&config).identity(), "billing-2");
    /// config.consumer.group_instance_id = Some("static-1".into());
    /// assert_eq!(StableAssignor::from_config(&config).identity(), "static-1");
    /// ```
    pub fn from_config(config: &Config) -> Self {
        let c = &config.consumer;
        let identity = c
            .group_instance_id
            .clone()
            .or_else(|| c.group_stable_id.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| Self::default_identity(&config.net.client_id));
        StableAssignor::new(identity).with_retention(c.session_timeout)
    }

    /// The identity used when none is configured: `client_id@<host name>`
    /// (the host name from the kernel, `/etc/hostname`, `HOSTNAME` or
    /// `COMPUTERNAME`, else `localhost`).
    ///
    /// ```
    /// use klamm::group::assignor::StableAssignor;
    ///
    /// assert!(StableAssignor::default_identity("app").starts_with("app@"));
    /// ```
    pub fn default_identity(client_id: &str) -> String {
        format!("{client_id}@{}", user_data::host_name())
    }

    /// This member's stable identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How long a departed identity's partitions are remembered.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// [`Assignor::assign`] with the memory's clock at `now`.
    pub(super) fn assign_at(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
        now: Instant,
    ) -> Result<GroupAssignment, Error> {
        let sorted = sorted_members(members)?;
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let claims = claims(&sorted, |id| {
            memory.recall(id, now, self.retention).cloned()
        });
        // Replaced members take part with no topics, so they get nothing.
        let view: Vec<GroupMember> = sorted
            .iter()
            .zip(&claims)
            .map(|(m, c)| {
                let mut m = (*m).clone();
                if c.replaced {
                    m.subscription.topics.clear();
                }
                m
            })
            .collect();
        let data: Vec<MemberData<'_>> = view
            .iter()
            .zip(claims.iter())
            .map(|(member, c)| MemberData {
                member,
                owned: c.owned.clone(),
                generation: c.generation,
            })
            .collect();
        let mut plan = GroupAssignment::for_members(members);
        core::assign(&data, layout, &mut plan);
        let mut present: BTreeMap<String, TopicPartitions> = BTreeMap::new();
        for c in &claims {
            let (Some(id), Some(a)) = (&c.identity, plan.members.get(&c.member_id)) else {
                continue;
            };
            let entry = present.entry(id.clone()).or_default();
            for (topic, ps) in &a.partitions {
                entry.entry(topic.clone()).or_default().extend(ps);
            }
        }
        for ps in present.values_mut().flat_map(|t| t.values_mut()) {
            ps.sort_unstable();
            ps.dedup();
        }
        memory.record(present, now, self.retention);
        drop(memory);
        hold_back_owned_elsewhere(members, &mut plan);
        Ok(plan.sorted())
    }
}

impl Assignor for StableAssignor {
    fn name(&self) -> &str {
        "stable"
    }

    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// This member's identity, its previous partitions and their
    /// generation.
    fn user_data(&self, previous: &TopicPartitions, generation: Option<i32>) -> Option<Bytes> {
        user_data::encode(&self.identity, previous, generation).ok()
    }

    fn assign(
        &self,
        members: &[GroupMember],
        layout: &ClusterLayout,
    ) -> Result<GroupAssignment, Error> {
        self.assign_at(members, layout, Instant::now())
    }
}

/// One member's claim, as step 1 of [`StableAssignor`] settles it.
#[derive(Debug)]
struct Claim {
    member_id: String,
    identity: Option<String>,
    owned: TopicPartitions,
    generation: i32,
    /// An earlier incarnation of a returning member: gets nothing.
    replaced: bool,
}

/// Each member's claim (in the order of `sorted`); `recall` is the
/// leader's memory of an identity.
fn claims(sorted: &[&GroupMember], recall: impl Fn(&str) -> Option<TopicPartitions>) -> Vec<Claim> {
    let mut out: Vec<Claim> = sorted
        .iter()
        .map(|m| {
            let data = m
                .subscription
                .user_data
                .as_ref()
                .and_then(user_data::decode);
            let identity = data
                .as_ref()
                .map(|d| d.identity.clone())
                .or_else(|| m.group_instance_id.clone());
            let (owned, generation) = if m.subscription.owned_partitions.is_empty() {
                match data {
                    Some(d) => (d.owned, m.subscription.generation.or(d.generation)),
                    None => (TopicPartitions::new(), m.subscription.generation),
                }
            } else {
                let g = m
                    .subscription
                    .generation
                    .or_else(|| data.and_then(|d| d.generation));
                (m.subscription.owned_partitions.clone(), g)
            };
            Claim {
                member_id: m.member_id.clone(),
                identity,
                owned: normalized(owned),
                generation: generation.unwrap_or(-1),
                replaced: false,
            }
        })
        .collect();
    let mut returning: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in out.iter().enumerate() {
        if let Some(id) = &c.identity {
            if c.owned.is_empty() && !returning.contains_key(id) {
                returning.insert(id.clone(), i);
            }
        }
    }
    for (id, r) in returning {
        let mut earlier = TopicPartitions::new();
        for c in out.iter_mut() {
            if c.identity.as_deref() == Some(id.as_str()) && !c.owned.is_empty() {
                c.replaced = true;
                for (topic, ps) in std::mem::take(&mut c.owned) {
                    earlier.entry(topic).or_default().extend(ps);
                }
            }
        }
        let back = if earlier.is_empty() {
            recall(&id).unwrap_or_default()
        } else {
            earlier
        };
        let back = normalized(back);
        if !back.is_empty() {
            out[r].owned = back;
            out[r].generation = i32::MAX;
        }
    }
    out
}

/// Sorted, without repeats or empty topics.
fn normalized(mut tps: TopicPartitions) -> TopicPartitions {
    for ps in tps.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    tps.retain(|_, ps| !ps.is_empty());
    tps
}
