//! Consumer-group administration: listing groups, describing them (both
//! protocols), their committed offsets and lag, altering, resetting and
//! deleting offsets, removing static members, and deleting groups — the
//! group half of Java's `Admin` and of `kafka-consumer-groups`.
//!
//! Calls about several groups report each group's outcome on its own;
//! calls about one group's partitions or members report each partition's
//! or member's on its own, and fail as a whole only for what concerns the
//! whole group (an unknown group, authorization, a timeout).
//!
//! Every request runs under one [`RetryPolicy`] (by default the client's
//! `retry.backoff.ms`, doubling up to 1 s, for up to the admin
//! `request.timeout.ms`): requests to a group's coordinator in
//! [`Client::coordinator_call`], which looks the coordinator up again
//! when it moved; requests to a given broker paced by the same policy.
//!
//! # Kafka 4.4's answers
//! - DescribeGroups (v0–5) describes a KIP-848 `consumer` group exactly
//!   as a group it does not know: no error, state `Dead`, no protocol, no
//!   members. So a `Dead` answer is followed by a ConsumerGroupDescribe,
//!   which describes a consumer group and answers GROUP_ID_NOT_FOUND for
//!   anything else; an unknown group is described as `Dead`.
//! - ConsumerGroupDescribe names each assigned topic besides its id and
//!   sends an empty regex for a member without one.
//!
//! # References
//! - KIP-88 (OffsetFetch for all partitions), KIP-229 (DeleteGroups),
//!   KIP-345 (LeaveGroup by instance id), KIP-496 (OffsetDelete), KIP-518 (ListGroups state filter), KIP-848 (the consumer protocol,
//!   ConsumerGroupDescribe, ListGroups type filter)

mod describe;
mod members;
mod offsets;
mod share;

#[cfg(test)]
mod tests;

pub use describe::{GroupDescription, GroupType, MemberDescription};
pub use offsets::{PartitionLag, PartitionResults};
pub use share::{ShareGroupDescription, ShareMemberDescription, SharePartitionOffset};

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use crate::client::{
    BrokerInfo, CallError, Client, CoordinatorKind, RetryPolicy, Step, TrafficClass,
    coordinator_error,
};
use crate::error::{Error, Result};
use crate::net::Connection;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest,
    ListGroupsRequest, consumer_group_describe_response as cgd, describe_groups_response as dg,
};

/// The longest pause between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How many ListOffsets [`GroupAdmin::lag`] and
/// [`GroupAdmin::reset_offsets`] have in flight at once.
const LOG_END_LOOKUPS: usize = 32;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups, `connect` for Kafka Connect, empty
    /// for a group that only commits offsets (no members ever joined).
    pub protocol_type: String,
    /// The state (`Stable`, `Empty`, …), reported by ListGroups v4+.
    pub state: Option<String>,
    /// The type (`classic`, `consumer`, `share`, …), reported by
    /// ListGroups v5+.
    pub group_type: Option<String>,
}

/// Which groups [`GroupAdmin::list_groups_with`] asks for.
///
/// ```
/// use klamm::group::ListGroupsOptions;
///
/// let stable_classic = ListGroupsOptions {
///     states: vec!["Stable".into()],
///     types: vec!["classic".into()],
/// };
/// assert!(ListGroupsOptions::default().states.is_empty());
/// # let _ = stable_classic;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGroupsOptions {
    /// Only groups in these states (ListGroups v4+; case does not
    /// matter); empty for all.
    pub states: Vec<String>,
    /// Only groups of these types (ListGroups v5+); empty for all.
    pub types: Vec<String>,
}

/// Consumer-group administration on a [`Client`]: cheap to clone.
///
/// ```no_run
/// use klamm::group::GroupAdmin;
/// use klamm::{Client, Config};
///
/// # async fn run() -> klamm::Result<()> {
/// let mut config = Config::default();
/// config.net.bootstrap_servers = vec!["127.0.0.1:9092".into()];
/// let admin = GroupAdmin::new(Client::connect(config).await?);
/// for g in admin.list_groups().await? {
///     println!("{} ({:?}, {:?})", g.group_id, g.state, g.group_type);
/// }
/// let d = admin.describe_group("billing").await?;
/// println!("{}: {} with {} members, assignor {}", d.group_id, d.state, d.members.len(), d.protocol);
/// for m in &d.members {
///     println!("  {} ({}) owns {:?}", m.member_id, m.client_id, m.assignment);
/// }
/// for p in admin.lag("billing").await? {
///     println!("{}: committed {:?}, end {:?}, lag {:?}", p.partition, p.committed, p.log_end, p.lag);
/// }
/// // Several groups: each group's outcome on its own.
/// for (group, d) in admin.describe_groups(&["a".to_string(), "b".to_string()]).await {
///     match d {
///         Ok(d) => println!("{group}: {}", d.state),
///         Err(e) => println!("{group}: {e}"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GroupAdmin {
    client: Client,
    policy: RetryPolicy,
    authorized_operations: bool,
}

impl GroupAdmin {
    /// An admin on `client`, retrying for up to the admin
    /// `request.timeout.ms` (30 s by default).
    pub fn new(client: Client) -> Self {
        let cfg = client.config();
        let policy = RetryPolicy::exponential(cfg.metadata.retry_backoff, BACKOFF_MAX)
            .within(cfg.admin.request_timeout);
        GroupAdmin {
            client,
            policy,
            authorized_operations: false,
        }
    }

    /// The same admin, retrying under `policy` instead.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same admin, asking [`describe_groups`](Self::describe_groups)
    /// for the operations the caller may perform on each group
    /// ([`GroupDescription::authorized_operations`]).
    pub fn with_authorized_operations(mut self, include: bool) -> Self {
        self.authorized_operations = include;
        self
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every group of the cluster, sorted by id: ListGroups to every
    /// broker (each knows the groups it coordinates), merged.
    ///
    /// A broker that fails is retried under the admin's policy; if it
    /// still fails, so does the call, with its error (a group list
    /// without the groups of one broker would look complete). Use
    /// [`list_groups_by_broker`](Self::list_groups_by_broker) to keep what
    /// the other brokers answered.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::group::GroupAdmin) -> klamm::Result<()> {
    /// for g in admin.list_groups().await? {
    ///     println!("{} {:?} {:?}", g.group_id, g.group_type, g.state);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        self.list_groups_with(&ListGroupsOptions::default()).await
    }

    /// Like [`list_groups`](Self::list_groups), only groups in the given
    /// states or of the given types. A filter the broker cannot apply
    /// (states before ListGroups v4, types before v5) is an
    /// [`Error::UnsupportedVersion`].
    pub async fn list_groups_with(&self, options: &ListGroupsOptions) -> Result<Vec<GroupListing>> {
        let mut per_broker = Vec::new();
        for (_, answer) in self.list_groups_by_broker(options).await? {
            per_broker.push(answer?);
        }
        Ok(merge_listings(per_broker))
    }

    /// ListGroups at every broker of the cluster, each broker's answer or
    /// error on its own (retried under the admin's policy).
    pub async fn list_groups_by_broker(
        &self,
        options: &ListGroupsOptions,
    ) -> Result<Vec<(BrokerInfo, Result<Vec<GroupListing>>)>> {
        let brokers = self.brokers().await?;
        let answers = join_all(brokers.iter().map(|b| {
            self.retrying(
                || format!("ListGroups at broker {} ({})", b.id, b.addr()),
                move |_| self.list_at(b, options),
            )
        }))
        .await;
        Ok(brokers.into_iter().zip(answers).collect())
    }

    /// The brokers of the cluster (from the metadata, refreshed if it
    /// knows none).
    async fn brokers(&self) -> Result<Vec<BrokerInfo>> {
        let known = |c: &Client| c.metadata().brokers.values().cloned().collect::<Vec<_>>();
        let brokers = known(&self.client);
        if !brokers.is_empty() {
            return Ok(brokers);
        }
        self.client.refresh_metadata(None).await?;
        Ok(known(&self.client))
    }

    async fn list_at(
        &self,
        broker: &BrokerInfo,
        options: &ListGroupsOptions,
    ) -> Result<Vec<GroupListing>> {
        let conn = self.client.connection(broker, TrafficClass::Other).await?;
        let version = conn
            .api_versions()
            .version_for(ApiKey::ListGroups, conn.broker())?;
        let needs = match (options.states.is_empty(), options.types.is_empty()) {
            (_, false) => 5,
            (false, true) => 4,
            (true, true) => 0,
        };
        if version < needs {
            return Err(Error::UnsupportedVersion {
                broker: conn.broker().to_string(),
                api: ApiKey::ListGroups,
                broker_versions: conn.api_versions().broker_range(ApiKey::ListGroups),
                ours: (needs, crate::net::client_max(ApiKey::ListGroups)),
            });
        }
        let req = ListGroupsRequest {
            states_filter: options.states.clone(),
            types_filter: options.types.clone(),
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await?;
        let code = ErrorCode(resp.error_code);
        if !code.is_ok() {
            return Err(Error::Broker {
                api: ApiKey::ListGroups,
                code,
                context: Some(format!("broker {} ({})", broker.id, conn.broker())),
            });
        }
        Ok(resp
            .groups
            .into_iter()
            .map(|g| GroupListing {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                state: (version >= 4).then_some(g.group_state),
                group_type: (version >= 5).then_some(g.group_type),
            })
            .collect())
    }

    /// Describes each of `groups` at its coordinator, each group's
    /// outcome on its own: state, protocol type, assignor and members,
    /// with the members of `consumer` groups' subscriptions and
    /// assignments decoded (a member whose bytes do not decode keeps them
    /// raw, with [`MemberDescription::decode_error`]). Groups of the
    /// KIP-848 consumer protocol are described with ConsumerGroupDescribe.
    /// A group the coordinator does not know is described with state
    /// `Dead` and no members.
    ///
    /// Errors, per group: GROUP_AUTHORIZATION_FAILED and other Kafka
    /// errors as [`Error::Broker`] naming the group; coordinator moves and
    /// loads are retried.
    ///
    /// ```no_run
    /// # async fn run(admin: klamm::group::GroupAdmin) -> klamm::Result<()> {
    /// let groups = ["billing".to_string(), "audit".to_string()];
    /// for (group, d) in admin.describe_groups(&groups).await {
    ///     let d = d?;
    ///     println!("{group}: {} with {} members", d.state, d.members.len());
    ///     for (tp, member) in d.owners() {
    ///         println!("  {tp} -> {}", member.client_id);
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_groups(
        &self,
        groups: &[String],
    ) -> BTreeMap<String, Result<GroupDescription>> {
        if groups.len() > 1 {
            // One batched FindCoordinator fills the cache for all; a
            // failure here is met again, per group, below.
            if let Err(e) = self.client.coordinators(groups).await {
                tracing::debug!(error = %e, "batched coordinator lookup failed");
            }
        }
        let described = join_all(groups.iter().map(|g| self.describe_one(g))).await;
        let metadata = self.client.metadata();
        let name_of = |id: &crate::protocol::primitives::Uuid| {
            metadata
                .topics
                .values()
                .find(|t| t.id == *id)
                .map(|t| t.name.clone())
        };
        groups
            .iter()
            .cloned()
            .zip(described)
            .map(|(group, d)| {
                let d = d.map(|d| match d {
                    Described::Classic(g, gone) => describe::classic_group(g, gone),
                    Described::Consumer(g) => describe::consumer_group(g, &name_of),
                });
                (group, d)
            })
            .collect()
    }

    /// Describes one group, as [`describe_groups`](Self::describe_groups)
    /// does.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let mut all = self.describe_groups(&[group.to_string()]).await;
        all.remove(group).unwrap_or_else(|| {
            Err(Error::ProtocolViolation {
                broker: format!("the coordinator of group '{group}'"),
                reason: "no description".to_string(),
            })
        })
    }

    async fn describe_one(&self, group: &str) -> Result<Described> {
        let include = self.authorized_operations;
        self.at_coordinator(group, ApiKey::DescribeGroups, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::DescribeGroups, conn.broker())?;
            let req = DescribeGroupsRequest {
                groups: vec![group.to_string()],
                include_authorized_operations: include && version >= 3,
                ..Default::default()
            };
            let resp = conn.send_version(&req, version).await?;
            let Some(g) = resp.groups.into_iter().find(|g| g.group_id == group) else {
                return Err(missing(&conn, "DescribeGroups", group));
            };
            let code = ErrorCode(g.error_code);
            // DescribeGroups v6+ (not ours yet) answer GROUP_ID_NOT_FOUND
            // where earlier versions say Dead.
            let gone = code == ErrorCode::GROUP_ID_NOT_FOUND
                || (code.is_ok()
                    && g.members.is_empty()
                    && g.group_state.eq_ignore_ascii_case("dead"));
            if !code.is_ok() && !gone {
                return Ok(group_error(ApiKey::DescribeGroups, code, group, None));
            }
            if gone {
                // A KIP-848 group looks like an unknown one here.
                if let Some(step) = describe_consumer_group(&conn, group, include).await? {
                    return Ok(step);
                }
            }
            Ok(Step::Done(Described::Classic(g, gone)))
        })
        .await
    }

    /// Deletes each of `groups` at its coordinator; each group's outcome
    /// on its own. A group with members fails with NON_EMPTY_GROUP, an
    /// unknown one with GROUP_ID_NOT_FOUND, each an [`Error::Broker`]
    /// naming the group; coordinator moves and loads are retried.
    ///
    /// ```no_run
    /// use klamm::protocol::error_codes::ErrorCode;
    /// # async fn run(admin: klamm::group::GroupAdmin) -> klamm::Result<()> {
    /// for (group, outcome) in admin.delete_groups(&["old-billing".to_string()]).await {
    ///     match outcome {
    ///         Ok(()) => println!("{group} deleted"),
    ///         Err(e) if e.kafka_code() == Some(ErrorCode::NON_EMPTY_GROUP) => println!("{group} still has members"),
    ///         Err(e) => println!("{group}: {e}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_groups(&self, groups: &[String]) -> BTreeMap<String, Result<()>> {
        if groups.len() > 1 {
            if let Err(e) = self.client.coordinators(groups).await {
                tracing::debug!(error = %e, "batched coordinator lookup failed");
            }
        }
        let outcomes = join_all(groups.iter().map(|g| self.delete_one(g))).await;
        groups.iter().cloned().zip(outcomes).collect()
    }

    async fn delete_one(&self, group: &str) -> Result<()> {
        self.at_coordinator(group, ApiKey::DeleteGroups, |conn| async move {
            let version = conn
                .api_versions()
                .version_for(ApiKey::DeleteGroups, conn.broker())?;
            let req = DeleteGroupsRequest {
                groups_names: vec![group.to_string()],
                ..Default::default()
            };
            let resp = conn.send_version(&req, version).await?;
            let Some(r) = resp.results.into_iter().find(|r| r.group_id == group) else {
                return Err(missing(&conn, "DeleteGroups", group));
            };
            let code = ErrorCode(r.error_code);
            if code.is_ok() {
                return Ok(Step::Done(()));
            }
            Ok(group_error(ApiKey::DeleteGroups, code, group, None))
        })
        .await
    }

    /// Runs `attempt` at the coordinator of `group` under the policy.
    async fn at_coordinator<T, F, Fut>(&self, group: &str, api: ApiKey, attempt: F) -> Result<T>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<Step<T, Error>>>,
    {
        self.client
            .coordinator_call(
                CoordinatorKind::Group,
                group,
                TrafficClass::Other,
                &self.policy,
                attempt,
            )
            .await
            .map_err(|e| match e {
                CallError::Stopped(e) | CallError::Failed(e) => e,
                CallError::OutOfTime(last) => {
                    self.timeout(format!("{api} for group '{group}'"), last)
                }
            })
    }

    /// Runs `attempt` (given the attempt's number, from 0) until it
    /// succeeds or fails in a way retrying cannot help, pausing under the
    /// policy; out of time, the last error.
    async fn retrying<T, F, Fut>(&self, what: impl Fn() -> String, mut attempt: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut retry = self.policy.start();
        let mut n = 0;
        loop {
            let error = match retry.bounded(attempt(n)).await {
                None => return Err(self.timeout(what(), retry.take_last_error())),
                Some(Ok(v)) => return Ok(v),
                Some(Err(e)) if e.is_retriable() => e,
                Some(Err(e)) => return Err(e),
            };
            tracing::debug!(error = %error, what = %what(), "group admin: retrying");
            n += 1;
            retry.pause(error).await?;
        }
    }

    fn timeout(&self, what: String, last: Option<Error>) -> Error {
        Error::Timeout {
            what: format!(
                "{what}{}",
                last.map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ),
            after: self.policy.within.unwrap_or_default(),
        }
    }
}

/// What a group's coordinator answered to the describe.
enum Described {
    /// A DescribeGroups entry; `true` when the group is unknown to it.
    Classic(dg::DescribedGroup, bool),
    /// A ConsumerGroupDescribe entry.
    Consumer(cgd::DescribedGroup),
}

/// ConsumerGroupDescribe of `group` where the coordinator offers it: the
/// step when the group is a consumer group (or the answer says retry or
/// stop), `None` when it is not one (GROUP_ID_NOT_FOUND) or the broker
/// cannot say.
async fn describe_consumer_group(
    conn: &Connection,
    group: &str,
    include: bool,
) -> Result<Option<Step<Described, Error>>> {
    let Ok(version) = conn
        .api_versions()
        .version_for(ApiKey::ConsumerGroupDescribe, conn.broker())
    else {
        return Ok(None);
    };
    let req = ConsumerGroupDescribeRequest {
        group_ids: vec![group.to_string()],
        include_authorized_operations: include,
        ..Default::default()
    };
    let resp = conn.send_version(&req, version).await?;
    let Some(g) = resp.groups.into_iter().find(|g| g.group_id == group) else {
        return Err(missing(conn, "ConsumerGroupDescribe", group));
    };
    let code = ErrorCode(g.error_code);
    if code.is_ok() {
        return Ok(Some(Step::Done(Described::Consumer(g))));
    }
    if code == ErrorCode::GROUP_ID_NOT_FOUND || code == ErrorCode::UNSUPPORTED_VERSION {
        return Ok(None);
    }
    Ok(Some(group_error(
        ApiKey::ConsumerGroupDescribe,
        code,
        group,
        g.error_message,
    )))
}

/// The step for a group's error code other than NONE: the coordinator
/// codes retried, any other an [`Error::Broker`] naming the group (with
/// the broker's message, if any).
fn group_error<T>(
    api: ApiKey,
    code: ErrorCode,
    group: &str,
    message: Option<String>,
) -> Step<T, Error> {
    let context = || {
        Some(match &message {
            Some(m) => format!("group '{group}': {m}"),
            None => format!("group '{group}'"),
        })
    };
    coordinator_error(api, code, context).unwrap_or_else(|| {
        Step::Stop(Error::Broker {
            api,
            code,
            context: context(),
        })
    })
}

fn missing(conn: &Connection, api: &str, group: &str) -> Error {
    Error::ProtocolViolation {
        broker: conn.broker().to_string(),
        reason: format!("{api} answer has no entry for group {group}"),
    }
}

/// The brokers' listings as one, sorted by group id; a group two brokers
/// report (its coordinator moving) appears once, as the first reported it.
fn merge_listings(per_broker: Vec<Vec<GroupListing>>) -> Vec<GroupListing> {
    let mut seen: BTreeMap<String, GroupListing> = BTreeMap::new();
    for g in per_broker.into_iter().flatten() {
        seen.entry(g.group_id.clone()).or_insert(g);
    }
    seen.into_values().collect()
}

/// Runs `futures` concurrently on the current task and returns their
/// outputs in order.
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (f, out) in pending.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => all = false,
                }
            }
        }
        if all { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    done.into_iter().flatten().collect()
}
