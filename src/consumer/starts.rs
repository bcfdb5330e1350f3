//! Where partition consumers start: a [`StartOffset`] turned into an
//! offset, for one partition or for many at once.
//!
//! Many partitions are resolved together: `Oldest` and `Timestamp` starts
//! in one ListOffsets per leader, `Newest` in one ListOffsets and one Fetch
//! per leader (the high watermark is read from a Fetch, as for one
//! partition). A partition the batched Fetch leaves without an answer is
//! resolved on its own, with the retries of the one-partition path.

use std::collections::{BTreeMap, BTreeSet};

use super::{Settings, StartOffset, fetcher};
use crate::client::{BrokerInfo, Client, OffsetSpec, RetryPolicy};
use crate::config::IsolationLevel;
use crate::error::Result;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use crate::protocol::messages::{ApiKey, FetchRequest};

/// The offset `start` names in `topic`/`partition` now. A retriable
/// failure (a partition whose leader is not elected yet right after the
/// topic was created, or moved) refreshes the topic's metadata and tries
/// again, for up to `default.api.timeout.ms`, as Java's consumer does.
pub(super) async fn resolve_start(
    client: &Client,
    settings: &Settings,
    topic: &str,
    partition: i32,
    start: StartOffset,
) -> Result<i64> {
    let mut retry = RetryPolicy::constant(settings.options.retry_backoff)
        .within(client.config().consumer.default_api_timeout)
        .start();
    loop {
        match resolve_start_once(client, settings, topic, partition, start).await {
            Err(e) if e.is_retriable() => {
                retry.pause(e).await?;
                let _ = client.refresh_metadata(Some(&[topic.to_string()])).await;
            }
            other => return other,
        }
    }
}

async fn resolve_start_once(
    client: &Client,
    settings: &Settings,
    topic: &str,
    partition: i32,
    start: StartOffset,
) -> Result<i64> {
    match start {
        StartOffset::Offset(o) => Ok(o),
        StartOffset::Oldest => {
            client
                .list_offsets(topic, partition, OffsetSpec::Oldest)
                .await
        }
        StartOffset::Newest => fetcher::high_water_mark(client, settings, topic, partition).await,
        StartOffset::Timestamp(t) => {
            match client
                .list_offsets(topic, partition, OffsetSpec::Timestamp(t))
                .await?
            {
                o if o >= 0 => Ok(o),
                _ => fetcher::high_water_mark(client, settings, topic, partition).await,
            }
        }
    }
}

/// The offset each `(partition, start)` names in `topic`, in the order
/// given. Partitions sharing a start kind are looked up together (see the
/// module docs); the first failure that is not retriable fails them all.
pub(super) async fn resolve_starts(
    client: &Client,
    settings: &Settings,
    topic: &str,
    starts: &[(i32, StartOffset)],
) -> Result<Vec<i64>> {
    let mut found: BTreeMap<i32, i64> = BTreeMap::new();
    // The partitions asked for by each ListOffsets spec, and those whose
    // start is the high watermark (asked for, or where no record is at or
    // after the time).
    let mut by_spec: BTreeMap<SpecKey, Vec<i32>> = BTreeMap::new();
    let mut newest = Vec::new();
    for &(p, start) in starts {
        match start {
            StartOffset::Offset(o) => {
                found.insert(p, o);
            }
            StartOffset::Oldest => by_spec.entry(SpecKey::Oldest).or_default().push(p),
            StartOffset::Timestamp(t) => by_spec.entry(SpecKey::Timestamp(t)).or_default().push(p),
            StartOffset::Newest => newest.push(p),
        }
    }
    for (key, partitions) in by_spec {
        let listed = client
            .list_partition_offsets(topic, &partitions, key.spec())
            .await?;
        for p in partitions {
            match listed.get(&p).and_then(|l| l.offset) {
                Some(o) => {
                    found.insert(p, o);
                }
                None => newest.push(p),
            }
        }
    }
    found.extend(high_water_marks(client, settings, topic, &newest).await?);
    let mut offsets = Vec::with_capacity(starts.len());
    for &(p, start) in starts {
        offsets.push(match found.get(&p) {
            Some(&o) => o,
            // Every partition was given an offset above, or failed the
            // call; resolving one alone keeps this total all the same.
            None => resolve_start(client, settings, topic, p, start).await?,
        });
    }
    Ok(offsets)
}

/// A ListOffsets spec that can key a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SpecKey {
    Oldest,
    Timestamp(i64),
}

impl SpecKey {
    fn spec(self) -> OffsetSpec {
        match self {
            SpecKey::Oldest => OffsetSpec::Oldest,
            SpecKey::Timestamp(t) => OffsetSpec::Timestamp(t),
        }
    }
}

/// The high watermark (the last stable offset under `read_committed`) of
/// each of `partitions` of `topic`: their log starts in one ListOffsets per
/// leader, then one Fetch per leader at those offsets, one byte each (a
/// broker returns the first batch whole anyway, KIP-74, and every
/// partition's watermark). A partition missing from an answer or answered
/// with an error is left out, for the caller to resolve alone.
async fn high_water_marks(
    client: &Client,
    settings: &Settings,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>> {
    let mut marks = BTreeMap::new();
    if partitions.is_empty() {
        return Ok(marks);
    }
    let starts = client
        .list_partition_offsets(topic, partitions, OffsetSpec::Oldest)
        .await?;
    let mut by_leader: BTreeMap<i32, (BrokerInfo, Vec<FetchPartition>)> = BTreeMap::new();
    for &p in partitions {
        let Some(start) = starts.get(&p).and_then(|l| l.offset) else {
            continue;
        };
        // No leader now (an election, say): the one-partition path waits
        // for one with its retries.
        let Ok(leader) = client.leader(topic, p).await else {
            continue;
        };
        by_leader
            .entry(leader.id)
            .or_insert_with(|| (leader, Vec::new()))
            .1
            .push(FetchPartition {
                partition: p,
                fetch_offset: start,
                partition_max_bytes: 1,
                ..Default::default()
            });
    }
    for (_, (leader, asked_parts)) in by_leader {
        // A failed Fetch leaves its partitions to the one-partition path,
        // which retries and reports them.
        let Ok(conn) = client.connection(&leader, settings.class).await else {
            continue;
        };
        let Ok(version) = conn
            .api_versions()
            .version_for(ApiKey::Fetch, conn.broker())
        else {
            continue;
        };
        let version = version.min(fetcher::LAST_FETCH_BY_NAME);
        let asked: BTreeSet<i32> = asked_parts.iter().map(|p| p.partition).collect();
        let req = FetchRequest {
            // tansu answers a zero wait with no partitions at all.
            max_wait_ms: 10,
            min_bytes: 1,
            max_bytes: 1,
            isolation_level: settings.isolation.code(),
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.to_string(),
                partitions: asked_parts,
                ..Default::default()
            }],
            ..Default::default()
        };
        let Ok(resp) = conn.send_version(&req, version).await else {
            continue;
        };
        if resp.error_code != 0 {
            client.report_error(ErrorCode(resp.error_code));
            continue;
        }
        let read_committed = settings.isolation == IsolationLevel::ReadCommitted && version >= 4;
        for p in resp
            .responses
            .iter()
            .filter(|t| t.topic == topic)
            .flat_map(|t| t.partitions.iter())
        {
            let code = ErrorCode(p.error_code);
            if !code.is_ok() {
                client.report_error(code);
                continue;
            }
            let mark = if read_committed && p.last_stable_offset >= 0 {
                p.last_stable_offset
            } else {
                p.high_watermark
            };
            // Only what was asked for counts.
            if asked.contains(&p.partition_index) {
                marks.insert(p.partition_index, mark);
            }
        }
    }
    Ok(marks)
}
