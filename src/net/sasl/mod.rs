//! SASL authentication of a broker connection (KIP-43, KIP-152, KIP-368).
//!
//! After the TCP (or TLS) connection is up and versions are negotiated,
//! the client sends `SaslHandshake` v1 naming a mechanism, then one or more
//! `SaslAuthenticate` requests carrying the mechanism's messages. A broker
//! that does not enable the mechanism answers `UNSUPPORTED_SASL_MECHANISM`
//! with the list of mechanisms it does enable; a failed exchange answers
//! with an error code and message. Both become [`Error::Auth`], which is
//! not retriable: the same credentials will fail again.
//!
//! Mechanisms: [`PLAIN`](SaslMechanism::Plain) (RFC 4616),
//! [`SCRAM-SHA-256`](SaslMechanism::ScramSha256) and
//! [`SCRAM-SHA-512`](SaslMechanism::ScramSha512) (RFC 5802, RFC 7677) and
//! [`OAUTHBEARER`](SaslMechanism::OauthBearer) (RFC 7628, KIP-255) with
//! tokens from a [`TokenProvider`].
//!
//! When `SaslAuthenticate` v1+ reports a session lifetime (KIP-368), the
//! broker closes the connection once it runs out unless the client has
//! authenticated again. A connection opened with
//! [`ConnectionOptions::sasl`](super::ConnectionOptions::sasl) therefore
//! starts a background task that repeats the whole exchange (handshake
//! included, as KIP-368 specifies) after 85–95 % of the lifetime, chosen at
//! random as the Java client does. While it runs, other requests on the
//! connection wait, so none lands between the handshake and the last
//! `SaslAuthenticate`. If re-authentication fails the connection is closed,
//! and its users see a retriable [`Error::Disconnected`].
//!
//! ```no_run
//! use klamm::net::{Connection, ConnectionOptions};
//! use klamm::net::sasl::SaslMechanism;
//!
//! # async fn run() -> klamm::Result<()> {
//! let opts = ConnectionOptions {
//!     sasl: Some(SaslMechanism::scram_sha512("alice", "alice-secret")),
//!     ..Default::default()
//! };
//! let conn = Connection::connect("127.0.0.1:9092", opts).await?;
//! let session = conn.sasl_session().expect("authenticated");
//! println!("authenticated; the session lasts {:?}", session.session_lifetime);
//! # Ok(())
//! # }
//! ```
//!
//! # References
//! - KIP-43 (SASL handshake), KIP-152 (SaslAuthenticate framing), KIP-368
//!   (re-authentication), KIP-84/KIP-86 (SCRAM in Kafka), KIP-255
//!   (OAUTHBEARER)
//! - RFC 4616 (PLAIN), RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256), RFC 7628
//!   (OAUTHBEARER)

mod oauthbearer;
mod plain;
mod scram;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::OwnedRwLockWriteGuard;

pub use oauthbearer::{OAuthToken, TokenProvider};
use scram::ScramClient;

use super::connection::Connection;
use crate::config::{Password, SaslConfig};
use crate::error::{Error, Result};
use crate::protocol::error_codes::ErrorCode;
use crate::protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};

/// A username and password, for PLAIN and SCRAM.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username (SCRAM escapes `=` and `,` in it on the wire).
    pub username: String,
    /// The password; `Debug` never shows it.
    pub password: Password,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// A SASL mechanism together with what it needs to authenticate.
///
/// (The configuration's [`config::SaslMechanism`](crate::config::SaslMechanism)
/// only names a mechanism; [`SaslMechanism::from_config`] adds the
/// credentials.)
///
/// ```
/// use klamm::net::sasl::SaslMechanism;
///
/// let m = SaslMechanism::scram_sha256("alice", "secret");
/// assert_eq!(m.name(), "SCRAM-SHA-256");
/// // Debug output never contains the password.
/// assert!(!format!("{m:?}").contains("secret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): the password travels in the clear, so use TLS.
    Plain(Credentials),
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256(Credentials),
    /// `SCRAM-SHA-512`.
    ScramSha512(Credentials),
    /// `OAUTHBEARER` (RFC 7628, KIP-255) with tokens from the provider,
    /// asked again for every (re-)authentication.
    OauthBearer(Arc<dyn TokenProvider>),
}

impl fmt::Debug for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(c) | Self::ScramSha256(c) | Self::ScramSha512(c) => f
                .debug_tuple(self.name())
                .field(&c.username)
                .field(&c.password)
                .finish(),
            Self::OauthBearer(_) => f.write_str("OAUTHBEARER(<token provider>)"),
        }
    }
}

impl SaslMechanism {
    /// `PLAIN` with a username and password.
    pub fn plain(username: impl Into<String>, password: impl Into<Password>) -> Self {
        Self::Plain(credentials(username, password))
    }

    /// `SCRAM-SHA-256` with a username and password.
    pub fn scram_sha256(username: impl Into<String>, password: impl Into<Password>) -> Self {
        Self::ScramSha256(credentials(username, password))
    }

    /// `SCRAM-SHA-512` with a username and password.
    pub fn scram_sha512(username: impl Into<String>, password: impl Into<Password>) -> Self {
        Self::ScramSha512(credentials(username, password))
    }

    /// `OAUTHBEARER` with tokens from `provider`.
    pub fn oauthbearer(provider: impl TokenProvider + 'static) -> Self {
        Self::OauthBearer(Arc::new(provider))
    }

    /// The mechanism's name, as sent in `SaslHandshake`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plain(_) => "PLAIN",
            Self::ScramSha256(_) => "SCRAM-SHA-256",
            Self::ScramSha512(_) => "SCRAM-SHA-512",
            Self::OauthBearer(_) => "OAUTHBEARER",
        }
    }

    /// The mechanism a configuration's `sasl` section asks for, with its
    /// username and password; OAUTHBEARER needs `token_provider`. `None`
    /// when no mechanism is configured.
    ///
    /// ```
    /// use klamm::config::{Config, SaslMechanism as Name};
    /// use klamm::net::sasl::SaslMechanism;
    ///
    /// let mut config = Config::default();
    /// config.net.sasl.mechanism = Some(Name::Plain);
    /// config.net.sasl.username = Some("alice".into());
    /// config.net.sasl.password = Some("pw".into());
    /// let m = SaslMechanism::from_config(&config.net.sasl, None).unwrap().unwrap();
    /// assert_eq!(m.name(), "PLAIN");
    /// ```
    pub fn from_config(
        config: &SaslConfig,
        token_provider: Option<Arc<dyn TokenProvider>>,
    ) -> Result<Option<SaslMechanism>> {
        use crate::config::SaslMechanism as Name;
        let Some(name) = config.mechanism else {
            return Ok(None);
        };
        let creds = || -> Result<Credentials> {
            let username = config.username.clone().ok_or_else(|| {
                Error::config("sasl.username", format!("{name} needs a username"))
            })?;
            let password = config.password.clone().ok_or_else(|| {
                Error::config("sasl.password", format!("{name} needs a password"))
            })?;
            Ok(Credentials { username, password })
        };
        Ok(Some(match name {
            Name::Plain => Self::Plain(creds()?),
            Name::ScramSha256 => Self::ScramSha256(creds()?),
            Name::ScramSha512 => Self::ScramSha512(creds()?),
            Name::OauthBearer => Self::OauthBearer(token_provider.ok_or_else(|| {
                Error::config("sasl.mechanism", "OAUTHBEARER needs a token provider")
            })?),
        }))
    }
}

fn credentials(username: impl Into<String>, password: impl Into<Password>) -> Credentials {
    Credentials {
        username: username.into(),
        password: password.into(),
    }
}

/// The outcome of a successful SASL authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaslSession {
    /// The mechanism used.
    pub mechanism: &'static str,
    /// How long the broker keeps the session before the connection must
    /// re-authenticate (KIP-368); `None` when it set no limit or the
    /// broker only speaks `SaslAuthenticate` v0.
    pub session_lifetime: Option<Duration>,
}

/// Authenticates `conn` with `mech`: `SaslHandshake` v1, then the
/// mechanism's `SaslAuthenticate` rounds. Other requests on the connection
/// wait until it finishes. Failures are [`Error::Auth`] (with the broker's
/// message, or the mechanisms it enables when it refuses this one), or a
/// network error.
///
/// This runs once; [`ConnectionOptions::sasl`](super::ConnectionOptions::sasl)
/// also schedules re-authentication.
///
/// ```no_run
/// use klamm::net::{Connection, ConnectionOptions};
/// use klamm::net::sasl::{self, SaslMechanism};
///
/// # async fn run() -> klamm::Result<()> {
/// let conn = Connection::connect("127.0.0.1:9092", ConnectionOptions::default()).await?;
/// let session = sasl::authenticate(&conn, &SaslMechanism::plain("alice", "pw")).await?;
/// assert_eq!(session.mechanism, "PLAIN");
/// # Ok(())
/// # }
/// ```
pub async fn authenticate(conn: &Connection, mech: &SaslMechanism) -> Result<SaslSession> {
    let guard = conn.lock_exclusive().await;
    let mut ex = Exchange::start(conn, &guard, mech.name()).await?;
    match mech {
        SaslMechanism::Plain(c) => {
            let msg = plain::initial_response(&c.username, c.password.expose())?;
            ex.round(msg).await?;
        }
        SaslMechanism::ScramSha256(c) | SaslMechanism::ScramSha512(c) => {
            let hash = if matches!(mech, SaslMechanism::ScramSha256(_)) {
                scram::ScramHash::Sha256
            } else {
                scram::ScramHash::Sha512
            };
            let mut client = ScramClient::new(hash, &c.username, c.password.expose())?;
            let server_first = ex.round(client.client_first().into_bytes().into()).await?;
            let client_final = client.handle_server_first(&utf8(&server_first, mech)?)?;
            let server_final = ex.round(client_final.into_bytes().into()).await?;
            client.handle_server_final(&utf8(&server_final, mech)?)?;
        }
        SaslMechanism::OauthBearer(provider) => {
            let token = provider.token().await?;
            let msg = oauthbearer::initial_response(&token)?;
            let challenge = ex.round(msg).await?;
            if !challenge.is_empty() {
                // RFC 7628 §3.2.3: the server sent an error; the client
                // answers with a lone %x01 and the server then fails the
                // exchange.
                let status = oauthbearer::describe_error(&challenge);
                let last = ex.round(Bytes::from_static(b"\x01")).await;
                let broker = match last {
                    Err(Error::Auth(m)) => format!("; {m}"),
                    _ => String::new(),
                };
                return Err(Error::Auth(format!(
                    "OAUTHBEARER token rejected by {}: {status}{broker}",
                    conn.broker()
                )));
            }
        }
    }
    let session = SaslSession {
        mechanism: mech.name(),
        session_lifetime: ex.lifetime,
    };
    conn.set_sasl_session(session.clone());
    drop(guard);
    tracing::debug!(broker = conn.broker(), mechanism = mech.name(), lifetime = ?session.session_lifetime, "SASL authenticated");
    Ok(session)
}

fn utf8(bytes: &[u8], mech: &SaslMechanism) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        Error::Auth(format!(
            "{}: the broker sent a non-UTF-8 message",
            mech.name()
        ))
    })
}

/// One SASL exchange on a connection whose gate the caller holds.
struct Exchange<'a> {
    conn: &'a Connection,
    guard: &'a OwnedRwLockWriteGuard<()>,
    mechanism: &'static str,
    version: i16,
    lifetime: Option<Duration>,
}

impl<'a> Exchange<'a> {
    /// Sends `SaslHandshake` v1 and picks the `SaslAuthenticate` version.
    async fn start(
        conn: &'a Connection,
        guard: &'a OwnedRwLockWriteGuard<()>,
        mechanism: &'static str,
    ) -> Result<Exchange<'a>> {
        let versions = conn.api_versions();
        let negotiated = versions.broker_range(ApiKey::ApiVersions).is_some();
        // SaslHandshake v0 means unframed tokens after it (pre-KIP-152);
        // klamm only speaks the framed form, v1.
        if negotiated {
            let offered = versions.broker_range(ApiKey::SaslHandshake);
            if !offered.is_some_and(|(min, max)| min <= 1 && max >= 1) {
                return Err(Error::Auth(format!(
                    "{} does not offer SaslHandshake v1 (it offers {offered:?}); \
                     SASL needs a broker of Kafka 1.0 or later",
                    conn.broker()
                )));
            }
        }
        let version = if negotiated {
            versions
                .version_for(ApiKey::SaslAuthenticate, conn.broker())
                .map_err(|e| Error::Auth(format!("cannot authenticate: {e}")))?
        } else {
            // Versions were not negotiated: v1 is what every broker with
            // SaslHandshake v1 supports and still reports the lifetime.
            1
        };
        let req = SaslHandshakeRequest {
            mechanism: mechanism.to_string(),
            ..Default::default()
        };
        let resp = conn
            .send_exclusive(&req, 1, guard)
            .await
            .map_err(|e| closed_during(e, mechanism))?;
        let code = ErrorCode::from(resp.error_code);
        if code == ErrorCode::UNSUPPORTED_SASL_MECHANISM {
            return Err(Error::Auth(format!(
                "{} does not enable SASL mechanism {mechanism}; it enables: {}",
                conn.broker(),
                if resp.mechanisms.is_empty() {
                    "(none)".to_string()
                } else {
                    resp.mechanisms.join(", ")
                }
            )));
        }
        if !code.is_ok() {
            return Err(Error::Auth(format!(
                "SaslHandshake with {} for {mechanism} failed: {code}",
                conn.broker()
            )));
        }
        Ok(Exchange {
            conn,
            guard,
            mechanism,
            version,
            lifetime: None,
        })
    }

    /// Sends one message; returns the broker's answer.
    async fn round(&mut self, auth_bytes: Bytes) -> Result<Bytes> {
        let req = SaslAuthenticateRequest {
            auth_bytes,
            ..Default::default()
        };
        let resp: SaslAuthenticateResponse = self
            .conn
            .send_exclusive(&req, self.version, self.guard)
            .await
            .map_err(|e| closed_during(e, self.mechanism))?;
        let code = ErrorCode::from(resp.error_code);
        if !code.is_ok() {
            let detail = resp
                .error_message
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| code.message().to_string());
            return Err(Error::Auth(format!(
                "{} with {}: {} ({detail})",
                self.mechanism,
                self.conn.broker(),
                code.name()
            )));
        }
        if self.version >= 1 && resp.session_lifetime_ms > 0 {
            self.lifetime = Some(Duration::from_millis(resp.session_lifetime_ms as u64));
        }
        Ok(resp.auth_bytes)
    }
}

/// A broker that closes the connection in the middle of a SASL exchange
/// may be refusing the mechanism or the credentials without saying so
/// (tansu does); as in the Java client the error stays a retriable
/// disconnect, with a hint.
fn closed_during(e: Error, mechanism: &str) -> Error {
    match e {
        Error::Disconnected { broker, reason } => Error::Disconnected {
            broker,
            reason: format!(
                "{reason} during SASL {mechanism} authentication (the broker may not enable \
                 {mechanism}, or may have refused the credentials)"
            ),
        },
        e => e,
    }
}

/// When to re-authenticate a session of `lifetime`: at 85–95 % of it
/// (`unit` in `0.0..1.0` picks the point), as the Java client does.
pub(crate) fn reauth_delay(lifetime: Duration, unit: f64) -> Duration {
    lifetime.mul_f64(0.85 + 0.10 * unit.clamp(0.0, 1.0))
}

/// Starts the KIP-368 re-authentication task for `conn` if `session` has
/// a lifetime. The task holds only a weak handle: it ends when every
/// [`Connection`] handle is dropped or the connection closes.
pub(crate) fn spawn_reauthentication(
    conn: &Connection,
    mech: SaslMechanism,
    session: &SaslSession,
) {
    let Some(mut lifetime) = session.session_lifetime else {
        return;
    };
    let weak = conn.downgrade();
    let broker = conn.broker().to_string();
    tokio::spawn(async move {
        loop {
            let delay = reauth_delay(lifetime, random_unit());
            tracing::debug!(broker, ?delay, "SASL re-authentication scheduled");
            tokio::time::sleep(delay).await;
            let Some(conn) = weak.upgrade() else { return };
            match authenticate(&conn, &mech).await {
                Ok(SaslSession {
                    session_lifetime: Some(l),
                    ..
                }) => lifetime = l,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(broker, error = %e, "SASL re-authentication failed; closing the connection");
                    conn.close().await;
                    return;
                }
            }
        }
    });
}

/// A number in `0.0..1.0` from the OS random source (for jitter; a clock
/// fallback is good enough if the source fails).
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        return f64::from(nanos % 1000) / 1000.0;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;

/// SCRAM's `SaltedPassword` (`Hi(password, salt, iterations)`, RFC 5802)
/// for SHA-256 or, with `sha512`, SHA-512: what an admin sends when it
/// sets a user's SCRAM credential (KIP-554), so the password itself never
/// leaves the client.
pub(crate) fn scram_salted_password(
    sha512: bool,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let hash = if sha512 {
        scram::ScramHash::Sha512
    } else {
        scram::ScramHash::Sha256
    };
    hash.salted_password(password.as_bytes(), salt, iterations)
}
