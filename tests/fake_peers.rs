//! Other clients on klamm-fake's in-process cluster (three brokers): the
//! Apache Kafka Java client (kafka-clients 4.4.0, `peers/java`) and kcat
//! (Debian's kcat 1.7.1 on librdkafka 2.0.2) produce to it and consume from
//! it, record by record, so the fake is checked against clients that are
//! not klamm.
//!
//! The peers are `KLAMM_JAVA_PEER` and `KLAMM_KCAT` (`scripts/peers build`;
//! `scripts/test` exports them); without them these tests fail unless
//! `KLAMM_SKIP_BROKER_TESTS=1`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::compression::Compression;
use klamm::{Client, Config};
use klamm_fake::FakeCluster;
use support::interop_peers::{PeerProgram, klamm_writes_peer_reads_at, peer_writes_klamm_reads_at};
use tokio::io::AsyncWriteExt;

#[test]
fn java_writes_and_reads_the_fake_cluster() {
    let Some(peer) = PeerProgram::java() else {
        return;
    };
    support::run_within(300, async {
        let cluster = FakeCluster::builder().brokers(3).start().await.unwrap();
        // One bootstrap address: both clients find the other brokers.
        let addr = cluster.addresses()[0].clone();
        // The Java producer (idempotent, acks=all) writes the pattern;
        // klamm reads every record back and checks the stored batches.
        peer_writes_klamm_reads_at(&peer, &addr, Compression::Lz4, 3, 300).await;
        // klamm writes it; the Java consumer reads it all back.
        klamm_writes_peer_reads_at(&peer, &addr, Compression::Zstd, 3, 300).await;
        assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());
    });
}

fn kcat() -> Option<String> {
    let path = support::require("KLAMM_KCAT", "kcat (fetched by `scripts/peers build`)")?;
    assert!(
        std::path::Path::new(&path).is_file(),
        "KLAMM_KCAT={path} does not exist: run `scripts/peers build`"
    );
    Some(path)
}

/// Runs kcat with `args`, `input` on its stdin; its stdout.
async fn run_kcat(kcat: &str, args: &[&str], input: &str) -> String {
    let mut child = tokio::process::Command::new(kcat)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kcat");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("kcat stdin");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kcat finished within 60 s")
        .expect("kcat ran");
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kcat_writes_and_reads_the_fake_cluster() {
    let Some(kcat) = kcat() else {
        return;
    };
    support::run_within(120, async {
        let cluster = FakeCluster::builder()
            .brokers(3)
            .topic("kcat", 2)
            .start()
            .await
            .unwrap();
        let addr = cluster.bootstrap();
        // kcat (librdkafka's idempotent producer, snappy) writes 100 keyed
        // lines to partition 0.
        let lines: String = (0..100).map(|i| format!("k{i}:value {i}\n")).collect();
        run_kcat(
            &kcat,
            &[
                "-P",
                "-b",
                &addr,
                "-t",
                "kcat",
                "-p",
                "0",
                "-K",
                ":",
                "-z",
                "snappy",
                "-X",
                "enable.idempotence=true",
            ],
            &lines,
        )
        .await;
        let stored = cluster.records("kcat", 0);
        assert_eq!(stored.len(), 100, "kcat's records as the fake stored them");
        for (i, r) in stored.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.key, Some(Bytes::from(format!("k{i}"))));
            assert_eq!(r.value, Some(Bytes::from(format!("value {i}"))));
            assert_eq!(r.compression, Compression::Snappy);
            assert!(
                r.producer_id >= 0,
                "librdkafka's idempotent producer has an id"
            );
        }
        // klamm reads them back.
        let mut config = Config::default();
        config.net.bootstrap_servers = cluster.addresses();
        let client = Client::connect(config).await.unwrap();
        let consumer = Consumer::new(client.clone());
        let mut part = consumer
            .consume_partition("kcat", 0, StartOffset::Oldest)
            .await
            .unwrap();
        for i in 0..100 {
            let r = part.recv().await.unwrap().unwrap();
            assert_eq!(r.value, Some(Bytes::from(format!("value {i}"))));
        }
        part.close().await;
        consumer.close().await;

        // klamm writes 50 records to partition 1; kcat reads them to the end.
        let producer = AsyncProducer::new(client.clone()).await.unwrap();
        let mut deliveries = Vec::new();
        for i in 0..50 {
            let record = ProducerRecord::new("kcat", format!("from klamm {i}"))
                .with_key(format!("key-{i}"))
                .with_partition(1);
            deliveries.push(producer.send(record).await.unwrap());
        }
        for d in deliveries {
            d.await.unwrap();
        }
        producer.close().await.unwrap();
        client.close().await;
        let out = run_kcat(
            &kcat,
            &[
                "-C",
                "-b",
                &addr,
                "-t",
                "kcat",
                "-p",
                "1",
                "-o",
                "beginning",
                "-e",
                "-f",
                "%o %k %s\n",
            ],
            "",
        )
        .await;
        let want: Vec<String> = (0..50)
            .map(|i| format!("{i} key-{i} from klamm {i}"))
            .collect();
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got, want, "what kcat read from the fake cluster");
    });
}
