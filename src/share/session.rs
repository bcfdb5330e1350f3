//! One share session: what a member has told one broker it fetches.
//!
//! A share session is keyed by group and member on the broker and bound
//! to the connection. Epoch 0 opens it (with every partition to fetch),
//! each answered request moves the epoch on by one (wrapping to 1, never
//! 0), and -1 closes it. After the opening request a request names only
//! the partitions added since the last one, plus those carrying
//! acknowledgements; partitions no longer fetched are "forgotten".
//! Acknowledgements cannot ride on an opening request: the broker refuses
//! them there.

use std::collections::BTreeSet;

use crate::protocol::primitives::Uuid;

/// A partition by topic id.
pub(crate) type Tp = (Uuid, i32);

/// The session with one broker.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The epoch of the next request: 0 to open a session.
    epoch: i32,
    /// The partitions the broker has in the session.
    partitions: BTreeSet<Tp>,
}

/// What the next request to a broker says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The epoch to send.
    pub epoch: i32,
    /// Partitions to list in `Topics`: the added ones, and those with
    /// acknowledgements.
    pub listed: BTreeSet<Tp>,
    /// Partitions to forget.
    pub forgotten: BTreeSet<Tp>,
    /// The session's partitions once the broker has answered.
    pub after: BTreeSet<Tp>,
}

impl Session {
    /// The epoch of the next request.
    pub(crate) fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Whether the broker holds a session for this member (a request was
    /// answered since it opened).
    pub(crate) fn is_open(&self) -> bool {
        self.epoch != 0
    }

    /// The next request for fetching `wanted`, with acknowledgements for
    /// `acked` (ignored when opening: the caller keeps them).
    pub(crate) fn plan(&self, wanted: &BTreeSet<Tp>, acked: &BTreeSet<Tp>) -> Plan {
        if self.epoch == 0 {
            return Plan {
                epoch: 0,
                listed: wanted.clone(),
                forgotten: BTreeSet::new(),
                after: wanted.clone(),
            };
        }
        let added = wanted.difference(&self.partitions).copied();
        let listed: BTreeSet<Tp> = added.chain(acked.iter().copied()).collect();
        // A partition only acknowledged (no longer fetched) is listed with
        // its acknowledgements and forgotten in the same request.
        let forgotten: BTreeSet<Tp> = self
            .partitions
            .iter()
            .chain(acked.iter())
            .filter(|tp| !wanted.contains(tp))
            .copied()
            .collect();
        Plan {
            epoch: self.epoch,
            listed,
            forgotten,
            after: wanted.clone(),
        }
    }

    /// The broker answered a request made from `plan`.
    pub(crate) fn answered(&mut self, plan: Plan) {
        self.partitions = plan.after;
        self.epoch = next_epoch(self.epoch);
    }

    /// The broker answered a request that changed no partitions
    /// (ShareAcknowledge): only the epoch moves on.
    pub(crate) fn answered_without_changes(&mut self) {
        self.epoch = next_epoch(self.epoch);
    }

    /// The session is gone (an error, a new connection): open it again.
    pub(crate) fn reset(&mut self) {
        self.epoch = 0;
        self.partitions.clear();
    }
}

/// The epoch after `epoch`: +1, wrapping past `i32::MAX` to 1.
pub(crate) fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: u128, p: i32) -> Tp {
        (Uuid::from_u128(t), p)
    }

    fn set(tps: &[Tp]) -> BTreeSet<Tp> {
        tps.iter().copied().collect()
    }

    #[test]
    fn opens_with_everything_then_sends_only_changes() {
        let mut s = Session::default();
        let wanted = set(&[tp(1, 0), tp(1, 1)]);
        let p = s.plan(&wanted, &set(&[tp(1, 0)]));
        assert_eq!(p.epoch, 0);
        assert_eq!(
            p.listed, wanted,
            "the opening request lists every partition"
        );
        s.answered(p);
        assert!(s.is_open());
        assert_eq!(s.epoch(), 1);
        // Nothing changed and nothing to acknowledge: an empty listing.
        let p = s.plan(&wanted, &BTreeSet::new());
        assert_eq!((p.epoch, p.listed.len(), p.forgotten.len()), (1, 0, 0));
        s.answered(p);
        // One partition added, one acknowledged, one dropped.
        let wanted2 = set(&[tp(1, 1), tp(2, 0)]);
        let p = s.plan(&wanted2, &set(&[tp(1, 1)]));
        assert_eq!(p.epoch, 2);
        assert_eq!(p.listed, set(&[tp(1, 1), tp(2, 0)]));
        assert_eq!(p.forgotten, set(&[tp(1, 0)]));
        s.answered(p);
        // Acknowledging a partition no longer fetched lists and forgets it.
        let p = s.plan(&set(&[tp(2, 0)]), &set(&[tp(1, 1)]));
        assert_eq!(p.listed, set(&[tp(1, 1)]));
        assert_eq!(p.forgotten, set(&[tp(1, 1)]));
    }

    #[test]
    fn a_reset_opens_again_and_epochs_never_return_to_zero() {
        let mut s = Session::default();
        let w = set(&[tp(1, 0)]);
        let p = s.plan(&w, &BTreeSet::new());
        s.answered(p);
        s.reset();
        assert_eq!(s.plan(&w, &BTreeSet::new()).epoch, 0);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(5), 6);
    }
}
