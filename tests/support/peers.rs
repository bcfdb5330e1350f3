//! Topics and independent peer clients for the round-trip tests.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use klamm::Client;
use klamm::client::TrafficClass;
use klamm::protocol::messages::create_topics_request::CreatableTopic;
use klamm::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use klamm::protocol::messages::{CreateTopicsRequest, FetchRequest};
use klamm::protocol::records::{Batch, DecodeOptions, RecordBatch, decode_record_set};

/// Creates `name` with `partitions` partitions through the controller and
/// fails the test unless the broker says it was created.
pub async fn create_topic(client: &Client, name: &str, partitions: i32) {
    let controller = client.controller().await.expect("controller");
    let conn = client
        .connection(&controller, TrafficClass::Other)
        .await
        .expect("connection");
    let resp = conn
        .send(&CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.to_string(),
                num_partitions: partitions,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        })
        .await
        .expect("CreateTopics");
    assert_eq!(resp.topics[0].error_code, 0, "CreateTopics {name}");
}

/// The Python with the independent peer client (confluent-kafka 2.16.1,
/// librdkafka 2.16): `KLAMM_PEER_PYTHON` (scripts/test points it at the venv
/// scripts/mock-cluster installs), else that venv under
/// `${KLAMM_CACHE_DIR:-~/.cache/klamm}`. Under `CI=true` a missing peer
/// fails the test; elsewhere the test is skipped with a message.
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
        other if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but the peer client's Python ({other:?}) is missing: \
             run `scripts/mock-cluster install` or set KLAMM_PEER_PYTHON"
        ),
        other => {
            eprintln!("skipped: no peer client ({other:?}); run `scripts/mock-cluster install`");
            None
        }
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

/// The first record batch stored in `topic`/`partition`, read with a raw
/// Fetch (v12) so a test can check what the writer really sent: its codec,
/// its producer id, how many records it batched.
pub async fn first_batch(client: &Client, topic: &str, partition: i32) -> RecordBatch {
    let leader = client.leader(topic, partition).await.expect("leader");
    let conn = client
        .connection(&leader, TrafficClass::Other)
        .await
        .expect("connection");
    let resp = conn
        .send_version(
            &FetchRequest {
                max_wait_ms: 100,
                min_bytes: 1,
                topics: vec![FetchTopic {
                    topic: topic.to_string(),
                    partitions: vec![FetchPartition {
                        partition,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            12,
        )
        .await
        .expect("Fetch");
    let records = resp.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let set = decode_record_set(records, &DecodeOptions::default()).expect("decode");
    match set.batches.into_iter().next() {
        Some(Batch::V2(first)) => first,
        _ => panic!("{topic}/{partition}: no v2 batch stored"),
    }
}
