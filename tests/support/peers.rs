//! Independent peer clients for the round-trip tests, and the scripts.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The Python with the independent peer client (confluent-kafka 2.16.1,
/// librdkafka 2.16): `KLAMM_PEER_PYTHON` (scripts/test points it at the venv
/// scripts/mock-cluster installs), else that venv under
/// `${KLAMM_CACHE_DIR:-~/.cache/klamm}`. A missing peer fails the test
/// unless the run opts out (`KLAMM_SKIP_BROKER_TESTS=1`).
pub fn peer_python() -> Option<PathBuf> {
    let from_env = std::env::var("KLAMM_PEER_PYTHON")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from);
    let default = || {
        let cache = std::env::var("KLAMM_CACHE_DIR")
            .ok()
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var("HOME")
                    .ok()
                    .map(|h| PathBuf::from(h).join(".cache/klamm"))
            })?;
        Some(cache.join("venv-mock/bin/python"))
    };
    match from_env.or_else(default) {
        Some(p) if p.exists() => Some(p),
        other if super::skipping_allowed() => {
            super::record_skip(
                "KLAMM_PEER_PYTHON",
                &format!("peer client (confluent-kafka) at {other:?}"),
            );
            None
        }
        other => panic!(
            "the peer client's Python ({other:?}) is missing: run `scripts/mock-cluster \
             install` or set KLAMM_PEER_PYTHON (or KLAMM_SKIP_BROKER_TESTS=1 to skip)"
        ),
    }
}

/// A script under `scripts/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// Reads `topic` back with the independent reader (`scripts/peer-read.py`)
/// and fails the test unless partition `p` holds exactly `counts[p]` records
/// of the round-trip pattern (tests/support/pattern.rs), in order. Returns
/// the reader's JSON summary.
pub fn peer_read(
    python: &std::path::Path,
    addr: &str,
    topic: &str,
    counts: &[u64],
    size: usize,
    base_ts: i64,
    timeout: Duration,
) -> String {
    let counts: Vec<String> = counts.iter().map(u64::to_string).collect();
    let out = Command::new(python)
        .arg(script("peer-read.py"))
        .args([addr, topic, &counts.join(",")])
        .args([size.to_string(), base_ts.to_string()])
        .arg(timeout.as_secs().to_string())
        .output()
        .expect("run scripts/peer-read.py");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "the independent reader found a difference: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
