//! The `net` section: brokers, connections, TLS and SASL.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{Check, invalid};
use crate::Error;

/// The default `client.id`.
pub const DEFAULT_CLIENT_ID: &str = "klamm";

/// How klamm connects to brokers: which brokers, socket options, timeouts,
/// reconnection backoff, and security (TLS and SASL).
///
/// Defaults follow the Java client (`CommonClientConfigs` and the three
/// client configs); see each field.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// `bootstrap.servers`: `host:port` pairs used for the first
    /// connection. IPv6 hosts go in brackets (`[::1]:9092`). No default:
    /// an empty list fails [`Config::validate`](super::Config::validate).
    pub bootstrap_servers: Vec<String>,
    /// `client.id`, sent in every request header, so that broker logs,
    /// quotas and request metrics can tell clients apart. Default
    /// `"klamm"`, as Sarama sends `"sarama"` and librdkafka `"rdkafka"` (the
    /// Java client's producers and consumers make up `producer-N` /
    /// `consumer-…` when it is empty). Set it to `""` to send none (a null
    /// client id on the wire).
    pub client_id: String,
    /// `request.timeout.ms`: how long to wait for a response before the
    /// request fails (or is retried). Default 30 s (Java; Sarama's
    /// `Net.ReadTimeout` is also 30 s).
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: how long a connection attempt
    /// (the TCP connect and, over TLS, the handshake) may take after a
    /// success or at first, ±20 %; version negotiation and SASL then run
    /// as requests, under `request.timeout.ms`. Default 10 s (Java);
    /// Sarama's `Net.DialTimeout` is 30 s.
    pub connect_timeout: Duration,
    /// `socket.connection.setup.timeout.max.ms`: every failed attempt to
    /// connect to a broker doubles the next attempt's timeout, up to this;
    /// a connection brings it back to `socket.connection.setup.timeout.ms`.
    /// Default 30 s (Java).
    pub connect_timeout_max: Duration,
    /// `connection.max.in.flight.requests` (klamm name): how many requests
    /// of any kind one connection may have awaiting responses. Default 5
    /// (Sarama's `Net.MaxOpenRequests`; Java has no connection-wide limit
    /// besides the producer's, see
    /// [`ProducerConfig::max_in_flight_requests_per_connection`](super::ProducerConfig::max_in_flight_requests_per_connection)).
    pub max_in_flight_requests: usize,
    /// `receive.message.max.bytes` (librdkafka name): the largest response
    /// frame accepted from a broker; a larger size prefix closes the
    /// connection. Default 100 MiB (Sarama's `MaxResponseSize`; Java's
    /// clients have no limit). Must exceed `fetch.max.bytes` by 512 bytes.
    pub max_response_size: usize,
    /// `send.buffer.bytes`: `SO_SNDBUF` of every broker socket; `None`
    /// (`-1`) leaves the kernel's self-tuning default. Default `None`, as
    /// librdkafka, Sarama and franz-go; Java sets 128 KiB (it made no
    /// difference to a 100 B producer here, 0.995× CPU).
    pub send_buffer_size: Option<u32>,
    /// `receive.buffer.bytes`: `SO_RCVBUF` of every broker socket, set
    /// before the connect; `None` (`-1`) leaves the kernel's self-tuning
    /// default. Default `None`, as librdkafka, Sarama and franz-go. Java
    /// sets 64 KiB (32 KiB in its producer), which caps the TCP window:
    /// a consumer reading 1M records of 100 B spent 1.26× the CPU with it
    /// (`benches/RESULTS.md`, "Socket options applied").
    pub receive_buffer_size: Option<u32>,
    /// `socket.keepalive.enable` (librdkafka name): set `SO_KEEPALIVE` on
    /// every broker socket. Default on, as the Java client does.
    pub tcp_keepalive: bool,
    /// `socket.nagle.disable` (librdkafka name): set `TCP_NODELAY` on every
    /// broker socket. Default on, as the Java client does.
    pub tcp_nodelay: bool,
    /// `reconnect.backoff.ms`: the first wait before reconnecting to a
    /// broker; it doubles with each consecutive failure. Default 50 ms
    /// (Java).
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the cap on the reconnect wait. Default
    /// 1 s (Java).
    pub reconnect_backoff_max: Duration,
    /// `reconnect.backoff.jitter` (klamm name): the random spread applied
    /// to every backoff, as a fraction: 0.2 means ±20 %. Default 0.2
    /// (Java's fixed jitter). Must be within `0.0..=1.0`.
    pub backoff_jitter: f64,
    /// `security.protocol`. Default [`SecurityProtocol::Plaintext`].
    pub security_protocol: SecurityProtocol,
    /// TLS settings, used by `SSL` and `SASL_SSL`.
    pub tls: TlsConfig,
    /// SASL settings, used by `SASL_PLAINTEXT` and `SASL_SSL`.
    pub sasl: SaslConfig,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bootstrap_servers: Vec::new(),
            client_id: DEFAULT_CLIENT_ID.to_string(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            connect_timeout_max: Duration::from_secs(30),
            max_in_flight_requests: 5,
            max_response_size: 100 * 1024 * 1024,
            send_buffer_size: None,
            receive_buffer_size: None,
            tcp_keepalive: true,
            tcp_nodelay: true,
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            backoff_jitter: 0.2,
            security_protocol: SecurityProtocol::Plaintext,
            tls: TlsConfig::default(),
            sasl: SaslConfig::default(),
        }
    }
}

/// `security.protocol`: how connections to brokers are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: plain TCP (the default).
    #[default]
    Plaintext,
    /// `SSL`: TLS.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL authentication over plain TCP.
    SaslPlaintext,
    /// `SASL_SSL`: SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// The property value: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or
    /// `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// TLS settings (`ssl.*`), used when the security protocol is `SSL` or
/// `SASL_SSL`. Setting any file here with another protocol is an error,
/// since it would silently be ignored. Each certificate and key comes
/// from a file (`*_location`) or from PEM text (`*_pem`, librdkafka's
/// names), not both.
#[derive(Clone, PartialEq)]
pub struct TlsConfig {
    /// `ssl.ca.location`: a PEM file of CA certificates to trust. `None`
    /// (the default) trusts the Mozilla root certificates that klamm
    /// bundles (`webpki-roots`), not the operating system's store.
    pub ca_location: Option<PathBuf>,
    /// `ssl.certificate.location`: a PEM client certificate (chain) for
    /// mutual TLS. Needs [`key_location`](Self::key_location).
    pub certificate_location: Option<PathBuf>,
    /// `ssl.key.location`: the PEM private key of the client certificate.
    pub key_location: Option<PathBuf>,
    /// `enable.ssl.certificate.verification` (librdkafka name): verify the
    /// broker's certificate chain. Default on. Turning it off accepts any
    /// certificate and is only for tests.
    pub verify_certificates: bool,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default, as in
    /// Java since 2.0) checks that the certificate names the broker's host;
    /// `none` or an empty value does not.
    pub verify_hostname: bool,
    /// `ssl.sni.hostname` (klamm name): the server name to send in SNI and
    /// to verify the certificate against, instead of the broker's host.
    pub sni_hostname: Option<String>,
    /// `ssl.ca.pem` (librdkafka name): CA certificates to trust, as PEM
    /// text, instead of [`ca_location`](Self::ca_location).
    pub ca_pem: Option<String>,
    /// `ssl.certificate.pem` (librdkafka name): the client certificate
    /// (chain) as PEM text, instead of
    /// [`certificate_location`](Self::certificate_location).
    pub certificate_pem: Option<String>,
    /// `ssl.key.pem` (librdkafka name): the client certificate's private
    /// key as PEM text, instead of [`key_location`](Self::key_location).
    /// Never printed by `Debug`.
    pub key_pem: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_location", &self.ca_location)
            .field("certificate_location", &self.certificate_location)
            .field("key_location", &self.key_location)
            .field("verify_certificates", &self.verify_certificates)
            .field("verify_hostname", &self.verify_hostname)
            .field("sni_hostname", &self.sni_hostname)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<PEM text>"))
            .field(
                "certificate_pem",
                &self.certificate_pem.as_ref().map(|_| "<PEM text>"),
            )
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_location: None,
            certificate_location: None,
            key_location: None,
            verify_certificates: true,
            verify_hostname: true,
            sni_hostname: None,
            ca_pem: None,
            certificate_pem: None,
            key_pem: None,
        }
    }
}

/// `sasl.mechanism`: how to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// `PLAIN`: username and password in the clear (use with TLS).
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER` (KIP-255); the token comes from a provider given to
    /// the client, not from this configuration.
    OauthBearer,
}

impl SaslMechanism {
    /// Every mechanism.
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OauthBearer,
    ];

    /// The mechanism's registered name, as sent in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OauthBearer => "OAUTHBEARER",
        }
    }

    /// Whether the mechanism authenticates with a username and password.
    pub fn uses_password(self) -> bool {
        !matches!(self, Self::OauthBearer)
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SASL settings (`sasl.*`), used when the security protocol is
/// `SASL_PLAINTEXT` or `SASL_SSL`.
#[derive(Debug, Clone, PartialEq)]
pub struct SaslConfig {
    /// `sasl.mechanism` (also librdkafka's `sasl.mechanisms`). Required for
    /// the SASL protocols. Default `None`; Java defaults to `GSSAPI`, which
    /// klamm does not support.
    pub mechanism: Option<SaslMechanism>,
    /// `sasl.username`, for PLAIN and SCRAM.
    pub username: Option<String>,
    /// `sasl.password`, for PLAIN and SCRAM. Never shown by `Debug`.
    pub password: Option<Password>,
    /// `sasl.reauthentication.enable` (klamm name): re-authenticate before
    /// the session lifetime the broker announces runs out (KIP-368).
    /// Default on, as the Java client always does.
    pub reauthenticate: bool,
}

impl Default for SaslConfig {
    fn default() -> Self {
        SaslConfig {
            mechanism: None,
            username: None,
            password: None,
            reauthenticate: true,
        }
    }
}

/// A secret string. Its `Debug` output is redacted, so a configuration
/// can be logged without leaking it.
///
/// ```
/// use klamm::config::Password;
///
/// let p = Password::new("hunter2");
/// assert_eq!(p.expose(), "hunter2");
/// assert_eq!(format!("{p:?}"), "Password(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password(s.to_owned())
    }
}

impl NetConfig {
    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.bootstrap_servers.is_empty() {
            return Err(invalid(
                "bootstrap.servers",
                "at least one host:port is required",
            ));
        }
        for server in &self.bootstrap_servers {
            check_host_port(server).map_err(|why| {
                invalid(
                    "bootstrap.servers",
                    format!("`{server}` is not host:port: {why}"),
                )
            })?;
        }
        if self.client_id.len() > i16::MAX as usize {
            return Err(invalid("client.id", "longer than 32767 bytes"));
        }
        Check::positive("request.timeout.ms", self.request_timeout)?;
        Check::fits_i32_ms("request.timeout.ms", self.request_timeout)?;
        Check::positive("socket.connection.setup.timeout.ms", self.connect_timeout)?;
        if self.connect_timeout_max < self.connect_timeout {
            return Err(invalid(
                "socket.connection.setup.timeout.max.ms",
                "must be at least socket.connection.setup.timeout.ms",
            ));
        }
        if self.max_in_flight_requests == 0 {
            return Err(invalid(
                "connection.max.in.flight.requests",
                "must be at least 1",
            ));
        }
        if self.max_response_size < 1024 || self.max_response_size > i32::MAX as usize {
            return Err(invalid(
                "receive.message.max.bytes",
                "must be within 1024..=2147483647",
            ));
        }
        for (key, size) in [
            ("send.buffer.bytes", self.send_buffer_size),
            ("receive.buffer.bytes", self.receive_buffer_size),
        ] {
            if size == Some(0) || size.is_some_and(|s| s > i32::MAX as u32) {
                return Err(invalid(
                    key,
                    "must be within 1..=2147483647, or -1 for the OS default",
                ));
            }
        }
        if self.reconnect_backoff_max < self.reconnect_backoff {
            return Err(invalid(
                "reconnect.backoff.max.ms",
                "must be at least reconnect.backoff.ms",
            ));
        }
        if !(0.0..=1.0).contains(&self.backoff_jitter) {
            return Err(invalid(
                "reconnect.backoff.jitter",
                "must be within 0.0..=1.0",
            ));
        }
        self.validate_tls()?;
        self.validate_sasl()
    }

    fn validate_tls(&self) -> Result<(), Error> {
        let tls = &self.tls;
        if !self.security_protocol.uses_tls() {
            let set = [
                ("ssl.ca.location", tls.ca_location.is_some()),
                (
                    "ssl.certificate.location",
                    tls.certificate_location.is_some(),
                ),
                ("ssl.key.location", tls.key_location.is_some()),
                ("ssl.sni.hostname", tls.sni_hostname.is_some()),
                ("ssl.ca.pem", tls.ca_pem.is_some()),
                ("ssl.certificate.pem", tls.certificate_pem.is_some()),
                ("ssl.key.pem", tls.key_pem.is_some()),
            ];
            if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
                return Err(invalid(
                    *key,
                    format!(
                        "is set but security.protocol is {}; use SSL or SASL_SSL",
                        self.security_protocol
                    ),
                ));
            }
        }
        for (file, text, file_set, text_set) in [
            (
                "ssl.ca.location",
                "ssl.ca.pem",
                tls.ca_location.is_some(),
                tls.ca_pem.is_some(),
            ),
            (
                "ssl.certificate.location",
                "ssl.certificate.pem",
                tls.certificate_location.is_some(),
                tls.certificate_pem.is_some(),
            ),
            (
                "ssl.key.location",
                "ssl.key.pem",
                tls.key_location.is_some(),
                tls.key_pem.is_some(),
            ),
        ] {
            if file_set && text_set {
                return Err(invalid(
                    text,
                    format!("set either {file} or {text}, not both"),
                ));
            }
        }
        let cert = tls.certificate_location.is_some() || tls.certificate_pem.is_some();
        let key = tls.key_location.is_some() || tls.key_pem.is_some();
        match (cert, key) {
            (true, false) => {
                return Err(invalid(
                    "ssl.key.location",
                    "is required with ssl.certificate.location (or ssl.key.pem with ssl.certificate.pem)",
                ));
            }
            (false, true) => {
                return Err(invalid(
                    "ssl.certificate.location",
                    "is required with ssl.key.location (or ssl.certificate.pem with ssl.key.pem)",
                ));
            }
            _ => {}
        }
        for (key, text) in [
            ("ssl.ca.pem", &tls.ca_pem),
            ("ssl.certificate.pem", &tls.certificate_pem),
            ("ssl.key.pem", &tls.key_pem),
        ] {
            if text.as_ref().is_some_and(|t| t.trim().is_empty()) {
                return Err(invalid(key, "must not be empty"));
            }
        }
        for (key, path) in [
            ("ssl.ca.location", &tls.ca_location),
            ("ssl.certificate.location", &tls.certificate_location),
            ("ssl.key.location", &tls.key_location),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(invalid(key, "must not be empty"));
            }
        }
        if let Some(sni) = &tls.sni_hostname {
            if sni.is_empty() || sni.contains(char::is_whitespace) {
                return Err(invalid("ssl.sni.hostname", "must be a host name"));
            }
        }
        Ok(())
    }

    fn validate_sasl(&self) -> Result<(), Error> {
        let sasl = &self.sasl;
        let protocol = self.security_protocol;
        let Some(mechanism) = sasl.mechanism else {
            if protocol.uses_sasl() {
                return Err(invalid(
                    "sasl.mechanism",
                    format!("is required when security.protocol is {protocol}"),
                ));
            }
            if sasl.username.is_some() {
                return Err(invalid("sasl.username", "is set but no sasl.mechanism is"));
            }
            if sasl.password.is_some() {
                return Err(invalid("sasl.password", "is set but no sasl.mechanism is"));
            }
            return Ok(());
        };
        if !protocol.uses_sasl() {
            return Err(invalid(
                "sasl.mechanism",
                format!(
                    "is set but security.protocol is {protocol}; use SASL_PLAINTEXT or SASL_SSL"
                ),
            ));
        }
        if mechanism.uses_password() {
            if sasl.username.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(
                    "sasl.username",
                    format!("is required for {mechanism}"),
                ));
            }
            if sasl.password.as_ref().is_none_or(|p| p.expose().is_empty()) {
                return Err(invalid(
                    "sasl.password",
                    format!("is required for {mechanism}"),
                ));
            }
        } else {
            if sasl.username.is_some() {
                return Err(invalid(
                    "sasl.username",
                    format!("is not used by {mechanism}"),
                ));
            }
            if sasl.password.is_some() {
                return Err(invalid(
                    "sasl.password",
                    format!("is not used by {mechanism}"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks one `host:port` entry: a host name, an IPv4 address or a
/// bracketed IPv6 address, then a port in 1..=65535.
pub(super) fn check_host_port(s: &str) -> Result<(), &'static str> {
    if s.contains(',') {
        // `bootstrap.servers` as one string is split at commas; an entry
        // of the list itself is one broker.
        return Err("one entry holds a comma: give each broker as its own entry");
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[`")?;
        let port = after.strip_prefix(':').ok_or("missing `:port`")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("bad IPv6 address");
        }
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or("missing `:port`")?;
        if host.contains(':') {
            return Err("IPv6 addresses must be in brackets");
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("empty host");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err("bad character in host");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err("port must be within 1..=65535"),
        Ok(_) => Ok(()),
    }
}
