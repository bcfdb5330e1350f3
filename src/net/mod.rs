//! The network layer: one connection to one broker.
//!
//! [`Connection`] owns a socket in its own task and pipelines requests over
//! it; [`ApiVersions`] records what the broker supports; [`Backoff`] spaces
//! out reconnects; [`TlsSettings`] secures connections with TLS
//! ([`Connection::connect_tls`]). SASL, the connection pool and the
//! cluster-aware `Client` build on these.

mod backoff;
mod connection;
mod tls;
mod versions;

pub use backoff::Backoff;
pub use connection::{Connection, ConnectionOptions};
pub use tls::TlsSettings;
pub use versions::ApiVersions;

#[cfg(test)]
mod tests;
