//! `klamm topics`: the jobs of kafka-topics.sh.

use std::collections::BTreeMap;

use clap::Subcommand;
use klamm::admin::{Admin, NewPartitions, NewTopic};
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Error, Result};
use serde_json::{Value, json};

use crate::Outcome;
use crate::out::{Table, error_json, opt, outcome, outcome_json, outln, print_json};

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List the topics.
    List {
        /// Include Kafka's own topics.
        #[arg(long)]
        internal: bool,
    },
    /// Create topics.
    Create {
        /// The topics.
        #[arg(required = true)]
        names: Vec<String>,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor (default: the broker's
        /// default.replication.factor).
        #[arg(long = "replication-factor", default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// Replicas per partition instead: 1:2,2:3 puts partition 0 on
        /// brokers 1 and 2, partition 1 on 2 and 3.
        #[arg(long = "replica-assignment")]
        replica_assignment: Option<String>,
        /// A topic config, KEY=VALUE; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Check everything, create nothing.
        #[arg(long = "validate-only")]
        validate_only: bool,
        /// A topic that exists is not an error.
        #[arg(long = "if-not-exists")]
        if_not_exists: bool,
    },
    /// Describe topics: partitions, leaders, replicas, in-sync replicas.
    Describe {
        /// The topics (default: all).
        names: Vec<String>,
    },
    /// Grow a topic to more partitions.
    Alter {
        /// The topic.
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        partitions: i32,
    },
    /// Delete topics.
    Delete {
        /// The topics.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Reads `--replica-assignment`: partitions separated by `,`, brokers by
/// `:`.
pub fn parse_assignment(s: &str) -> Result<BTreeMap<i32, Vec<i32>>> {
    s.split(',')
        .enumerate()
        .map(|(p, brokers)| {
            let ids = brokers
                .split(':')
                .map(|b| b.trim().parse::<i32>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| {
                    Error::config(
                        "--replica-assignment",
                        format!("'{brokers}' is not broker ids like 1:2"),
                    )
                })?;
            Ok((p as i32, ids))
        })
        .collect()
}

pub async fn run(admin: &Admin, command: TopicsCommand, json_out: bool) -> Result<Outcome> {
    match command {
        TopicsCommand::List { internal } => {
            let topics = admin.list_topics(internal).await?;
            if json_out {
                print_json(&Value::Array(
                    topics
                        .iter()
                        .map(|t| json!({"name": t.name, "id": t.topic_id.to_kafka_string(), "internal": t.internal}))
                        .collect(),
                ));
            } else {
                for t in &topics {
                    outln!("{}", t.name);
                }
            }
            Ok(Outcome::Done)
        }
        TopicsCommand::Create {
            names,
            partitions,
            replication_factor,
            replica_assignment,
            configs,
            validate_only,
            if_not_exists,
        } => {
            let assignment = replica_assignment
                .as_deref()
                .map(parse_assignment)
                .transpose()?;
            let mut topics = Vec::new();
            for name in &names {
                let mut t = match &assignment {
                    Some(a) => NewTopic::with_assignment(name, a.clone()),
                    None => NewTopic::new(name, partitions, replication_factor),
                };
                for c in &configs {
                    let (k, v) = c
                        .split_once('=')
                        .ok_or_else(|| Error::config(c.clone(), "--config takes KEY=VALUE"))?;
                    t = t.with_config(k, v);
                }
                topics.push(t);
            }
            let created = admin.create_topics_with(&topics, validate_only).await;
            let fine = |r: &Result<_>| {
                r.is_ok()
                    || (if_not_exists
                        && r.as_ref().is_err_and(|e: &Error| {
                            e.kafka_code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS)
                        }))
            };
            let all_ok = created.values().all(fine);
            if json_out {
                let v: serde_json::Map<String, Value> = created
                    .iter()
                    .map(|(n, r)| {
                        let mut o = outcome_json(r);
                        if let Ok(t) = r {
                            o["id"] = json!(t.topic_id.to_kafka_string());
                            o["partitions"] = json!(t.partitions);
                            o["replication_factor"] = json!(t.replication_factor);
                        }
                        (n.clone(), o)
                    })
                    .collect();
                print_json(&Value::Object(v));
            } else {
                let verb = if validate_only { "valid" } else { "created" };
                for (n, r) in &created {
                    match r {
                        Ok(t) => outln!(
                            "{verb}: {n} ({} partitions, replication factor {})",
                            t.partitions,
                            t.replication_factor
                        ),
                        Err(e) if fine(r) => outln!("exists: {n} ({e})"),
                        Err(e) => outln!("failed: {n}: {e}"),
                    }
                }
            }
            Ok(Outcome::of(all_ok))
        }
        TopicsCommand::Describe { names } => {
            let names = if names.is_empty() {
                admin
                    .list_topics(false)
                    .await?
                    .into_iter()
                    .map(|t| t.name)
                    .collect()
            } else {
                names
            };
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let described = admin.describe_topics(&refs).await;
            let all_ok = described.values().all(|d| d.is_ok());
            if json_out {
                let v: serde_json::Map<String, Value> = described
                    .iter()
                    .map(|(n, d)| {
                        let v = match d {
                            Ok(d) => json!({
                                "id": d.topic_id.to_kafka_string(),
                                "internal": d.internal,
                                "partitions": d.partitions.iter().map(|p| json!({
                                    "partition": p.partition, "leader": p.leader, "leader_epoch": p.leader_epoch,
                                    "replicas": p.replicas, "isr": p.isr, "offline": p.offline_replicas,
                                })).collect::<Vec<_>>(),
                            }),
                            Err(e) => error_json(e),
                        };
                        (n.clone(), v)
                    })
                    .collect();
                print_json(&Value::Object(v));
            } else {
                let mut t = Table::new(&[
                    "TOPIC",
                    "ID",
                    "PARTITION",
                    "LEADER",
                    "REPLICAS",
                    "ISR",
                    "OFFLINE",
                ]);
                for (n, d) in &described {
                    match d {
                        Ok(d) => {
                            for p in &d.partitions {
                                t.row(vec![
                                    n.clone(),
                                    d.topic_id.to_kafka_string(),
                                    p.partition.to_string(),
                                    opt(p.leader),
                                    ids(&p.replicas),
                                    ids(&p.isr),
                                    ids(&p.offline_replicas),
                                ]);
                            }
                        }
                        Err(e) => t.row(vec![
                            n.clone(),
                            format!("error: {e}"),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                        ]),
                    }
                }
                t.print();
            }
            Ok(Outcome::of(all_ok))
        }
        TopicsCommand::Alter { name, partitions } => {
            let grown = admin
                .create_partitions(&[(&name, NewPartitions::increase_to(partitions))])
                .await;
            report(&grown, json_out, "altered")
        }
        TopicsCommand::Delete { names } => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let deleted = admin.delete_topics(&refs).await;
            report(&deleted, json_out, "deleted")
        }
    }
}

fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Prints each item's outcome (`deleted: orders`, `failed: x: …`).
pub fn report<K: std::fmt::Display, T>(
    outcomes: &BTreeMap<K, Result<T>>,
    json_out: bool,
    verb: &str,
) -> Result<Outcome> {
    if json_out {
        let v: serde_json::Map<String, Value> = outcomes
            .iter()
            .map(|(k, r)| (k.to_string(), outcome_json(r)))
            .collect();
        print_json(&Value::Object(v));
    } else {
        for (k, r) in outcomes {
            match r {
                Ok(_) => outln!("{verb}: {k}"),
                Err(_) => outln!("failed: {k}: {}", outcome(r).trim_start_matches("error: ")),
            }
        }
    }
    Ok(Outcome::of(outcomes.values().all(|r| r.is_ok())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_assignments_read_the_tools_syntax() {
        let a = parse_assignment("1:2,2:3,3").unwrap();
        assert_eq!(a[&0], vec![1, 2]);
        assert_eq!(a[&2], vec![3]);
        assert!(parse_assignment("1:x").is_err());
    }
}
