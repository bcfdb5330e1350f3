//! Client configuration: one [`Config`] for connections, metadata,
//! producers, consumers and admin.
//!
//! A `Config` is plain data in five sections: [`net`](Config::net),
//! [`metadata`](Config::metadata), [`producer`](Config::producer),
//! [`consumer`](Config::consumer) and [`admin`](Config::admin). Its
//! [`Default`] holds the Java client's defaults (Kafka 4.x); where Sarama
//! differs, the field's documentation says so. Set fields directly, then
//! call [`Config::validate`], which names the offending property in every
//! error:
//!
//! ```
//! use std::time::Duration;
//! use klamm::Config;
//! use klamm::config::{Acks, SaslMechanism, SecurityProtocol, Password};
//! use klamm::protocol::compression::Compression;
//!
//! let mut config = Config::default();
//! config.net.bootstrap_servers = vec!["broker-1:9092".into(), "broker-2:9092".into()];
//! config.net.client_id = "billing".into();
//! config.net.security_protocol = SecurityProtocol::SaslSsl;
//! config.net.sasl.mechanism = Some(SaslMechanism::ScramSha512);
//! config.net.sasl.username = Some("billing".into());
//! config.net.sasl.password = Some(Password::new("s3cret"));
//! config.producer.linger = Duration::from_millis(20);
//! config.producer.compression = Compression::Zstd;
//! config.producer.compression_level = Some(6);
//! config.consumer.group_id = Some("billing-readers".into());
//! config.validate().unwrap();
//!
//! // Idempotence (on by default) needs acks=all.
//! config.producer.acks = Acks::Leader;
//! let err = config.validate().unwrap_err();
//! assert_eq!(err.config_key(), Some("acks"));
//! ```
//!
//! Or read the familiar Java/librdkafka property names with
//! [`Config::from_properties`] or [`Config::from_properties_str`]; unknown
//! keys and bad values are errors naming the key. The accepted keys are
//! listed in [`PROPERTY_KEYS`].
//!
//! ```
//! use std::time::Duration;
//! use klamm::Config;
//! use klamm::config::IsolationLevel;
//!
//! let config = Config::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "audit"),
//!     ("isolation.level", "read_committed"),
//!     ("fetch.max.wait.ms", "250"),
//! ])
//! .unwrap();
//! config.validate().unwrap();
//! assert_eq!(config.consumer.isolation_level, IsolationLevel::ReadCommitted);
//! assert_eq!(config.consumer.fetch_max_wait, Duration::from_millis(250));
//!
//! let err = Config::from_properties([("linger.msec", "5")]).unwrap_err();
//! assert_eq!(err.config_key(), Some("linger.msec"));
//! ```
//!
//! # Sources
//! Defaults and rules were checked against the Java client's
//! `CommonClientConfigs`, `ProducerConfig`, `ConsumerConfig` and
//! `AdminClientConfig` (Apache Kafka 4.x) and Sarama's `config.go`
//! (`NewConfig`, `Validate`).

use std::time::Duration;

use crate::Error;

mod consumer;
mod net;
mod producer;
mod properties;
#[cfg(test)]
mod tests;

pub use consumer::{ConsumerConfig, GroupProtocol, IsolationLevel, OffsetReset};
pub use net::{
    DEFAULT_CLIENT_ID, NetConfig, Password, SaslConfig, SaslMechanism, SecurityProtocol, TlsConfig,
};
pub use producer::{Acks, MAX_IN_FLIGHT_FOR_IDEMPOTENCE, Partitioner, ProducerConfig};
pub use properties::PROPERTY_KEYS;

/// The whole client configuration. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Brokers, connections, TLS and SASL.
    pub net: NetConfig,
    /// The cluster metadata cache.
    pub metadata: MetadataConfig,
    /// Producers.
    pub producer: ProducerConfig,
    /// Consumers and consumer groups.
    pub consumer: ConsumerConfig,
    /// The admin client.
    pub admin: AdminConfig,
}

impl Config {
    /// Checks every setting and the rules between them, returning the
    /// first problem as an [`Error::Config`] naming the property (by its
    /// Java name, e.g. `linger.ms`).
    ///
    /// Rules beyond ranges: at least one bootstrap server, each `host:port`;
    /// idempotence needs `acks=all`, `retries > 0` and at most 5 in-flight
    /// requests per connection; `transactional.id` needs idempotence;
    /// `heartbeat.interval.ms` < `session.timeout.ms`; `fetch.min.bytes`
    /// ≤ `fetch.max.bytes`; `fetch.max.wait.ms` < `request.timeout.ms`;
    /// `batch.size` ≤ `max.request.size`; `delivery.timeout.ms` ≥
    /// `linger.ms` + `request.timeout.ms`; the compression level fits the
    /// codec; SASL protocols need `sasl.mechanism`, PLAIN and SCRAM need a
    /// username and password, and SASL or TLS settings with a protocol that
    /// would ignore them are errors.
    pub fn validate(&self) -> Result<(), Error> {
        self.net.validate()?;
        self.metadata.validate()?;
        self.producer.validate()?;
        self.consumer.validate(self.net.request_timeout)?;
        self.admin.validate()?;
        let fetch_max = self.consumer.fetch_max_bytes as usize;
        if self.net.max_response_size < fetch_max.saturating_add(512) {
            return Err(invalid(
                "receive.message.max.bytes",
                format!(
                    "must be at least fetch.max.bytes + 512 ({})",
                    fetch_max.saturating_add(512)
                ),
            ));
        }
        Ok(())
    }
}

/// How the cluster metadata cache is kept fresh.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataConfig {
    /// `metadata.refresh.interval.ms` (klamm name; librdkafka's
    /// `topic.metadata.refresh.interval.ms` also works): how often the
    /// known topics' metadata is refreshed in the background (sooner when
    /// `metadata.max.age.ms` is shorter); `None` (`-1`) never. Default
    /// 5 min, matching Java, which refreshes when metadata reaches
    /// `metadata.max.age.ms`; Sarama's `RefreshFrequency` is 10 min.
    pub refresh_interval: Option<Duration>,
    /// `retry.backoff.ms`: the wait before retrying a failed metadata
    /// request. Default 100 ms (Java); Sarama's `Metadata.Retry.Backoff`
    /// is 250 ms.
    pub retry_backoff: Duration,
    /// `metadata.max.age.ms`: metadata this old is refreshed even without
    /// a sign it changed, as in the Java client: the background refresh
    /// runs when the last refresh of every known topic (whatever asked for
    /// it) is this old, if `metadata.refresh.interval.ms` is not shorter
    /// and not `-1`; a group member checks its subscription's topics this
    /// often. Default 5 min (Java).
    pub max_age: Duration,
    /// `allow.auto.create.topics`: ask brokers to create missing topics
    /// when fetching their metadata (brokers must allow it too). Default
    /// on (Java and Sarama).
    pub allow_auto_topic_creation: bool,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            refresh_interval: Some(Duration::from_secs(300)),
            retry_backoff: Duration::from_millis(100),
            max_age: Duration::from_secs(300),
            allow_auto_topic_creation: true,
        }
    }
}

impl MetadataConfig {
    fn validate(&self) -> Result<(), Error> {
        if let Some(interval) = self.refresh_interval {
            Check::positive("metadata.refresh.interval.ms", interval)?;
        }
        Ok(())
    }
}

/// The admin client's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// `request.timeout.ms`: how long an admin request may take. Default
    /// 30 s (Java); Sarama's `Admin.Timeout` is 3 s.
    pub request_timeout: Duration,
    /// `retries`: how many times a failed admin request is retried.
    /// Default 2147483647 (Java); Sarama's `Admin.Retry.Max` is 5.
    pub retries: u32,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            request_timeout: Duration::from_secs(30),
            retries: i32::MAX as u32,
        }
    }
}

impl AdminConfig {
    fn validate(&self) -> Result<(), Error> {
        Check::positive("request.timeout.ms", self.request_timeout)?;
        Check::fits_i32_ms("request.timeout.ms", self.request_timeout)?;
        if self.retries > i32::MAX as u32 {
            return Err(invalid("retries", "must be at most 2147483647"));
        }
        Ok(())
    }
}

/// Shorthand for a configuration error.
fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::config(key, reason)
}

/// Small shared checks.
struct Check;

impl Check {
    /// A duration that must be more than zero.
    fn positive(key: &str, d: Duration) -> Result<(), Error> {
        if d.is_zero() {
            Err(invalid(key, "must be more than 0"))
        } else {
            Ok(())
        }
    }

    /// A duration sent on the wire as an `int32` of milliseconds.
    fn fits_i32_ms(key: &str, d: Duration) -> Result<(), Error> {
        if d.as_millis() > i32::MAX as u128 {
            Err(invalid(key, "must be at most 2147483647 ms"))
        } else {
            Ok(())
        }
    }
}
