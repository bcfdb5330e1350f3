//! Records written by an independent client (librdkafka 2.16 through
//! confluent-kafka 2.16.1, `scripts/peer-write.py`) with each codec, read
//! back by klamm's consumer from the test broker: every record exactly
//! once, in order per partition, keys, values, headers and timestamps
//! intact.
//!
//! The peer's Python comes from `KLAMM_PEER_PYTHON` (scripts/test points it
//! at the venv scripts/mock-cluster installs), else from that venv under
//! `${KLAMM_CACHE_DIR:-~/.cache/klamm}`. Under `CI=true` a missing peer
//! fails the test.

mod support;

use support::peers;

use std::process::Command;
use std::time::Duration;

use klamm::consumer::{Consumer, StartOffset};
use klamm::protocol::compression::Compression;
use klamm::protocol::records::{Header, TimestampType};
use klamm::{Client, Config};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const COUNT: usize = 400;
const PARTITIONS: i32 = 2;
const TS: i64 = 1_700_000_000_000;

#[test]
fn records_written_by_librdkafka_with_each_codec_read_back() {
    let Some(addr) = support::broker() else {
        return;
    };
    let Some(python) = peers::peer_python() else {
        return;
    };
    let prefix = support::unique_topic("klamm-interop-consume");
    support::run_within(50, async {
        let mut config = Config::default();
        config.net.bootstrap_servers = vec![addr.clone()];
        config.consumer.fetch_max_wait = Duration::from_millis(100);
        let client = Client::connect(config).await.expect("bootstrap");
        for codec in CODECS {
            support::topics::create_topic(&client, &format!("{prefix}-{codec}"), PARTITIONS).await;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/peer-write.py");
        let out = tokio::task::spawn_blocking({
            let (python, addr, prefix) = (python.clone(), addr.clone(), prefix.clone());
            move || {
                Command::new(python)
                    .arg(script)
                    .args(["--bootstrap", &addr, "--topic-prefix", &prefix])
                    .args(["--count", &COUNT.to_string()])
                    .args(["--partitions", &PARTITIONS.to_string()])
                    .args(["--codecs", &CODECS.join(",")])
                    .output()
                    .expect("run peer-write.py")
            }
        })
        .await
        .expect("peer writer");
        assert!(
            out.status.success(),
            "peer-write.py failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        // The peer really compressed: stored batches of several records
        // carry its codec. (librdkafka sends a batch uncompressed when
        // compressing does not make it smaller, which a small first batch
        // may do, so not every batch need carry it; a CI run met that.)
        for (codec, want) in CODECS.iter().zip([
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]) {
            let topic = format!("{prefix}-{codec}");
            let batches = support::read::stored_batches(&client, &topic, 0).await;
            assert!(
                batches
                    .iter()
                    .any(|b| b.compression == want && b.records.len() > 1),
                "{topic}: no stored batch of several records with {want:?}: {:?}",
                batches
                    .iter()
                    .map(|b| (b.compression, b.records.len()))
                    .collect::<Vec<_>>()
            );
            if want == Compression::None {
                assert!(batches.iter().all(|b| b.compression == Compression::None));
            }
        }

        let consumer = Consumer::new(client.clone());
        for codec in CODECS {
            let topic = format!("{prefix}-{codec}");
            for partition in 0..PARTITIONS {
                let mut pc = consumer
                    .consume_partition(&topic, partition, StartOffset::Oldest)
                    .await
                    .expect("consume");
                // Record i went to partition i % PARTITIONS, in order.
                let expected: Vec<usize> = (0..COUNT)
                    .filter(|i| *i as i32 % PARTITIONS == partition)
                    .collect();
                for (next_offset, &i) in expected.iter().enumerate() {
                    let r = tokio::time::timeout(Duration::from_secs(10), pc.recv())
                        .await
                        .unwrap_or_else(|_| {
                            panic!("{topic}/{partition}: record {i} not read in 10 s")
                        })
                        .expect("open")
                        .expect("record");
                    assert_eq!(
                        r.offset, next_offset as i64,
                        "{topic}/{partition}: offsets in order, no gaps"
                    );
                    assert_eq!(
                        r.key.as_deref(),
                        Some(format!("key-{i}").as_bytes()),
                        "{topic}"
                    );
                    let value = format!("value-{i}-{codec}") + &".".repeat(i % 50);
                    assert_eq!(r.value.as_deref(), Some(value.as_bytes()), "{topic}");
                    assert_eq!(
                        r.headers,
                        [
                            Header::new("idx", i.to_string()),
                            Header::new("codec", codec)
                        ],
                        "{topic}"
                    );
                    assert_eq!(r.timestamp_type, TimestampType::CreateTime);
                    assert_eq!(r.timestamp, TS + i as i64, "{topic}");
                }
                // Exactly once: nothing after the last record.
                assert_eq!(
                    pc.high_water_mark(),
                    expected.len() as i64,
                    "{topic}/{partition}"
                );
                assert!(
                    tokio::time::timeout(Duration::from_millis(200), pc.recv())
                        .await
                        .is_err(),
                    "{topic}/{partition}: a record beyond those written"
                );
                pc.close().await;
            }
        }
        consumer.close().await;
        client.close().await;
    });
}
