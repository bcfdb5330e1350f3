//! Connections per broker and traffic class, shared by everything that
//! uses one [`Client`](super::Client).

use crate::determinism::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// The connect timeout: each attempt takes its next delay, so it grows
    /// over consecutive failed connects; a connection resets it.
    setup: Backoff,
}

/// The spread of the connect timeout, ±20 % (the Java client's, fixed
/// there too), so clients that failed together do not give up together.
const SETUP_TIMEOUT_JITTER: f64 = 0.2;

/// One broker-and-class slot; its lock serializes connects to it.
type Slot = Arc<tokio::sync::Mutex<SlotState>>;

pub(crate) struct Pool {
    opts: ConnectionOptions,
    /// Set for `SSL` and `SASL_SSL`: every connection is made over TLS.
    tls: Option<TlsSettings>,
    /// Opens the streams in place of TCP, when set.
    connector: Option<Arc<dyn Connector>>,
    /// (initial, max, jitter) of the reconnect backoff.
    backoff: (Duration, Duration, f64),
    /// `socket.connection.setup.timeout.ms` and its `.max.ms`: the connect
    /// timeout after a success, and the most it grows to.
    setup: (Duration, Duration),
    slots: Mutex<HashMap<(String, TrafficClass), Slot>>,
}

impl Pool {
    pub(crate) fn new(
        opts: ConnectionOptions,
        tls: Option<TlsSettings>,
        connector: Option<Arc<dyn Connector>>,
        backoff: (Duration, Duration, f64),
        setup_max: Duration,
    ) -> Pool {
        let setup = (opts.connect_timeout, setup_max.max(opts.connect_timeout));
        Pool {
            opts,
            tls,
            connector,
            backoff,
            setup,
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
                    setup: Backoff::new(self.setup.0, self.setup.1)
                        .with_jitter(SETUP_TIMEOUT_JITTER),
                }))
            })
            .clone()
    }

    /// The open connection to `addr` for `class`, connecting if there is
    /// none. After a failed attempt the broker is not tried again until its
    /// backoff has passed (exponential, with jitter); until then this fails
    /// at once with a retriable error.
    ///
    /// Each attempt may take the connect timeout (TCP connect and TLS
    /// handshake), ±20 %; every failed attempt doubles it, up to
    /// `socket.connection.setup.timeout.max.ms`, and a connection brings it
    /// back, as the Java client's `ClusterConnectionStates` does: a broker
    /// that is slow to accept gets longer, one that is down is not waited
    /// on long at first.
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
        let opts = ConnectionOptions {
            connect_timeout: st.setup.next_delay().min(self.setup.1),
            ..self.opts.clone()
        };
        let connected = match (&self.connector, &self.tls) {
            (Some(c), _) => Connection::connect_via(c.as_ref(), addr, opts).await,
            (None, Some(tls)) => Connection::connect_tls(addr, opts, tls).await,
            (None, None) => Connection::connect(addr, opts).await,
        };
        match connected {
            Ok(c) => {
                st.backoff.reset();
                st.retry_at = None;
                st.setup.reset();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{BoxedStream, ConnectFuture};

    /// Never answers a connect while `hang` is set; otherwise hands out one
    /// end of an in-memory pipe (keeping the other, so it stays open).
    #[derive(Default)]
    struct Stalling {
        hang: Mutex<bool>,
        peers: Mutex<Vec<tokio::io::DuplexStream>>,
    }

    impl Connector for Stalling {
        fn connect<'a>(&'a self, _addr: &'a str) -> ConnectFuture<'a> {
            let hang = *self.hang.lock().unwrap();
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                let (ours, theirs) = tokio::io::duplex(1024);
                self.peers.lock().unwrap().push(theirs);
                Ok(Box::new(ours) as BoxedStream)
            })
        }
    }

    /// How long each attempt took to time out, in seconds.
    async fn timeouts(pool: &Pool, attempts: usize) -> Vec<f64> {
        let mut took = Vec::new();
        for _ in 0..attempts {
            // Past the reconnect backoff (1 ms).
            tokio::time::sleep(Duration::from_millis(10)).await;
            let started = Instant::now();
            let err = pool.get("b:9092", TrafficClass::Other).await.unwrap_err();
            assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
            took.push(started.elapsed().as_secs_f64());
        }
        took
    }

    /// `socket.connection.setup.timeout.ms` 10 s and `.max.ms` 30 s: 10 s,
    /// then twice that per failed attempt, capped at 30 s, each ±20 % and
    /// never past the cap; a connection brings it back to 10 s.
    #[tokio::test(start_paused = true)]
    async fn the_connect_timeout_doubles_per_failed_attempt_up_to_its_max_and_resets() {
        let connector = Arc::new(Stalling::default());
        *connector.hang.lock().unwrap() = true;
        let opts = ConnectionOptions {
            connect_timeout: Duration::from_secs(10),
            negotiate_versions: false,
            ..ConnectionOptions::default()
        };
        let ms = Duration::from_millis(1);
        let pool = Pool::new(
            opts,
            None,
            Some(connector.clone()),
            (ms, ms, 0.0),
            Duration::from_secs(30),
        );

        let took = timeouts(&pool, 5).await;
        let within = |t: f64, lo: f64, hi: f64| (lo..=hi).contains(&t);
        assert!(within(took[0], 8.0, 12.0), "{took:?}");
        assert!(within(took[1], 16.0, 24.0), "{took:?}");
        for t in &took[2..] {
            assert!(within(*t, 24.0, 30.0), "{took:?}");
        }

        *connector.hang.lock().unwrap() = false;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let conn = pool.get("b:9092", TrafficClass::Other).await.unwrap();
        conn.close().await;
        *connector.hang.lock().unwrap() = true;
        let after = timeouts(&pool, 2).await;
        assert!(within(after[0], 8.0, 12.0), "{after:?}");
        assert!(within(after[1], 16.0, 24.0), "{after:?}");
    }
}
