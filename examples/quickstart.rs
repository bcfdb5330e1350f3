//! Produce records with klamm's `AsyncProducer` and read them back with its
//! `Consumer`.
//!
//! `cargo run --example quickstart` needs nothing: with no broker given it
//! starts klamm-fake's in-process cluster (three brokers on loopback,
//! speaking the real protocol) and runs on that. Against a real cluster:
//! `cargo run --example quickstart -- --brokers host:9092` (or set
//! `KLAMM_BROKERS`); `scripts/quickstart` starts Apache Kafka 4.4.0 for it
//! and stops it afterwards.

use std::time::Duration;

use klamm::admin::{Admin, NewTopic};
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::compression::Compression;
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Client, Config};
use klamm_fake::FakeCluster;

const TOPIC: &str = "klamm-quickstart";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 9;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut given = std::env::var("KLAMM_BROKERS").ok();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--brokers" | "-b" => {
                given = Some(
                    args.next()
                        .ok_or("--brokers needs host:port[,host:port...]")?,
                )
            }
            other => {
                return Err(format!("unknown argument {other:?} (try --brokers host:port)").into());
            }
        }
    }
    // No broker given: the in-process fake cluster, kept alive to the end.
    let mut fake = None;
    let brokers = match given {
        Some(b) => b,
        None => {
            let cluster = FakeCluster::builder().brokers(3).start().await?;
            let b = cluster.bootstrap();
            println!(
                "no broker given (--brokers or KLAMM_BROKERS): started an in-process fake cluster of 3 brokers at {b}"
            );
            fake = Some(cluster);
            b
        }
    };
    let mut config = Config::default();
    config.net.bootstrap_servers = brokers.split(',').map(|s| s.trim().to_string()).collect();
    config.net.client_id = "klamm-quickstart".into();
    config.producer.compression = Compression::Lz4;
    let client = Client::connect(config).await?;
    println!(
        "connected to {brokers}: {} broker(s)",
        client.metadata().brokers.len()
    );

    // The topic, through the admin (-1: the broker's default replication).
    let admin = Admin::new(client.clone());
    let created = admin
        .create_topics(&[NewTopic::new(TOPIC, PARTITIONS, -1)])
        .await;
    match created.get(TOPIC) {
        Some(Ok(t)) => println!(
            "created topic {TOPIC} with {} partitions, id {}",
            t.partitions,
            t.topic_id.to_kafka_string()
        ),
        Some(Err(e)) if e.kafka_code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
            println!("topic {TOPIC} already exists")
        }
        Some(Err(e)) => return Err(format!("creating {TOPIC}: {e}").into()),
        None => return Err("no outcome for the topic".into()),
    }

    // Produce: keyed records, placed by the default (murmur2) partitioner,
    // batched, lz4-compressed and written idempotently with acks=all.
    let producer = AsyncProducer::new(client.clone()).await?;
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let record = ProducerRecord::new(TOPIC, format!("hello #{i} from klamm"))
            .with_key(format!("key-{i}"))
            .with_header("source", "quickstart");
        deliveries.push(producer.send(record).await?);
    }
    // Where each partition's records start, to read back only this run's.
    let mut first = [i64::MAX; PARTITIONS as usize];
    let mut wanted = [0usize; PARTITIONS as usize];
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let meta = delivery.await?;
        println!(
            "produced key-{i} to partition {} at offset {}",
            meta.partition, meta.offset
        );
        let p = usize::try_from(meta.partition)?;
        first[p] = first[p].min(meta.offset);
        wanted[p] += 1;
    }
    producer.close().await?;

    // Consume them back, partition by partition.
    let consumer = Consumer::new(client.clone());
    let mut consumed = 0;
    for p in 0..PARTITIONS {
        let n = wanted[p as usize];
        if n == 0 {
            continue;
        }
        let start = StartOffset::Offset(first[p as usize]);
        let mut stream = consumer.consume_partition(TOPIC, p, start).await?;
        for _ in 0..n {
            let record = tokio::time::timeout(Duration::from_secs(10), stream.recv())
                .await
                .map_err(|_| format!("partition {p}: no record within 10 s"))?
                .ok_or("the partition consumer stopped")??;
            let text = |v: &Option<bytes::Bytes>| {
                v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())
            };
            println!(
                "consumed partition {p} offset {}: key={:?} value={:?} headers={}",
                record.offset,
                text(&record.key),
                text(&record.value),
                record.headers.len()
            );
            consumed += 1;
        }
        println!("partition {p}: high watermark {}", stream.high_water_mark());
        stream.close().await;
    }
    consumer.close().await;
    client.close().await;
    if consumed != RECORDS {
        return Err(format!("read back {consumed} of {RECORDS} records").into());
    }
    println!("done: {RECORDS} records produced and consumed");
    drop(fake);
    Ok(())
}
