//! Counters and histograms for connections, through a small interface that
//! users plug their own metrics system into (for example the `metrics`
//! crate's facade), plus a ready-made in-memory implementation.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::protocol::messages::ApiKey;

/// Receives measurements from connections. Every method has an empty
/// default, so an implementation picks what it cares about. Methods are
/// called on the request path: keep them cheap (atomics, not locks).
///
/// Forwarding to the `metrics` crate, for example:
///
/// ```
/// use std::time::Duration;
/// use klamm::net::Metrics;
/// use klamm::protocol::messages::ApiKey;
///
/// struct Facade;
/// impl Metrics for Facade {
///     fn request_completed(&self, broker: &str, api: ApiKey, latency: Duration, bytes_in: usize) {
///         // metrics::histogram!("kafka.request.latency", "api" => api.name()).record(latency);
///         let _ = (broker, api, latency, bytes_in);
///     }
/// }
/// ```
pub trait Metrics: Send + Sync + 'static {
    /// A connection to `broker` was established.
    fn connected(&self, broker: &str) {
        let _ = broker;
    }
    /// A connection to `broker` closed (`fault` is false for a graceful close).
    fn disconnected(&self, broker: &str, fault: bool) {
        let _ = (broker, fault);
    }
    /// A request of `bytes` (its whole frame, the 4-byte size included)
    /// was handed to the connection.
    fn request_sent(&self, broker: &str, api: ApiKey, bytes: usize) {
        let _ = (broker, api, bytes);
    }
    /// Its response of `bytes_in` (its whole frame, the 4-byte size
    /// included) arrived after `latency`.
    fn request_completed(&self, broker: &str, api: ApiKey, latency: Duration, bytes_in: usize) {
        let _ = (broker, api, latency, bytes_in);
    }
    /// A request failed (network, timeout, decode or broker error).
    fn request_failed(&self, broker: &str, api: ApiKey, retriable: bool) {
        let _ = (broker, api, retriable);
    }
    /// Requests now in flight on the connection to `broker`.
    fn in_flight(&self, broker: &str, count: usize) {
        let _ = (broker, count);
    }
}

impl std::fmt::Debug for dyn Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Metrics")
    }
}

/// Upper bounds (µs) of the latency histogram buckets of [`MetricsSnapshot`].
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    1_000_000,
    u64::MAX,
];

/// In-memory counters and a latency histogram across all brokers.
///
/// ```
/// use std::sync::Arc;
/// use klamm::net::{AtomicMetrics, ConnectionOptions, Metrics};
///
/// let metrics = Arc::new(AtomicMetrics::default());
/// let opts = ConnectionOptions { metrics: Some(metrics.clone()), ..Default::default() };
/// // ... connect and send requests with `opts` ...
/// let snap = metrics.snapshot();
/// assert_eq!(snap.requests, 0);
/// # let _ = opts;
/// ```
#[derive(Debug, Default)]
pub struct AtomicMetrics {
    connections: AtomicU64,
    disconnects: AtomicU64,
    requests: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    in_flight: AtomicI64,
    latency_buckets: [AtomicU64; 12],
    latency_total_us: AtomicU64,
}

/// A point-in-time copy of [`AtomicMetrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Connections established.
    pub connections: u64,
    /// Connections closed.
    pub disconnects: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests answered.
    pub completed: u64,
    /// Requests failed.
    pub errors: u64,
    /// Request bytes written.
    pub bytes_out: u64,
    /// Response bytes read.
    pub bytes_in: u64,
    /// Requests in flight, summed over connections (last reported).
    pub in_flight: i64,
    /// Answered requests per latency bucket (see [`LATENCY_BUCKETS_US`]).
    pub latency_buckets: [u64; 12],
    /// Sum of answered requests' latencies, in µs.
    pub latency_total_us: u64,
}

impl AtomicMetrics {
    /// Copies the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            connections: l(&self.connections),
            disconnects: l(&self.disconnects),
            requests: l(&self.requests),
            completed: l(&self.completed),
            errors: l(&self.errors),
            bytes_out: l(&self.bytes_out),
            bytes_in: l(&self.bytes_in),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency_buckets: std::array::from_fn(|i| l(&self.latency_buckets[i])),
            latency_total_us: l(&self.latency_total_us),
        }
    }
}

impl Metrics for AtomicMetrics {
    fn connected(&self, _: &str) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
    fn disconnected(&self, _: &str, _: bool) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
    }
    fn request_sent(&self, _: &str, _: ApiKey, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }
    fn request_completed(&self, _: &str, _: ApiKey, latency: Duration, bytes_in: usize) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in as u64, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len() - 1);
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_total_us.fetch_add(us, Ordering::Relaxed);
    }
    fn request_failed(&self, _: &str, _: ApiKey, _: bool) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A shareable metrics sink, as stored in connection options.
pub type MetricsHandle = Arc<dyn Metrics>;
