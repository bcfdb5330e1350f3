//! The network layer: one connection to one broker.
//!
//! [`Connection`] owns a socket in its own task and pipelines requests over
//! it; [`ApiVersions`] records what the broker supports; [`sasl`]
//! authenticates it; [`Backoff`] spaces out reconnects. TLS, the connection pool and the cluster-aware
//! `Client` build on these.

mod backoff;
mod connection;
pub mod sasl;
mod versions;

pub use backoff::Backoff;
pub use connection::{Connection, ConnectionOptions};
pub use versions::ApiVersions;

#[cfg(test)]
mod tests;
