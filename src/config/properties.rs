//! Reading a [`Config`] from Java/librdkafka-style properties.

use std::path::PathBuf;
use std::time::Duration;

use super::producer::level_key;
use super::{
    Acks, Config, GroupProtocol, IsolationLevel, OffsetReset, Partitioner, Password, SaslMechanism,
    SecurityProtocol, invalid,
};
use crate::Error;
use crate::protocol::compression::Compression;

/// Every property key [`Config::from_properties`] accepts.
///
/// Most are the Java client's names; a few come from librdkafka
/// (`sasl.mechanisms`, `compression.codec`, `receive.message.max.bytes`,
/// `socket.keepalive.enable`, `socket.nagle.disable`,
/// `enable.ssl.certificate.verification`, `ssl.ca.pem`,
/// `ssl.certificate.pem`, `ssl.key.pem`,
/// `topic.metadata.refresh.interval.ms`) and a few are klamm's own
/// (`connection.max.in.flight.requests`, `reconnect.backoff.jitter`,
/// `ssl.sni.hostname`, `sasl.reauthentication.enable`,
/// `metadata.refresh.interval.ms`, `partitioner`, `rebalance.timeout.ms`,
/// `fetch.max.decompressed.bytes`, `max.buffered.records`).
///
/// As in the Java client, one key may set several fields:
/// `request.timeout.ms` sets the network, producer and admin request
/// timeouts, `retry.backoff.ms` the metadata and producer backoffs, and
/// `retries` the producer and admin retries.
pub const PROPERTY_KEYS: &[&str] = &[
    // net
    "bootstrap.servers",
    "client.id",
    "request.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "socket.connection.setup.timeout.max.ms",
    "connection.max.in.flight.requests",
    "receive.message.max.bytes",
    "send.buffer.bytes",
    "receive.buffer.bytes",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "reconnect.backoff.jitter",
    "security.protocol",
    // net.tls
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "ssl.certificate.location",
    "ssl.key.location",
    "enable.ssl.certificate.verification",
    "ssl.endpoint.identification.algorithm",
    "ssl.sni.hostname",
    // net.sasl
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.reauthentication.enable",
    // metadata
    "metadata.refresh.interval.ms",
    "topic.metadata.refresh.interval.ms",
    "retry.backoff.ms",
    "metadata.max.age.ms",
    "allow.auto.create.topics",
    // producer
    "acks",
    "enable.idempotence",
    "max.in.flight.requests.per.connection",
    "retries",
    "delivery.timeout.ms",
    "linger.ms",
    "batch.size",
    "buffer.memory",
    "max.buffered.records",
    "max.request.size",
    "compression.type",
    "compression.codec",
    "compression.level",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "partitioner",
    "partitioner.class",
    "transactional.id",
    "transaction.timeout.ms",
    "max.block.ms",
    "block.on.buffer.full",
    // consumer
    "group.id",
    "group.instance.id",
    "group.stable.id",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.max.decompressed.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.wait.ms",
    "isolation.level",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "rebalance.timeout.ms",
    "max.poll.records",
    "check.crcs",
    "default.api.timeout.ms",
    "group.protocol",
    "partition.assignment.strategy",
    "group.remote.assignor",
    "client.rack",
];

/// An assignor's protocol name from a name or a Java class name
/// (`org.apache.kafka.clients.consumer.CooperativeStickyAssignor` →
/// `cooperative-sticky`); other names are kept as given.
fn assignor_name(name: &str) -> String {
    let class = name.rsplit('.').next().unwrap_or(name);
    match class {
        "RangeAssignor" => "range",
        "RoundRobinAssignor" => "roundrobin",
        "StickyAssignor" => "sticky",
        "CooperativeStickyAssignor" => "cooperative-sticky",
        _ => name,
    }
    .to_string()
}

/// Keys whose values are secrets and never appear in errors.
const SECRET_KEYS: &[&str] = &["sasl.password"];

impl Config {
    /// Builds a configuration from `(key, value)` properties, starting from
    /// the defaults. Keys are the Java client's property names (plus the
    /// few librdkafka and klamm names in [`PROPERTY_KEYS`]); a later
    /// duplicate wins.
    ///
    /// Values: durations are whole milliseconds; booleans `true`/`false`;
    /// lists comma-separated; enum values as in Java (`acks` `all`/`-1`/
    /// `0`/`1`, `security.protocol` and `sasl.mechanism` in any case). An
    /// empty value leaves an optional setting unset. `-1` means "unset" for
    /// `send.buffer.bytes`, `receive.buffer.bytes` (OS default),
    /// `metadata.refresh.interval.ms` (never), `rebalance.timeout.ms` and
    /// `compression.level` (codec default). Values are trimmed, except
    /// `sasl.password`.
    ///
    /// `compression.<codec>.level` applies when `compression.type` is that
    /// codec, whatever the order of the keys; levels for other codecs are
    /// checked and otherwise ignored, as in Java.
    ///
    /// An unknown key is an error naming it; a bad value an error naming
    /// the key and the value (never the value of `sasl.password`). This
    /// does not call [`validate`](Self::validate): settings may still be
    /// changed in code afterwards.
    ///
    /// ```
    /// use klamm::Config;
    /// use klamm::config::Acks;
    /// use klamm::protocol::compression::Compression;
    ///
    /// let config = Config::from_properties([
    ///     ("bootstrap.servers", "k1:9092, k2:9092"),
    ///     ("acks", "all"),
    ///     ("compression.gzip.level", "4"),
    ///     ("compression.type", "gzip"),
    /// ])
    /// .unwrap();
    /// assert_eq!(config.net.bootstrap_servers, ["k1:9092", "k2:9092"]);
    /// assert_eq!(config.producer.acks, Acks::All);
    /// assert_eq!(config.producer.compression, Compression::Gzip);
    /// assert_eq!(config.producer.compression_level, Some(4));
    ///
    /// let err = Config::from_properties([("acks", "2")]).unwrap_err();
    /// assert_eq!(err.config_key(), Some("acks"));
    /// ```
    pub fn from_properties<I, K, V>(properties: I) -> Result<Config, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut builder = Builder::default();
        for (key, value) in properties {
            builder.apply(key.as_ref().trim(), value.as_ref())?;
        }
        builder.finish()
    }

    /// Builds a configuration from the text of a Java `.properties` file:
    /// one `key=value` (or `key: value`, or `key value`) per line, `#` and
    /// `!` comment lines, blank lines, a trailing `\` continuing a line, and
    /// the usual escapes (`\\`, `\=`, `\:`, `\t`, `\n`, `\uXXXX`, …). The
    /// pairs then go through [`from_properties`](Self::from_properties).
    ///
    /// ```
    /// use std::time::Duration;
    /// use klamm::Config;
    /// use klamm::config::SecurityProtocol;
    ///
    /// let config = Config::from_properties_str(
    ///     "# shared client settings\n\
    ///      bootstrap.servers = broker-1:9093,\\\n    broker-2:9093\n\
    ///      security.protocol=SSL\n\
    ///      ssl.ca.location=/etc/kafka/ca.pem\n\
    ///      linger.ms: 10\n",
    /// )
    /// .unwrap();
    /// config.validate().unwrap();
    /// assert_eq!(config.net.bootstrap_servers.len(), 2);
    /// assert_eq!(config.net.security_protocol, SecurityProtocol::Ssl);
    /// assert_eq!(config.producer.linger, Duration::from_millis(10));
    /// ```
    pub fn from_properties_str(text: &str) -> Result<Config, Error> {
        Config::from_properties(parse_properties_text(text)?)
    }

    /// The key/value pairs of `.properties` text, in order, read as
    /// [`from_properties_str`](Self::from_properties_str) reads them
    /// (continuation lines, escapes, `key value`), for a caller that adds
    /// settings of its own before [`from_properties`](Self::from_properties).
    ///
    /// ```
    /// use klamm::Config;
    ///
    /// let mut pairs = Config::parse_properties("bootstrap.servers=a:9092,\\\n  b:9092\n")?;
    /// pairs.push(("linger.ms".into(), "5".into()));
    /// let config = Config::from_properties(pairs)?;
    /// assert_eq!(config.net.bootstrap_servers.len(), 2);
    /// # Ok::<(), klamm::Error>(())
    /// ```
    pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, Error> {
        parse_properties_text(text)
    }
}

/// Collects settings, deferring what depends on more than one key.
#[derive(Default)]
struct Builder {
    config: Config,
    /// `compression.level`, if given (and not -1).
    level: Option<i32>,
    /// `compression.<codec>.level` values, by codec.
    codec_levels: Vec<(Compression, i32)>,
}

impl Builder {
    fn apply(&mut self, key: &str, raw: &str) -> Result<(), Error> {
        let value = if SECRET_KEYS.contains(&key) {
            raw
        } else {
            raw.trim()
        };
        let v = Value { key, value };
        let c = &mut self.config;
        match key {
            "bootstrap.servers" => {
                c.net.bootstrap_servers = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "client.id" => c.net.client_id = value.to_owned(),
            "request.timeout.ms" => {
                let d = v.millis()?;
                c.net.request_timeout = d;
                c.producer.request_timeout = d;
                c.admin.request_timeout = d;
            }
            "socket.connection.setup.timeout.ms" => c.net.connect_timeout = v.millis()?,
            "socket.connection.setup.timeout.max.ms" => c.net.connect_timeout_max = v.millis()?,
            "connection.max.in.flight.requests" => c.net.max_in_flight_requests = v.number()?,
            "receive.message.max.bytes" => c.net.max_response_size = v.number()?,
            "send.buffer.bytes" => c.net.send_buffer_size = v.number_or_unset()?,
            "receive.buffer.bytes" => c.net.receive_buffer_size = v.number_or_unset()?,
            "socket.keepalive.enable" => c.net.tcp_keepalive = v.boolean()?,
            "socket.nagle.disable" => c.net.tcp_nodelay = v.boolean()?,
            "reconnect.backoff.ms" => c.net.reconnect_backoff = v.millis()?,
            "reconnect.backoff.max.ms" => c.net.reconnect_backoff_max = v.millis()?,
            "reconnect.backoff.jitter" => {
                c.net.backoff_jitter = value
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| v.bad("expected a number such as 0.2"))?;
            }
            "security.protocol" => {
                c.net.security_protocol = v.one_of(&SecurityProtocol::ALL, |p| p.name())?;
            }
            "ssl.ca.location" => c.net.tls.ca_location = v.path(),
            "ssl.ca.pem" => c.net.tls.ca_pem = v.string(),
            "ssl.certificate.pem" => c.net.tls.certificate_pem = v.string(),
            "ssl.key.pem" => c.net.tls.key_pem = v.string(),
            "ssl.certificate.location" => c.net.tls.certificate_location = v.path(),
            "ssl.key.location" => c.net.tls.key_location = v.path(),
            "enable.ssl.certificate.verification" => {
                c.net.tls.verify_certificates = v.boolean()?;
            }
            "ssl.endpoint.identification.algorithm" => {
                c.net.tls.verify_hostname = match value.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => return Err(v.bad("expected `https`, `none` or an empty value")),
                };
            }
            "ssl.sni.hostname" => c.net.tls.sni_hostname = v.string(),
            "sasl.mechanism" | "sasl.mechanisms" => {
                c.net.sasl.mechanism = if value.is_empty() {
                    None
                } else if value.eq_ignore_ascii_case("GSSAPI") {
                    return Err(v.bad("GSSAPI (Kerberos) is not supported"));
                } else {
                    Some(v.one_of(&SaslMechanism::ALL, |m| m.name())?)
                };
            }
            "sasl.username" => c.net.sasl.username = v.string(),
            "sasl.password" => {
                c.net.sasl.password = (!value.is_empty()).then(|| Password::new(value));
            }
            "sasl.reauthentication.enable" => c.net.sasl.reauthenticate = v.boolean()?,
            "metadata.refresh.interval.ms" | "topic.metadata.refresh.interval.ms" => {
                c.metadata.refresh_interval = v.millis_or_unset()?;
            }
            "retry.backoff.ms" => {
                let d = v.millis()?;
                c.metadata.retry_backoff = d;
                c.producer.retry_backoff = d;
            }
            "metadata.max.age.ms" => c.metadata.max_age = v.millis()?,
            "allow.auto.create.topics" => c.metadata.allow_auto_topic_creation = v.boolean()?,
            "acks" => {
                c.producer.acks = match value.to_ascii_lowercase().as_str() {
                    "all" | "-1" => Acks::All,
                    "1" => Acks::Leader,
                    "0" => Acks::None,
                    _ => return Err(v.bad("expected `all`, `-1`, `0` or `1`")),
                };
            }
            "enable.idempotence" => c.producer.idempotence = v.boolean()?,
            "max.in.flight.requests.per.connection" => {
                c.producer.max_in_flight_requests_per_connection = v.number()?;
            }
            "retries" => {
                let n: u32 = v.number()?;
                if n > i32::MAX as u32 {
                    return Err(v.bad("must be at most 2147483647"));
                }
                c.producer.retries = n;
                c.admin.retries = n;
            }
            "delivery.timeout.ms" => c.producer.delivery_timeout = v.millis()?,
            "linger.ms" => c.producer.linger = v.millis()?,
            "batch.size" => c.producer.batch_size = v.number()?,
            "buffer.memory" => c.producer.buffer_memory = v.number()?,
            "max.buffered.records" => c.producer.max_buffered_records = v.number()?,
            "max.request.size" => c.producer.max_request_size = v.number()?,
            "compression.type" | "compression.codec" => {
                c.producer.compression = Compression::from_name(value)
                    .ok_or_else(|| v.bad("expected none, gzip, snappy, lz4 or zstd"))?;
            }
            "compression.level" => {
                let level: i32 = v.number()?;
                self.level = (level != -1).then_some(level);
            }
            "compression.gzip.level" | "compression.lz4.level" | "compression.zstd.level" => {
                let codec = match key {
                    "compression.gzip.level" => Compression::Gzip,
                    "compression.lz4.level" => Compression::Lz4,
                    _ => Compression::Zstd,
                };
                let level: i32 = v.number()?;
                codec
                    .check_level(Some(level))
                    .map_err(|e| v.bad(e.to_string()))?;
                self.codec_levels.retain(|(c, _)| *c != codec);
                self.codec_levels.push((codec, level));
            }
            "partitioner" => {
                c.producer.partitioner = v.one_of(&Partitioner::ALL, |p| p.name())?;
            }
            "partitioner.class" => {
                c.producer.partitioner = match value {
                    "org.apache.kafka.clients.producer.RoundRobinPartitioner" => {
                        Partitioner::RoundRobin
                    }
                    "" | "org.apache.kafka.clients.producer.internals.DefaultPartitioner" => {
                        Partitioner::Murmur2
                    }
                    _ => {
                        return Err(v.bad(
                            "only Java's RoundRobinPartitioner and DefaultPartitioner are \
                             known; use `partitioner` for klamm's partitioners",
                        ));
                    }
                };
            }
            "transactional.id" => c.producer.transactional_id = v.string(),
            "transaction.timeout.ms" => c.producer.transaction_timeout = v.millis()?,
            "max.block.ms" => c.producer.max_block = v.millis()?,
            "block.on.buffer.full" => c.producer.block_on_buffer_full = v.boolean()?,
            "group.id" => c.consumer.group_id = v.string(),
            "group.instance.id" => c.consumer.group_instance_id = v.string(),
            "group.stable.id" => c.consumer.group_stable_id = v.string(),
            "fetch.min.bytes" => c.consumer.fetch_min_bytes = v.number()?,
            "fetch.max.bytes" => c.consumer.fetch_max_bytes = v.number()?,
            "fetch.max.decompressed.bytes" => {
                c.consumer.fetch_max_decompressed_bytes = v.number_or_unset()?;
            }
            "max.partition.fetch.bytes" => c.consumer.max_partition_fetch_bytes = v.number()?,
            "fetch.max.wait.ms" => c.consumer.fetch_max_wait = v.millis()?,
            "isolation.level" => {
                c.consumer.isolation_level = v.one_of(
                    &[
                        IsolationLevel::ReadUncommitted,
                        IsolationLevel::ReadCommitted,
                    ],
                    |l| l.name(),
                )?;
            }
            "auto.offset.reset" => {
                c.consumer.auto_offset_reset = v.one_of(
                    &[
                        OffsetReset::Earliest,
                        OffsetReset::Latest,
                        OffsetReset::None,
                    ],
                    |r| r.name(),
                )?;
            }
            "enable.auto.commit" => c.consumer.enable_auto_commit = v.boolean()?,
            "auto.commit.interval.ms" => c.consumer.auto_commit_interval = v.millis()?,
            "session.timeout.ms" => c.consumer.session_timeout = v.millis()?,
            "heartbeat.interval.ms" => c.consumer.heartbeat_interval = v.millis()?,
            "max.poll.interval.ms" => c.consumer.max_poll_interval = v.millis()?,
            "rebalance.timeout.ms" => c.consumer.rebalance_timeout = v.millis_or_unset()?,
            "max.poll.records" => c.consumer.max_poll_records = v.number()?,
            "check.crcs" => c.consumer.check_crcs = v.boolean()?,
            "default.api.timeout.ms" => c.consumer.default_api_timeout = v.millis()?,
            "group.protocol" => {
                c.consumer.group_protocol = v
                    .one_of(&[GroupProtocol::Classic, GroupProtocol::Consumer], |p| {
                        p.name()
                    })?;
            }
            "partition.assignment.strategy" => {
                let names: Vec<String> = v
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(assignor_name)
                    .collect();
                if names.is_empty() {
                    return Err(v.bad("expected at least one assignor name"));
                }
                c.consumer.partition_assignment_strategy = names;
            }
            "group.remote.assignor" => c.consumer.group_remote_assignor = v.string(),
            "client.rack" => c.consumer.client_rack = v.string(),
            _ => return Err(invalid(key, "unknown configuration key")),
        }
        Ok(())
    }

    /// Resolves the compression level from `compression.level` and the
    /// per-codec levels.
    fn finish(mut self) -> Result<Config, Error> {
        let codec = self.config.producer.compression;
        let specific = self
            .codec_levels
            .iter()
            .find(|(c, _)| *c == codec)
            .map(|&(_, l)| l);
        let (level, key) = match (self.level, specific) {
            (Some(generic), Some(specific)) if generic != specific => {
                return Err(invalid(
                    "compression.level",
                    format!("{generic} conflicts with {}={specific}", level_key(codec)),
                ));
            }
            (_, Some(specific)) => (Some(specific), level_key(codec)),
            (Some(generic), None) => (Some(generic), "compression.level".to_owned()),
            (None, None) => return Ok(self.config),
        };
        codec
            .check_level(level)
            .map_err(|e| invalid(key, e.to_string()))?;
        self.config.producer.compression_level = level;
        Ok(self.config)
    }
}

/// One property value being parsed, for error messages.
struct Value<'a> {
    key: &'a str,
    value: &'a str,
}

impl Value<'_> {
    /// A bad-value error naming the key and (unless secret) the value.
    fn bad(&self, why: impl std::fmt::Display) -> Error {
        if SECRET_KEYS.contains(&self.key) {
            invalid(self.key, format!("bad value: {why}"))
        } else {
            invalid(self.key, format!("bad value `{}`: {why}", self.value))
        }
    }

    fn number<T: std::str::FromStr>(&self) -> Result<T, Error> {
        self.value
            .parse()
            .map_err(|_| self.bad("expected a whole number in range"))
    }

    /// A number, or `None` for -1.
    fn number_or_unset<T: std::str::FromStr>(&self) -> Result<Option<T>, Error> {
        if self.value == "-1" {
            Ok(None)
        } else {
            self.number().map(Some)
        }
    }

    fn millis(&self) -> Result<Duration, Error> {
        self.value
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| self.bad("expected a whole, non-negative number of milliseconds"))
    }

    /// Milliseconds, or `None` for -1.
    fn millis_or_unset(&self) -> Result<Option<Duration>, Error> {
        if self.value == "-1" {
            Ok(None)
        } else {
            self.millis().map(Some)
        }
    }

    fn boolean(&self) -> Result<bool, Error> {
        if self.value.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if self.value.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(self.bad("expected `true` or `false`"))
        }
    }

    /// An optional string: empty means unset.
    fn string(&self) -> Option<String> {
        (!self.value.is_empty()).then(|| self.value.to_owned())
    }

    /// An optional path: empty means unset.
    fn path(&self) -> Option<PathBuf> {
        (!self.value.is_empty()).then(|| PathBuf::from(self.value))
    }

    /// One of a closed set of names, ignoring ASCII case.
    fn one_of<T: Copy>(&self, all: &[T], name: impl Fn(T) -> &'static str) -> Result<T, Error> {
        all.iter()
            .copied()
            .find(|&t| name(t).eq_ignore_ascii_case(self.value))
            .ok_or_else(|| {
                let names: Vec<_> = all.iter().map(|&t| name(t)).collect();
                self.bad(format!("expected one of {}", names.join(", ")))
            })
    }
}

/// Splits `.properties` text into key/value pairs (see
/// [`Config::from_properties_str`]).
fn parse_properties_text(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut pairs = Vec::new();
    let mut logical = String::new();
    let mut first_line = 0;
    let mut continuing = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if !continuing {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            first_line = index + 1;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continuing = true;
            continue;
        }
        logical.push_str(line);
        continuing = false;
        pairs.push(split_line(&logical, first_line)?);
        logical.clear();
    }
    if continuing {
        pairs.push(split_line(&logical, first_line)?);
    }
    Ok(pairs)
}

/// Splits one logical line into its unescaped key and value.
fn split_line(line: &str, number: usize) -> Result<(String, String), Error> {
    let mut chars = line.chars().peekable();
    let mut key = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.push(unescape(&mut chars).map_err(|why| line_error(&key, number, why))?),
            '=' | ':' => break,
            c if c.is_whitespace() => {
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                chars.next_if(|&c| c == '=' || c == ':');
                break;
            }
            c => key.push(c),
        }
    }
    while chars.next_if(|c| c.is_whitespace()).is_some() {}
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(unescape(&mut chars).map_err(|why| line_error(&key, number, why))?),
            c => value.push(c),
        }
    }
    Ok((key, value))
}

/// The character after a backslash.
fn unescape(chars: &mut impl Iterator<Item = char>) -> Result<char, &'static str> {
    Ok(match chars.next() {
        Some('t') => '\t',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('f') => '\u{c}',
        Some('u') => {
            let hex: String = chars.take(4).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 4)
                .and_then(char::from_u32)
                .ok_or("bad \\uXXXX escape")?
        }
        Some(other) => other,
        None => '\\',
    })
}

fn line_error(key: &str, number: usize, why: &str) -> Error {
    let key = if key.is_empty() {
        format!("line {number}")
    } else {
        key.to_owned()
    };
    invalid(key, format!("line {number}: {why}"))
}
