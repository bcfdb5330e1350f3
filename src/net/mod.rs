//! The network layer: one connection to one broker.
//!
//! [`Connection`] owns a socket in its own task and pipelines requests over
//! it; [`ApiVersions`] records what the broker supports; [`sasl`]
//! authenticates it; [`TlsSettings`] secures it with TLS
//! ([`Connection::connect_tls`]); [`Backoff`] spaces out reconnects;
//! [`Metrics`] receives counters and latencies. The connection pool and the
//! cluster-aware `Client` (in `client/`) build on these.

mod backoff;
mod connection;
mod connector;
mod metrics;
pub mod sasl;
mod socket;
mod tls;
mod versions;

pub use backoff::Backoff;
pub use connection::{Connection, ConnectionOptions};
pub use connector::{BoxedStream, ConnectFuture, Connector, Stream};
pub use metrics::{AtomicMetrics, LATENCY_BUCKETS_US, Metrics, MetricsHandle, MetricsSnapshot};
pub use socket::SocketOptions;
pub use tls::TlsSettings;
pub use versions::{ApiVersions, client_max};

#[cfg(test)]
mod tests;
