//! Offsets and records: offsets of many partitions at once (earliest,
//! latest, max timestamp, by time), and deleting records below an offset.

use std::collections::BTreeMap;

use super::Admin;
use super::call::{Route, by_topic, check, per_partition};
use super::topics::unsupported;
use crate::client::{ListedOffset, OffsetSpec};
use crate::error::Result;
use crate::group::TopicPartition;
use crate::protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::{ApiKey, DeleteRecordsRequest, ListOffsetsRequest};

impl Admin {
    /// Looks up an offset of each partition (each with its own
    /// [`OffsetSpec`]) in one ListOffsets per leader; each partition's
    /// outcome on its own. With `read_committed`, [`OffsetSpec::Newest`]
    /// is the last stable offset rather than the high watermark.
    ///
    /// ```no_run
    /// use klamm::client::OffsetSpec;
    /// use klamm::group::TopicPartition;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let wanted: Vec<_> = (0..6)
    ///     .map(|p| (TopicPartition::new("orders", p), OffsetSpec::Newest))
    ///     .collect();
    /// for (tp, found) in admin.list_offsets(&wanted, false).await {
    ///     println!("{}/{}: {:?}", tp.topic, tp.partition, found?.offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_offsets(
        &self,
        partitions: &[(TopicPartition, OffsetSpec)],
        read_committed: bool,
    ) -> BTreeMap<TopicPartition, Result<ListedOffset>> {
        let specs: BTreeMap<TopicPartition, OffsetSpec> = partitions.iter().cloned().collect();
        let timeout_ms = self.timeout_ms();
        self.per_item(
            ApiKey::ListOffsets,
            specs.keys().cloned(),
            |tp| Route::Leader(tp.topic.clone(), tp.partition),
            |conn, parts| {
                let topics = by_topic(parts.iter().map(|tp| (tp.clone(), specs[tp])));
                async move {
                    let version = conn
                        .api_versions()
                        .version_for(ApiKey::ListOffsets, conn.broker())?;
                    let needs = topics
                        .values()
                        .flatten()
                        .map(|(_, s)| s.min_version())
                        .max()
                        .unwrap_or(0)
                        .max(if read_committed { 2 } else { 0 });
                    if version < needs {
                        return Err(unsupported(&conn, ApiKey::ListOffsets, needs));
                    }
                    let req = ListOffsetsRequest {
                        replica_id: -1,
                        isolation_level: i8::from(read_committed),
                        timeout_ms,
                        topics: topics
                            .iter()
                            .map(|(name, parts)| ListOffsetsTopic {
                                name: name.clone(),
                                partitions: parts
                                    .iter()
                                    .map(|(p, spec)| ListOffsetsPartition {
                                        partition_index: *p,
                                        timestamp: spec.timestamp(),
                                        max_num_offsets: 1,
                                        current_leader_epoch: -1,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    let resp = conn.send_version(&req, version).await?;
                    Ok(per_partition(
                        resp.topics.into_iter().map(|t| (t.name, t.partitions)),
                        |p| p.partition_index,
                        |tp, p| {
                            check(ApiKey::ListOffsets, p.error_code, tp, None)
                                .map(|()| ListedOffset::from_answer(&p, version))
                        },
                    ))
                }
            },
        )
        .await
    }

    /// Deletes the records of each partition below the given offset (-1:
    /// below the high watermark, every record), at its leader; each
    /// partition's outcome on its own: its new low watermark (log start
    /// offset), or OFFSET_OUT_OF_RANGE for an offset past the end.
    ///
    /// ```no_run
    /// use klamm::group::TopicPartition;
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// let p0 = TopicPartition::new("orders", 0);
    /// let deleted = admin.delete_records(&[(p0.clone(), 1000)]).await;
    /// println!("the log of {p0} now starts at {:?}", deleted[&p0].as_ref().ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_records(
        &self,
        before: &[(TopicPartition, i64)],
    ) -> BTreeMap<TopicPartition, Result<i64>> {
        let offsets: BTreeMap<TopicPartition, i64> = before.iter().cloned().collect();
        let timeout_ms = self.timeout_ms();
        self.per_item(
            ApiKey::DeleteRecords,
            offsets.keys().cloned(),
            |tp| Route::Leader(tp.topic.clone(), tp.partition),
            |conn, parts| {
                let req = DeleteRecordsRequest {
                    topics: by_topic(parts.iter().map(|tp| (tp.clone(), offsets[tp])))
                        .into_iter()
                        .map(|(name, parts)| DeleteRecordsTopic {
                            name,
                            partitions: parts
                                .into_iter()
                                .map(|(p, offset)| DeleteRecordsPartition {
                                    partition_index: p,
                                    offset,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    timeout_ms,
                    ..Default::default()
                };
                async move {
                    let resp = conn.send(&req).await?;
                    Ok(per_partition(
                        resp.topics.into_iter().map(|t| (t.name, t.partitions)),
                        |p| p.partition_index,
                        |tp, p| {
                            check(ApiKey::DeleteRecords, p.error_code, tp, None)
                                .map(|()| p.low_watermark)
                        },
                    ))
                }
            },
        )
        .await
    }
}
