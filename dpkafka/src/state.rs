//! The consumer's lifecycle states and the machine that holds them.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::lock;

use tokio::sync::watch;

/// Where a [`ConsumerGroup`](crate::ConsumerGroup) is in its lifecycle.
///
/// ```text
/// Initialising ──▶ Stopped ◀──────────── Stopping
///      │            │   ▲                   ▲
///      │            ▼   │(failed session)   │ stop
///      └────────▶ Starting ◀──▶ Consuming ──┘
///
///  any state ──close──▶ Closing (final)
/// ```
///
/// `Initialising` until the cluster is first reached (retried in the
/// background); then `Stopped`, or `Starting` when `start` was called
/// meanwhile. `Starting` while joining the group, `Consuming` once
/// partitions are assigned (back to `Starting` during a rebalance),
/// `Stopping` from `stop` until the group is left, then `Stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Reaching the cluster for the first time.
    Initialising,
    /// Reached, not in the group.
    Stopped,
    /// Joining the group, or rebalancing.
    Starting,
    /// In the group with partitions assigned; handlers receive records.
    Consuming,
    /// Leaving the group after `stop`.
    Stopping,
    /// Closed or closing; final.
    Closing,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How many past transitions a machine keeps for late watchers.
const KEPT: usize = 256;

#[derive(Debug)]
struct Log {
    /// The sequence number of `states[0]`.
    first: u64,
    states: VecDeque<State>,
}

/// The current state, every change since the start (the latest
/// [`KEPT`]), and a way to wait for either.
#[derive(Debug, Clone)]
pub(crate) struct StateMachine {
    current: Arc<watch::Sender<State>>,
    log: Arc<Mutex<Log>>,
}

impl StateMachine {
    pub(crate) fn new(initial: State) -> StateMachine {
        StateMachine {
            current: Arc::new(watch::Sender::new(initial)),
            log: Arc::new(Mutex::new(Log {
                first: 0,
                states: VecDeque::from([initial]),
            })),
        }
    }

    pub(crate) fn get(&self) -> State {
        *self.current.borrow()
    }

    /// Moves to `to` unless the machine is closing (which is final).
    #[cfg(test)]
    pub(crate) fn set(&self, to: State) {
        let _ = self.set_if(
            &[
                State::Initialising,
                State::Stopped,
                State::Starting,
                State::Consuming,
                State::Stopping,
            ],
            to,
        );
    }

    /// Moves to `to` when the current state is one of `from`.
    pub(crate) fn set_if(&self, from: &[State], to: State) -> Result<(), crate::Error> {
        let mut log = lock(&self.log);
        let now = self.get();
        if !from.contains(&now) {
            return Err(crate::Error::Transition { from: now, to });
        }
        if now == to {
            return Ok(());
        }
        log.states.push_back(to);
        if log.states.len() > KEPT {
            log.states.pop_front();
            log.first += 1;
        }
        // Under the log's lock, so watchers see changes in log order.
        self.current.send_replace(to);
        Ok(())
    }

    /// Moves to `Closing` from anywhere; `false` when it was there already.
    pub(crate) fn close(&self) -> bool {
        let mut log = lock(&self.log);
        if self.get() == State::Closing {
            return false;
        }
        log.states.push_back(State::Closing);
        if log.states.len() > KEPT {
            log.states.pop_front();
            log.first += 1;
        }
        self.current.send_replace(State::Closing);
        true
    }

    /// Waits until the state is `state` (at once when it is).
    pub(crate) async fn wait_for(&self, state: State) {
        let mut rx = self.current.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = rx.wait_for(|s| *s == state).await;
    }

    /// Waits until the state is one of `states`, and returns it.
    pub(crate) async fn wait_for_any(&self, states: &[State]) -> State {
        let mut rx = self.current.subscribe();
        match rx.wait_for(|s| states.contains(s)).await {
            Ok(s) => *s,
            Err(_) => self.get(),
        }
    }

    pub(crate) fn transitions(&self) -> Transitions {
        let first = lock(&self.log).first;
        Transitions {
            machine: self.clone(),
            rx: self.current.subscribe(),
            next: first,
        }
    }
}

/// Every state a consumer has been in, in order: those it passed through
/// before this was asked for (the latest 256), then each new one as it
/// happens. See [`ConsumerGroup::transitions`](crate::ConsumerGroup::transitions).
#[derive(Debug)]
pub struct Transitions {
    machine: StateMachine,
    rx: watch::Receiver<State>,
    next: u64,
}

impl Transitions {
    /// The next state, waiting for it if need be; `None` after `Closing`.
    pub async fn next(&mut self) -> Option<State> {
        loop {
            self.rx.borrow_and_update();
            {
                let log = lock(&self.machine.log);
                self.next = self.next.max(log.first);
                let index = usize::try_from(self.next - log.first).unwrap_or(usize::MAX);
                if let Some(state) = log.states.get(index) {
                    self.next += 1;
                    return Some(*state);
                }
                if log.states.back() == Some(&State::Closing) {
                    return None;
                }
            }
            if self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_see_every_state_in_order_even_those_before_they_came() {
        let m = StateMachine::new(State::Initialising);
        m.set(State::Stopped);
        let mut seen = m.transitions();
        m.set(State::Starting);
        m.set(State::Consuming);
        assert!(m.close());
        assert!(!m.close(), "closing twice is a no-op");
        m.set(State::Stopped);
        assert_eq!(m.get(), State::Closing, "closing is final");
        let mut all = Vec::new();
        while let Some(s) = seen.next().await {
            all.push(s);
        }
        use State::*;
        assert_eq!(all, [Initialising, Stopped, Starting, Consuming, Closing]);
    }

    #[tokio::test]
    async fn set_if_refuses_other_states_and_waits_end_when_the_state_comes() {
        let m = StateMachine::new(State::Stopped);
        let err = m
            .set_if(&[State::Starting], State::Consuming)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "state transition from Stopped to Consuming is not allowed"
        );
        let waiter = tokio::spawn({
            let m = m.clone();
            async move { m.wait_for(State::Consuming).await }
        });
        m.set(State::Starting);
        assert!(!waiter.is_finished());
        m.set_if(&[State::Starting], State::Consuming).unwrap();
        waiter.await.unwrap();
        // Already there: at once.
        m.wait_for(State::Consuming).await;
    }

    #[tokio::test]
    async fn a_long_life_keeps_only_the_latest_changes() {
        let m = StateMachine::new(State::Stopped);
        for _ in 0..KEPT {
            m.set(State::Starting);
            m.set(State::Stopped);
        }
        let mut seen = m.transitions();
        let first = seen.next().await.unwrap();
        assert_eq!(first, State::Starting);
        assert_eq!(lock(&m.log).states.len(), KEPT);
    }
}
