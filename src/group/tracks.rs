//! The shared state of a group consumer's owned partitions, and the
//! [`Acker`] that finishes records under [`AckMode::Explicit`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::TopicPartition;
#[cfg(doc)]
use super::consumer::{AckMode, GroupConsumer};
use super::forward::Control;
use super::offsets::{OffsetManager, OffsetTracker};
use crate::consumer::ConsumerRecord;

/// One partition's state, shared with the [`Acker`].
#[derive(Debug)]
pub(crate) struct Track {
    pub(crate) tracker: OffsetTracker,
    pub(crate) control: watch::Sender<Control>,
    /// Which assignment of the partition this is: batches of an earlier
    /// one still in the channel are dropped.
    pub(crate) token: u64,
    pub(crate) paused_for_limit: bool,
    /// Paused because the handler's claim holds too many batches.
    pub(crate) paused_for_claim: bool,
}

impl Track {
    pub(crate) fn new(first: i64, control: watch::Sender<Control>, token: u64) -> Self {
        Track {
            tracker: OffsetTracker::new(first),
            control,
            token,
            paused_for_limit: false,
            paused_for_claim: false,
        }
    }

    /// Pauses or resumes fetching as the two reasons to pause say.
    pub(crate) fn apply(&self) {
        let want = if self.paused_for_limit || self.paused_for_claim {
            Control::Pause
        } else {
            Control::Run
        };
        if *self.control.borrow() != want {
            let _ = self.control.send(want);
        }
    }
}

pub(crate) type Tracks = Arc<Mutex<BTreeMap<TopicPartition, Track>>>;

/// Finishes records for a [`GroupConsumer`] under [`AckMode::Explicit`];
/// cheap to clone and `Send`, so records can be finished on other tasks.
#[derive(Debug, Clone)]
pub struct Acker {
    pub(crate) tracks: Tracks,
    pub(crate) offsets: OffsetManager,
    pub(crate) max_outstanding: usize,
}

impl Acker {
    /// Finishes one record. Returns `false` when the record's partition is
    /// no longer owned or the record was finished already.
    pub fn done(&self, record: &ConsumerRecord) -> bool {
        self.finish(record, |t, o| usize::from(t.done(o)))
    }

    /// Finishes `record` and every record delivered before it in its
    /// partition (the in-order mode).
    pub fn done_through(&self, record: &ConsumerRecord) -> bool {
        self.finish(record, |t, o| t.done_through(o))
    }

    fn finish(
        &self,
        record: &ConsumerRecord,
        f: impl FnOnce(&mut OffsetTracker, i64) -> usize,
    ) -> bool {
        let tp = TopicPartition::new(&*record.topic, record.partition);
        let mut tracks = lock(&self.tracks);
        let Some(track) = tracks.get_mut(&tp) else {
            return false;
        };
        if f(&mut track.tracker, record.offset) == 0 {
            return false;
        }
        self.offsets.mark(&tp, track.tracker.committable(), None);
        if track.paused_for_limit && track.tracker.outstanding() < self.max_outstanding {
            track.paused_for_limit = false;
            track.apply();
        }
        true
    }
}

/// Pauses (or resumes) fetching `tp` for a handler's claim, if `token` is
/// still its current assignment.
pub(crate) fn pause_for_claim(tracks: &Tracks, tp: &TopicPartition, token: u64, paused: bool) {
    let mut tracks = lock(tracks);
    if let Some(t) = tracks.get_mut(tp).filter(|t| t.token == token) {
        t.paused_for_claim = paused;
        t.apply();
    }
}

/// Whether `tp` is owned under assignment `token`.
pub(crate) fn owns(tracks: &Tracks, tp: &TopicPartition, token: u64) -> bool {
    lock(tracks).get(tp).is_some_and(|t| t.token == token)
}

/// Partitions being revoked, with the token they had: they no longer
/// fetch, but marks for them still count until the revocation is
/// completed (committed) by the next `recv`, so a handler's `cleanup` can
/// mark what it finished.
pub(crate) type Revoking = Arc<Mutex<BTreeMap<TopicPartition, u64>>>;

/// Whether a mark for `tp` under `token` counts: the partition is owned
/// with that token, or is being revoked from it.
pub(crate) fn may_mark(
    tracks: &Tracks,
    revoking: &Revoking,
    tp: &TopicPartition,
    token: u64,
) -> bool {
    owns(tracks, tp, token) || lock(revoking).get(tp) == Some(&token)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
