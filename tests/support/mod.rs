//! Shared test support: finding the test broker, and a blocking connection.

#![allow(dead_code)]

pub mod mock;
pub mod pattern;
pub mod peers;
pub mod txn;
pub mod wire;

/// The test broker's address from `KLAMM_TEST_BROKERS` (the first of a
/// comma-separated list). Under `CI=true` a missing broker fails the test;
/// elsewhere the test is skipped with a message saying how to run it.
pub fn broker() -> Option<String> {
    match std::env::var("KLAMM_TEST_BROKERS") {
        Ok(list) if !list.trim().is_empty() => Some(
            list.split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but KLAMM_TEST_BROKERS is not set: the broker tests must run in CI")
        }
        _ => {
            eprintln!(
                "skipped: no test broker. Run `scripts/test` (it starts one), or \
                 `eval $(scripts/test-broker start)` and set KLAMM_TEST_BROKERS."
            );
            None
        }
    }
}

/// A topic name unique to this test run.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The TLS fronts started by `scripts/tls-front` before the test broker.
pub struct TlsFront {
    /// `KLAMM_TEST_TLS`: TLS with server authentication only.
    pub tls: String,
    /// `KLAMM_TEST_MTLS`: TLS that requires a client certificate.
    pub mtls: String,
    /// `KLAMM_TEST_TLS_DIR`: `ca.crt`, `client.crt`, `client.key`,
    /// `other-ca.crt` (an unrelated CA).
    pub dir: std::path::PathBuf,
}

/// The TLS fronts from `KLAMM_TEST_TLS`, `KLAMM_TEST_MTLS` and
/// `KLAMM_TEST_TLS_DIR`. Under `CI=true` a missing one fails the test;
/// elsewhere the test is skipped with a message saying how to run it.
pub fn tls_front() -> Option<TlsFront> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (
        var("KLAMM_TEST_TLS"),
        var("KLAMM_TEST_MTLS"),
        var("KLAMM_TEST_TLS_DIR"),
    ) {
        (Some(tls), Some(mtls), Some(dir)) => Some(TlsFront {
            tls,
            mtls,
            dir: dir.into(),
        }),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but KLAMM_TEST_TLS, KLAMM_TEST_MTLS or KLAMM_TEST_TLS_DIR is not set: \
             the TLS tests must run in CI"
        ),
        _ => {
            eprintln!(
                "skipped: no TLS front. Run `scripts/test` (it starts one), or \
                 `eval $(scripts/tls-front start --backend PLAIN_BROKER_PORT)`."
            );
            None
        }
    }
}

/// An address from the environment variable `var`; under `CI=true` a
/// missing one fails the test, elsewhere the test is skipped with a
/// message saying how to run it.
pub fn peer_from_env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(addr) if !addr.trim().is_empty() => Some(addr.trim().to_string()),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but {var} is not set: the {what} tests must run in CI")
        }
        _ => {
            eprintln!(
                "skipped: no {what}. Run `scripts/test` (it starts one), or start it by \
                 hand (see scripts/test) and set {var}."
            );
            None
        }
    }
}

/// The SASL front (scripts/sasl-front) in front of the test broker, from
/// `KLAMM_TEST_SASL_FRONT`.
pub fn sasl_front() -> Option<String> {
    peer_from_env("KLAMM_TEST_SASL_FRONT", "SASL front")
}

/// tansu with SASL required (`scripts/test-broker start --sasl`), from
/// `KLAMM_TEST_SASL_TANSU`.
pub fn sasl_tansu() -> Option<String> {
    peer_from_env("KLAMM_TEST_SASL_TANSU", "SASL-enabled tansu")
}

/// The SASL front's listener that enables only SCRAM-SHA-512, from
/// `KLAMM_TEST_SASL_FRONT_SCRAM_ONLY`.
pub fn sasl_front_scram_only() -> Option<String> {
    peer_from_env(
        "KLAMM_TEST_SASL_FRONT_SCRAM_ONLY",
        "SASL front (SCRAM-only listener)",
    )
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
