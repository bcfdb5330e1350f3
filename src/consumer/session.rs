//! The client side of a fetch session (KIP-227).
//!
//! A full fetch (session id 0, epoch 0) lists every partition and asks the
//! broker for a session; if the answer carries a session id, later fetches
//! are incremental: they list only partitions that are new or whose fetch
//! offset, byte limit or leader epoch changed, and name the partitions
//! left out as "forgotten". The broker answers with only the partitions
//! that have something to say. Any session error, or a failed request,
//! starts over with a full fetch.

use crate::determinism::{HashMap, HashSet};
use std::sync::Arc;

/// What one partition looks like in a Fetch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionParams {
    pub(crate) offset: i64,
    pub(crate) max_bytes: i32,
    pub(crate) leader_epoch: i32,
}

pub(crate) type Key = (Arc<str>, i32);

/// The session state of one fetcher.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// 0: no session (the next fetch is full).
    id: i32,
    /// The epoch of the next incremental request.
    epoch: i32,
    /// What the broker's session holds, as our requests last set it.
    sent: HashMap<Key, PartitionParams>,
    /// Whether the request in flight is full.
    in_flight_full: bool,
}

/// The session fields and partition lists of the next request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) session_id: i32,
    pub(crate) epoch: i32,
    /// Indices into the wanted list of the partitions to send.
    pub(crate) send: Vec<usize>,
    pub(crate) forgotten: Vec<Key>,
    pub(crate) full: bool,
}

impl FetchSession {
    /// Plans the next request for `wanted` (the partitions to fetch now).
    /// `supported`: the request version has sessions (v7+).
    pub(crate) fn plan(&mut self, wanted: &[(Key, PartitionParams)], supported: bool) -> Plan {
        if !supported {
            return Plan {
                session_id: 0,
                epoch: -1,
                send: (0..wanted.len()).collect(),
                forgotten: Vec::new(),
                full: true,
            };
        }
        if self.id == 0 {
            self.sent = wanted.iter().cloned().collect();
            self.in_flight_full = true;
            return Plan {
                session_id: 0,
                epoch: 0,
                send: (0..wanted.len()).collect(),
                forgotten: Vec::new(),
                full: true,
            };
        }
        let send: Vec<usize> = wanted
            .iter()
            .enumerate()
            .filter(|(_, (k, p))| self.sent.get(k) != Some(p))
            .map(|(i, _)| i)
            .collect();
        let kept: HashSet<&Key> = wanted.iter().map(|(k, _)| k).collect();
        let forgotten: Vec<Key> = self
            .sent
            .keys()
            .filter(|k| !kept.contains(k))
            .cloned()
            .collect();
        for k in &forgotten {
            self.sent.remove(k);
        }
        for &i in &send {
            let (k, p) = &wanted[i];
            self.sent.insert(k.clone(), *p);
        }
        self.in_flight_full = false;
        Plan {
            session_id: self.id,
            epoch: self.epoch,
            send,
            forgotten,
            full: false,
        }
    }

    /// Notes a successful answer carrying `session_id`.
    pub(crate) fn on_response(&mut self, session_id: i32) {
        if self.in_flight_full {
            self.id = session_id;
            self.epoch = 1;
            if session_id == 0 {
                self.sent.clear();
            }
        } else if session_id == 0 {
            // The broker closed the session and answered sessionless (it
            // does when an incremental request leaves the session without
            // partitions): the next request must be full, or it would name
            // a session that is gone.
            self.reset();
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
    }

    /// Forgets the session: the next request is full.
    pub(crate) fn reset(&mut self) {
        self.id = 0;
        self.epoch = 0;
        self.sent.clear();
    }

    /// The session id (0 when there is none).
    /// The topics of the partitions the broker holds in the session.
    pub(crate) fn topics(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.sent.keys().map(|(t, _)| t)
    }

    pub(crate) fn id(&self) -> i32 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(offset: i64) -> PartitionParams {
        PartitionParams {
            offset,
            max_bytes: 100,
            leader_epoch: -1,
        }
    }

    fn key(t: &str, p: i32) -> Key {
        (Arc::from(t), p)
    }

    #[test]
    fn full_then_incremental_then_reset() {
        let mut s = FetchSession::default();
        let wanted = vec![(key("t", 0), p(0)), (key("t", 1), p(5))];
        let plan = s.plan(&wanted, true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (0, 0, true));
        assert_eq!(plan.send, vec![0, 1]);
        s.on_response(99);
        assert_eq!(s.id(), 99);
        // Only partition 0 moved.
        let wanted = vec![(key("t", 0), p(10)), (key("t", 1), p(5))];
        let plan = s.plan(&wanted, true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (99, 1, false));
        assert_eq!(plan.send, vec![0]);
        assert!(plan.forgotten.is_empty());
        s.on_response(99);
        // Partition 1 paused: forgotten; nothing changed for 0.
        let wanted = vec![(key("t", 0), p(10))];
        let plan = s.plan(&wanted, true);
        assert_eq!(plan.epoch, 2);
        assert!(plan.send.is_empty());
        assert_eq!(plan.forgotten, vec![key("t", 1)]);
        s.on_response(99);
        // Resumed: sent again.
        let wanted = vec![(key("t", 0), p(10)), (key("t", 1), p(5))];
        let plan = s.plan(&wanted, true);
        assert_eq!(plan.send, vec![1]);
        s.reset();
        let plan = s.plan(&wanted, true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (0, 0, true));
        assert_eq!(plan.send, vec![0, 1]);
    }

    #[test]
    fn an_incremental_answer_without_a_session_id_closes_the_session() {
        let mut s = FetchSession::default();
        let wanted = vec![(key("t", 0), p(0)), (key("t", 1), p(0))];
        s.plan(&wanted, true);
        s.on_response(7);
        let plan = s.plan(&wanted[..1], true);
        assert_eq!((plan.session_id, plan.full), (7, false));
        assert_eq!(plan.forgotten, vec![key("t", 1)]);
        // The broker dropped the session: answered with session id 0.
        s.on_response(0);
        assert_eq!(s.id(), 0);
        let plan = s.plan(&wanted[..1], true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (0, 0, true));
        assert_eq!(plan.send, vec![0], "every partition again");
    }

    #[test]
    fn no_session_id_means_full_fetches_and_old_versions_are_sessionless() {
        let mut s = FetchSession::default();
        let wanted = vec![(key("t", 0), p(0))];
        s.plan(&wanted, true);
        s.on_response(0);
        let plan = s.plan(&wanted, true);
        assert!(plan.full);
        assert_eq!(plan.epoch, 0);
        let plan = s.plan(&wanted, false);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (0, -1, true));
    }
}
