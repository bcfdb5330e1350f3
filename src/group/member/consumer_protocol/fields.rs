//! What a ConsumerGroupHeartbeat carries. Group id, member id and epoch
//! go in every request, the instance id whenever the member is static;
//! the other fields only when they changed since they were last sent
//! (null means "unchanged"). A join (epoch 0) and the first request after
//! a failed one carry everything: the coordinator may have lost what the
//! member told it, and a join without a subscription is refused.

use super::reconcile::IdPartitions;
use crate::protocol::messages::ConsumerGroupHeartbeatRequest;
use crate::protocol::messages::consumer_group_heartbeat_request::TopicPartitions;

/// What the member wants the coordinator to know now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'a> {
    pub(crate) group: &'a str,
    pub(crate) member_id: &'a str,
    pub(crate) epoch: i32,
    pub(crate) instance_id: Option<&'a str>,
    pub(crate) rack: Option<&'a str>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) topics: &'a [String],
    /// `group.remote.assignor`; `None` is the broker's default.
    pub(crate) assignor: Option<&'a str>,
    pub(crate) owned: &'a IdPartitions,
}

/// The fields sent since the last reset; `None` where nothing was sent.
#[derive(Debug, Default)]
pub(crate) struct SentFields {
    rack: Option<Option<String>>,
    rebalance_timeout_ms: Option<i32>,
    topics: Option<Vec<String>>,
    assignor: Option<Option<String>>,
    owned: Option<IdPartitions>,
}

impl SentFields {
    /// Forgets what was sent: the next request carries every field.
    pub(crate) fn reset(&mut self) {
        *self = SentFields::default();
    }

    /// The next heartbeat for `m`, and notes what it carries.
    pub(crate) fn request(&mut self, m: &Member<'_>) -> ConsumerGroupHeartbeatRequest {
        if m.epoch == 0 {
            self.reset();
        }
        let rack = changed(&mut self.rack, m.rack.map(str::to_string));
        let rebalance_timeout_ms =
            changed(&mut self.rebalance_timeout_ms, m.rebalance_timeout_ms).unwrap_or(-1);
        let topics = changed(&mut self.topics, m.topics.to_vec());
        let server_assignor = changed(&mut self.assignor, m.assignor.map(str::to_string));
        let owned = changed(&mut self.owned, m.owned.clone());
        ConsumerGroupHeartbeatRequest {
            group_id: m.group.to_string(),
            member_id: m.member_id.to_string(),
            member_epoch: m.epoch,
            instance_id: m.instance_id.map(str::to_string),
            rack_id: rack.flatten(),
            rebalance_timeout_ms,
            subscribed_topic_names: topics,
            server_assignor: server_assignor.flatten(),
            topic_partitions: owned.map(|o| wire_partitions(&o)),
            ..Default::default()
        }
    }
}

/// `Some(now)` when `now` differs from what was sent (or nothing was),
/// noting it as sent.
fn changed<T: Clone + PartialEq>(sent: &mut Option<T>, now: T) -> Option<T> {
    if sent.as_ref() == Some(&now) {
        return None;
    }
    *sent = Some(now.clone());
    Some(now)
}

fn wire_partitions(owned: &IdPartitions) -> Vec<TopicPartitions> {
    owned
        .iter()
        .map(|(id, ps)| TopicPartitions {
            topic_id: *id,
            partitions: ps.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

/// The heartbeat that leaves the group: epoch -1, or -2 for a static
/// member that will be back (it keeps its assignment until the session
/// times out).
pub(crate) fn leave_request(
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.to_string(),
        member_id: member_id.to_string(),
        member_epoch: if instance_id.is_some() { -2 } else { -1 },
        instance_id: instance_id.map(str::to_string),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::primitives::Uuid;

    fn member<'a>(epoch: i32, topics: &'a [String], owned: &'a IdPartitions) -> Member<'a> {
        Member {
            group: "g",
            member_id: "m",
            epoch,
            instance_id: Some("i"),
            rack: Some("r1"),
            rebalance_timeout_ms: 300_000,
            topics,
            assignor: Some("uniform"),
            owned,
        }
    }

    #[test]
    fn a_join_carries_everything_later_heartbeats_only_what_changed() {
        let topics = vec!["t".to_string()];
        let none = IdPartitions::new();
        let mut sent = SentFields::default();
        let join = sent.request(&member(0, &topics, &none));
        assert_eq!(join.member_epoch, 0);
        assert_eq!(join.instance_id.as_deref(), Some("i"));
        assert_eq!(join.rack_id.as_deref(), Some("r1"));
        assert_eq!(join.rebalance_timeout_ms, 300_000);
        assert_eq!(join.subscribed_topic_names, Some(topics.clone()));
        assert_eq!(join.server_assignor.as_deref(), Some("uniform"));
        assert_eq!(
            join.topic_partitions,
            Some(vec![]),
            "joining owns nothing: an empty list, not null"
        );

        // Nothing changed: only the identity.
        let beat = sent.request(&member(5, &topics, &none));
        assert_eq!(
            (beat.group_id.as_str(), beat.member_id.as_str()),
            ("g", "m")
        );
        assert_eq!(beat.member_epoch, 5);
        assert_eq!(
            beat.instance_id.as_deref(),
            Some("i"),
            "static: always sent"
        );
        assert_eq!(beat.rack_id, None);
        assert_eq!(beat.rebalance_timeout_ms, -1);
        assert_eq!(beat.subscribed_topic_names, None);
        assert_eq!(beat.server_assignor, None);
        assert_eq!(beat.topic_partitions, None);

        // The owned set changed (an acknowledged reconciliation) and the
        // subscription too: those two and nothing else.
        let owned: IdPartitions = [(Uuid::from_u128(1), [0, 2].into_iter().collect())].into();
        let topics2 = vec!["t".to_string(), "u".to_string()];
        let ack = sent.request(&member(6, &topics2, &owned));
        assert_eq!(ack.subscribed_topic_names, Some(topics2.clone()));
        let tps = ack.topic_partitions.expect("owned sent");
        assert_eq!(tps.len(), 1);
        assert_eq!(tps[0].topic_id, Uuid::from_u128(1));
        assert_eq!(tps[0].partitions, [0, 2]);
        assert_eq!(ack.rack_id, None);
        assert_eq!(ack.server_assignor, None);
        assert_eq!(ack.rebalance_timeout_ms, -1);

        // Control: after a reset (a failed heartbeat) everything again.
        let again = sent.request(&member(6, &topics2, &owned));
        assert_eq!(again.topic_partitions, None);
        sent.reset();
        let full = sent.request(&member(6, &topics2, &owned));
        assert!(full.topic_partitions.is_some());
        assert_eq!(full.subscribed_topic_names, Some(topics2));
        assert_eq!(full.server_assignor.as_deref(), Some("uniform"));
        assert_eq!(full.rebalance_timeout_ms, 300_000);
    }

    #[test]
    fn a_rejoin_sends_everything_even_without_a_reset() {
        let topics = vec!["t".to_string()];
        let none = IdPartitions::new();
        let mut sent = SentFields::default();
        sent.request(&member(0, &topics, &none));
        sent.request(&member(3, &topics, &none));
        let rejoin = sent.request(&member(0, &topics, &none));
        assert_eq!(rejoin.subscribed_topic_names, Some(topics));
        assert_eq!(rejoin.topic_partitions, Some(vec![]));
    }

    #[test]
    fn leaving_is_minus_one_or_minus_two_for_a_static_member() {
        let dynamic = leave_request("g", "m", None);
        assert_eq!(dynamic.member_epoch, -1);
        assert_eq!(dynamic.subscribed_topic_names, None);
        assert_eq!(dynamic.topic_partitions, None);
        let stat = leave_request("g", "m", Some("i"));
        assert_eq!(stat.member_epoch, -2);
        assert_eq!(stat.instance_id.as_deref(), Some("i"));
    }
}
