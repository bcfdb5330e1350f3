//! Cluster administration: topics, configs, ACLs, offsets and records,
//! partition reassignments and leader elections, the cluster and its
//! features, quotas, SCRAM users, delegation tokens, producers and
//! transactions — the operations of Java's `Admin`, Sarama's
//! `ClusterAdmin` and franz-go's `kadm`, and consumer groups through
//! [`Admin::groups`].
//!
//! Every call goes where the protocol wants it (the controller, any
//! broker, a partition's leader, a coordinator), one request per broker
//! for the items that broker handles, and reports **each item's outcome
//! on its own**: creating three topics of which one exists gives two
//! successes and one `TOPIC_ALREADY_EXISTS`. Retriable failures (a
//! broker going away, a leader moving, `NOT_CONTROLLER`) are retried for
//! the items they concern, pausing `retry.backoff.ms` doubling up to 1 s,
//! for up to the admin `request.timeout.ms`; then the item fails with
//! [`Error::Timeout`](crate::Error::Timeout) naming the last error.
//!
//! ```no_run
//! use klamm::admin::{Admin, NewTopic};
//! use klamm::{Client, Config};
//!
//! # async fn run() -> klamm::Result<()> {
//! let config = Config::from_properties([("bootstrap.servers", "127.0.0.1:9092")])?;
//! let admin = Admin::new(Client::connect(config).await?);
//! let created = admin
//!     .create_topics(&[
//!         NewTopic::new("orders", 6, 3).with_config("retention.ms", "86400000"),
//!         NewTopic::new("payments", 3, -1), // the broker's default replication
//!     ])
//!     .await;
//! for (topic, outcome) in &created {
//!     match outcome {
//!         Ok(t) => println!("{topic}: created, id {}", t.topic_id.to_kafka_string()),
//!         Err(e) => println!("{topic}: {e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod acl_plan;
mod acls;
mod call;
mod cluster;
mod configs;
mod partitions;
mod quotas;
mod records;
mod scram;
mod tokens;
mod topics;
mod transactions;

#[cfg(test)]
mod tests;

pub use acl_plan::{AclPlan, AclTable, AclTableEntry};
pub use acls::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
};
pub use cluster::{
    ClusterDescription, FeatureDescription, FeatureUpgrade, Features, LogDirDescription,
    QuorumDescription, ReplicaLogDir, ReplicaState,
};
pub use configs::{
    AlterConfigOp, ConfigEntry, ConfigResource, ConfigResourceType, ConfigSource, ConfigSynonym,
};
pub use partitions::{ElectionType, PartitionReassignment};
pub use quotas::{ClientQuotaAlteration, ClientQuotaEntity, ClientQuotaFilter};
pub use scram::{ScramCredentialInfo, ScramMechanism, ScramUpsertion};
pub use tokens::DelegationToken;
pub use topics::{
    CreatedTopic, NewPartitions, NewTopic, PartitionDescription, TopicDescription, TopicListing,
};
pub use transactions::{ProducerState, TransactionDescription, TransactionListing};

use std::time::Duration;

use crate::client::{Client, RetryPolicy};
use crate::group::GroupAdmin;

/// The longest pause between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The cluster's administrator: one method per operation. Cheap to
/// clone; every clone shares the [`Client`].
///
/// ```no_run
/// use klamm::admin::{Admin, ConfigResource};
/// use klamm::{Client, Config};
///
/// # async fn run() -> klamm::Result<()> {
/// let config = Config::from_properties([("bootstrap.servers", "127.0.0.1:9092")])?;
/// let admin = Admin::new(Client::connect(config).await?);
/// let cluster = admin.describe_cluster().await?;
/// println!("cluster {} with {} brokers", cluster.cluster_id, cluster.brokers.len());
/// for (resource, configs) in admin.describe_configs(&[ConfigResource::topic("orders")]).await {
///     for entry in configs? {
///         println!("{resource}: {} = {:?} ({:?})", entry.name, entry.value, entry.source);
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
    policy: RetryPolicy,
    groups: GroupAdmin,
}

impl Admin {
    /// An admin on `client`, retrying for up to the admin
    /// `request.timeout.ms` (30 s by default).
    pub fn new(client: Client) -> Admin {
        let cfg = client.config();
        let policy = RetryPolicy::exponential(cfg.metadata.retry_backoff, BACKOFF_MAX)
            .within(cfg.admin.request_timeout);
        Admin {
            groups: GroupAdmin::new(client.clone()),
            client,
            policy,
        }
    }

    /// The same admin, retrying under `policy` instead.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Admin {
        self.policy = policy;
        self.groups = self.groups.with_retry_policy(policy);
        self
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Consumer-group operations: list, describe (classic and KIP-848
    /// groups), committed offsets and lag, alter, reset and delete
    /// offsets, remove members, delete groups, and share groups.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::admin::Admin) -> klamm::Result<()> {
    /// for p in admin.groups().lag("billing").await? {
    ///     println!("{}/{} lag {:?}", p.partition.topic, p.partition.partition, p.lag);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn groups(&self) -> &GroupAdmin {
        &self.groups
    }

    /// The `TimeoutMs` the requests that carry one send: how long the
    /// controller may take (the admin `request.timeout.ms`).
    fn timeout_ms(&self) -> i32 {
        self.client
            .config()
            .admin
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32
    }
}
