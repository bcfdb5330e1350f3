//! Offset hooks: where a group member starts reading a partition it was
//! given, and where it goes when its fetch offset is out of range.
//!
//! A [`GroupConsumer`](super::GroupConsumer) asks its [`OffsetHooks`]
//! (set in [`GroupOptions::hooks`](super::GroupOptions::hooks)) at two
//! points: when a partition is assigned ([`OffsetHooks::starting_offset`],
//! given the committed offset) and when the broker answers
//! `OFFSET_OUT_OF_RANGE` for it ([`OffsetHooks::offset_out_of_range`]);
//! the partition then reads from the answer, and
//! [`OffsetHooks::partition_started`] is told the offset. Every method has
//! a default that does what the consumer does without hooks: the
//! committed offset, else `auto.offset.reset`. [`NoOlderThan`] is a
//! ready-made policy that skips records older than a given age.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::TopicPartition;
use crate::client::{Client, OffsetSpec};
use crate::config::OffsetReset;
use crate::consumer::{Consumer, PartitionConsumer, StartOffset};
use crate::error::{Error, Result};

/// The future an [`OffsetHooks`] method returns.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Decides where a group member reads its partitions from.
///
/// The methods run on the member's task (during `recv` for a new
/// assignment, on the partition's reader task for an out-of-range
/// offset), so they may call the broker (ListOffsets, through `client`)
/// but should not wait long. An error from `starting_offset` is returned
/// by `recv` (as an assignment that cannot start is today); one from
/// `offset_out_of_range` reaches `recv` as that partition's error, after
/// which the partition is not read until it is assigned again. Retriable
/// errors of `offset_out_of_range` are retried.
///
/// ```
/// use klamm::Client;
/// use klamm::consumer::StartOffset;
/// use klamm::group::{HookFuture, OffsetHooks};
///
/// /// Skips the first 100 records after the committed offset, and goes
/// /// back to the oldest record when the offset is out of range.
/// #[derive(Debug)]
/// struct SkipAhead;
///
/// impl OffsetHooks for SkipAhead {
///     fn starting_offset<'a>(
///         &'a self,
///         _client: &'a Client,
///         _topic: &'a str,
///         _partition: i32,
///         committed: Option<i64>,
///     ) -> HookFuture<'a, StartOffset> {
///         let start = committed.map_or(StartOffset::Oldest, |c| StartOffset::Offset(c + 100));
///         Box::pin(async move { Ok(start) })
///     }
///
///     fn offset_out_of_range<'a>(
///         &'a self,
///         _client: &'a Client,
///         _topic: &'a str,
///         _partition: i32,
///     ) -> HookFuture<'a, StartOffset> {
///         Box::pin(async { Ok(StartOffset::Oldest) })
///     }
/// }
/// ```
pub trait OffsetHooks: Send + Sync + fmt::Debug {
    /// Where a newly assigned partition starts, given its committed offset
    /// (`None`: the group has none). Default: the committed offset, else
    /// what `auto.offset.reset` says (`none` is an error). With
    /// [`GroupOptions::side_channel`](super::GroupOptions::side_channel),
    /// an offset the previous owner handed over that is ahead of the
    /// commit comes here as `committed`.
    fn starting_offset<'a>(
        &'a self,
        client: &'a Client,
        topic: &'a str,
        partition: i32,
        committed: Option<i64>,
    ) -> HookFuture<'a, StartOffset> {
        let reset = client.config().consumer.auto_offset_reset;
        Box::pin(std::future::ready(match committed {
            Some(c) => Ok(StartOffset::Offset(c)),
            None => reset_start(reset, topic, partition, "has no committed offset"),
        }))
    }

    /// Where a partition goes when its fetch offset is out of range
    /// (before the log start or past the end), or its committed offset is
    /// older than the topic's
    /// [`max_message_age`](super::GroupOptions::max_message_age). Default:
    /// what `auto.offset.reset` says — the newest offset under `latest`
    /// (Java's default), the oldest under `earliest`, an error under
    /// `none`.
    fn offset_out_of_range<'a>(
        &'a self,
        client: &'a Client,
        topic: &'a str,
        partition: i32,
    ) -> HookFuture<'a, StartOffset> {
        let reset = client.config().consumer.auto_offset_reset;
        Box::pin(std::future::ready(reset_start(
            reset,
            topic,
            partition,
            "is out of range",
        )))
    }

    /// Called when a partition starts reading at `offset`: after it was
    /// assigned, and again after an out-of-range offset moved it. Default:
    /// nothing.
    fn partition_started(&self, topic: &str, partition: i32, offset: i64) {
        let _ = (topic, partition, offset);
    }
}

/// The hooks of a group consumer that has none: every default.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DefaultHooks;

impl OffsetHooks for DefaultHooks {}

/// Reads only records younger than the given age: a partition starts at
/// its committed offset or at the first record of the last `age`,
/// whichever is later, and an out-of-range offset goes to the first
/// record of the last `age` — the newest offset when there is none. The
/// record is found by timestamp (ListOffsets), so it is the first whose
/// timestamp is at or after now − `age`.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use klamm::group::{GroupConsumer, GroupOptions, NoOlderThan};
///
/// # async fn run(client: klamm::Client) -> klamm::Result<()> {
/// let options = GroupOptions {
///     hooks: Some(Arc::new(NoOlderThan(Duration::from_secs(3600)))),
///     ..GroupOptions::default()
/// };
/// let group = GroupConsumer::with_options(client, ["clicks"], options).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoOlderThan(pub Duration);

impl OffsetHooks for NoOlderThan {
    fn starting_offset<'a>(
        &'a self,
        client: &'a Client,
        topic: &'a str,
        partition: i32,
        committed: Option<i64>,
    ) -> HookFuture<'a, StartOffset> {
        Box::pin(async move {
            let boundary = offset_for_age(client, topic, partition, self.0).await?;
            Ok(no_older_than(committed, boundary))
        })
    }

    fn offset_out_of_range<'a>(
        &'a self,
        client: &'a Client,
        topic: &'a str,
        partition: i32,
    ) -> HookFuture<'a, StartOffset> {
        Box::pin(async move {
            let boundary = offset_for_age(client, topic, partition, self.0).await?;
            Ok(no_older_than(None, boundary))
        })
    }
}

/// The offset of the first record of `topic`/`partition` whose timestamp
/// is at most `age` old (ListOffsets by timestamp), or `None` when every
/// record is older.
///
/// ```no_run
/// use std::time::Duration;
/// # async fn run(client: klamm::Client) -> klamm::Result<()> {
/// let hour = klamm::group::offset_for_age(&client, "clicks", 0, Duration::from_secs(3600)).await?;
/// println!("the last hour starts at {hour:?}");
/// # Ok(())
/// # }
/// ```
pub async fn offset_for_age(
    client: &Client,
    topic: &str,
    partition: i32,
    age: Duration,
) -> Result<Option<i64>> {
    let since = millis_ago(SystemTime::now(), age);
    let o = client
        .list_offsets(topic, partition, OffsetSpec::Timestamp(since))
        .await?;
    Ok((o >= 0).then_some(o))
}

/// The time `age` before `now`, in ms since the epoch (0 at the earliest).
fn millis_ago(now: SystemTime, age: Duration) -> i64 {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        .max(0)
}

/// [`NoOlderThan`]'s choice: the later of the committed offset and the
/// first young enough record, the newest offset when no record is.
fn no_older_than(committed: Option<i64>, boundary: Option<i64>) -> StartOffset {
    match (committed, boundary) {
        (_, None) => StartOffset::Newest,
        (Some(c), Some(b)) => StartOffset::Offset(c.max(b)),
        (None, Some(b)) => StartOffset::Offset(b),
    }
}

/// What `auto.offset.reset` names for a partition that `why` (has no
/// committed offset, is out of range).
fn reset_start(reset: OffsetReset, topic: &str, partition: i32, why: &str) -> Result<StartOffset> {
    match reset {
        OffsetReset::Earliest => Ok(StartOffset::Oldest),
        OffsetReset::Latest => Ok(StartOffset::Newest),
        OffsetReset::None => Err(Error::config(
            "auto.offset.reset",
            format!("{topic}/{partition} {why} and the reset policy is none"),
        )),
    }
}

/// Where each newly assigned partition starts, as an offset, given its
/// committed offset (or the one handed over): the committed offset unless
/// it is older than its topic's maximum message age (then the
/// out-of-range hook decides), through `hooks`.
///
/// The lookups are made a topic at a time: the first offset young enough
/// for every partition of a topic with a maximum age, then the chosen
/// starts (oldest, newest, by time) together, one ListOffsets (and for the
/// newest one Fetch) per leader rather than one or two per partition.
/// Fails, starting nothing, unless every start resolves.
pub(crate) async fn choose_starts(
    consumer: &Consumer,
    hooks: &dyn OffsetHooks,
    max_age: &BTreeMap<String, Duration>,
    assigned: &[(TopicPartition, Option<i64>)],
) -> Result<BTreeMap<TopicPartition, i64>> {
    let client = consumer.client();
    // The first offset young enough (the end when every record is older),
    // where a committed offset must be checked against it.
    let mut aged: BTreeMap<&str, Vec<(i32, StartOffset)>> = BTreeMap::new();
    let now = SystemTime::now();
    for (tp, committed) in assigned {
        if let (Some(_), Some(age)) = (committed, max_age.get(&tp.topic)) {
            let since = millis_ago(now, *age);
            aged.entry(tp.topic.as_str())
                .or_default()
                .push((tp.partition, StartOffset::Timestamp(since)));
        }
    }
    let young = resolve_by_topic(consumer, aged).await?;
    let mut chosen: BTreeMap<&str, Vec<(i32, StartOffset)>> = BTreeMap::new();
    for (tp, committed) in assigned {
        let (topic, partition) = (tp.topic.as_str(), tp.partition);
        let mut start = None;
        if let (Some(c), Some(&boundary)) = (committed, young.get(tp))
            && *c < boundary
        {
            let s = hooks.offset_out_of_range(client, topic, partition).await?;
            tracing::info!(%tp, committed = c, first_young = boundary, to = ?s,
                "committed offset older than the topic's max message age; treated as out of range");
            start = Some(s);
        }
        let start = match start {
            Some(s) => s,
            None => {
                hooks
                    .starting_offset(client, topic, partition, *committed)
                    .await?
            }
        };
        chosen.entry(topic).or_default().push((partition, start));
    }
    resolve_by_topic(consumer, chosen).await
}

/// The offsets the starts name, looked up a topic at a time.
async fn resolve_by_topic(
    consumer: &Consumer,
    by_topic: BTreeMap<&str, Vec<(i32, StartOffset)>>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut offsets = BTreeMap::new();
    for (topic, starts) in by_topic {
        let resolved = consumer.resolve_start_offsets(topic, &starts).await?;
        for ((p, _), o) in starts.into_iter().zip(resolved) {
            offsets.insert(TopicPartition::new(topic, p), o);
        }
    }
    Ok(offsets)
}

/// Reopens partitions whose fetch offset went out of range, where the
/// hooks say (a group consumer with hooks reads with the reset policy
/// `Error`, so the out-of-range error reaches it).
#[derive(Clone)]
pub(crate) struct Restarter {
    pub(crate) consumer: Consumer,
    pub(crate) hooks: std::sync::Arc<dyn OffsetHooks>,
    pub(crate) backoff: Duration,
}

impl Restarter {
    /// Asks the hook where `tp` goes after `error` and opens it there.
    /// `quiet` counts the restarts in a row that delivered nothing: they
    /// wait longer and longer (a hook that keeps naming an offset out of
    /// range does not spin). Retriable errors are retried.
    pub(crate) async fn reopen(
        &self,
        tp: &TopicPartition,
        error: &Error,
        quiet: u32,
    ) -> Result<(PartitionConsumer, i64)> {
        if quiet > 0 {
            tokio::time::sleep(self.backoff.saturating_mul(quiet.min(10))).await;
        }
        loop {
            match self.try_reopen(tp).await {
                Ok((pc, offset)) => {
                    tracing::info!(%tp, %error, to = offset,
                        "fetch offset out of range; reading where the offset hook says");
                    self.hooks
                        .partition_started(&tp.topic, tp.partition, offset);
                    return Ok((pc, offset));
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(%tp, error = %e, "restart after out of range failed; retrying");
                    tokio::time::sleep(self.backoff).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_reopen(&self, tp: &TopicPartition) -> Result<(PartitionConsumer, i64)> {
        let client = self.consumer.client();
        let start = self
            .hooks
            .offset_out_of_range(client, &tp.topic, tp.partition)
            .await?;
        let offset = self
            .consumer
            .resolve_start_offset(&tp.topic, tp.partition, start)
            .await?;
        let pc = self
            .consumer
            .consume_partition(&tp.topic, tp.partition, StartOffset::Offset(offset))
            .await?;
        Ok((pc, offset))
    }
}

/// Whether `e` says the fetch offset is out of range.
pub(crate) fn is_out_of_range(e: &Error) -> bool {
    matches!(e, Error::Broker { code, .. }
        if *code == crate::protocol::error_codes::ErrorCode::OFFSET_OUT_OF_RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_older_than_takes_the_later_offset_and_newest_without_young_records() {
        assert_eq!(no_older_than(Some(5), Some(10)), StartOffset::Offset(10));
        assert_eq!(no_older_than(Some(15), Some(10)), StartOffset::Offset(15));
        assert_eq!(no_older_than(None, Some(10)), StartOffset::Offset(10));
        assert_eq!(no_older_than(Some(5), None), StartOffset::Newest);
        assert_eq!(no_older_than(None, None), StartOffset::Newest);
    }

    #[test]
    fn reset_follows_auto_offset_reset() {
        assert_eq!(
            reset_start(OffsetReset::Earliest, "t", 0, "x").ok(),
            Some(StartOffset::Oldest)
        );
        assert_eq!(
            reset_start(OffsetReset::Latest, "t", 0, "x").ok(),
            Some(StartOffset::Newest)
        );
        let e = reset_start(OffsetReset::None, "t", 3, "is out of range");
        assert!(
            matches!(&e, Err(Error::Config { .. })),
            "none is a config error: {e:?}"
        );
        let text = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("t/3 is out of range"), "{text}");
    }

    #[test]
    fn millis_ago_saturates_at_the_epoch() {
        let now = UNIX_EPOCH + Duration::from_millis(10_000);
        assert_eq!(millis_ago(now, Duration::from_millis(2_500)), 7_500);
        assert_eq!(millis_ago(now, Duration::from_secs(3600)), 0);
        assert_eq!(millis_ago(now, Duration::MAX), 0);
        assert_eq!(millis_ago(UNIX_EPOCH, Duration::ZERO), 0);
    }

    #[test]
    fn only_offset_out_of_range_is_out_of_range() {
        use crate::protocol::error_codes::ErrorCode;
        use crate::protocol::messages::ApiKey;
        let broker = |code| Error::Broker {
            api: ApiKey::Fetch,
            code,
            context: None,
        };
        assert!(is_out_of_range(&broker(ErrorCode::OFFSET_OUT_OF_RANGE)));
        assert!(!is_out_of_range(&broker(ErrorCode::NOT_LEADER_OR_FOLLOWER)));
        assert!(!is_out_of_range(&Error::config("x", "y")));
    }
}
