//! dp-kafka's health check: probe every configured broker for the topic.

use std::fmt;
use std::sync::Arc;

use klamm::net::{Connection, ConnectionOptions, TlsSettings};
use klamm::protocol::messages::MetadataRequest;
use klamm::protocol::messages::metadata_request::MetadataRequestTopic;
use tokio::sync::Mutex;

/// A health status, worst last (dp-healthcheck's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Working.
    Ok,
    /// Degraded: not ready, or the topic is missing.
    Warning,
    /// Too few brokers reachable.
    Critical,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
        })
    }
}

/// What a health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The verdict.
    pub status: Status,
    /// Why, in dp-kafka's words.
    pub message: String,
}

/// What is being checked, for the messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject {
    Consumer,
    Producer,
}

impl Subject {
    fn healthy(self) -> &'static str {
        match self {
            Subject::Consumer => "kafka consumer group is healthy",
            Subject::Producer => "kafka producer is healthy",
        }
    }

    fn uninitialised(self) -> &'static str {
        match self {
            Subject::Consumer => "kafka consumer-group is not initialised",
            Subject::Producer => "kafka producer is not initialised",
        }
    }
}

/// One configured broker as the health check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) reachable: bool,
    pub(crate) has_topic: bool,
}

/// Probes the configured brokers, each on a connection of its own (apart
/// from the client's, like dp-kafka's broker objects), kept between checks.
#[derive(Debug)]
pub(crate) struct Prober {
    topic: String,
    options: ConnectionOptions,
    tls: Option<TlsSettings>,
    brokers: Vec<(String, Mutex<Option<Connection>>)>,
}

impl Prober {
    pub(crate) fn new(config: &klamm::Config, topic: &str) -> Result<Arc<Prober>, crate::Error> {
        use klamm::config::SecurityProtocol as P;
        let tls = match config.net.security_protocol {
            P::Ssl | P::SaslSsl => Some(TlsSettings::from_config(&config.net.tls)?),
            P::Plaintext | P::SaslPlaintext => None,
        };
        Ok(Arc::new(Prober {
            topic: topic.to_string(),
            options: ConnectionOptions::from_config(config),
            tls,
            brokers: config
                .net
                .bootstrap_servers
                .iter()
                .map(|a| (a.clone(), Mutex::new(None)))
                .collect(),
        }))
    }

    /// Probes every broker (at the same time), in configuration order.
    pub(crate) async fn probe_all(self: &Arc<Self>) -> Vec<(String, Probe)> {
        let tasks: Vec<_> = (0..self.brokers.len())
            .map(|i| {
                let me = self.clone();
                tokio::spawn(async move { me.probe(i).await })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (task, (addr, _)) in tasks.into_iter().zip(&self.brokers) {
            let probe = task.await.unwrap_or(Probe {
                reachable: false,
                has_topic: false,
            });
            out.push((addr.clone(), probe));
        }
        out
    }

    /// Two tries: the kept connection (or a new one), then a new one.
    async fn probe(&self, index: usize) -> Probe {
        let Some((addr, slot)) = self.brokers.get(index) else {
            return Probe {
                reachable: false,
                has_topic: false,
            };
        };
        let addr = addr.as_str();
        let mut conn = slot.lock().await;
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(self.topic.clone()),
                ..MetadataRequestTopic::default()
            }]),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        };
        for _ in 0..2 {
            if conn.as_ref().is_none_or(Connection::is_closed) {
                *conn = self.connect(addr).await;
            }
            let Some(c) = conn.as_ref() else {
                continue;
            };
            match c.send(&request).await {
                Ok(response) => {
                    let has_topic = response.topics.iter().any(|t| {
                        t.name.as_deref() == Some(self.topic.as_str())
                            && t.error_code == 0
                            && !t.partitions.is_empty()
                    });
                    return Probe {
                        reachable: true,
                        has_topic,
                    };
                }
                Err(e) => {
                    tracing::debug!(broker = addr, error = %e, "health probe failed");
                    if let Some(c) = conn.take() {
                        c.close().await;
                    }
                }
            }
        }
        Probe {
            reachable: false,
            has_topic: false,
        }
    }

    async fn connect(&self, addr: &str) -> Option<Connection> {
        let opts = self.options.clone();
        let connected = match &self.tls {
            Some(tls) => Connection::connect_tls(addr, opts, tls).await,
            None => Connection::connect(addr, opts).await,
        };
        connected
            .inspect_err(
                |e| tracing::debug!(broker = addr, error = %e, "health probe cannot connect"),
            )
            .ok()
    }

    pub(crate) async fn close(&self) {
        for (_, slot) in &self.brokers {
            if let Some(c) = slot.lock().await.take() {
                c.close().await;
            }
        }
    }
}

/// The verdict on `probes`:
/// - CRITICAL when fewer than `min_healthy` brokers are reachable (or
///   none is configured);
/// - WARNING when the client has not reached the cluster yet, or too few
///   reachable brokers have the topic;
/// - OK otherwise, naming any broker that is not healthy.
pub(crate) fn verdict(
    subject: Subject,
    topic: &str,
    probes: &[(String, Probe)],
    min_healthy: usize,
    initialised: bool,
) -> Health {
    if probes.is_empty() {
        return Health {
            status: Status::Critical,
            message: "no brokers defined".into(),
        };
    }
    let unreachable: Vec<&str> = probes
        .iter()
        .filter(|(_, p)| !p.reachable)
        .map(|(a, _)| a.as_str())
        .collect();
    let without_topic: Vec<&str> = probes
        .iter()
        .filter(|(_, p)| p.reachable && !p.has_topic)
        .map(|(a, _)| a.as_str())
        .collect();
    let reachable = probes.len() - unreachable.len();
    let healthy = reachable - without_topic.len();
    let mut problems = Vec::new();
    if !unreachable.is_empty() {
        problems.push(format!(
            "broker(s) not reachable at: [{}]",
            unreachable.join(" ")
        ));
    }
    if !without_topic.is_empty() {
        problems.push(format!(
            "topic {topic} not available in broker(s): [{}]",
            without_topic.join(" ")
        ));
    }
    let problems = problems.join(", ");
    let (status, message) = if reachable < min_healthy {
        (Status::Critical, problems)
    } else if !initialised {
        (Status::Warning, subject.uninitialised().to_string())
    } else if healthy < min_healthy {
        (Status::Warning, problems)
    } else if healthy < probes.len() {
        (Status::Ok, problems)
    } else {
        (Status::Ok, subject.healthy().to_string())
    };
    Health { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(list: &[(&str, bool, bool)]) -> Vec<(String, Probe)> {
        list.iter()
            .map(|(a, reachable, has_topic)| {
                (
                    a.to_string(),
                    Probe {
                        reachable: *reachable,
                        has_topic: *has_topic,
                    },
                )
            })
            .collect()
    }

    fn check(list: &[(&str, bool, bool)], min: usize, init: bool) -> (Status, String) {
        let h = verdict(Subject::Consumer, "t", &probes(list), min, init);
        (h.status, h.message)
    }

    #[test]
    fn verdicts_and_messages() {
        let all = [("a", true, true), ("b", true, true)];
        assert_eq!(
            check(&all, 2, true),
            (Status::Ok, "kafka consumer group is healthy".into())
        );
        let p = verdict(Subject::Producer, "t", &probes(&all), 2, true);
        assert_eq!(p.message, "kafka producer is healthy");

        let one_down = [("a", true, true), ("b", false, false)];
        assert_eq!(
            check(&one_down, 1, true),
            (Status::Ok, "broker(s) not reachable at: [b]".into())
        );
        assert_eq!(
            check(&one_down, 2, true),
            (Status::Critical, "broker(s) not reachable at: [b]".into())
        );

        let mixed = [("a", false, false), ("b", true, false), ("c", false, false)];
        assert_eq!(
            check(&mixed, 1, true),
            (
                Status::Warning,
                "broker(s) not reachable at: [a c], topic t not available in broker(s): [b]".into()
            )
        );
        let no_topic = [("a", true, false)];
        assert_eq!(
            check(&no_topic, 1, true),
            (
                Status::Warning,
                "topic t not available in broker(s): [a]".into()
            )
        );
        // Reachability comes first, then initialisation.
        assert_eq!(
            check(&[("a", false, false)], 1, false),
            (Status::Critical, "broker(s) not reachable at: [a]".into())
        );
        assert_eq!(
            check(&all, 1, false),
            (
                Status::Warning,
                "kafka consumer-group is not initialised".into()
            )
        );
        assert_eq!(
            check(&[], 1, true),
            (Status::Critical, "no brokers defined".into())
        );
    }

    #[test]
    fn statuses_order_worst_last_and_print_as_dp_healthcheck() {
        assert!(Status::Ok < Status::Warning && Status::Warning < Status::Critical);
        assert_eq!(Status::Critical.to_string(), "CRITICAL");
    }
}
