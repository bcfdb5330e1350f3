//! The one loop every admin request runs in: items (topics, partitions,
//! resources, filters) are routed to a broker, sent there in one request
//! per broker, and each item's outcome is kept on its own. Items that
//! failed retriably are routed and sent again after a pause, until the
//! admin's retry policy runs out; the others are final.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;

use super::Admin;
use crate::client::{BrokerInfo, TrafficClass};
use crate::error::{Error, Result};
use crate::group::{TopicPartition, join_all};
use crate::net::Connection;
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::ApiKey;

/// Where the request for an item goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// The controller the metadata names (in KRaft a broker, which
    /// forwards to the active controller).
    Controller,
    /// Any broker: the brokers take turns from one attempt to the next.
    Any,
    /// The broker with this id.
    Broker(i32),
    /// The leader of a partition.
    Leader(String, i32),
    /// The transaction coordinator of a transactional id.
    TxnCoordinator(String),
}

/// The answers of one request: an outcome per item it carried.
pub(crate) type Answers<K, T> = Vec<(K, Result<T>)>;

/// An error for an item, naming the API and the item (a Kafka error code
/// with the broker's message when it sent one).
pub(crate) fn item_error(
    api: ApiKey,
    code: ErrorCode,
    item: impl std::fmt::Display,
    message: Option<&str>,
) -> Error {
    let context = match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{item}: {m}"),
        None => item.to_string(),
    };
    Error::Broker {
        api,
        code,
        context: Some(context),
    }
}

/// `Ok(())` for NONE, the item's error otherwise.
pub(crate) fn check(
    api: ApiKey,
    code: i16,
    item: impl std::fmt::Display,
    message: Option<&str>,
) -> Result<()> {
    let code = ErrorCode(code);
    if code.is_ok() {
        Ok(())
    } else {
        Err(item_error(api, code, item, message))
    }
}

/// Each item's outcome from an answer's `(item, label, code, message)`
/// entries: NONE is success, any other code that item's error, naming it
/// by its label (`topic 'orders'`, `user 'alice'`).
pub(crate) fn outcomes<K>(
    api: ApiKey,
    entries: impl IntoIterator<Item = (K, String, i16, Option<String>)>,
) -> Answers<K, ()> {
    entries
        .into_iter()
        .map(|(k, label, code, message)| {
            let outcome = check(api, code, label, message.as_deref());
            (k, outcome)
        })
        .collect()
}

/// An answer's topics, each with its partitions, as one outcome per
/// partition: `index` reads a partition entry's number, `outcome` turns
/// the entry into the partition's result.
pub(crate) fn per_partition<P, T>(
    topics: impl IntoIterator<Item = (String, Vec<P>)>,
    index: impl Fn(&P) -> i32,
    outcome: impl Fn(&TopicPartition, P) -> Result<T>,
) -> Answers<TopicPartition, T> {
    let mut answers = Vec::new();
    for (topic, partitions) in topics {
        for p in partitions {
            let tp = TopicPartition::new(topic.clone(), index(&p));
            let result = outcome(&tp, p);
            answers.push((tp, result));
        }
    }
    answers
}

/// Partitions grouped by topic, each with its value, in order.
pub(crate) fn by_topic<V>(
    items: impl IntoIterator<Item = (TopicPartition, V)>,
) -> BTreeMap<String, Vec<(i32, V)>> {
    let mut topics: BTreeMap<String, Vec<(i32, V)>> = BTreeMap::new();
    for (tp, v) in items {
        topics.entry(tp.topic).or_default().push((tp.partition, v));
    }
    topics
}

/// Partition numbers grouped by topic, in order.
pub(crate) fn partitions_by_topic(parts: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    by_topic(parts.iter().map(|tp| (tp.clone(), ())))
        .into_iter()
        .map(|(t, ps)| (t, ps.into_iter().map(|(p, ())| p).collect()))
        .collect()
}

/// A whole answer's error code (the request failed for every item).
pub(crate) fn check_top(
    conn: &Connection,
    api: ApiKey,
    code: i16,
    message: Option<&str>,
) -> Result<()> {
    check(api, code, format!("broker {}", conn.broker()), message)
}

/// Whether an item that failed with `e` is sent again: failures of the
/// request (a connection lost, a timeout) and the codes that say the item
/// went to the wrong broker or came too early (a leader or controller that
/// moved, a coordinator loading, a quota's throttle), as Java's admin
/// does. Other codes, retriable or not by Kafka's definition, are the
/// item's outcome: UNKNOWN_TOPIC_OR_PARTITION for a topic that does not
/// exist is the answer, not a reason to ask again until the timeout —
/// except from a partition's leader, where it means the leader has not
/// heard of a topic the metadata has (the next round looks again); a
/// leader also retries OFFSET_NOT_AVAILABLE (just after an election),
/// REPLICA_NOT_AVAILABLE and KAFKA_STORAGE_ERROR, as Java's ListOffsets
/// does.
fn retries(route: &Route, e: &Error) -> bool {
    let Error::Broker { code, .. } = e else {
        return e.is_retriable();
    };
    matches!(
        *code,
        ErrorCode::NOT_CONTROLLER
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::THROTTLING_QUOTA_EXCEEDED
            | ErrorCode::NETWORK_EXCEPTION
    ) || (matches!(route, Route::Leader(..))
        && matches!(
            *code,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                | ErrorCode::OFFSET_NOT_AVAILABLE
                | ErrorCode::REPLICA_NOT_AVAILABLE
                | ErrorCode::KAFKA_STORAGE_ERROR
        ))
}

impl Admin {
    /// Runs `send` for `items`, each routed by `route`: one request per
    /// broker per round, rounds repeated for the items that failed
    /// retriably, under the admin's policy. Every item gets an outcome;
    /// an item missing from its broker's answer is a protocol violation.
    pub(crate) async fn per_item<K, T, R, S, F>(
        &self,
        api: ApiKey,
        items: impl IntoIterator<Item = K>,
        route: R,
        send: S,
    ) -> BTreeMap<K, Result<T>>
    where
        K: Ord + Clone + Debug,
        R: Fn(&K) -> Route,
        S: Fn(Connection, Vec<K>) -> F,
        F: Future<Output = Result<Answers<K, T>>>,
    {
        let mut done = BTreeMap::new();
        let mut pending: Vec<K> = items
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut retry = self.policy.start();
        let mut turn = 0usize;
        while !pending.is_empty() {
            let mut failed: Vec<(K, Error)> = Vec::new();
            let mut by_broker: BTreeMap<i32, (BrokerInfo, Vec<K>)> = BTreeMap::new();
            for k in pending.drain(..) {
                match retry.bounded(self.resolve(api, &route(&k), turn)).await {
                    Some(Ok(b)) => by_broker.entry(b.id).or_insert((b, Vec::new())).1.push(k),
                    // Metadata that lacks the topic is the answer, even for
                    // a partition (retries() would ask its leader again).
                    Some(Err(e)) if !retries(&Route::Any, &e) => {
                        done.insert(k, Err(e));
                    }
                    Some(Err(e)) => failed.push((k, e)),
                    None => failed.push((k, self.out_of_time(api, None))),
                }
            }
            let sent = join_all(by_broker.into_values().map(|(broker, keys)| {
                let send = &send;
                let retry = &retry;
                async move {
                    let attempt = async {
                        let conn = self.client.connection(&broker, TrafficClass::Other).await?;
                        send(conn, keys.clone()).await
                    };
                    let outcome = retry.bounded(attempt).await;
                    (broker, keys, outcome)
                }
            }))
            .await;
            for (broker, keys, outcome) in sent {
                match outcome {
                    None => failed.extend(keys.into_iter().map(|k| {
                        let e = self.out_of_time(api, None);
                        (k, e)
                    })),
                    Some(Err(e)) => failed.extend(keys.into_iter().map(|k| (k, e.duplicate()))),
                    Some(Ok(answers)) => {
                        let mut asked: BTreeSet<K> = keys.into_iter().collect();
                        for (k, r) in answers {
                            if !asked.remove(&k) {
                                continue; // not asked, or answered twice
                            }
                            match r {
                                Ok(v) => {
                                    done.insert(k, Ok(v));
                                }
                                Err(e) => failed.push((k, e)),
                            }
                        }
                        for k in asked {
                            let e = Error::ProtocolViolation {
                                broker: broker.addr(),
                                reason: format!("{api} answer has no result for {k:?}"),
                            };
                            done.insert(k, Err(e));
                        }
                    }
                }
            }
            let mut last = None;
            for (k, e) in failed {
                if retries(&route(&k), &e) && !retry.expired() {
                    self.note(&route(&k), &e).await;
                    pending.push(k);
                    last = Some(e);
                } else {
                    done.insert(k, Err(e));
                }
            }
            let Some(last) = last else { break };
            tracing::debug!(api = %api, error = %last, items = pending.len(), "admin: retrying");
            turn += 1;
            if let Err(last) = retry.pause(last).await {
                for k in pending.drain(..) {
                    done.insert(k, Err(self.out_of_time(api, Some(&last))));
                }
            }
        }
        done
    }

    /// One request to one broker found by `route`, retried as a whole
    /// under the admin's policy (for APIs whose answer is not per item).
    pub(crate) async fn single<T, S, F>(&self, api: ApiKey, route: Route, send: S) -> Result<T>
    where
        S: Fn(Connection) -> F,
        F: Future<Output = Result<T>>,
    {
        let mut answers = self
            .per_item(
                api,
                [()],
                |_| route.clone(),
                |conn, _| {
                    let f = send(conn);
                    async move { Ok(vec![((), f.await)]) }
                },
            )
            .await;
        answers
            .remove(&())
            .unwrap_or_else(|| Err(self.out_of_time(api, None)))
    }

    /// The broker an item's request goes to now.
    async fn resolve(&self, api: ApiKey, route: &Route, turn: usize) -> Result<BrokerInfo> {
        match route {
            Route::Controller => self.client.controller().await,
            Route::Any => {
                let mut brokers: Vec<BrokerInfo> =
                    self.client.metadata().brokers.values().cloned().collect();
                if brokers.is_empty() {
                    self.client.refresh_metadata(None).await?;
                    brokers = self.client.metadata().brokers.values().cloned().collect();
                }
                brokers.sort_by_key(|b| b.id);
                match brokers.len() {
                    0 => Err(Error::no_brokers(api)),
                    n => Ok(brokers[turn % n].clone()),
                }
            }
            Route::Broker(id) => {
                if let Some(b) = self.client.broker(*id) {
                    return Ok(b);
                }
                self.client.refresh_metadata(None).await?;
                self.client.broker(*id).ok_or_else(|| Error::Broker {
                    api,
                    code: ErrorCode::BROKER_NOT_AVAILABLE,
                    context: Some(format!("broker {id} is not in the cluster metadata")),
                })
            }
            Route::Leader(topic, partition) => {
                match self.client.leader_of_existing(topic, *partition).await {
                    // An absent topic stays absent: Java's admin fails it
                    // rather than waiting for it to appear.
                    Err(Error::Broker {
                        code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        ..
                    }) => Err(Error::Broker {
                        api,
                        code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        context: Some(format!(
                            "{topic}/{partition} is not in the cluster metadata"
                        )),
                    }),
                    other => other,
                }
            }
            Route::TxnCoordinator(id) => self.client.transaction_coordinator(id).await,
        }
    }

    /// What a retriable failure says about the route: stale metadata is
    /// refreshed, a coordinator that moved is looked up again.
    async fn note(&self, route: &Route, e: &Error) {
        let code = match e {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        };
        let refreshed = match (route, code) {
            (Route::TxnCoordinator(id), _)
                if code.is_none()
                    || code == Some(ErrorCode::NOT_COORDINATOR)
                    || code == Some(ErrorCode::COORDINATOR_NOT_AVAILABLE) =>
            {
                self.client
                    .refresh_transaction_coordinator(id)
                    .await
                    .map(|_| ())
            }
            (Route::Leader(topic, _), c) if c.is_none_or(|c| c.invalidates_metadata()) => {
                self.client
                    .refresh_existing(std::slice::from_ref(topic))
                    .await
            }
            (Route::Controller, Some(ErrorCode::NOT_CONTROLLER)) => {
                self.client.refresh_metadata(None).await
            }
            _ => Ok(()),
        };
        if let Err(e) = refreshed {
            tracing::debug!(error = %e, "admin: refresh after a failure failed");
        }
    }

    fn out_of_time(&self, api: ApiKey, last: Option<&Error>) -> Error {
        Error::Timeout {
            what: format!(
                "{api}{}",
                last.map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ),
            after: self.policy.within.unwrap_or_default(),
        }
    }
}
