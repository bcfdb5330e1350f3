//! Shared test support: finding the brokers and peers `scripts/test`
//! starts (a missing one fails the test unless the run opts out), topics,
//! raw reads, the three-node cluster, and a blocking connection.

#![allow(dead_code)]

pub mod auth;
pub mod cluster;
pub mod env;
pub mod faults;
pub mod group;
pub mod group_members;
pub mod interop;
pub mod interop_peers;
pub mod java_admin;
pub mod mock;
pub mod ownership;
pub mod pattern;
pub mod peers;
pub mod produce;
pub mod read;
pub mod readers;
pub mod relay;
pub mod share;
pub mod tally;
pub mod topics;
pub mod txn;
pub mod wire;

pub use env::{broker, record_skip, require, skipping_allowed, unique_topic};

/// The TLS listeners of the test broker, and the certificates.
pub struct TlsListeners {
    /// `KLAMM_TEST_TLS`: SSL with server authentication only.
    pub tls: String,
    /// `KLAMM_TEST_MTLS`: SSL that requires a client certificate.
    pub mtls: String,
    /// `KLAMM_TEST_TLS_DIR`: `ca.crt`, `client.crt`, `client.key`,
    /// `other-ca.crt` (an unrelated CA).
    pub dir: std::path::PathBuf,
}

/// The broker's TLS listeners (`KLAMM_TEST_TLS`, `KLAMM_TEST_MTLS`,
/// `KLAMM_TEST_TLS_DIR`).
pub fn tls_listeners() -> Option<TlsListeners> {
    let tls = require("KLAMM_TEST_TLS", "TLS listener")?;
    let mtls = require("KLAMM_TEST_MTLS", "mTLS listener")?;
    let dir = require("KLAMM_TEST_TLS_DIR", "test certificate directory")?;
    Some(TlsListeners {
        tls,
        mtls,
        dir: dir.into(),
    })
}

/// The broker's SASL listeners.
pub struct SaslListeners {
    /// `KLAMM_TEST_SASL`: SASL_PLAINTEXT.
    pub plaintext: String,
    /// `KLAMM_TEST_SASL_SSL`: SASL_SSL (certificates in the TLS directory).
    pub ssl: String,
    /// `KLAMM_TEST_SASL_REAUTH`: SASL_PLAINTEXT whose sessions last 2 s
    /// (`connections.max.reauth.ms`), for KIP-368.
    pub reauth: String,
}

/// The broker's SASL listeners (`KLAMM_TEST_SASL`, `KLAMM_TEST_SASL_SSL`,
/// `KLAMM_TEST_SASL_REAUTH`).
pub fn sasl_listeners() -> Option<SaslListeners> {
    Some(SaslListeners {
        plaintext: require("KLAMM_TEST_SASL", "SASL_PLAINTEXT listener")?,
        ssl: require("KLAMM_TEST_SASL_SSL", "SASL_SSL listener")?,
        reauth: require("KLAMM_TEST_SASL_REAUTH", "SASL re-authentication listener")?,
    })
}

/// tansu, the second broker implementation (`KLAMM_TEST_TANSU`).
pub fn tansu() -> Option<String> {
    require("KLAMM_TEST_TANSU", "tansu broker")
}

/// Runs an async test on a two-thread runtime and fails it if it takes
/// longer than `secs` seconds: a hung test is a failed test.
pub fn run_within<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(secs), f)
            .await
            .expect("test finished in time")
    })
}

/// Waits up to `secs` seconds for `cond`, checking every 200 ms; fails
/// the test naming `what` when it does not come.
pub async fn wait_for(what: &str, secs: u64, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Waits up to `secs` seconds for `get` to give a value, trying every
/// 200 ms; fails the test naming `what` when none comes.
pub async fn wait_for_value<T>(
    what: &str,
    secs: u64,
    mut get: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = get().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
