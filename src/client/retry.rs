//! One way to ask the cluster again after a failure.
//!
//! Every loop in klamm that retries a request (metadata and coordinator
//! lookups, InitProducerId, the transaction and group coordinators, the
//! consumer placing a partition on its leader, the producer waiting for a
//! topic) keeps its policy as a [`RetryPolicy`] value and paces itself
//! with the [`Retrier`] it starts: the backoff, its jitter, the deadline
//! and the "last error" reported when time runs out live here only.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::net::Backoff;

/// How a loop retries: the pause after a failure (`backoff`, doubling up to
/// `backoff_max`, ±20 % jitter; equal values give a constant pause), how
/// long it may go on in total, and whether it waits out its deadline.
///
/// ```
/// use std::time::Duration;
/// use klamm::client::RetryPolicy;
///
/// let p = RetryPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1))
///     .within(Duration::from_secs(30));
/// assert_eq!(p.within, Some(Duration::from_secs(30)));
/// assert!(!p.wait_out);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause after the first failure.
    pub backoff: Duration,
    /// The longest pause.
    pub backoff_max: Duration,
    /// How long the loop may go on from its start; `None` retries until
    /// the caller stops (a closed consumer, a non-retriable error).
    pub within: Option<Duration>,
    /// When no attempt fits before the deadline, wait until the deadline
    /// before giving up (the `max.block.ms` promise: a call blocks that
    /// long), rather than give up at once.
    pub wait_out: bool,
}

impl RetryPolicy {
    /// The same pause after every failure, with no deadline.
    pub const fn constant(backoff: Duration) -> Self {
        RetryPolicy {
            backoff,
            backoff_max: backoff,
            within: None,
            wait_out: false,
        }
    }

    /// Pauses from `backoff` doubling up to `max`, with no deadline.
    pub const fn exponential(backoff: Duration, max: Duration) -> Self {
        RetryPolicy {
            backoff,
            backoff_max: max,
            within: None,
            wait_out: false,
        }
    }

    /// The same policy, ending `limit` after the loop starts.
    pub const fn within(mut self, limit: Duration) -> Self {
        self.within = Some(limit);
        self
    }

    /// The same policy, waiting out its deadline before giving up.
    pub const fn waiting_out(mut self) -> Self {
        self.wait_out = true;
        self
    }

    /// Starts a loop under this policy: its deadline counts from now.
    pub fn start(&self) -> Retrier {
        Retrier {
            policy: *self,
            backoff: Backoff::new(self.backoff, self.backoff_max),
            deadline: self.within.map(|d| Instant::now() + d),
            last: None,
        }
    }
}

/// A loop in progress under a [`RetryPolicy`].
///
/// ```
/// use std::time::Duration;
/// use klamm::client::RetryPolicy;
/// use klamm::Error;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut retry = RetryPolicy::constant(Duration::from_millis(1))
///     .within(Duration::from_millis(50))
///     .start();
/// let mut tries = 0;
/// let outcome: Result<u32, Error> = loop {
///     tries += 1;
///     let answer: Result<u32, Error> = if tries < 3 {
///         Err(Error::Disconnected { broker: "b:9092".into(), reason: "test".into() })
///     } else {
///         Ok(tries)
///     };
///     match answer {
///         Ok(v) => break Ok(v),
///         Err(e) if e.is_retriable() => {
///             if let Err(out) = retry.pause(e).await {
///                 break Err(out);
///             }
///         }
///         Err(e) => break Err(e),
///     }
/// };
/// assert_eq!(outcome.unwrap(), 3);
/// assert_eq!(retry.failures(), 2);
/// # }
/// ```
#[derive(Debug)]
pub struct Retrier {
    policy: RetryPolicy,
    backoff: Backoff,
    deadline: Option<Instant>,
    last: Option<Error>,
}

impl Retrier {
    /// When the loop must end, if it has a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The time left before the deadline (`None` without one).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// How many failures were recorded.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// The last failure recorded, if any.
    pub fn last_error(&self) -> Option<&Error> {
        self.last.as_ref()
    }

    /// Takes the last failure recorded, if any.
    pub fn take_last_error(&mut self) -> Option<Error> {
        self.last.take()
    }

    /// Runs one attempt, cut off at the deadline: `None` if the deadline
    /// came first.
    pub async fn bounded<F: Future>(&self, attempt: F) -> Option<F::Output> {
        match self.deadline {
            Some(d) => tokio::time::timeout_at(d, attempt).await.ok(),
            None => Some(attempt.await),
        }
    }

    /// Records `error` and pauses before the next attempt. Gives the error
    /// back when no attempt fits before the deadline (after waiting the
    /// deadline out if the policy says so).
    pub async fn pause(&mut self, error: Error) -> Result<(), Error> {
        let delay = self.backoff.next_delay();
        if let Some(deadline) = self.deadline {
            if Instant::now() + delay >= deadline {
                if self.policy.wait_out {
                    tokio::time::sleep_until(deadline).await;
                }
                return Err(error);
            }
        }
        tracing::trace!(error = %error, ?delay, failures = self.failures(), "retrying after a pause");
        self.last = Some(error);
        tokio::time::sleep(delay).await;
        // Timers round up to the millisecond, so a sleep may end at the
        // deadline: an attempt started then would put a request on the
        // wire and give up on it at once.
        if self.expired() {
            return Err(self.last.take().unwrap_or_else(|| Error::Timeout {
                what: "retry".into(),
                after: self.policy.within.unwrap_or_default(),
            }));
        }
        Ok(())
    }

    /// Forgets past failures (after progress), keeping the deadline.
    pub fn reset(&mut self) {
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> Error {
        Error::Disconnected {
            broker: "b:9092".into(),
            reason: "test".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_grow_then_give_the_error_back_at_the_deadline() {
        let start = Instant::now();
        let mut r =
            RetryPolicy::exponential(Duration::from_millis(100), Duration::from_millis(400))
                .within(Duration::from_secs(2))
                .start();
        let mut pauses = Vec::new();
        loop {
            let before = Instant::now();
            match r.pause(down()).await {
                Ok(()) => pauses.push(before.elapsed()),
                Err(e) => {
                    assert!(matches!(e, Error::Disconnected { .. }));
                    break;
                }
            }
        }
        // 100, 200, 400, 400, ... (±20 %), never past the deadline.
        assert!(pauses[0] >= Duration::from_millis(80) && pauses[0] <= Duration::from_millis(120));
        assert!(pauses[1] >= Duration::from_millis(160));
        assert!(pauses.iter().all(|p| *p <= Duration::from_millis(480)));
        // Never past the deadline. A pause's sleep may end exactly at it
        // (timers round up to the millisecond), and then gives up there.
        assert!(start.elapsed() <= Duration::from_secs(2));
        assert!(pauses.len() >= 4, "{pauses:?}");
        assert_eq!(r.last_error().map(|e| e.is_retriable()), Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_out_blocks_until_the_deadline() {
        let start = Instant::now();
        let mut r = RetryPolicy::constant(Duration::from_millis(700))
            .within(Duration::from_secs(1))
            .waiting_out()
            .start();
        assert!(r.pause(down()).await.is_ok());
        assert!(r.pause(down()).await.is_err());
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // Control: without waiting out, the second pause gives up at once.
        let start = Instant::now();
        let mut r = RetryPolicy::constant(Duration::from_millis(700))
            .within(Duration::from_secs(1))
            .start();
        assert!(r.pause(down()).await.is_ok());
        assert!(r.pause(down()).await.is_err());
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_cuts_an_attempt_at_the_deadline_and_none_runs_forever() {
        let r = RetryPolicy::constant(Duration::from_millis(10))
            .within(Duration::from_secs(1))
            .start();
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert!(r.bounded(slow).await.is_none());
        assert!(r.expired());
        let mut forever = RetryPolicy::constant(Duration::from_millis(10)).start();
        for _ in 0..1000 {
            assert!(forever.pause(down()).await.is_ok());
        }
        assert_eq!(forever.failures(), 1000);
        assert!(forever.remaining().is_none());
        assert_eq!(forever.bounded(async { 7 }).await, Some(7));
    }
}
