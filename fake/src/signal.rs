//! A change counter to wait on, whose waiters wake in a fixed order.
//!
//! tokio's `watch` channel spreads its waiters over shards picked at
//! random and wakes them shard by shard, so two runs of the same
//! simulation woke the requests waiting on one change (joins of one
//! rebalance, long polls of one append) in different orders and went
//! different ways. A `Notify` keeps its waiters in one list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// Bumped at each change; [`Signal::subscribe`] gives a waiter.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    version: AtomicU64,
    notify: Notify,
}

impl Signal {
    /// Counts a change and wakes every waiter.
    pub(crate) fn bump(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// A waiter that has seen every change so far.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Waiter {
        Waiter {
            seen: self.version.load(Ordering::SeqCst),
            signal: Arc::clone(self),
        }
    }
}

/// Waits for the changes of a [`Signal`] it has not seen.
#[derive(Debug)]
pub(crate) struct Waiter {
    signal: Arc<Signal>,
    seen: u64,
}

impl Waiter {
    /// Returns once a change this waiter has not seen was counted (at once
    /// if one already was). Cancel-safe.
    pub(crate) async fn changed(&mut self) {
        loop {
            let notified = self.signal.notify.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so a bump between the
            // two still wakes it.
            notified.as_mut().enable();
            let now = self.signal.version.load(Ordering::SeqCst);
            if now != self.seen {
                self.seen = now;
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_sees_each_change_once_and_none_before_it_subscribed() {
        let s = Arc::new(Signal::default());
        s.bump();
        let mut w = s.subscribe();
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), w.changed());
        assert!(pending.await.is_err(), "no change since it subscribed");
        s.bump();
        s.bump();
        w.changed().await;
        let again = tokio::time::timeout(std::time::Duration::from_millis(20), w.changed());
        assert!(
            again.await.is_err(),
            "two bumps before it looked are one change"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waiters_wake_in_the_same_order_every_time() {
        let order = |n: usize| async move {
            let s = Arc::new(Signal::default());
            let woke = Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for i in 0..n {
                let (mut w, woke) = (s.subscribe(), Arc::clone(&woke));
                tasks.push(tokio::spawn(async move {
                    w.changed().await;
                    woke.lock().unwrap().push(i);
                }));
            }
            tokio::task::yield_now().await;
            s.bump();
            for t in tasks {
                t.await.unwrap();
            }
            woke.lock().unwrap().clone()
        };
        let first = order(32).await;
        assert_eq!(first.len(), 32);
        for _ in 0..20 {
            assert_eq!(order(32).await, first);
        }
    }
}
