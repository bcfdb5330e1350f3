//! Side-channel offsets (sarama-consumer's `SidechannelTopic`): a member
//! giving partitions up publishes how far it got in them to a topic, and
//! the member that gets them next starts there when that is ahead of the
//! committed offset — so a rebalance rewinds less than the commits lag.
//!
//! One record per revocation (and close): key = the group id, value =
//! JSON naming the group, the member id, its generation and, per topic,
//! each partition's next offset to process (`p`, `o`), in the layout the
//! Go library reads, so members of both can share one topic:
//!
//! ```text
//! {"Ver":1,"ConsumerGroup":"billing","MemberId":"m-1","Generation":7,
//!  "Offsets":{"invoices":[{"p":0,"o":1042}]}}
//! ```
//!
//! The record goes to the partition the [`SideChannel::partitioner`]
//! hashes the key to (the Java default, murmur2, unless set otherwise); a
//! new owner reads only that partition, only its records of the last
//! [`SideChannel::window`] (at most [`SideChannel::max_records`] of
//! them), for at most [`SideChannel::read_timeout`]. Publishing and
//! reading never fail a rebalance: a failure is logged and the partition
//! starts at its committed offset.

mod json;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::TopicPartition;
use super::offsets::Generation;
use crate::client::{Client, OffsetSpec, TrafficClass};
use crate::config::Partitioner;
use crate::consumer::{Consumer, ConsumerOptions, StartOffset};
use crate::error::{Error, Result};
use crate::producer::{AsyncProducer, PartitionView, ProducerRecord, from_config};
use json::{Value, quote};

/// The side-channel topic sarama-consumer uses by default, and
/// [`SideChannel::default`]'s.
///
/// ```
/// use klamm::group::{DEFAULT_SIDE_CHANNEL_TOPIC, SideChannel};
/// assert_eq!(SideChannel::default().topic, DEFAULT_SIDE_CHANNEL_TOPIC);
/// ```
pub const DEFAULT_SIDE_CHANNEL_TOPIC: &str = "sarama-consumer-sidechannel-offsets";

/// The version of the record layout written and read.
const VERSION: i64 = 1;

/// Where and how a group consumer hands its partitions' offsets to their
/// next owner (set in
/// [`GroupOptions::side_channel`](super::GroupOptions::side_channel)).
///
/// The topic must exist (or be created by the broker on first use) and
/// the member's principal may need to write and read it; without it the
/// feature logs its failures and changes nothing.
///
/// ```
/// use std::time::Duration;
/// use klamm::group::{GroupOptions, SideChannel};
///
/// let options = GroupOptions {
///     side_channel: Some(SideChannel {
///         read_timeout: Duration::from_secs(1),
///         ..SideChannel::default()
///     }),
///     ..GroupOptions::default()
/// };
/// let sc = options.side_channel.as_ref().unwrap();
/// assert_eq!(sc.topic, "sarama-consumer-sidechannel-offsets");
/// assert_eq!(SideChannel::new("offsets-handover").topic, "offsets-handover");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideChannel {
    /// The topic. Default [`DEFAULT_SIDE_CHANNEL_TOPIC`].
    pub topic: String,
    /// How the group id picks the topic's partition: `murmur2` (the
    /// default, the Java client's), `fnv1a` (Sarama's default, for a
    /// topic shared with sarama-consumer members) or `consistent-crc32`;
    /// the others do not place a key consistently and are refused.
    pub partitioner: Partitioner,
    /// How old a record may be and still count. `None` (the default):
    /// `session.timeout.ms` plus the rebalance timeout, the longest a
    /// handover can take.
    pub window: Option<Duration>,
    /// At most this many of the partition's last records are read.
    /// Default 5,000.
    pub max_records: usize,
    /// The longest the read may delay a partition's start; then it starts
    /// at the committed offset (logged). Default 2 s.
    pub read_timeout: Duration,
    /// The longest a revocation waits for the record to be written (never
    /// more than the rebalance timeout); then it goes on (logged).
    /// Default 5 s.
    pub publish_timeout: Duration,
}

impl Default for SideChannel {
    fn default() -> Self {
        SideChannel {
            topic: DEFAULT_SIDE_CHANNEL_TOPIC.to_string(),
            partitioner: Partitioner::Murmur2,
            window: None,
            max_records: 5_000,
            read_timeout: Duration::from_secs(2),
            publish_timeout: Duration::from_secs(5),
        }
    }
}

impl SideChannel {
    /// The defaults with another topic.
    pub fn new(topic: impl Into<String>) -> Self {
        SideChannel {
            topic: topic.into(),
            ..SideChannel::default()
        }
    }

    /// Refuses settings that cannot work (checked when the group consumer
    /// starts).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.topic.is_empty() {
            return Err(Error::config("side_channel.topic", "name a topic"));
        }
        if !matches!(
            self.partitioner,
            Partitioner::Murmur2 | Partitioner::Fnv1a | Partitioner::ConsistentCrc32
        ) {
            return Err(Error::config(
                "side_channel.partitioner",
                "must place a key consistently: murmur2, fnv1a or consistent-crc32",
            ));
        }
        Ok(())
    }

    /// The partition of a topic with `count` partitions that `group`'s
    /// records go to.
    fn partition_for(&self, group: &str, count: i32) -> Option<i32> {
        let all: Vec<i32> = (0..count).collect();
        from_config(&self.partitioner).partition(
            &self.topic,
            Some(group.as_bytes()),
            &PartitionView::new(count, &all),
        )
    }

    /// The side-channel partition of `group`.
    async fn partition(&self, client: &Client, group: &str) -> Result<i32> {
        let count = i32::try_from(client.partitions(&self.topic).await?.len()).unwrap_or(i32::MAX);
        self.partition_for(group, count).ok_or_else(|| {
            Error::config(
                "side_channel.topic",
                format!("{} has no partitions", self.topic),
            )
        })
    }

    fn window_for(&self, client: &Client) -> Duration {
        let c = &client.config().consumer;
        self.window.unwrap_or_else(|| {
            c.session_timeout
                .saturating_add(c.effective_rebalance_timeout())
        })
    }
}

/// One side-channel record: what a member handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handover {
    pub(crate) group: String,
    /// Absent in records of members that do not write it.
    pub(crate) member_id: Option<String>,
    pub(crate) generation: Option<i32>,
    /// Each partition's next offset to process.
    pub(crate) offsets: Vec<(TopicPartition, i64)>,
}

/// The record value of `h`.
pub(crate) fn encode(h: &Handover) -> String {
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (tp, o) in &h.offsets {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(format!("{{\"p\":{},\"o\":{o}}}", tp.partition));
    }
    let topics: Vec<String> = by_topic
        .iter()
        .map(|(t, ps)| format!("{}:[{}]", quote(t), ps.join(",")))
        .collect();
    let mut out = format!("{{\"Ver\":{VERSION},\"ConsumerGroup\":{}", quote(&h.group));
    if let Some(m) = &h.member_id {
        out.push_str(&format!(",\"MemberId\":{}", quote(m)));
    }
    if let Some(g) = h.generation {
        out.push_str(&format!(",\"Generation\":{g}"));
    }
    out.push_str(&format!(",\"Offsets\":{{{}}}}}", topics.join(",")));
    out
}

/// Reads a record value; `Err` says why it is not one (never panics).
/// Entries with a negative offset or an out-of-range partition are left
/// out; the rest of the record still counts.
pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<Handover, &'static str> {
    let v = json::parse(bytes).ok_or("not JSON")?;
    if v.field("Ver").and_then(Value::as_i64) != Some(VERSION) {
        return Err("not version 1");
    }
    let group = v
        .field("ConsumerGroup")
        .and_then(Value::as_str)
        .ok_or("no ConsumerGroup")?
        .to_string();
    let Some(Value::Object(topics)) = v.field("Offsets") else {
        return Err("no Offsets object");
    };
    let mut offsets = Vec::new();
    for (topic, entries) in topics {
        let Value::Array(entries) = entries else {
            return Err("a topic's offsets are not a list");
        };
        for e in entries {
            let p = e.field("p").and_then(Value::as_i64);
            let o = e.field("o").and_then(Value::as_i64);
            if let (Some(p), Some(o)) = (p.and_then(|p| i32::try_from(p).ok()), o) {
                if p >= 0 && o >= 0 {
                    offsets.push((TopicPartition::new(topic.clone(), p), o));
                }
            }
        }
    }
    Ok(Handover {
        group,
        member_id: v
            .field("MemberId")
            .and_then(Value::as_str)
            .map(str::to_string),
        generation: v
            .field("Generation")
            .and_then(Value::as_i64)
            .and_then(|g| i32::try_from(g).ok()),
        offsets,
    })
}

/// A side-channel record as read: key, value, timestamp (ms).
pub(crate) type Raw<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// Where each of `wanted` starts, from the side channel's `records` (in
/// log order): the newest entry of `group` for the partition, among
/// records at or after `since` (ms), when it is ahead of the committed
/// offset (or there is none). Partitions without such an entry are left
/// out (they start at their committed offset). Only the newest entry of a
/// partition counts: an older one ahead of the commit has been superseded
/// by its later owner.
pub(crate) fn choose<'a>(
    group: &str,
    records: impl IntoIterator<Item = Raw<'a>>,
    since: i64,
    wanted: &[TopicPartition],
    committed: &BTreeMap<TopicPartition, i64>,
) -> BTreeMap<TopicPartition, i64> {
    let mut newest: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for (key, value, timestamp) in records {
        if key != Some(group.as_bytes()) || timestamp < since {
            continue;
        }
        let h = match decode(value.unwrap_or_default()) {
            Ok(h) if h.group == group => h,
            Ok(_) => continue,
            Err(why) => {
                tracing::debug!(%group, why, "side-channel record skipped");
                continue;
            }
        };
        for (tp, o) in h.offsets {
            if wanted.contains(&tp) {
                newest.insert(tp, o);
            }
        }
    }
    newest.retain(|tp, o| committed.get(tp).is_none_or(|c| *o > *c));
    newest
}

/// Reads the side channel for `wanted` partitions of `group` (see
/// [`choose`]), for at most [`SideChannel::read_timeout`]; a failure or
/// timeout is logged and gives nothing.
pub(crate) async fn read(
    client: &Client,
    sc: &SideChannel,
    group: &str,
    wanted: &[TopicPartition],
    committed: &BTreeMap<TopicPartition, i64>,
) -> BTreeMap<TopicPartition, i64> {
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(
        sc.read_timeout,
        read_unbounded(client, sc, group, wanted, committed),
    )
    .await;
    match outcome {
        Ok(Ok(found)) => {
            tracing::debug!(%group, topic = %sc.topic, ?found, took = ?started.elapsed(),
                "side channel read");
            found
        }
        Ok(Err(e)) => {
            tracing::warn!(%group, topic = %sc.topic, error = %e,
                "side channel not read; partitions start at their committed offsets");
            BTreeMap::new()
        }
        Err(_) => {
            tracing::warn!(%group, topic = %sc.topic, after = ?sc.read_timeout,
                "side channel read timed out; partitions start at their committed offsets");
            BTreeMap::new()
        }
    }
}

async fn read_unbounded(
    client: &Client,
    sc: &SideChannel,
    group: &str,
    wanted: &[TopicPartition],
    committed: &BTreeMap<TopicPartition, i64>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let p = sc.partition(client, group).await?;
    let since = now_ms()
        .saturating_sub(i64::try_from(sc.window_for(client).as_millis()).unwrap_or(i64::MAX));
    let end = client
        .list_offsets(&sc.topic, p, OffsetSpec::Newest)
        .await?;
    let first_recent = client
        .list_offsets(&sc.topic, p, OffsetSpec::Timestamp(since))
        .await?;
    if end <= 0 || first_recent < 0 {
        return Ok(BTreeMap::new());
    }
    let max = i64::try_from(sc.max_records).unwrap_or(i64::MAX);
    let start = first_recent.max(end.saturating_sub(max));
    if start >= end {
        return Ok(BTreeMap::new());
    }
    let reader = Reader::new(client);
    let consumer = reader.consumer.as_ref().ok_or_else(|| Error::State {
        reason: "the side channel's reader is closed".into(),
    })?;
    let mut records = Vec::new();
    let mut pc = consumer
        .consume_partition(&sc.topic, p, StartOffset::Offset(start))
        .await?;
    while let Some(batch) = pc.recv_batch().await {
        let batch = batch?;
        let next = batch.next_offset().unwrap_or(end);
        records.extend(batch.records);
        if next >= end {
            break;
        }
    }
    let raw = records
        .iter()
        .map(|r| (r.key.as_deref(), r.value.as_deref(), r.timestamp));
    Ok(choose(group, raw, since, wanted, committed))
}

/// The side-channel reader's consumer, on connections of its own (on the
/// shared fetch connection each request would wait behind the group
/// consumer's long polls). Dropping it — at the end of the read, or when
/// the read is cancelled by its timeout — closes both in the background.
struct Reader {
    client: Client,
    class: TrafficClass,
    consumer: Option<Consumer>,
}

impl Reader {
    fn new(client: &Client) -> Self {
        let class = client.dedicated_class();
        let options = ConsumerOptions::for_client(client);
        Reader {
            client: client.clone(),
            class,
            consumer: Some(Consumer::with_class(client.clone(), options, class)),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let (client, class, consumer) = (self.client.clone(), self.class, self.consumer.take());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Some(c) = consumer {
                    c.close().await;
                }
                client.close_class(class).await;
            });
        }
    }
}

/// Publishes handovers for one group consumer (its producer is made on
/// first use and kept).
#[derive(Debug)]
pub(crate) struct Publisher {
    pub(crate) config: SideChannel,
    producer: Option<AsyncProducer>,
}

impl Publisher {
    pub(crate) fn new(config: SideChannel) -> Self {
        Publisher {
            config,
            producer: None,
        }
    }

    /// Publishes `offsets` of `group` and waits for the broker's ack, for
    /// at most `limit`; a failure is logged and otherwise ignored.
    /// Cancel-safe (a repeat publishes again, which changes nothing).
    pub(crate) async fn publish(
        &mut self,
        client: &Client,
        group: &str,
        generation: &Generation,
        offsets: Vec<(TopicPartition, i64)>,
        limit: Duration,
    ) {
        if offsets.is_empty() {
            return;
        }
        let h = Handover {
            group: group.to_string(),
            member_id: Some(generation.member_id.clone()),
            generation: Some(generation.id),
            offsets,
        };
        let limit = limit.min(self.config.publish_timeout);
        match tokio::time::timeout(limit, self.send(client, &h)).await {
            Ok(Ok(at)) => tracing::debug!(%group, topic = %self.config.topic, partition = at.0,
                offset = at.1, handover = ?h.offsets, "offsets published to the side channel"),
            Ok(Err(e)) => tracing::warn!(%group, topic = %self.config.topic, error = %e,
                "publishing offsets to the side channel failed"),
            Err(_) => tracing::warn!(%group, topic = %self.config.topic, after = ?limit,
                "publishing offsets to the side channel timed out"),
        }
    }

    async fn send(&mut self, client: &Client, h: &Handover) -> Result<(i32, i64)> {
        let p = self.config.partition(client, &h.group).await?;
        let producer = match &self.producer {
            Some(p) => p.clone(),
            None => {
                let made = AsyncProducer::new(client.clone()).await?;
                self.producer = Some(made.clone());
                made
            }
        };
        let record = ProducerRecord::new(self.config.topic.clone(), encode(h))
            .with_key(h.group.clone())
            .with_partition(p);
        let meta = producer.send(record).await?.await?;
        Ok((meta.partition, meta.offset))
    }

    /// Stops the producer, waiting at most the publish timeout.
    pub(crate) async fn close(self) {
        if let Some(p) = self.producer {
            let _ = tokio::time::timeout(self.config.publish_timeout, p.close()).await;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn handover(group: &str, offsets: &[(&str, i32, i64)]) -> String {
        encode(&Handover {
            group: group.to_string(),
            member_id: Some("m-1".into()),
            generation: Some(3),
            offsets: offsets.iter().map(|(t, p, o)| (tp(t, *p), *o)).collect(),
        })
    }

    #[test]
    fn encodes_the_go_layout_and_decodes_it_back() {
        let h = Handover {
            group: "g\"1".into(),
            member_id: Some("m-1".into()),
            generation: Some(7),
            offsets: vec![(tp("a", 0), 10), (tp("a", 2), 12), (tp("b", 1), 5)],
        };
        let text = encode(&h);
        assert_eq!(
            text,
            r#"{"Ver":1,"ConsumerGroup":"g\"1","MemberId":"m-1","Generation":7,"Offsets":{"a":[{"p":0,"o":10},{"p":2,"o":12}],"b":[{"p":1,"o":5}]}}"#
        );
        assert_eq!(decode(text.as_bytes()), Ok(h));
    }

    #[test]
    fn decodes_records_of_go_members_and_refuses_garbage() {
        let go = br#"{"Ver":1,"ConsumerGroup":"g","Offsets":{"t":[{"p":3,"o":99},{"p":-1,"o":5},{"p":1,"o":-2},{"p":4}]}}"#;
        let h = decode(go).expect("a Go member's record");
        assert_eq!((h.member_id, h.generation), (None, None));
        assert_eq!(h.offsets, vec![(tp("t", 3), 99)], "bad entries left out");
        for bad in [
            &b"not json"[..],
            b"",
            b"[]",
            br#"{"Ver":2,"ConsumerGroup":"g","Offsets":{}}"#,
            br#"{"Ver":1,"Offsets":{}}"#,
            br#"{"Ver":1,"ConsumerGroup":"g","Offsets":[]}"#,
            br#"{"Ver":1,"ConsumerGroup":"g","Offsets":{"t":{"p":0}}}"#,
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn choose_takes_the_newest_recent_entry_of_this_group_ahead_of_the_commit() {
        let wanted = [tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3)];
        let committed: BTreeMap<TopicPartition, i64> =
            [(tp("t", 0), 10), (tp("t", 1), 50), (tp("t", 2), 5)].into();
        let values = [
            handover("g", &[("t", 0, 90)]),               // stale (old timestamp)
            handover("g", &[("t", 0, 20), ("t", 1, 40)]), // 1: below its commit
            handover("other", &[("t", 2, 500)]),          // another group, same key
            handover("g", &[("t", 2, 8), ("u", 0, 70)]),  // u/0 not wanted
            "{broken".to_string(),
            handover("g", &[("t", 3, 4), ("t", 9, 1)]), // 3: no commit; 9 not wanted
            handover("g", &[("t", 2, 9)]),              // newer entry for 2
        ];
        let keys: [&[u8]; 7] = [b"g", b"g", b"g", b"g", b"g", b"g", b"g"];
        let stamps = [100, 1000, 1000, 1000, 1000, 1000, 1000];
        let mut raw: Vec<Raw<'_>> = (0..values.len())
            .map(|i| (Some(keys[i]), Some(values[i].as_bytes()), stamps[i]))
            .collect();
        let foreign = handover("h", &[("t", 0, 1000)]);
        raw.push((Some(b"h"), Some(foreign.as_bytes()), 1000)); // other key
        raw.push((None, None, 1000));
        raw.push((Some(b"g"), None, 1000));
        let got = choose("g", raw, 500, &wanted, &committed);
        let want: BTreeMap<TopicPartition, i64> =
            [(tp("t", 0), 20), (tp("t", 2), 9), (tp("t", 3), 4)].into();
        assert_eq!(got, want);
    }

    #[test]
    fn only_the_newest_entry_of_a_partition_counts() {
        let wanted = [tp("t", 0)];
        let committed: BTreeMap<TopicPartition, i64> = [(tp("t", 0), 30)].into();
        let (older, newer) = (
            handover("g", &[("t", 0, 40)]),
            handover("g", &[("t", 0, 30)]),
        );
        let raw = [
            (Some(&b"g"[..]), Some(older.as_bytes()), 1),
            (Some(&b"g"[..]), Some(newer.as_bytes()), 1),
        ];
        assert!(choose("g", raw, 0, &wanted, &committed).is_empty());
    }

    #[test]
    fn the_group_picks_its_partition_by_the_configured_hash() {
        let sc = SideChannel::default();
        assert!(sc.validate().is_ok());
        let p = sc.partition_for("billing", 12).expect("partition");
        let java = crate::producer::partitioner::to_positive(
            crate::producer::partitioner::murmur2(b"billing"),
        ) % 12;
        assert_eq!(p, java);
        assert_eq!(sc.partition_for("billing", 12), Some(p), "stable");
        let sarama = SideChannel {
            partitioner: Partitioner::Fnv1a,
            ..SideChannel::default()
        };
        assert_eq!(sarama.partition_for("g", 1), Some(0));
        for bad in [
            Partitioner::Random,
            Partitioner::RoundRobin,
            Partitioner::Manual,
        ] {
            let sc = SideChannel {
                partitioner: bad,
                ..SideChannel::default()
            };
            assert!(sc.validate().is_err(), "{bad:?}");
        }
        assert!(SideChannel::new("").validate().is_err());
    }
}
