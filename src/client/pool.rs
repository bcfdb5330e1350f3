//! Connections per broker and traffic class, shared by everything that
//! uses one [`Client`](super::Client).

use crate::determinism::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::net::{Backoff, Connection, ConnectionOptions, Connector, TlsSettings};

/// Which kind of traffic a connection carries. Each class gets its own
/// connection to a broker, so a slow request of one kind never waits behind
/// another: Fetch long-polls, JoinGroup can block for minutes, Produce
/// carries large writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrafficClass {
    /// Produce requests.
    Produce,
    /// Fetch requests (long polls).
    Fetch,
    /// Group coordination (JoinGroup, SyncGroup, Heartbeat, ...).
    Group,
    /// Everything else: metadata, offsets, admin.
    Other,
    /// A connection of one user alone, from [`Client::dedicated_class`]:
    /// a group member's JoinGroup and SyncGroup, which the broker holds
    /// until the whole group has joined (and, as a broker answers one
    /// connection's requests in order, would hold up anything queued
    /// behind them, including another member's join).
    ///
    /// [`Client::dedicated_class`]: super::Client::dedicated_class
    Dedicated(u64),
}

struct SlotState {
    conn: Option<Connection>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

/// One broker-and-class slot; its lock serializes connects to it.
type Slot = Arc<tokio::sync::Mutex<SlotState>>;

pub(crate) struct Pool {
    opts: ConnectionOptions,
    /// Set for `SSL` and `SASL_SSL`: every connection is made over TLS.
    tls: Option<TlsSettings>,
    /// Opens the streams in place of TCP, when set.
    connector: Option<Arc<dyn Connector>>,
    /// (initial, max, jitter) of the reconnect backoff.
    backoff: (std::time::Duration, std::time::Duration, f64),
    slots: Mutex<HashMap<(String, TrafficClass), Slot>>,
}

impl Pool {
    pub(crate) fn new(
        opts: ConnectionOptions,
        tls: Option<TlsSettings>,
        connector: Option<Arc<dyn Connector>>,
        backoff: (std::time::Duration, std::time::Duration, f64),
    ) -> Pool {
        Pool {
            opts,
            tls,
            connector,
            backoff,
            slots: Mutex::new(HashMap::default()),
        }
    }

    fn slot(&self, addr: &str, class: TrafficClass) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry((addr.to_string(), class))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(SlotState {
                    conn: None,
                    backoff: Backoff::new(self.backoff.0, self.backoff.1)
                        .with_jitter(self.backoff.2),
                    retry_at: None,
                }))
            })
            .clone()
    }

    /// The open connection to `addr` for `class`, connecting if there is
    /// none. After a failed attempt the broker is not tried again until its
    /// backoff has passed (exponential, with jitter); until then this fails
    /// at once with a retriable error.
    pub(crate) async fn get(&self, addr: &str, class: TrafficClass) -> Result<Connection> {
        let slot = self.slot(addr, class);
        // One connect at a time per broker and class: callers that arrive
        // during a connect share its result.
        let mut st = slot.lock().await;
        if let Some(c) = &st.conn {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            st.conn = None;
        }
        if let Some(at) = st.retry_at {
            let now = Instant::now();
            if now < at {
                return Err(Error::Disconnected {
                    broker: addr.to_string(),
                    reason: format!("reconnect backoff: next attempt in {:?}", at - now),
                });
            }
        }
        let connected = match (&self.connector, &self.tls) {
            (Some(c), _) => Connection::connect_via(c.as_ref(), addr, self.opts.clone()).await,
            (None, Some(tls)) => Connection::connect_tls(addr, self.opts.clone(), tls).await,
            (None, None) => Connection::connect(addr, self.opts.clone()).await,
        };
        match connected {
            Ok(c) => {
                st.backoff.reset();
                st.retry_at = None;
                st.conn = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                let delay = st.backoff.next_delay();
                tracing::debug!(broker = addr, error = %e, ?delay, "connect failed; backing off");
                st.retry_at = Some(Instant::now() + delay);
                Err(e)
            }
        }
    }

    /// Closes the connections of `class`, to every broker, and forgets
    /// their slots.
    pub(crate) async fn close_class(&self, class: TrafficClass) {
        let slots: Vec<_> = {
            let mut map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<_> = map.keys().filter(|(_, c)| *c == class).cloned().collect();
            keys.into_iter().filter_map(|k| map.remove(&k)).collect()
        };
        for s in slots {
            if let Some(c) = s.lock().await.conn.take() {
                c.close().await;
            }
        }
    }

    /// Closes every connection.
    pub(crate) async fn close_all(&self) {
        let slots: Vec<_> = {
            let mut map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            map.drain().map(|(_, s)| s).collect()
        };
        for s in slots {
            if let Some(c) = s.lock().await.conn.take() {
                c.close().await;
            }
        }
    }
}
