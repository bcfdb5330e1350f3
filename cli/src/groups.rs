//! `klamm groups`: the jobs of kafka-consumer-groups.sh.

use std::collections::BTreeMap;

use clap::Subcommand;
use klamm::admin::Admin;
use klamm::client::OffsetSpec;
use klamm::group::{ListGroupsOptions, OffsetAndMetadata, PartitionLag, TopicPartition};
use klamm::{Error, Result};
use serde_json::{Value, json};

use crate::Outcome;
use crate::out::{Table, error_json, opt, outln, print_json};
use crate::topics::report;

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List the groups, with their state and type.
    List {
        /// Only groups in this state (Stable, Empty, …); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only groups of this type (classic, consumer, share); repeatable.
        #[arg(long = "type")]
        types: Vec<String>,
    },
    /// Describe groups: state, members and their partitions, and each
    /// partition's committed offset, log end and lag.
    Describe {
        /// The groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Reset a group's committed offsets (the group must be empty): shown
    /// without --execute, committed with it.
    ResetOffsets {
        /// The group.
        group: String,
        /// TOPIC or TOPIC:P,P,…; repeatable (default: every partition the
        /// group has committed).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// To the first offset still in the log.
        #[arg(long = "to-earliest", group = "to")]
        to_earliest: bool,
        /// To the log end.
        #[arg(long = "to-latest", group = "to")]
        to_latest: bool,
        /// To this offset.
        #[arg(long = "to-offset", group = "to")]
        to_offset: Option<i64>,
        /// By this many records from the committed offset (negative: back),
        /// kept within the log.
        #[arg(long = "shift-by", group = "to", allow_negative_numbers = true)]
        shift_by: Option<i64>,
        /// To the first record at or after this time: YYYY-MM-DDTHH:MM:SS[.mmm]
        /// (UTC, or with Z / ±HH:MM), or ms since the epoch.
        #[arg(long = "to-datetime", group = "to")]
        to_datetime: Option<String>,
        /// Commit the new offsets (without it: a dry run).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups (they must be empty).
    Delete {
        /// The groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Delete a group's committed offsets of some partitions.
    DeleteOffsets {
        /// The group.
        group: String,
        /// TOPIC or TOPIC:P,P,…; repeatable.
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
    },
}

/// `TOPIC` or `TOPIC:0,1,2`: the topic and its partitions (`None`: all).
pub fn parse_topic_partitions(s: &str) -> Result<(String, Option<Vec<i32>>)> {
    match s.rsplit_once(':') {
        Some((topic, ps))
            if !ps.is_empty() && ps.split(',').all(|p| p.trim().parse::<i32>().is_ok()) =>
        {
            Ok((
                topic.to_string(),
                Some(
                    ps.split(',')
                        .filter_map(|p| p.trim().parse().ok())
                        .collect(),
                ),
            ))
        }
        _ if s.is_empty() => Err(Error::config("--topic", "empty")),
        _ => Ok((s.to_string(), None)),
    }
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.mmm][Z|±HH:MM]`
/// (UTC without a zone), or of a plain number of ms.
pub fn parse_datetime(s: &str) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        Error::config(
            format!("--to-datetime {s}"),
            "expected YYYY-MM-DDTHH:MM:SS[.mmm][Z|±HH:MM]",
        )
    };
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let [year, month, day] = d[..] else {
        return Err(bad());
    };
    let (clock, offset_min) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(at) = rest.rfind(['+', '-']).filter(|&i| i >= 8) {
        let (c, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':').ok_or_else(bad)?;
        let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        (c, sign * (h * 60 + m))
    } else {
        (rest, 0)
    };
    let (hms, millis) = match clock.split_once('.') {
        Some((hms, frac)) => {
            if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let frac = format!("{frac:0<3}");
            (hms, frac[..3].parse::<i64>().map_err(|_| bad())?)
        }
        None => (clock, 0),
    };
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let [hour, minute, second] = t[..] else {
        return Err(bad());
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    // Days since 1970-01-01 of a proleptic Gregorian date.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis - offset_min * 60_000)
}

pub async fn run(admin: &Admin, command: GroupsCommand, json_out: bool) -> Result<Outcome> {
    let groups = admin.groups();
    match command {
        GroupsCommand::List { states, types } => {
            let listed = groups
                .list_groups_with(&ListGroupsOptions { states, types })
                .await?;
            if json_out {
                print_json(&Value::Array(
                    listed
                        .iter()
                        .map(|g| json!({"group": g.group_id, "protocol_type": g.protocol_type, "state": g.state, "type": g.group_type}))
                        .collect(),
                ));
            } else {
                let mut t = Table::new(&["GROUP", "TYPE", "STATE", "PROTOCOL-TYPE"]);
                for g in &listed {
                    t.row(vec![
                        g.group_id.clone(),
                        opt(g.group_type.as_ref()),
                        opt(g.state.as_ref()),
                        g.protocol_type.clone(),
                    ]);
                }
                t.print();
            }
            Ok(Outcome::Done)
        }
        GroupsCommand::Describe { groups: names } => {
            let described = groups.describe_groups(&names).await;
            let mut all_ok = true;
            let mut docs = serde_json::Map::new();
            for name in &names {
                let d = match &described[name] {
                    Ok(d) => d,
                    Err(e) => {
                        all_ok = false;
                        if json_out {
                            docs.insert(name.clone(), error_json(e));
                        } else {
                            outln!("group {name}: {e}");
                        }
                        continue;
                    }
                };
                let lag = match groups.lag(name).await {
                    Ok(l) => l,
                    Err(e) => {
                        all_ok = false;
                        eprintln!("klamm: the lag of {name}: {e}");
                        Vec::new()
                    }
                };
                if json_out {
                    docs.insert(name.clone(), json!({
                        "state": d.state,
                        "type": d.group_type.as_str(),
                        "protocol": d.protocol,
                        "members": d.members.iter().map(|m| json!({
                            "member_id": m.member_id, "client_id": m.client_id, "host": m.client_host,
                            "instance_id": m.group_instance_id,
                            "partitions": m.assignment.as_ref().map(|a| a.partitions.iter().flat_map(|(t, ps)| ps.iter().map(move |p| format!("{t}-{p}"))).collect::<Vec<_>>()).unwrap_or_default(),
                        })).collect::<Vec<_>>(),
                        "lag": lag.iter().map(lag_json).collect::<Vec<_>>(),
                        "total_lag": lag.iter().filter_map(|l| l.lag).sum::<i64>(),
                    }));
                    continue;
                }
                outln!(
                    "group {name}: state {}, type {}, protocol {}, {} member(s)",
                    d.state,
                    d.group_type.as_str(),
                    if d.protocol.is_empty() {
                        "-"
                    } else {
                        &d.protocol
                    },
                    d.members.len()
                );
                let mut t = Table::new(&[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "CLIENT-ID",
                ]);
                for l in &lag {
                    t.row(vec![
                        name.clone(),
                        l.partition.topic.clone(),
                        l.partition.partition.to_string(),
                        opt(l.committed),
                        opt(l.log_end),
                        opt(l.lag),
                        opt(l.member_id.as_ref()),
                        opt(l.client_id.as_ref()),
                    ]);
                }
                t.print();
                outln!(
                    "total lag {}",
                    lag.iter().filter_map(|l| l.lag).sum::<i64>()
                );
            }
            if json_out {
                print_json(&Value::Object(docs));
            }
            Ok(Outcome::of(all_ok))
        }
        GroupsCommand::ResetOffsets {
            group,
            topics,
            to_earliest,
            to_latest,
            to_offset,
            shift_by,
            to_datetime,
            execute,
        } => {
            let committed = groups.committed_offsets(&group, None).await?;
            let mut partitions: Vec<TopicPartition> = Vec::new();
            if topics.is_empty() {
                partitions.extend(committed.keys().cloned());
            }
            partitions.extend(topic_partitions(admin, &topics).await?);
            if partitions.is_empty() {
                return Err(Error::config(
                    "--topic",
                    format!("group {group} has no committed offsets: name the topics"),
                ));
            }
            let ends = |spec: OffsetSpec| {
                let asked: Vec<(TopicPartition, OffsetSpec)> =
                    partitions.iter().map(|tp| (tp.clone(), spec)).collect();
                async move { admin.list_offsets(&asked, false).await }
            };
            let mut targets: BTreeMap<TopicPartition, Result<i64>> = BTreeMap::new();
            if let Some(o) = to_offset {
                targets.extend(partitions.iter().map(|tp| (tp.clone(), Ok(o))));
            } else if let Some(n) = shift_by {
                let (first, last) = (
                    ends(OffsetSpec::Oldest).await,
                    ends(OffsetSpec::Newest).await,
                );
                for tp in &partitions {
                    let target = (|| {
                        let lo = first[tp]
                            .as_ref()
                            .map_err(|e| Error::config(tp.to_string(), e.to_string()))?
                            .offset
                            .unwrap_or(0);
                        let hi = last[tp]
                            .as_ref()
                            .map_err(|e| Error::config(tp.to_string(), e.to_string()))?
                            .offset
                            .unwrap_or(0);
                        let from = committed.get(tp).map(|c| c.offset).ok_or_else(|| {
                            Error::config(tp.to_string(), "no committed offset to shift")
                        })?;
                        Ok((from + n).clamp(lo, hi))
                    })();
                    targets.insert(tp.clone(), target);
                }
            } else {
                let spec = if to_earliest {
                    OffsetSpec::Oldest
                } else if to_latest {
                    OffsetSpec::Newest
                } else if let Some(t) = &to_datetime {
                    OffsetSpec::Timestamp(parse_datetime(t)?)
                } else {
                    return Err(Error::config(
                        "reset-offsets",
                        "say where to: --to-earliest, --to-latest, --to-offset, --shift-by or --to-datetime",
                    ));
                };
                let found = ends(spec).await;
                // A time after every record: the log end, as the Java tool does.
                let latest = if matches!(spec, OffsetSpec::Timestamp(_)) {
                    Some(ends(OffsetSpec::Newest).await)
                } else {
                    None
                };
                for (tp, r) in found {
                    let target = match r {
                        Ok(o) => match (o.offset, &latest) {
                            (Some(off), _) => Ok(off),
                            (None, Some(l)) => l[&tp]
                                .as_ref()
                                .map(|o| o.offset.unwrap_or(0))
                                .map_err(|e| Error::config(tp.to_string(), e.to_string())),
                            (None, None) => Ok(0),
                        },
                        Err(e) => Err(e),
                    };
                    targets.insert(tp, target);
                }
            }
            let mut all_ok = targets.values().all(|t| t.is_ok());
            let applied = if execute {
                let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = targets
                    .iter()
                    .filter_map(|(tp, t)| {
                        t.as_ref().ok().map(|o| {
                            (
                                tp.clone(),
                                OffsetAndMetadata {
                                    offset: *o,
                                    leader_epoch: None,
                                    metadata: None,
                                },
                            )
                        })
                    })
                    .collect();
                let results = groups.alter_offsets(&group, &offsets).await?;
                all_ok &= results.values().all(|r| r.is_ok());
                Some(results)
            } else {
                None
            };
            if json_out {
                let rows: Vec<Value> = targets
                    .iter()
                    .map(|(tp, t)| {
                        let mut row = json!({"topic": tp.topic, "partition": tp.partition, "current": committed.get(tp).map(|c| c.offset)});
                        match t {
                            Ok(o) => row["new"] = json!(o),
                            Err(e) => row["error"] = json!(e.to_string()),
                        }
                        if let Some(r) = applied.as_ref().and_then(|a| a.get(tp)) {
                            row["committed"] = json!(r.is_ok());
                            if let Err(e) = r {
                                row["error"] = json!(e.to_string());
                            }
                        }
                        row
                    })
                    .collect();
                print_json(&json!({"group": group, "executed": execute, "partitions": rows}));
            } else {
                let mut t = Table::new(&[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "NEW-OFFSET",
                    "STATUS",
                ]);
                for (tp, target) in &targets {
                    let status = match (target, applied.as_ref().and_then(|a| a.get(tp))) {
                        (Err(e), _) => format!("error: {e}"),
                        (Ok(_), Some(Err(e))) => format!("error: {e}"),
                        (Ok(_), Some(Ok(()))) => "committed".into(),
                        (Ok(_), None) => "dry run".into(),
                    };
                    t.row(vec![
                        group.clone(),
                        tp.topic.clone(),
                        tp.partition.to_string(),
                        opt(committed.get(tp).map(|c| c.offset)),
                        opt(target.as_ref().ok()),
                        status,
                    ]);
                }
                t.print();
                if !execute {
                    outln!("(a dry run: add --execute to commit these offsets)");
                }
            }
            Ok(Outcome::of(all_ok))
        }
        GroupsCommand::Delete { groups: names } => {
            let deleted = groups.delete_groups(&names).await;
            report(&deleted, json_out, "deleted")
        }
        GroupsCommand::DeleteOffsets { group, topics } => {
            let mut partitions = Vec::new();
            partitions.extend(topic_partitions(admin, &topics).await?);
            let deleted = groups.delete_offsets(&group, &partitions).await?;
            report(&deleted, json_out, "deleted")
        }
    }
}

/// The partitions `--topic` arguments name (a topic alone: all of its
/// partitions).
async fn topic_partitions(admin: &Admin, topics: &[String]) -> Result<Vec<TopicPartition>> {
    let mut partitions = Vec::new();
    for t in topics {
        let (topic, ps) = parse_topic_partitions(t)?;
        let ps = match ps {
            Some(ps) => ps,
            None => admin.client().partitions(&topic).await?,
        };
        partitions.extend(
            ps.into_iter()
                .map(|p| TopicPartition::new(topic.clone(), p)),
        );
    }
    Ok(partitions)
}

fn lag_json(l: &PartitionLag) -> Value {
    json!({
        "topic": l.partition.topic, "partition": l.partition.partition,
        "current": l.committed, "log_end": l.log_end, "lag": l.lag,
        "member_id": l.member_id, "client_id": l.client_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_read_as_utc_unless_zoned() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.5").unwrap(),
            1_700_000_000_500
        );
        assert_eq!(
            parse_datetime("2023-11-15T00:13:20+02:00").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime("2000-02-29T12:00:00Z").unwrap(),
            951_825_600_000
        );
        assert_eq!(parse_datetime("1700000000000").unwrap(), 1_700_000_000_000);
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2023-11-14T22:13:20.ü").is_err());
        assert!(parse_datetime("2023-13-01T00:00:00").is_err());
    }

    #[test]
    fn topic_partition_lists() {
        assert_eq!(
            parse_topic_partitions("orders").unwrap(),
            ("orders".into(), None)
        );
        assert_eq!(
            parse_topic_partitions("orders:0,2").unwrap(),
            ("orders".into(), Some(vec![0, 2]))
        );
        assert_eq!(parse_topic_partitions("a:b").unwrap(), ("a:b".into(), None));
    }
}
