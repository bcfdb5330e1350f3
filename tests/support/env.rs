//! Finding the brokers and peers `scripts/test` starts, from the
//! environment: a missing one fails the test unless the run opts out.
//! Standard library only, so the CLI's tests (`cli/tests/`) share it.

#![allow(dead_code)]

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
