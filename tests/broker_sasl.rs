//! klamm's SASL against Apache Kafka's own SASL listeners: PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (Kafka's unsecured JWS
//! validator) logins over SASL_PLAINTEXT and SASL_SSL, each followed by a
//! real Metadata request; SCRAM usernames and passwords that need escaping;
//! wrong passwords, unknown users and bad tokens as clear authentication
//! errors; requests before the login refused; KIP-368 re-authentication on
//! a listener whose sessions last 2 s. The users are the ones
//! `scripts/kafka` creates (see its header). The `Client`, producer and
//! consumer over SASL are in `tests/secure_clients.rs`.

mod support;

use std::time::Duration;

use klamm::config::TlsConfig;
use klamm::net::sasl::{self, OAuthToken, SaslMechanism};
use klamm::net::{Connection, ConnectionOptions, TlsSettings};
use klamm::protocol::messages::MetadataRequest;
use klamm::{Error, ErrorKind};
use support::SaslListeners;

fn opts(mech: SaslMechanism) -> ConnectionOptions {
    ConnectionOptions {
        request_timeout: Duration::from_secs(10),
        sasl: Some(mech),
        ..Default::default()
    }
}

fn token(sub: &'static str, lifetime_s: i64) -> SaslMechanism {
    SaslMechanism::oauthbearer(move || async move {
        Ok(OAuthToken::new(support::auth::unsecured_jwt(
            sub, lifetime_s,
        )))
    })
}

/// The two SASL listeners: (name, address, TLS settings for SASL_SSL).
fn listeners(l: &SaslListeners) -> Vec<(&'static str, String, Option<TlsSettings>)> {
    let dir = support::tls_listeners().map(|t| t.dir);
    let tls = dir.map(|d| {
        TlsSettings::from_config(&TlsConfig {
            ca_location: Some(d.join("ca.crt")),
            ..TlsConfig::default()
        })
        .expect("TLS settings")
    });
    vec![
        ("SASL_PLAINTEXT", l.plaintext.clone(), None),
        ("SASL_SSL", l.ssl.clone(), tls),
    ]
}

async fn connect(
    addr: &str,
    tls: Option<&TlsSettings>,
    opts: ConnectionOptions,
) -> klamm::Result<Connection> {
    match tls {
        Some(tls) => Connection::connect_tls(addr, opts, tls).await,
        None => Connection::connect(addr, opts).await,
    }
}

/// Logs in and asks the broker for metadata, which must name this very
/// listener (Kafka answers with the listener the request came in on).
async fn login_then_metadata(addr: &str, tls: Option<&TlsSettings>, mech: SaslMechanism) {
    let name = mech.name();
    let conn = connect(addr, tls, opts(mech))
        .await
        .unwrap_or_else(|e| panic!("{name} login at {addr}: {e}"));
    assert_eq!(conn.sasl_session().map(|s| s.mechanism), Some(name));
    assert_eq!(conn.sasl_authentications(), 1);
    let md = conn
        .send(&MetadataRequest::default())
        .await
        .unwrap_or_else(|e| panic!("Metadata after a {name} login: {e}"));
    assert_eq!(md.brokers.len(), 1, "{md:?}");
    let port: i32 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_eq!(md.brokers[0].port, port, "the listener advertises itself");
    assert!(
        md.cluster_id.as_deref().is_some_and(|c| c.len() == 22),
        "{md:?}"
    );
}

async fn login_error(addr: &str, tls: Option<&TlsSettings>, mech: SaslMechanism) -> String {
    let name = mech.name();
    match connect(addr, tls, opts(mech)).await {
        Ok(_) => panic!("{name}: the login was accepted"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Auth, "{name}: {e:?}");
            assert!(!e.is_retriable());
            e.to_string()
        }
    }
}

fn every_password_mechanism(user: &str, password: &str) -> [SaslMechanism; 3] {
    [
        SaslMechanism::plain(user, password),
        SaslMechanism::scram_sha256(user, password),
        SaslMechanism::scram_sha512(user, password),
    ]
}

#[test]
fn plain_scram_and_oauthbearer_logins_then_metadata_on_both_listeners() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        for (listener, addr, tls) in listeners(&l) {
            eprintln!("{listener} at {addr}");
            for mech in every_password_mechanism("alice", "alice-secret") {
                login_then_metadata(&addr, tls.as_ref(), mech).await;
            }
            login_then_metadata(&addr, tls.as_ref(), token("alice", 3600)).await;
        }
    });
}

#[test]
fn scram_usernames_and_passwords_with_special_characters() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        // SCRAM escapes ',' and '=' in the name (=2C, =3D); the password
        // goes through SASLprep/UTF-8 untouched.
        for mech in [
            SaslMechanism::scram_sha256("we=ird,user", "p=ss,wörd with spaces"),
            SaslMechanism::scram_sha512("we=ird,user", "p=ss,wörd with spaces"),
        ] {
            login_then_metadata(&l.plaintext, None, mech).await;
        }
        // Control: the same user with the password one character off.
        for mech in [
            SaslMechanism::scram_sha256("we=ird,user", "p=ss,wörd with space"),
            SaslMechanism::scram_sha512("we=ird,user", "p=ss,wörd with space"),
        ] {
            login_error(&l.plaintext, None, mech).await;
        }
    });
}

#[test]
fn wrong_passwords_and_unknown_users_fail_with_auth_errors() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        for mech in every_password_mechanism("alice", "wrong") {
            let name = mech.name();
            let msg = login_error(&l.plaintext, None, mech).await;
            assert!(msg.contains("SASL_AUTHENTICATION_FAILED"), "{msg}");
            let says = if name == "PLAIN" {
                "Invalid username or password"
            } else {
                "invalid credentials"
            };
            assert!(msg.contains(says), "the broker's message for {name}: {msg}");
        }
        for mech in every_password_mechanism("nobody", "x") {
            let msg = login_error(&l.plaintext, None, mech).await;
            assert!(msg.contains("SASL_AUTHENTICATION_FAILED"), "{msg}");
        }
    });
}

#[test]
fn oauthbearer_bad_and_expired_tokens_are_refused() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        let forged = SaslMechanism::oauthbearer(|| async { Ok(OAuthToken::new("forged")) });
        let msg = login_error(&l.plaintext, None, forged).await;
        assert!(msg.contains("invalid_token"), "{msg}");
        let msg = login_error(&l.plaintext, None, token("alice", -60)).await;
        assert!(msg.contains("invalid_token"), "{msg}");
    });
}

#[test]
fn requests_before_the_login_are_refused() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        let conn = Connection::connect(&l.plaintext, ConnectionOptions::default())
            .await
            .expect("ApiVersions is allowed before login");
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
        // sasl::authenticate on a fresh connection, without the options.
        let conn = Connection::connect(&l.plaintext, ConnectionOptions::default())
            .await
            .expect("connect");
        let s = sasl::authenticate(&conn, &SaslMechanism::scram_sha512("alice", "alice-secret"))
            .await
            .expect("login");
        assert_eq!(
            s.session_lifetime, None,
            "no connections.max.reauth.ms here"
        );
        conn.send(&MetadataRequest::default())
            .await
            .expect("metadata");
    });
}

/// The re-authentication listener gives every session 2 s and closes a
/// connection that sends anything else after it expired. klamm
/// re-authenticates at 85–95 % of the lifetime: the test sends requests
/// until the connection has re-authenticated twice (an event, not a time
/// window), and every request must succeed.
#[test]
fn reauthentication_keeps_the_connection_alive() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(120, async {
        for mech in [
            SaslMechanism::scram_sha256("alice", "alice-secret"),
            SaslMechanism::plain("alice", "alice-secret"),
            token("alice", 3600),
        ] {
            let name = mech.name();
            let conn = Connection::connect(&l.reauth, opts(mech))
                .await
                .expect("login");
            assert_eq!(
                conn.sasl_session().and_then(|s| s.session_lifetime),
                Some(Duration::from_millis(2000)),
                "{name}"
            );
            let mut requests = 0;
            while conn.sasl_authentications() < 3 {
                conn.send(&MetadataRequest::default())
                    .await
                    .unwrap_or_else(|e| panic!("{name}: metadata #{requests}: {e}"));
                requests += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            conn.send(&MetadataRequest::default())
                .await
                .expect("metadata after the second re-authentication");
            eprintln!("{name}: {requests} requests across 2 re-authentications");
        }
    });
}

/// The control: without re-authentication, the broker closes the
/// connection at the first request after the 2 s session ended.
#[test]
fn without_reauthentication_the_broker_ends_the_session() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        let no_reauth = ConnectionOptions {
            sasl_reauthenticate: false,
            ..opts(SaslMechanism::plain("alice", "alice-secret"))
        };
        let conn = Connection::connect(&l.reauth, no_reauth)
            .await
            .expect("login");
        conn.send(&MetadataRequest::default())
            .await
            .expect("within the session");
        // Past the lifetime for sure (the broker's clock started before ours).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(err.is_retriable(), "{err:?}");
        assert_eq!(conn.sasl_authentications(), 1);
    });
}

/// The re-authentication listener enables PLAIN, SCRAM-SHA-256 and
/// OAUTHBEARER but not SCRAM-SHA-512: the broker answers
/// UNSUPPORTED_SASL_MECHANISM, which klamm reports with the list.
#[test]
fn an_unsupported_mechanism_lists_the_enabled_ones() {
    let Some(l) = support::sasl_listeners() else {
        return;
    };
    support::run_within(60, async {
        let msg = login_error(
            &l.reauth,
            None,
            SaslMechanism::scram_sha512("alice", "alice-secret"),
        )
        .await;
        assert!(
            msg.contains("does not enable SASL mechanism SCRAM-SHA-512; it enables: PLAIN, SCRAM-SHA-256, OAUTHBEARER"),
            "{msg}"
        );
    });
}
