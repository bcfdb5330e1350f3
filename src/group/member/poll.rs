//! The clock that tells the member whether the application still polls
//! (`max.poll.interval.ms`), shared by both member engines and the
//! consumer in front of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When the application last asked for records. Time spent waiting
/// inside a poll counts as alive: only the time between polls counts
/// against `max.poll.interval.ms`, as in the Java client.
#[derive(Debug)]
pub(crate) struct PollClock {
    start: Instant,
    last_ms: AtomicU64,
    polling: AtomicBool,
}

impl PollClock {
    pub(crate) fn new() -> Self {
        PollClock {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            polling: AtomicBool::new(false),
        }
    }

    /// The application polled now.
    pub(crate) fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Release);
    }

    /// The application is waiting inside a poll until the guard drops.
    pub(crate) fn polling(self: &Arc<Self>) -> PollGuard {
        self.touch();
        self.polling.store(true, Ordering::Release);
        PollGuard(self.clone())
    }

    pub(super) fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Acquire))
    }

    /// Whether the application has been away from polls for longer than
    /// `limit`.
    pub(super) fn overdue(&self, limit: Duration) -> bool {
        !self.polling.load(Ordering::Acquire) && Instant::now() > self.last() + limit
    }
}

/// Ends a poll: the time between polls counts from here.
pub(crate) struct PollGuard(Arc<PollClock>);

impl Drop for PollGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.polling.store(false, Ordering::Release);
    }
}
