//! Shared test support: finding the brokers and peers `scripts/test`
//! starts (a missing one fails the test unless the run opts out), topics,
//! raw reads, the three-node cluster, and a blocking connection.

#![allow(dead_code)]

pub mod auth;
pub mod cluster;
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

/// The opt-out: with `KLAMM_SKIP_BROKER_TESTS=1` a test whose broker or
/// peer is missing is skipped (and counted); without it, it fails.
pub const SKIP_VAR: &str = "KLAMM_SKIP_BROKER_TESTS";

/// Whether this run opted out of tests that need a broker or a peer.
pub fn skipping_allowed() -> bool {
    std::env::var(SKIP_VAR).is_ok_and(|v| v == "1")
}

/// The value of the environment variable `var`, which names a broker or a
/// peer `what` that `scripts/test` starts. Missing, the test fails, unless
/// the run opted out with `KLAMM_SKIP_BROKER_TESTS=1`: then the skip is
/// reported on stderr and appended to the file `KLAMM_SKIP_LOG` names (so
/// `scripts/test` can say how many were skipped), and this returns `None`.
pub fn require(var: &str, what: &str) -> Option<String> {
    if let Some(v) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Some(v.trim().to_string());
    }
    if !skipping_allowed() {
        panic!(
            "{var} is not set, so there is no {what} for this test. Run `scripts/test` \
             (it installs and starts every broker and peer), or start them by hand \
             (see scripts/test) and export {var}; `{SKIP_VAR}=1` skips such tests instead."
        );
    }
    record_skip(var, what);
    None
}

/// Reports a skipped test on stderr and in `KLAMM_SKIP_LOG`.
pub fn record_skip(var: &str, what: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    eprintln!("SKIPPED {test}: no {what} ({var} unset, {SKIP_VAR}=1)");
    if let Some(path) = std::env::var_os("KLAMM_SKIP_LOG") {
        use std::io::Write;
        let line = format!("{}\t{test}\t{var}\n", env!("CARGO_CRATE_NAME"));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!("cannot record the skip in {path:?}: {e}");
        }
    }
}

/// The single-node Apache Kafka's PLAINTEXT address (`KLAMM_TEST_BROKERS`,
/// the first of a comma-separated list).
pub fn broker() -> Option<String> {
    require("KLAMM_TEST_BROKERS", "Apache Kafka broker").map(|list| {
        list.split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    })
}

/// A topic name unique to this test run.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

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
