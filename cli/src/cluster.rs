//! `klamm metadata` (kcat -L) and `klamm offsets` (kcat -Q).

use clap::Args;
use klamm::admin::Admin;
use klamm::client::OffsetSpec;
use klamm::group::TopicPartition;
use klamm::{Error, Result};
use serde_json::{Value, json};

use crate::Outcome;
use crate::out::{Table, opt, outln, print_json};

#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// Only these topics (repeatable; default: every topic but Kafka's own).
    #[arg(short = 't', long = "topic")]
    pub topics: Vec<String>,
    /// Include Kafka's own topics (__consumer_offsets, …).
    #[arg(long)]
    pub internal: bool,
}

pub async fn metadata(admin: &Admin, args: MetadataArgs, json_out: bool) -> Result<Outcome> {
    let cluster = admin.describe_cluster().await?;
    let names: Vec<String> = if args.topics.is_empty() {
        admin
            .list_topics(args.internal)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect()
    } else {
        args.topics.clone()
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let described = admin.describe_topics(&refs).await;
    let all_ok = described.values().all(|d| d.is_ok());
    if json_out {
        let topics: Vec<Value> = described
            .iter()
            .map(|(name, d)| match d {
                Ok(d) => json!({
                    "topic": name,
                    "id": d.topic_id.to_kafka_string(),
                    "internal": d.internal,
                    "partitions": d.partitions.iter().map(|p| json!({
                        "partition": p.partition,
                        "leader": p.leader,
                        "replicas": p.replicas,
                        "isrs": p.isr,
                        "offline": p.offline_replicas,
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => json!({"topic": name, "error": e.to_string()}),
            })
            .collect();
        print_json(&json!({
            "cluster_id": cluster.cluster_id,
            "controller": cluster.controller,
            "brokers": cluster.brokers.iter().map(|b| json!({"id": b.id, "name": b.addr(), "rack": b.rack})).collect::<Vec<_>>(),
            "topics": topics,
        }));
        return Ok(Outcome::of(all_ok));
    }
    outln!(
        "Cluster {} (controller {})",
        cluster.cluster_id,
        opt(cluster.controller)
    );
    outln!("{} broker(s):", cluster.brokers.len());
    for b in &cluster.brokers {
        let rack = b
            .rack
            .as_deref()
            .map(|r| format!(" rack {r}"))
            .unwrap_or_default();
        outln!("  broker {} at {}{rack}", b.id, b.addr());
    }
    outln!("{} topic(s):", described.len());
    for (name, d) in &described {
        match d {
            Err(e) => outln!("  topic \"{name}\": {e}"),
            Ok(d) => {
                outln!(
                    "  topic \"{name}\" with {} partition(s), id {}",
                    d.partitions.len(),
                    d.topic_id.to_kafka_string()
                );
                for p in &d.partitions {
                    outln!(
                        "    partition {}, leader {}, replicas: {}, isrs: {}",
                        p.partition,
                        opt(p.leader),
                        join(&p.replicas),
                        join(&p.isr)
                    );
                }
            }
        }
    }
    Ok(Outcome::of(all_ok))
}

fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, Args)]
pub struct OffsetsArgs {
    /// TOPIC:PARTITION:TIME or TOPIC:TIME (every partition); TIME is ms
    /// since the epoch, or -1 latest, -2 earliest, -3 the record with the
    /// largest timestamp; repeatable.
    #[arg(
        short = 't',
        long = "topic",
        value_name = "TOPIC:[PARTITION:]TIME",
        required = true
    )]
    pub queries: Vec<String>,
    /// Ask for the last stable offset rather than the high watermark.
    #[arg(long = "read-committed")]
    pub read_committed: bool,
}

/// One -Q query: topic, partition (all when `None`), what to look up.
pub fn parse_query(q: &str) -> Result<(String, Option<i32>, OffsetSpec)> {
    let bad = || {
        Error::config(
            format!("-t {q}"),
            "expected TOPIC:PARTITION:TIME or TOPIC:TIME",
        )
    };
    let mut parts = q.rsplitn(3, ':');
    let time: i64 = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    let spec = match time {
        -1 => OffsetSpec::Newest,
        -2 => OffsetSpec::Oldest,
        -3 => OffsetSpec::MaxTimestamp,
        t if t >= 0 => OffsetSpec::Timestamp(t),
        _ => return Err(bad()),
    };
    let middle = parts.next().ok_or_else(bad)?;
    match parts.next() {
        Some(topic) => Ok((
            topic.to_string(),
            Some(middle.parse().map_err(|_| bad())?),
            spec,
        )),
        None => Ok((middle.to_string(), None, spec)),
    }
}

pub async fn offsets(admin: &Admin, args: OffsetsArgs, json_out: bool) -> Result<Outcome> {
    let mut asked: Vec<(TopicPartition, OffsetSpec)> = Vec::new();
    for q in &args.queries {
        let (topic, partition, spec) = parse_query(q)?;
        let partitions = match partition {
            Some(p) => vec![p],
            None => admin.client().partitions(&topic).await?,
        };
        asked.extend(
            partitions
                .into_iter()
                .map(|p| (TopicPartition::new(topic.clone(), p), spec)),
        );
    }
    let found = admin.list_offsets(&asked, args.read_committed).await;
    let all_ok = found.values().all(|r| r.is_ok());
    if json_out {
        let rows: Vec<Value> = found
            .iter()
            .map(|(tp, r)| match r {
                Ok(o) => json!({"topic": tp.topic, "partition": tp.partition, "offset": o.offset, "timestamp": o.timestamp}),
                Err(e) => json!({"topic": tp.topic, "partition": tp.partition, "error": e.to_string()}),
            })
            .collect();
        print_json(&Value::Array(rows));
    } else {
        let mut t = Table::new(&["TOPIC", "PARTITION", "OFFSET", "TIMESTAMP"]);
        for (tp, r) in &found {
            match r {
                Ok(o) => t.row(vec![
                    tp.topic.clone(),
                    tp.partition.to_string(),
                    opt(o.offset),
                    opt(o.timestamp),
                ]),
                Err(e) => t.row(vec![
                    tp.topic.clone(),
                    tp.partition.to_string(),
                    format!("error: {e}"),
                    "-".into(),
                ]),
            }
        }
        t.print();
    }
    Ok(Outcome::of(all_ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_read_kcat_syntax() {
        assert_eq!(
            parse_query("orders:3:1700000000000").unwrap(),
            (
                "orders".into(),
                Some(3),
                OffsetSpec::Timestamp(1_700_000_000_000)
            )
        );
        assert_eq!(
            parse_query("orders:-1").unwrap(),
            ("orders".into(), None, OffsetSpec::Newest)
        );
        assert_eq!(
            parse_query("a:b:0:-2").unwrap(),
            ("a:b".into(), Some(0), OffsetSpec::Oldest)
        );
        assert!(parse_query("orders").is_err());
        assert!(parse_query("orders:x:5").is_err());
    }
}
