//! OAUTHBEARER (RFC 7628) as Kafka uses it (KIP-255, KIP-342): the client
//! sends `n,,\x01auth=Bearer <token>\x01[key=value\x01...]\x01`; the broker
//! either accepts (empty answer) or sends a JSON error such as
//! `{"status":"invalid_token"}`, which the client acknowledges with a lone
//! `\x01` before the broker fails the exchange.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::error::{Error, Result};

/// A bearer token and the SASL extensions to send with it (KIP-342).
///
/// ```
/// use klamm::net::sasl::OAuthToken;
///
/// let token = OAuthToken::new("eyJhbGciOi...").with_extension("logicalCluster", "lkc-1");
/// assert_eq!(token.value(), "eyJhbGciOi...");
/// // Debug output never contains the token.
/// assert!(!format!("{token:?}").contains("eyJ"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthToken {
    value: String,
    extensions: BTreeMap<String, String>,
}

impl OAuthToken {
    /// A token (usually a JWT) without extensions.
    pub fn new(value: impl Into<String>) -> Self {
        OAuthToken {
            value: value.into(),
            extensions: BTreeMap::new(),
        }
    }

    /// Adds a SASL extension (KIP-342). Keys are letters only and `auth`
    /// is reserved; values are printable ASCII, space, tab, CR or LF.
    /// Invalid ones fail the authentication with [`Error::Auth`].
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }

    /// The token.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The extensions, by key.
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("value", &"<redacted>")
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Supplies OAUTHBEARER tokens; asked once per (re-)authentication, so it
/// can hand out a fresh token each time.
///
/// Any `Fn() -> impl Future<Output = Result<OAuthToken>>` that is `Send +
/// Sync` is a provider:
///
/// ```
/// use klamm::net::sasl::{OAuthToken, SaslMechanism};
///
/// let mech = SaslMechanism::oauthbearer(|| async {
///     // Fetch a token from the identity provider here.
///     Ok(OAuthToken::new("eyJhbGciOi..."))
/// });
/// assert_eq!(mech.name(), "OAUTHBEARER");
/// ```
pub trait TokenProvider: Send + Sync {
    /// A token for the next authentication.
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<OAuthToken>> + Send + '_>>;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<OAuthToken>> + Send + 'static,
{
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<OAuthToken>> + Send + '_>> {
        Box::pin(self())
    }
}

/// The client's first (and only) message for `token`.
pub(crate) fn initial_response(token: &OAuthToken) -> Result<Bytes> {
    let fail = |why: String| Error::Auth(format!("OAUTHBEARER: {why}"));
    // RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.value.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(fail(
            "the token is empty or not a valid bearer token".into(),
        ));
    }
    let mut msg = format!("n,,\x01auth=Bearer {}\x01", token.value);
    for (key, value) in &token.extensions {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) || key == "auth" {
            return Err(fail(format!("invalid SASL extension name {key:?}")));
        }
        if !value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b))
        {
            return Err(fail(format!("invalid value for SASL extension {key:?}")));
        }
        msg.push_str(&format!("{key}={value}\x01"));
    }
    msg.push('\x01');
    Ok(msg.into_bytes().into())
}

/// A short description of the broker's JSON error (RFC 7628 §3.2.2):
/// its `status`, and `scope` / `openid-configuration` when present.
pub(crate) fn describe_error(json: &[u8]) -> String {
    let text = String::from_utf8_lossy(json);
    let mut parts = Vec::new();
    for key in ["status", "scope", "openid-configuration"] {
        if let Some(v) = json_string_field(&text, key) {
            parts.push(format!("{key} {v}"));
        }
    }
    if parts.is_empty() {
        format!(
            "unrecognised error {:?}",
            text.chars().take(200).collect::<String>()
        )
    } else {
        parts.join(", ")
    }
}

/// The value of `"key": "value"` in a flat JSON object (no escapes inside
/// the value are interpreted beyond `\"`); enough for the three string
/// fields of an RFC 7628 error.
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_message_without_extensions() {
        let m = initial_response(&OAuthToken::new("abc.def-ghi_~+/==")).unwrap();
        assert_eq!(&m[..], b"n,,\x01auth=Bearer abc.def-ghi_~+/==\x01\x01");
    }

    #[test]
    fn first_message_with_extensions_in_key_order() {
        let t = OAuthToken::new("tok")
            .with_extension("traceId", "a b")
            .with_extension("logicalCluster", "lkc-1");
        let m = initial_response(&t).unwrap();
        assert_eq!(
            &m[..],
            b"n,,\x01auth=Bearer tok\x01logicalCluster=lkc-1\x01traceId=a b\x01\x01"
        );
    }

    #[test]
    fn invalid_tokens_and_extensions_are_refused() {
        for t in [
            OAuthToken::new(""),
            OAuthToken::new("has space"),
            OAuthToken::new("ctl\x01"),
            OAuthToken::new("t").with_extension("auth", "x"),
            OAuthToken::new("t").with_extension("k1", "x"),
            OAuthToken::new("t").with_extension("k", "\x01"),
        ] {
            assert!(matches!(initial_response(&t), Err(Error::Auth(_))), "{t:?}");
        }
    }

    #[test]
    fn json_errors_are_described() {
        let d = describe_error(
            br#"{"status": "invalid_token", "scope":"kafka", "openid-configuration":"https://x/y"}"#,
        );
        assert_eq!(
            d,
            "status invalid_token, scope kafka, openid-configuration https://x/y"
        );
        assert!(describe_error(b"not json").contains("unrecognised"));
    }
}
