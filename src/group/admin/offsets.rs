//! A group's offsets from the admin side: reading them (OffsetFetch, on
//! the offset manager's request path), lag against the log end, altering
//! or resetting them while the group is empty (OffsetCommit as no
//! member, generation -1), and deleting them (OffsetDelete).

use std::collections::{BTreeMap, BTreeSet};

use super::{GroupAdmin, LOG_END_LOOKUPS, MemberDescription, join_all};
use crate::client::{OffsetSpec, Step, TrafficClass};
use crate::error::{Error, Result};
use crate::group::offsets::requests::{commit_request, fetch_offsets, send_commit};
use crate::group::{Generation, OffsetAndMetadata, TopicPartition};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use crate::protocol::messages::{
    ApiKey, MetadataRequest, OffsetDeleteRequest, OffsetDeleteResponse,
};

/// Each partition's outcome of an offset change, by partition.
pub type PartitionResults<T = ()> = BTreeMap<TopicPartition, Result<T>>;

/// The lag of one partition of a group.
///
/// ```
/// use klamm::group::{PartitionLag, TopicPartition};
///
/// let lag = PartitionLag::new(TopicPartition::new("orders", 0), Some(7), Some(10));
/// assert_eq!(lag.lag, Some(3));
/// // A committed offset past the log end (records deleted, a topic made
/// // again) is no lag rather than a negative one.
/// let ahead = PartitionLag::new(TopicPartition::new("orders", 1), Some(12), Some(10));
/// assert_eq!(ahead.lag, Some(0));
/// // A partition the group owns but never committed has no lag to tell,
/// // which is not the same as a lag of 0.
/// let never = PartitionLag::new(TopicPartition::new("orders", 2), None, Some(10));
/// assert_eq!((never.committed, never.lag), (None, None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset (the next record it will read);
    /// `None` when the group has committed nothing for the partition.
    pub committed: Option<i64>,
    /// The log end offset (the high watermark); `None` when the topic or
    /// partition no longer exists.
    pub log_end: Option<i64>,
    /// `log_end − committed`, and 0 when the committed offset is past the
    /// log end (never negative); `None` without a commit or a log end.
    pub lag: Option<i64>,
    /// The member that owns the partition now, if the group says.
    pub member_id: Option<String>,
    /// That member's client id.
    pub client_id: Option<String>,
}

impl PartitionLag {
    /// The lag of `partition` from its committed offset and log end, with
    /// no owner.
    pub fn new(partition: TopicPartition, committed: Option<i64>, log_end: Option<i64>) -> Self {
        PartitionLag {
            partition,
            committed,
            log_end,
            lag: committed.zip(log_end).map(|(c, end)| lag_of(end, c)),
            member_id: None,
            client_id: None,
        }
    }
}

/// `end − committed`, clamped at 0: a committed offset past the log end
/// means nothing is left to read.
pub(super) fn lag_of(end: i64, committed: i64) -> i64 {
    end.saturating_sub(committed).max(0)
}

/// The rows of [`GroupAdmin::lag`]: every partition committed or owned,
/// sorted, with its log end (`ends`, by partition) and owner.
pub(super) fn lag_rows(
    committed: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    owners: &BTreeMap<TopicPartition, &MemberDescription>,
    ends: &BTreeMap<TopicPartition, Option<i64>>,
) -> Vec<PartitionLag> {
    let all: BTreeSet<&TopicPartition> = committed.keys().chain(owners.keys()).collect();
    all.into_iter()
        .map(|tp| {
            let mut lag = PartitionLag::new(
                tp.clone(),
                committed.get(tp).map(|o| o.offset),
                ends.get(tp).copied().flatten(),
            );
            if let Some(m) = owners.get(tp) {
                lag.member_id = Some(m.member_id.clone());
                lag.client_id = Some(m.client_id.clone());
            }
            lag
        })
        .collect()
}

/// Codes that say "ask the coordinator again", for requests whose other
/// codes are answers about a partition or member: NOT_COORDINATOR and
/// COORDINATOR_NOT_AVAILABLE look it up again, COORDINATOR_LOAD_IN_PROGRESS
/// and REBALANCE_IN_PROGRESS (the group is between generations) wait.
pub(super) fn coordinator_step<T>(
    api: ApiKey,
    code: ErrorCode,
    group: &str,
) -> Option<Step<T, Error>> {
    let error = || Error::Broker {
        api,
        code,
        context: Some(format!("group '{group}'")),
    };
    if code == ErrorCode::NOT_COORDINATOR || code == ErrorCode::COORDINATOR_NOT_AVAILABLE {
        Some(Step::Rediscover(error()))
    } else if code == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        || code == ErrorCode::REBALANCE_IN_PROGRESS
    {
        Some(Step::Retry(error()))
    } else {
        None
    }
}

/// Each partition's outcome of an admin OffsetCommit: a coordinator code
/// on any partition asks again (for all: committing the same offsets
/// twice changes nothing); other codes are that partition's error. A
/// member code means the group is not empty, which the error says.
pub(super) fn commit_results(
    group: &str,
    asked: &BTreeSet<TopicPartition>,
    answers: Vec<(TopicPartition, ErrorCode)>,
) -> Step<PartitionResults, Error> {
    let mut out = BTreeMap::new();
    for (tp, code) in answers {
        if !asked.contains(&tp) {
            continue;
        }
        if let Some(step) = coordinator_step(ApiKey::OffsetCommit, code, group) {
            return step;
        }
        let outcome = if code.is_ok() {
            Ok(())
        } else {
            let why = if [
                ErrorCode::UNKNOWN_MEMBER_ID,
                ErrorCode::ILLEGAL_GENERATION,
                ErrorCode::STALE_MEMBER_EPOCH,
            ]
            .contains(&code)
            {
                ": the group has members; its offsets can be altered only while it is empty"
            } else {
                ""
            };
            Err(Error::Broker {
                api: ApiKey::OffsetCommit,
                code,
                context: Some(format!("group '{group}', {tp}{why}")),
            })
        };
        out.insert(tp, outcome);
    }
    fill_missing(&mut out, asked, "OffsetCommit", group);
    Step::Done(out)
}

/// Each partition's outcome of an OffsetDelete: a group code stops the
/// call (or asks again, for coordinator codes); partition codes
/// (GROUP_SUBSCRIBED_TO_TOPIC: members still read the topic) are that
/// partition's error.
pub(super) fn delete_results(
    group: &str,
    asked: &BTreeSet<TopicPartition>,
    resp: OffsetDeleteResponse,
) -> Step<PartitionResults, Error> {
    let code = ErrorCode(resp.error_code);
    if let Some(step) = coordinator_step(ApiKey::OffsetDelete, code, group) {
        return step;
    }
    if !code.is_ok() {
        return Step::Stop(Error::Broker {
            api: ApiKey::OffsetDelete,
            code,
            context: Some(format!("group '{group}'")),
        });
    }
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            let tp = TopicPartition::new(t.name.clone(), p.partition_index);
            if !asked.contains(&tp) {
                continue;
            }
            let code = ErrorCode(p.error_code);
            let outcome = if code.is_ok() {
                Ok(())
            } else {
                Err(Error::Broker {
                    api: ApiKey::OffsetDelete,
                    code,
                    context: Some(format!("group '{group}', {tp}")),
                })
            };
            out.insert(tp, outcome);
        }
    }
    fill_missing(&mut out, asked, "OffsetDelete", group);
    Step::Done(out)
}

/// A partition the answer leaves out gets a protocol error of its own.
fn fill_missing(
    out: &mut PartitionResults,
    asked: &BTreeSet<TopicPartition>,
    api: &str,
    group: &str,
) {
    for tp in asked {
        out.entry(tp.clone()).or_insert_with(|| {
            Err(Error::ProtocolViolation {
                broker: format!("the coordinator of group '{group}'"),
                reason: format!("{api} answer leaves out {tp}"),
            })
        });
    }
}

impl GroupAdmin {
    /// The offsets `group` has committed: for `partitions`, or with `None`
    /// for every partition it has offsets for. Partitions without a
    /// committed offset are absent. Offsets of transactions still open
    /// are not waited for (Java's admin default: `requireStable` off).
    ///
    /// Errors: GROUP_AUTHORIZATION_FAILED and other Kafka errors as
    /// [`Error::Broker`] naming the group; coordinator moves and loads are
    /// retried.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::group::GroupAdmin) -> klamm::Result<()> {
    /// for (tp, committed) in admin.committed_offsets("billing", None).await? {
    ///     println!("{tp}: next offset {}", committed.offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        self.at_coordinator(group, ApiKey::OffsetFetch, |conn| async move {
            let meta = self.client.metadata();
            fetch_offsets(&conn, group, partitions, false, &meta).await
        })
        .await
    }

    /// The lag of `group`, sorted by partition: every partition it has
    /// committed an offset for or a member owns now, with the log end
    /// offset (ListOffsets, latest; the high watermark), the committed
    /// offset, their difference (0 when the committed offset is past the
    /// log end), and the owner. A partition owned but never committed has
    /// `committed` and `lag` `None`, not 0.
    ///
    /// A topic the group has offsets for but that no longer exists gets
    /// no log end (it is looked for without creating it, whatever
    /// `allow.auto.create.topics` says).
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::group::GroupAdmin) -> klamm::Result<()> {
    /// let rows = admin.lag("billing").await?;
    /// let total: i64 = rows.iter().filter_map(|r| r.lag).sum();
    /// println!("billing is {total} records behind over {} partitions", rows.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        let committed = self.committed_offsets(group, None).await?;
        let description = self.describe_group(group).await?;
        let owners = description.owners();
        let all: BTreeSet<&TopicPartition> = committed.keys().chain(owners.keys()).collect();
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let topics: BTreeSet<&str> = all.iter().map(|tp| tp.topic.as_str()).collect();
        let existing = self.partitions_of(&topics).await?;
        let partitions: Vec<&TopicPartition> = all.into_iter().collect();
        let mut ends = BTreeMap::new();
        for chunk in partitions.chunks(LOG_END_LOOKUPS) {
            let found = join_all(chunk.iter().map(|tp| {
                let exists = existing
                    .get(tp.topic.as_str())
                    .is_some_and(|ps| ps.contains(&tp.partition));
                self.offset_of(tp, OffsetSpec::Newest, exists)
            }))
            .await;
            for (tp, end) in chunk.iter().zip(found) {
                ends.insert((*tp).clone(), end?);
            }
        }
        Ok(lag_rows(&committed, &owners, &ends))
    }

    /// The offset `spec` names in `tp` (ListOffsets at its leader,
    /// retried); `None` when the partition does not exist or no record
    /// matches.
    async fn offset_of(
        &self,
        tp: &TopicPartition,
        spec: OffsetSpec,
        exists: bool,
    ) -> Result<Option<i64>> {
        if !exists {
            return Ok(None);
        }
        self.retrying(
            || format!("ListOffsets for {tp}"),
            move |_| async move {
                let found = self
                    .client
                    .list_offset(&tp.topic, tp.partition, spec)
                    .await?;
                Ok(found.offset)
            },
        )
        .await
    }

    /// Sets `group`'s committed offsets to `offsets` (OffsetCommit as no
    /// member: generation -1, no member id), each partition's outcome on
    /// its own. Only an empty group's offsets can be altered: while it has
    /// members each partition fails with UNKNOWN_MEMBER_ID (the error says
    /// why). A group that does not exist is made, empty, with these
    /// offsets, as Kafka does.
    ///
    /// ```no_run
    /// use std::collections::BTreeMap;
    /// use klamm::group::{GroupAdmin, OffsetAndMetadata, TopicPartition};
    ///
    /// # async fn run(admin: GroupAdmin) -> klamm::Result<()> {
    /// let mut to = BTreeMap::new();
    /// to.insert(TopicPartition::new("orders", 0), OffsetAndMetadata::new(42));
    /// for (tp, outcome) in admin.alter_offsets("billing", &to).await? {
    ///     if let Err(e) = outcome {
    ///         eprintln!("{tp}: {e}");
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn alter_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<PartitionResults> {
        if offsets.is_empty() {
            return Ok(BTreeMap::new());
        }
        let asked: BTreeSet<TopicPartition> = offsets.keys().cloned().collect();
        let asked = &asked;
        self.at_coordinator(group, ApiKey::OffsetCommit, |conn| async move {
            let req = commit_request(group, &Generation::NONE, offsets, &self.client.metadata());
            let answers = send_commit(&conn, req).await?;
            Ok(commit_results(group, asked, answers))
        })
        .await
    }

    /// Resets `group`'s offsets for `partitions` to the offset `to` names
    /// in each (ListOffsets: the log start, the log end, the first record
    /// at or after a time — the log end when none is — or the record with
    /// the largest timestamp), then commits them as
    /// [`alter_offsets`](Self::alter_offsets) does: the group must be
    /// empty. Each partition's outcome on its own: the offset it was reset
    /// to, or why not (a partition that does not exist, a lookup that
    /// failed, the commit's error).
    ///
    /// ```no_run
    /// use klamm::client::OffsetSpec;
    /// use klamm::group::{GroupAdmin, TopicPartition};
    ///
    /// # async fn run(admin: GroupAdmin) -> klamm::Result<()> {
    /// let all = [TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)];
    /// let reset = admin.reset_offsets("billing", &all, OffsetSpec::Oldest).await?;
    /// for (tp, outcome) in reset {
    ///     println!("{tp}: {:?}", outcome.map_err(|e| e.to_string()));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reset_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        to: OffsetSpec,
    ) -> Result<PartitionResults<i64>> {
        let topics: BTreeSet<&str> = partitions.iter().map(|tp| tp.topic.as_str()).collect();
        let existing = if topics.is_empty() {
            BTreeMap::new()
        } else {
            self.partitions_of(&topics).await?
        };
        let existing = &existing;
        let mut out: PartitionResults<i64> = BTreeMap::new();
        let mut targets = BTreeMap::new();
        for chunk in partitions.chunks(LOG_END_LOOKUPS) {
            let found = join_all(chunk.iter().map(|tp| async move {
                let exists = existing
                    .get(tp.topic.as_str())
                    .is_some_and(|ps| ps.contains(&tp.partition));
                if !exists {
                    return Err(Error::Broker {
                        api: ApiKey::Metadata,
                        code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        context: Some(format!("{tp}")),
                    });
                }
                match self.offset_of(tp, to, true).await? {
                    Some(offset) => Ok(offset),
                    // No record at or after the time: the end, as
                    // kafka-consumer-groups does.
                    None => Ok(self
                        .offset_of(tp, OffsetSpec::Newest, true)
                        .await?
                        .unwrap_or(0)),
                }
            }))
            .await;
            for (tp, offset) in chunk.iter().zip(found) {
                match offset {
                    Ok(o) => {
                        targets.insert(tp.clone(), OffsetAndMetadata::new(o));
                    }
                    Err(e) => {
                        out.insert(tp.clone(), Err(e));
                    }
                }
            }
        }
        for (tp, outcome) in self.alter_offsets(group, &targets).await? {
            let offset = targets.get(&tp).map(|o| o.offset).unwrap_or_default();
            out.insert(tp, outcome.map(|()| offset));
        }
        Ok(out)
    }

    /// Deletes `group`'s committed offsets for `partitions` (OffsetDelete),
    /// each partition's outcome on its own: a partition of a topic the
    /// group's members still subscribe to fails with
    /// GROUP_SUBSCRIBED_TO_TOPIC. A group-wide error (GROUP_ID_NOT_FOUND,
    /// authorization) fails the call as an [`Error::Broker`] naming the
    /// group; coordinator moves and loads are retried.
    ///
    /// ```no_run
    /// use klamm::group::TopicPartition;
    /// # async fn run(admin: klamm::group::GroupAdmin) -> klamm::Result<()> {
    /// let gone = [TopicPartition::new("retired-topic", 0)];
    /// for (tp, outcome) in admin.delete_offsets("billing", &gone).await? {
    ///     println!("{tp}: {:?}", outcome.map_err(|e| e.to_string()));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<PartitionResults> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let asked: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
        let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
        for tp in &asked {
            let p = OffsetDeleteRequestPartition {
                partition_index: tp.partition,
                ..Default::default()
            };
            match topics.last_mut() {
                Some(t) if t.name == tp.topic => t.partitions.push(p),
                _ => topics.push(OffsetDeleteRequestTopic {
                    name: tp.topic.clone(),
                    partitions: vec![p],
                    ..Default::default()
                }),
            }
        }
        let req = OffsetDeleteRequest {
            group_id: group.to_string(),
            topics,
            ..Default::default()
        };
        let (req, asked) = (&req, &asked);
        self.at_coordinator(group, ApiKey::OffsetDelete, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::OffsetDelete, conn.broker())?;
            let resp = conn.send_version(req, version).await?;
            Ok(delete_results(group, asked, resp))
        })
        .await
    }

    /// The partition ids of those of `topics` that exist, asked of the
    /// cluster without creating any.
    pub(super) async fn partitions_of(
        &self,
        topics: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, Vec<i32>>> {
        let req = MetadataRequest {
            topics: Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic {
                        name: Some(t.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let brokers = self.brokers().await?;
        if brokers.is_empty() {
            return Err(Error::no_brokers(ApiKey::Metadata));
        }
        let req = &req;
        let brokers = &brokers;
        self.retrying(
            || "Metadata for the group's topics".to_string(),
            move |n| async move {
                // Each attempt asks the next broker.
                let broker = &brokers[n as usize % brokers.len()];
                let conn = self.client.connection(broker, TrafficClass::Other).await?;
                let version = conn
                    .api_versions()
                    .version_for(ApiKey::Metadata, conn.broker())?;
                let resp = conn.send_version(req, version).await?;
                let mut found = BTreeMap::new();
                for t in resp.topics {
                    let code = ErrorCode(t.error_code);
                    match t.name {
                        Some(name) if code.is_ok() => {
                            found.insert(
                                name,
                                t.partitions.iter().map(|p| p.partition_index).collect(),
                            );
                        }
                        _ if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {}
                        name => {
                            return Err(Error::Broker {
                                api: ApiKey::Metadata,
                                code,
                                context: name.map(|n| format!("topic {n}")),
                            });
                        }
                    }
                }
                Ok(found)
            },
        )
        .await
    }
}
