//! Group consumers in tests: a member's config, numbered records, and
//! [`Seen`], what one member was told, checked as it comes (a record of a
//! partition the member does not own, a partition assigned twice or
//! revoked without being owned fail the test).

use std::collections::BTreeSet;
use std::time::Duration;

use klamm::group::{GroupConsumer, GroupEvent, TopicPartition};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::{Client, Config};

use super::read::config;

/// A config for a member of `group`: short session and heartbeat so that
/// tests do not wait for Java's 45 s defaults; offsets from the start.
pub fn member_config(addr: &str, group: &str, strategy: &str) -> Config {
    let mut c = config(addr);
    c.consumer.group_id = Some(group.to_string());
    c.consumer.session_timeout = Duration::from_secs(6);
    c.consumer.heartbeat_interval = Duration::from_millis(500);
    c.consumer.max_poll_interval = Duration::from_secs(20);
    c.consumer.auto_offset_reset = klamm::config::OffsetReset::Earliest;
    c.consumer.auto_commit_interval = Duration::from_millis(500);
    c.consumer.partition_assignment_strategy = vec![strategy.to_string()];
    c
}

pub async fn produce_numbered(
    client: &Client,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    from: usize,
) {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut futures = Vec::new();
    for p in 0..partitions {
        for i in from..from + per_partition {
            let r = ProducerRecord::new(topic.to_string(), format!("{p}:{i}")).with_partition(p);
            futures.push(producer.send(r).await.expect("send"));
        }
    }
    for f in futures {
        f.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

/// What one member saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub records: Vec<(TopicPartition, i64, String)>,
    pub assigned: Vec<Vec<TopicPartition>>,
    pub revoked: Vec<Vec<TopicPartition>>,
    pub lost: Vec<(Vec<TopicPartition>, String)>,
    pub owned: BTreeSet<TopicPartition>,
}

impl Seen {
    pub fn take(&mut self, ev: GroupEvent) {
        match ev {
            GroupEvent::Records(b) => {
                for r in b.iter() {
                    let tp = TopicPartition::new(&*r.topic, r.partition);
                    assert!(
                        self.owned.contains(&tp),
                        "a record of {tp}, which this member does not own"
                    );
                    let v =
                        String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string();
                    self.records.push((tp, r.offset, v));
                }
            }
            GroupEvent::Assigned(tps) => {
                for tp in &tps {
                    assert!(self.owned.insert(tp.clone()), "{tp} assigned twice");
                }
                self.assigned.push(tps);
            }
            GroupEvent::Revoked(tps) => {
                for tp in &tps {
                    assert!(self.owned.remove(tp), "{tp} revoked but not owned");
                }
                self.revoked.push(tps);
            }
            GroupEvent::Lost { partitions, reason } => {
                for tp in &partitions {
                    self.owned.remove(tp);
                }
                self.lost.push((partitions, reason));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// Reads from `g` until `until` says stop or `limit` passes.
pub async fn drive(
    g: &mut GroupConsumer,
    seen: &mut Seen,
    limit: Duration,
    until: impl Fn(&Seen) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !until(seen) {
        match tokio::time::timeout_at(deadline, g.recv()).await {
            Err(_) => return,
            Ok(None) => panic!("the member stopped"),
            Ok(Some(ev)) => seen.take(ev.expect("event")),
        }
    }
}

/// Sets configs of `group` on the broker (klamm's `Admin`,
/// IncrementalAlterConfigs SET on the GROUP resource) and checks the
/// answer: the share-group and KIP-848 settings the tests shorten.
pub async fn set_group_configs(client: &Client, group: &str, configs: &[(&str, &str)]) {
    use klamm::admin::{Admin, AlterConfigOp, ConfigResource};
    let resource = ConfigResource::group(group);
    let ops = configs
        .iter()
        .map(|(name, value)| AlterConfigOp::set(*name, *value))
        .collect();
    let altered = Admin::new(client.clone())
        .incremental_alter_configs(&[(resource.clone(), ops)])
        .await;
    assert!(
        altered[&resource].is_ok(),
        "group config of {group}: {altered:?}"
    );
}
