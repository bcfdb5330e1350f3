//! The consumer's and the producer's settings, with dp-kafka's defaults
//! and checks, and what they become in a klamm [`Config`](klamm::Config).

use std::time::Duration;

use crate::Error;

/// The most worker tasks a consumer may run.
const MAX_WORKERS: usize = 10_000;
/// The largest batch a batch handler may get.
const MAX_BATCH: usize = 1_000_000;

/// Where a group with no committed offset starts reading a partition.
///
/// dp-kafka takes Sarama's `OffsetOldest` or `OffsetNewest` and rejects any
/// other number; here nothing else can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Offset {
    /// From the oldest record still in the log (dp-kafka's default).
    #[default]
    Oldest,
    /// Only records produced from now on.
    Newest,
}

/// TLS to the brokers (dp-kafka's `SecurityConfig`): set means TLS on,
/// even with every field empty.
///
/// As in dp-kafka, each certificate or key is either PEM text (a value
/// starting with `-----BEGIN `, in which literal `\n` sequences become
/// newlines, as environment variables often carry them) or the path of a
/// PEM file.
///
/// ```
/// use klamm_dpkafka::{ConsumerGroupConfig, SecurityConfig};
///
/// let mut config = ConsumerGroupConfig::new(["kafka:9093"], "orders", "billing");
/// config.security = Some(SecurityConfig {
///     root_ca_certs: Some("-----BEGIN CERTIFICATE-----\\nMIIB...\\n-----END CERTIFICATE-----".into()),
///     client_cert: Some("/etc/kafka/client.crt".into()),
///     client_key: Some("/etc/kafka/client.key".into()),
///     insecure_skip_verify: false,
/// });
/// let client = config.client_config().unwrap();
/// assert!(client.net.tls.ca_pem.as_deref().unwrap().contains("\nMIIB...\n"));
/// assert_eq!(client.net.tls.certificate_location, Some("/etc/kafka/client.crt".into()));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// CA certificates to trust; `None`: the Mozilla roots klamm bundles.
    pub root_ca_certs: Option<String>,
    /// A client certificate for mutual TLS (needs `client_key`).
    pub client_cert: Option<String>,
    /// The client certificate's private key (never printed by `Debug`).
    pub client_key: Option<String>,
    /// Accept any broker certificate (tests only).
    pub insecure_skip_verify: bool,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<String>| {
            v.as_deref()
                .map(|v| if is_pem(v) { "<PEM text>" } else { v })
                .map(str::to_string)
        };
        f.debug_struct("SecurityConfig")
            .field("root_ca_certs", &shown(&self.root_ca_certs))
            .field("client_cert", &shown(&self.client_cert))
            .field(
                "client_key",
                &self
                    .client_key
                    .as_deref()
                    .map(|k| if is_pem(k) { "<redacted>" } else { k }),
            )
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// Whether a security setting is PEM text rather than a path (dp-kafka's
/// rule).
fn is_pem(v: &str) -> bool {
    v.starts_with("-----BEGIN ")
}

/// A managed consumer's settings (dp-kafka's `ConsumerGroupConfig`).
///
/// ```
/// use std::time::Duration;
/// use klamm_dpkafka::ConsumerGroupConfig;
///
/// let mut config = ConsumerGroupConfig::new(["localhost:9092"], "orders", "billing");
/// config.num_workers = 4;
/// assert_eq!(config.batch_wait_time, Duration::from_millis(200));
/// config.validate().unwrap();
///
/// config.min_brokers_healthy = 2;
/// let err = config.validate().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "validation error: min_brokers_healthy: must be at most the number of broker addresses (1)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// Seed brokers, `host:port`; the health check probes each one.
    pub broker_addrs: Vec<String>,
    /// The one topic consumed.
    pub topic: String,
    /// The consumer group.
    pub group_name: String,
    /// Where to start without a committed offset. Default [`Offset::Oldest`].
    pub offset: Offset,
    /// How long the coordinator waits for a heartbeat before removing the
    /// member (`session.timeout.ms`). Default 10 s.
    pub message_consume_timeout: Duration,
    /// Pause between retries of a failed request (`retry.backoff.ms`).
    /// Default 100 ms.
    pub retry_backoff: Duration,
    /// TLS; `None`: plaintext.
    pub security: Option<SecurityConfig>,
    /// Tasks running the per-record [`Handler`](crate::Handler). Default 1.
    pub num_workers: usize,
    /// Most records handed to a [`BatchHandler`](crate::BatchHandler) at
    /// once. Default 1.
    pub batch_size: usize,
    /// How long a batch may wait for its next record before it is handed
    /// over unfilled. Default 200 ms.
    pub batch_wait_time: Duration,
    /// First pause of the background retries (reaching the cluster,
    /// rejoining the group). Default 200 ms.
    pub min_retry_period: Duration,
    /// Longest pause of those retries. Default 32 s.
    pub max_retry_period: Duration,
    /// Brokers that must be reachable (and, for OK, have the topic) for
    /// the health check not to report CRITICAL. Default 1.
    pub min_brokers_healthy: usize,
    /// `client.id` sent to the brokers. Default `klamm-dpkafka`.
    pub client_id: String,
}

impl ConsumerGroupConfig {
    /// The settings with dp-kafka's defaults for everything but the
    /// brokers, the topic and the group.
    pub fn new<S: Into<String>>(
        broker_addrs: impl IntoIterator<Item = S>,
        topic: impl Into<String>,
        group_name: impl Into<String>,
    ) -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            broker_addrs: broker_addrs.into_iter().map(Into::into).collect(),
            topic: topic.into(),
            group_name: group_name.into(),
            offset: Offset::Oldest,
            message_consume_timeout: Duration::from_secs(10),
            retry_backoff: Duration::from_millis(100),
            security: None,
            num_workers: 1,
            batch_size: 1,
            batch_wait_time: Duration::from_millis(200),
            min_retry_period: Duration::from_millis(200),
            max_retry_period: Duration::from_secs(32),
            min_brokers_healthy: 1,
            client_id: "klamm-dpkafka".into(),
        }
    }

    /// Checks the settings as dp-kafka does (and the handler sizes, which
    /// it did not).
    pub fn validate(&self) -> Result<(), Error> {
        check_common(
            &self.broker_addrs,
            &self.topic,
            self.min_retry_period,
            self.max_retry_period,
            self.min_brokers_healthy,
        )?;
        if self.group_name.is_empty() {
            return Err(Error::config(
                "group_name",
                "is compulsory but was not provided in config",
            ));
        }
        if self.num_workers == 0 || self.num_workers > MAX_WORKERS {
            return Err(Error::config(
                "num_workers",
                format!("must be between 1 and {MAX_WORKERS}"),
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH {
            return Err(Error::config(
                "batch_size",
                format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        Ok(())
    }

    /// The klamm client configuration these settings make: the group,
    /// its start, a 10 s session with 3 s heartbeats, round-robin
    /// assignment, marks committed every second (as Sarama does), fetches
    /// that wait at most 50 ms, and TLS when set.
    pub fn client_config(&self) -> Result<klamm::Config, Error> {
        self.validate()?;
        let session = self.message_consume_timeout.as_millis().to_string();
        let heartbeat = (self.message_consume_timeout / 3)
            .min(Duration::from_secs(3))
            .as_millis()
            .to_string();
        let mut props = vec![
            ("bootstrap.servers", self.broker_addrs.join(",")),
            ("client.id", self.client_id.clone()),
            ("group.id", self.group_name.clone()),
            (
                "auto.offset.reset",
                match self.offset {
                    Offset::Oldest => "earliest",
                    Offset::Newest => "latest",
                }
                .into(),
            ),
            ("session.timeout.ms", session),
            ("heartbeat.interval.ms", heartbeat),
            ("partition.assignment.strategy", "roundrobin".into()),
            ("enable.auto.commit", "true".into()),
            ("auto.commit.interval.ms", "1000".into()),
            ("fetch.max.wait.ms", "50".into()),
            // dp-kafka's (Sarama's) 60 s: how long a rebalance waits for
            // the records in hand.
            ("rebalance.timeout.ms", "60000".into()),
            (
                "retry.backoff.ms",
                self.retry_backoff.as_millis().to_string(),
            ),
        ];
        security_properties(self.security.as_ref(), &mut props);
        Ok(klamm::Config::from_properties(props)?)
    }
}

/// A managed producer's settings (dp-kafka's `ProducerConfig`).
///
/// ```
/// use klamm_dpkafka::ProducerConfig;
///
/// let config = ProducerConfig::new(["k1:9092", "k2:9092"], "orders");
/// assert_eq!(config.min_brokers_healthy, 2);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Seed brokers, `host:port`; the health check probes each one.
    pub broker_addrs: Vec<String>,
    /// The topic every record goes to.
    pub topic: String,
    /// Largest request (`max.request.size`); `None`: klamm's 1 MiB.
    pub max_message_bytes: Option<usize>,
    /// Pause between retries of a failed request (`retry.backoff.ms`).
    /// Default 100 ms.
    pub retry_backoff: Duration,
    /// TLS; `None`: plaintext.
    pub security: Option<SecurityConfig>,
    /// Brokers that must be reachable with the topic for the health check
    /// not to report CRITICAL. Default 2 (as dp-kafka's producer).
    pub min_brokers_healthy: usize,
    /// First pause of the background initialisation. Default 200 ms.
    pub min_retry_period: Duration,
    /// Longest pause of the background initialisation. Default 32 s.
    pub max_retry_period: Duration,
    /// The value of the `request-id` header on every record; `None`: a
    /// random UUID, one for the producer's life.
    pub trace_id: Option<String>,
    /// `client.id` sent to the brokers. Default `klamm-dpkafka`.
    pub client_id: String,
}

impl ProducerConfig {
    /// The settings with dp-kafka's defaults for everything but the
    /// brokers and the topic.
    pub fn new<S: Into<String>>(
        broker_addrs: impl IntoIterator<Item = S>,
        topic: impl Into<String>,
    ) -> ProducerConfig {
        ProducerConfig {
            broker_addrs: broker_addrs.into_iter().map(Into::into).collect(),
            topic: topic.into(),
            max_message_bytes: None,
            retry_backoff: Duration::from_millis(100),
            security: None,
            min_brokers_healthy: 2,
            min_retry_period: Duration::from_millis(200),
            max_retry_period: Duration::from_secs(32),
            trace_id: None,
            client_id: "klamm-dpkafka".into(),
        }
    }

    /// Checks the settings as dp-kafka does.
    pub fn validate(&self) -> Result<(), Error> {
        check_common(
            &self.broker_addrs,
            &self.topic,
            self.min_retry_period,
            self.max_retry_period,
            self.min_brokers_healthy,
        )?;
        if self.max_message_bytes == Some(0) {
            return Err(Error::config(
                "max_message_bytes",
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    /// The klamm client configuration these settings make (klamm's
    /// producer defaults otherwise: `acks=all`, idempotent).
    pub fn client_config(&self) -> Result<klamm::Config, Error> {
        self.validate()?;
        let mut props = vec![
            ("bootstrap.servers", self.broker_addrs.join(",")),
            ("client.id", self.client_id.clone()),
            (
                "retry.backoff.ms",
                self.retry_backoff.as_millis().to_string(),
            ),
        ];
        if let Some(max) = self.max_message_bytes {
            props.push(("max.request.size", max.to_string()));
        }
        security_properties(self.security.as_ref(), &mut props);
        Ok(klamm::Config::from_properties(props)?)
    }
}

fn check_common(
    brokers: &[String],
    topic: &str,
    min_retry: Duration,
    max_retry: Duration,
    min_healthy: usize,
) -> Result<(), Error> {
    if brokers.is_empty() {
        return Err(Error::config(
            "broker_addrs",
            "is compulsory but was not provided in config",
        ));
    }
    if topic.is_empty() {
        return Err(Error::config(
            "topic",
            "is compulsory but was not provided in config",
        ));
    }
    if min_retry.is_zero() {
        return Err(Error::config(
            "min_retry_period",
            "must be greater than zero",
        ));
    }
    if max_retry.is_zero() {
        return Err(Error::config(
            "max_retry_period",
            "must be greater than zero",
        ));
    }
    if min_retry > max_retry {
        return Err(Error::config(
            "min_retry_period",
            "must be smaller or equal to max_retry_period",
        ));
    }
    if min_healthy == 0 {
        return Err(Error::config(
            "min_brokers_healthy",
            "must be greater than zero",
        ));
    }
    if min_healthy > brokers.len() {
        return Err(Error::config(
            "min_brokers_healthy",
            format!(
                "must be at most the number of broker addresses ({})",
                brokers.len()
            ),
        ));
    }
    Ok(())
}

fn security_properties(security: Option<&SecurityConfig>, props: &mut Vec<(&'static str, String)>) {
    let Some(s) = security else {
        return;
    };
    props.push(("security.protocol", "SSL".into()));
    for (value, file_key, text_key) in [
        (&s.root_ca_certs, "ssl.ca.location", "ssl.ca.pem"),
        (
            &s.client_cert,
            "ssl.certificate.location",
            "ssl.certificate.pem",
        ),
        (&s.client_key, "ssl.key.location", "ssl.key.pem"),
    ] {
        match value.as_deref() {
            Some(v) if is_pem(v) => props.push((text_key, v.replace("\\n", "\n"))),
            Some(v) if !v.is_empty() => props.push((file_key, v.to_string())),
            _ => {}
        }
    }
    if s.insecure_skip_verify {
        props.push(("enable.ssl.certificate.verification", "false".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(c: &ConsumerGroupConfig) -> String {
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_dp_kafkas() {
        let c = ConsumerGroupConfig::new(["a:9092"], "t", "g");
        assert_eq!(c.offset, Offset::Oldest);
        assert_eq!(c.message_consume_timeout, Duration::from_secs(10));
        assert_eq!((c.num_workers, c.batch_size), (1, 1));
        assert_eq!(c.batch_wait_time, Duration::from_millis(200));
        assert_eq!(c.min_retry_period, Duration::from_millis(200));
        assert_eq!(c.max_retry_period, Duration::from_secs(32));
        assert_eq!(c.min_brokers_healthy, 1);
        let p = ProducerConfig::new(["a:9092", "b:9092"], "t");
        assert_eq!(p.min_brokers_healthy, 2);
        assert_eq!(p.trace_id, None);
    }

    #[test]
    fn each_check_names_its_field() {
        let ok = ConsumerGroupConfig::new(["a:9092"], "t", "g");
        type Spoil = fn(&mut ConsumerGroupConfig);
        let cases: Vec<(Spoil, &str)> = vec![
            (
                |c| c.broker_addrs.clear(),
                "validation error: broker_addrs: is compulsory but was not provided in config",
            ),
            (
                |c| c.topic.clear(),
                "validation error: topic: is compulsory but was not provided in config",
            ),
            (
                |c| c.group_name.clear(),
                "validation error: group_name: is compulsory but was not provided in config",
            ),
            (
                |c| c.min_retry_period = Duration::ZERO,
                "validation error: min_retry_period: must be greater than zero",
            ),
            (
                |c| c.max_retry_period = Duration::ZERO,
                "validation error: max_retry_period: must be greater than zero",
            ),
            (
                |c| c.min_retry_period = Duration::from_secs(60),
                "validation error: min_retry_period: must be smaller or equal to max_retry_period",
            ),
            (
                |c| c.min_brokers_healthy = 0,
                "validation error: min_brokers_healthy: must be greater than zero",
            ),
            (
                |c| c.min_brokers_healthy = 2,
                "validation error: min_brokers_healthy: must be at most the number of broker addresses (1)",
            ),
            (
                |c| c.num_workers = 0,
                "validation error: num_workers: must be between 1 and 10000",
            ),
            (
                |c| c.num_workers = 10_001,
                "validation error: num_workers: must be between 1 and 10000",
            ),
            (
                |c| c.batch_size = 0,
                "validation error: batch_size: must be between 1 and 1000000",
            ),
        ];
        for (spoil, message) in cases {
            let mut c = ok.clone();
            spoil(&mut c);
            assert_eq!(refused(&c), message);
        }
        // A producer with one broker fails its default of two healthy ones.
        let p = ProducerConfig::new(["a:9092"], "t");
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("min_brokers_healthy")
        );
    }

    #[test]
    fn the_client_configuration_carries_the_settings() {
        let mut c = ConsumerGroupConfig::new(["a:9092", "b:9093"], "t", "g");
        c.offset = Offset::Newest;
        c.security = Some(SecurityConfig {
            root_ca_certs: Some("/etc/ca.pem".into()),
            insecure_skip_verify: true,
            ..SecurityConfig::default()
        });
        let k = c.client_config().unwrap();
        assert_eq!(k.net.bootstrap_servers, ["a:9092", "b:9093"]);
        assert_eq!(k.consumer.group_id.as_deref(), Some("g"));
        assert_eq!(
            k.consumer.auto_offset_reset,
            klamm::config::OffsetReset::Latest
        );
        assert_eq!(k.consumer.session_timeout, Duration::from_secs(10));
        assert_eq!(k.consumer.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(k.consumer.partition_assignment_strategy, ["roundrobin"]);
        assert_eq!(k.net.client_id, "klamm-dpkafka");
        assert_eq!(
            k.net.security_protocol,
            klamm::config::SecurityProtocol::Ssl
        );
        assert_eq!(k.net.tls.ca_location, Some("/etc/ca.pem".into()));
        assert_eq!(k.net.tls.ca_pem, None);
        assert!(!k.net.tls.verify_certificates);
        c.offset = Offset::Oldest;
        c.security = None;
        let k = c.client_config().unwrap();
        assert_eq!(
            k.consumer.auto_offset_reset,
            klamm::config::OffsetReset::Earliest
        );
        assert_eq!(
            k.net.security_protocol,
            klamm::config::SecurityProtocol::Plaintext
        );

        let mut p = ProducerConfig::new(["a:9092", "b:9093"], "t");
        p.max_message_bytes = Some(5_000_000);
        let k = p.client_config().unwrap();
        assert_eq!(k.producer.max_request_size, 5_000_000);
    }
}
