//! Offset lookups at partition leaders (ListOffsets): one partition, or
//! many partitions of a topic in one request per leader.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{BrokerInfo, Client, RetryPolicy, TrafficClass};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::{ApiKey, ListOffsetsRequest};

/// The longest pause between ListOffsets attempts.
const LIST_OFFSETS_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Which offset [`Client::list_offset`], [`Client::list_offsets`] and
/// [`Client::list_partition_offsets`] ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still in the log (the log start offset).
    Oldest,
    /// The offset the next record will get (the high watermark).
    Newest,
    /// The first offset whose timestamp is at or after this time (ms).
    Timestamp(i64),
    /// The record with the largest timestamp in the partition (the first
    /// of them if several share it), which need not be the last record:
    /// producers may set timestamps out of order. Kafka's `MAX_TIMESTAMP`
    /// (-3, KIP-734); it needs ListOffsets v7 (Kafka 3.0 and later), and a
    /// broker without it gives [`Error::UnsupportedVersion`].
    MaxTimestamp,
}

impl OffsetSpec {
    /// The ListOffsets `timestamp` field for this spec: the time itself,
    /// or Kafka's sentinel (-1 latest, -2 earliest, -3 max timestamp).
    ///
    /// ```
    /// use klamm::client::OffsetSpec;
    ///
    /// assert_eq!(OffsetSpec::Newest.timestamp(), -1);
    /// assert_eq!(OffsetSpec::Oldest.timestamp(), -2);
    /// assert_eq!(OffsetSpec::MaxTimestamp.timestamp(), -3);
    /// assert_eq!(OffsetSpec::Timestamp(1_700_000_000_000).timestamp(), 1_700_000_000_000);
    /// ```
    pub fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Oldest => -2,
            OffsetSpec::Newest => -1,
            OffsetSpec::Timestamp(t) => t,
            OffsetSpec::MaxTimestamp => -3,
        }
    }

    /// The lowest ListOffsets version that can ask for this spec.
    pub(crate) fn min_version(self) -> i16 {
        match self {
            OffsetSpec::MaxTimestamp => 7,
            _ => 0,
        }
    }
}

/// What [`Client::list_offset`] found: the offset, with the timestamp and
/// leader epoch the broker gave with it.
///
/// ```
/// use klamm::client::ListedOffset;
///
/// // A by-time lookup later than every record finds nothing.
/// let found = ListedOffset { offset: None, timestamp: None, leader_epoch: None };
/// let start = found.offset.unwrap_or(i64::MAX);
/// assert_eq!(start, i64::MAX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; `None` when no record matches (a
    /// [`Timestamp`](OffsetSpec::Timestamp) after every record's, the
    /// [`MaxTimestamp`](OffsetSpec::MaxTimestamp) of an empty partition).
    pub offset: Option<i64>,
    /// The timestamp (ms) of the record at `offset`, for
    /// [`Timestamp`](OffsetSpec::Timestamp) and
    /// [`MaxTimestamp`](OffsetSpec::MaxTimestamp); `None` where the broker
    /// gives none (-1: for [`Oldest`](OffsetSpec::Oldest) and
    /// [`Newest`](OffsetSpec::Newest), and always before ListOffsets v1).
    pub timestamp: Option<i64>,
    /// The leader epoch of the record at `offset` (KIP-320); `None` where
    /// the broker does not know it or answers below ListOffsets v4.
    pub leader_epoch: Option<i32>,
}

impl ListedOffset {
    /// A partition's ListOffsets answer at `version`: -1 (none) as
    /// `None`, v0's list of old-style offsets by its first.
    pub(crate) fn from_answer(
        p: &crate::protocol::messages::list_offsets_response::ListOffsetsPartitionResponse,
        version: i16,
    ) -> ListedOffset {
        let known = |v: i64| (v >= 0).then_some(v);
        if version == 0 {
            ListedOffset {
                offset: p.old_style_offsets.first().copied().and_then(known),
                timestamp: None,
                leader_epoch: None,
            }
        } else {
            ListedOffset {
                offset: known(p.offset),
                timestamp: known(p.timestamp),
                leader_epoch: (version >= 4 && p.leader_epoch >= 0).then_some(p.leader_epoch),
            }
        }
    }
}

impl Client {
    /// Looks up an offset of a partition at its leader: the offset alone,
    /// -1 when no record matches (see [`Client::list_offset`]).
    pub async fn list_offsets(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        Ok(self
            .list_offset(topic, partition, spec)
            .await?
            .offset
            .unwrap_or(-1))
    }

    /// Looks up an offset of a partition at its leader, with the timestamp
    /// and leader epoch the broker gives with it.
    ///
    /// Retriable failures (a leader moving, NOT_LEADER_OR_FOLLOWER, a broker
    /// going away) refresh the topic's metadata and ask again, with
    /// `retry.backoff.ms` doubling up to 1 s, for up to
    /// `default.api.timeout.ms` (the Java admin client's `listOffsets`
    /// does the same); the last error is returned when time runs out.
    ///
    /// [`OffsetSpec::MaxTimestamp`] fails with
    /// [`Error::UnsupportedVersion`] on a broker without ListOffsets v7,
    /// before anything is sent. A Kafka error for the partition is an
    /// [`Error::Broker`] with its code.
    ///
    /// ```no_run
    /// use klamm::Client;
    /// use klamm::client::OffsetSpec;
    ///
    /// # async fn run(client: Client) -> klamm::Result<()> {
    /// // The record with the largest timestamp, wherever it is in the log.
    /// let latest = client.list_offset("events", 0, OffsetSpec::MaxTimestamp).await?;
    /// if let (Some(offset), Some(at)) = (latest.offset, latest.timestamp) {
    ///     println!("the newest event ({at} ms) is at offset {offset}");
    /// }
    /// // The first record of the last hour, or None if there is none.
    /// let hour_ago = latest.timestamp.unwrap_or_default() - 3_600_000;
    /// let from = client.list_offset("events", 0, OffsetSpec::Timestamp(hour_ago)).await?;
    /// println!("the last hour starts at {:?}", from.offset);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset> {
        let mut found = self
            .list_partition_offsets(topic, &[partition], spec)
            .await?;
        // Every partition asked for is in the answer.
        found
            .remove(&partition)
            .ok_or_else(|| Error::ProtocolViolation {
                broker: "its leader".into(),
                reason: format!("no ListOffsets answer for {topic}/{partition}"),
            })
    }

    /// Looks up an offset of each of `partitions` of `topic`, in one
    /// ListOffsets request per leader (where [`Client::list_offset`] per
    /// partition would send one each): what starting many partitions from
    /// their oldest offset or a time needs, as the Java consumer's
    /// `seekToBeginning` over an assignment does.
    ///
    /// Retriable failures refresh the topic's metadata and ask again for
    /// the partitions still without an answer, within
    /// `default.api.timeout.ms`, as [`Client::list_offset`] does; the first
    /// failure that is not retriable (an unknown partition, an unsupported
    /// spec) fails the whole lookup. The answer has every partition asked
    /// for.
    ///
    /// ```no_run
    /// use klamm::Client;
    /// use klamm::client::OffsetSpec;
    ///
    /// # async fn run(client: Client) -> klamm::Result<()> {
    /// let partitions = client.partitions("events").await?;
    /// let firsts = client
    ///     .list_partition_offsets("events", &partitions, OffsetSpec::Oldest)
    ///     .await?;
    /// for (partition, first) in &firsts {
    ///     println!("events/{partition} starts at {:?}", first.offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_partition_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, ListedOffset>> {
        let mut retry = RetryPolicy::exponential(
            self.inner.config.metadata.retry_backoff,
            LIST_OFFSETS_BACKOFF_MAX,
        )
        .within(self.inner.config.consumer.default_api_timeout)
        .start();
        let mut found = BTreeMap::new();
        loop {
            let left: Vec<i32> = partitions
                .iter()
                .copied()
                .filter(|p| !found.contains_key(p))
                .collect();
            if left.is_empty() {
                return Ok(found);
            }
            match self.list_offsets_once(topic, &left, spec, &mut found).await {
                Ok(()) => {}
                Err(e) if e.is_retriable() => {
                    retry.pause(e).await?;
                    if let Err(e) = self.refresh_metadata(Some(&[topic.to_string()])).await {
                        tracing::debug!(topic, error = %e, "metadata refresh before ListOffsets retry failed");
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One pass: asks each leader of `partitions` for its share and puts
    /// the answers in `found`. A failure that is not retriable ends the
    /// pass at once; otherwise every leader is asked, and the first
    /// retriable failure is returned for the partitions left.
    async fn list_offsets_once(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
        found: &mut BTreeMap<i32, ListedOffset>,
    ) -> Result<()> {
        let mut by_leader: BTreeMap<i32, (BrokerInfo, Vec<i32>)> = BTreeMap::new();
        let mut retriable = None;
        for &p in partitions {
            match self.leader(topic, p).await {
                Ok(leader) => by_leader
                    .entry(leader.id)
                    .or_insert_with(|| (leader, Vec::new()))
                    .1
                    .push(p),
                Err(e) if e.is_retriable() => {
                    retriable.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        for (leader, asked) in by_leader.into_values() {
            match self
                .list_offsets_at(&leader, topic, &asked, spec, found)
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_retriable() => {
                    retriable.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        retriable.map_or(Ok(()), Err)
    }

    /// One ListOffsets request to `leader` for `partitions` of `topic`.
    async fn list_offsets_at(
        &self,
        leader: &BrokerInfo,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
        found: &mut BTreeMap<i32, ListedOffset>,
    ) -> Result<()> {
        let conn = self.connection(leader, TrafficClass::Other).await?;
        let versions = conn.api_versions();
        let version = versions.version_for(ApiKey::ListOffsets, conn.broker())?;
        if version < spec.min_version() {
            return Err(Error::UnsupportedVersion {
                broker: conn.broker().to_string(),
                api: ApiKey::ListOffsets,
                broker_versions: versions.broker_range(ApiKey::ListOffsets),
                ours: (
                    spec.min_version(),
                    crate::net::client_max(ApiKey::ListOffsets),
                ),
            });
        }
        // v10+: how long the broker may wait for a remote (tiered) lookup;
        // the Java consumer sends its request timeout.
        let timeout_ms = self
            .inner
            .config
            .net
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        let req = ListOffsetsRequest {
            replica_id: -1,
            timeout_ms,
            topics: vec![ListOffsetsTopic {
                name: topic.to_string(),
                partitions: partitions
                    .iter()
                    .map(|&p| ListOffsetsPartition {
                        partition_index: p,
                        timestamp: spec.timestamp(),
                        max_num_offsets: 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await?;
        let mut answers: BTreeMap<i32, _> = resp
            .topics
            .iter()
            .filter(|t| t.name == topic)
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p))
            .collect();
        let mut retriable = None;
        for &partition in partitions {
            let p = answers
                .remove(&partition)
                .ok_or_else(|| Error::ProtocolViolation {
                    broker: leader.addr(),
                    reason: format!("ListOffsets answer has no {topic}/{partition}"),
                })?;
            let code = ErrorCode(p.error_code);
            if !code.is_ok() {
                self.report_error(code);
                let e = Error::Broker {
                    api: ApiKey::ListOffsets,
                    code,
                    context: Some(format!("{topic}/{partition}")),
                };
                if !e.is_retriable() {
                    return Err(e);
                }
                retriable.get_or_insert(e);
                continue;
            }
            found.insert(partition, ListedOffset::from_answer(p, version));
        }
        retriable.map_or(Ok(()), Err)
    }
}
