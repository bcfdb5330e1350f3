//! Credentials for the test broker's SASL and TLS listeners (the users
//! `scripts/kafka` creates) and client configs built from them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use klamm::Config;
use klamm::client::ClientOptions;
use klamm::config::{Password, SaslMechanism, SecurityProtocol, TlsConfig};
use klamm::net::sasl::{OAuthToken, TokenProvider};

/// An unsigned JWT (`alg: none`) for `sub`, valid from now for
/// `lifetime_s` seconds (negative: already expired), as Kafka's unsecured
/// validator accepts them.
pub fn unsecured_jwt(sub: &str, lifetime_s: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        format!(
            r#"{{"sub":"{sub}","iat":{},"exp":{}}}"#,
            now - 10,
            now + lifetime_s
        )
        .as_bytes(),
    );
    format!("{header}.{claims}.")
}

/// A token provider handing out fresh unsecured tokens for `sub`.
pub fn token_provider(sub: &'static str, lifetime_s: i64) -> Arc<dyn TokenProvider> {
    Arc::new(move || async move { Ok(OAuthToken::new(unsecured_jwt(sub, lifetime_s))) })
}

/// How a test client logs in.
#[derive(Debug, Clone)]
pub enum Login {
    /// PLAIN or SCRAM with a username and password.
    Password(SaslMechanism, &'static str, &'static str),
    /// OAUTHBEARER with an unsecured token for this subject.
    Token(&'static str),
}

/// A client config for `addr` over `protocol`: TLS trusting the test CA in
/// `tls_dir` (with the client certificate when `client_cert`), SASL as
/// `login` says; plus the `ClientOptions` carrying a token provider.
pub fn secure_config(
    addr: &str,
    protocol: SecurityProtocol,
    tls_dir: Option<&std::path::Path>,
    client_cert: bool,
    login: Option<&Login>,
) -> (Config, ClientOptions) {
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![addr.to_string()];
    config.net.client_id = "klamm-secure-test".into();
    config.net.request_timeout = Duration::from_secs(15);
    config.net.security_protocol = protocol;
    config.producer.linger = Duration::from_millis(2);
    config.consumer.fetch_max_wait = Duration::from_millis(100);
    if let Some(dir) = tls_dir {
        config.net.tls = TlsConfig {
            ca_location: Some(dir.join("ca.crt")),
            certificate_location: client_cert.then(|| dir.join("client.crt")),
            key_location: client_cert.then(|| dir.join("client.key")),
            ..TlsConfig::default()
        };
    }
    let mut options = ClientOptions::default();
    match login {
        Some(Login::Password(mech, user, password)) => {
            config.net.sasl.mechanism = Some(*mech);
            config.net.sasl.username = Some(user.to_string());
            config.net.sasl.password = Some(Password::new(*password));
        }
        Some(Login::Token(sub)) => {
            config.net.sasl.mechanism = Some(SaslMechanism::OauthBearer);
            options.token_provider = Some(token_provider(sub, 3600));
        }
        None => {}
    }
    (config, options)
}
