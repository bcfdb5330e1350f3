//! SASL against real peers.
//!
//! * The SASL front (`scripts/sasl-front.py`, in front of tansu): PLAIN,
//!   SCRAM-SHA-256 and SCRAM-SHA-512 (server side: the independent `scramp`
//!   implementation) and OAUTHBEARER logins followed by a real Metadata
//!   request to tansu; wrong passwords and tokens; KIP-368
//!   re-authentication (the front closes connections whose session expired).
//!   Its SCRAM-only listener refuses other mechanisms with
//!   UNSUPPORTED_SASL_MECHANISM and the enabled list.
//! * tansu itself with `--authentication`: it enables only SCRAM and knows
//!   no users, so the exchange's framing is accepted and ends
//!   `e=unknown-user`; for PLAIN it just closes the connection.

mod support;

use std::time::Duration;

use klamm::net::sasl::{self, OAuthToken, SaslMechanism};
use klamm::net::{Connection, ConnectionOptions};
use klamm::protocol::messages::MetadataRequest;
use klamm::{Error, ErrorKind};

fn opts(mech: SaslMechanism) -> ConnectionOptions {
    ConnectionOptions {
        request_timeout: Duration::from_secs(10),
        sasl: Some(mech),
        ..Default::default()
    }
}

/// Logs in through the front and asks tansu (behind it) for metadata.
async fn login_then_metadata(addr: &str, mech: SaslMechanism) {
    let name = mech.name();
    let conn = Connection::connect(addr, opts(mech))
        .await
        .unwrap_or_else(|e| panic!("{name} login through the front: {e}"));
    assert_eq!(conn.sasl_session().map(|s| s.mechanism), Some(name));
    let md = conn
        .send(&MetadataRequest::default())
        .await
        .unwrap_or_else(|e| panic!("Metadata after a {name} login: {e}"));
    assert_eq!(md.brokers.len(), 1, "tansu answered: {md:?}");
    assert_eq!(md.cluster_id.as_deref(), Some("tansu_cluster"));
}

async fn login_error(addr: &str, mech: SaslMechanism) -> String {
    let name = mech.name();
    match Connection::connect(addr, opts(mech)).await {
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
fn front_plain_and_scram_logins_then_metadata() {
    let Some(addr) = support::sasl_front() else {
        return;
    };
    support::run_within(60, async {
        for mech in every_password_mechanism("alice", "alice-secret") {
            login_then_metadata(&addr, mech).await;
        }
    });
}

#[test]
fn front_usernames_and_passwords_with_scram_special_characters() {
    let Some(addr) = support::sasl_front() else {
        return;
    };
    support::run_within(60, async {
        for mech in every_password_mechanism("we=ird,user", "p=ss,wörd with spaces") {
            login_then_metadata(&addr, mech).await;
        }
    });
}

#[test]
fn front_wrong_passwords_fail_with_auth_errors() {
    let Some(addr) = support::sasl_front() else {
        return;
    };
    support::run_within(60, async {
        for mech in every_password_mechanism("alice", "wrong") {
            let msg = login_error(&addr, mech).await;
            assert!(msg.contains("SASL_AUTHENTICATION_FAILED"), "{msg}");
            assert!(
                msg.contains("invalid credentials"),
                "the broker's message: {msg}"
            );
        }
        for mech in every_password_mechanism("nobody", "x") {
            login_error(&addr, mech).await;
        }
    });
}

#[test]
fn front_oauthbearer_good_and_bad_tokens() {
    let Some(addr) = support::sasl_front() else {
        return;
    };
    support::run_within(60, async {
        let good = SaslMechanism::oauthbearer(|| async { Ok(OAuthToken::new("klamm-good-token")) });
        login_then_metadata(&addr, good).await;
        let bad = SaslMechanism::oauthbearer(|| async { Ok(OAuthToken::new("forged")) });
        let msg = login_error(&addr, bad).await;
        assert!(msg.contains("invalid_token"), "{msg}");
    });
}

#[test]
fn front_refuses_requests_before_login() {
    let Some(addr) = support::sasl_front() else {
        return;
    };
    support::run_within(60, async {
        let conn = Connection::connect(&addr, ConnectionOptions::default())
            .await
            .expect("ApiVersions is allowed before login");
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
        // sasl::authenticate on a fresh connection, without the options.
        let conn = Connection::connect(&addr, ConnectionOptions::default())
            .await
            .expect("connect");
        let s = sasl::authenticate(&conn, &SaslMechanism::scram_sha512("alice", "alice-secret"))
            .await
            .expect("login");
        assert_eq!(s.session_lifetime, None);
        conn.send(&MetadataRequest::default())
            .await
            .expect("metadata");
    });
}

/// The front gives user `reauth` a 1.5 s session and closes a connection
/// that sends anything after it expired: requests over 4 s only keep
/// working because klamm re-authenticates at 85–95 % of the lifetime.
#[test]
fn front_reauthentication_keeps_the_connection_alive() {
    let Some(addr) = support::sasl_front() else {
        return;
    };
    support::run_within(60, async {
        for mech in [
            SaslMechanism::scram_sha256("reauth", "reauth-secret"),
            SaslMechanism::plain("reauth", "reauth-secret"),
        ] {
            let conn = Connection::connect(&addr, opts(mech)).await.expect("login");
            assert_eq!(
                conn.sasl_session().and_then(|s| s.session_lifetime),
                Some(Duration::from_millis(1500))
            );
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(4) {
                conn.send(&MetadataRequest::default())
                    .await
                    .expect("metadata across re-authentications");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Without re-authentication the front drops the expired session.
        let no_reauth = ConnectionOptions {
            sasl_reauthenticate: false,
            ..opts(SaslMechanism::plain("reauth", "reauth-secret"))
        };
        let conn = Connection::connect(&addr, no_reauth).await.expect("login");
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(err.is_retriable(), "{err:?}");
    });
}

#[test]
fn tansu_scram_exchange_ends_with_unknown_user() {
    let Some(addr) = support::sasl_tansu() else {
        return;
    };
    support::run_within(60, async {
        for mech in [
            SaslMechanism::scram_sha256("alice", "alice-secret"),
            SaslMechanism::scram_sha512("alice", "alice-secret"),
        ] {
            let msg = login_error(&addr, mech).await;
            assert!(msg.contains("unknown-user"), "{msg}");
        }
    });
}

#[test]
fn front_unsupported_mechanism_lists_the_enabled_ones() {
    let Some(addr) = support::sasl_front_scram_only() else {
        return;
    };
    support::run_within(60, async {
        for mech in [
            SaslMechanism::plain("alice", "alice-secret"),
            SaslMechanism::scram_sha256("alice", "alice-secret"),
        ] {
            let name = mech.name();
            let msg = login_error(&addr, mech).await;
            assert!(
                msg.contains(&format!(
                    "does not enable SASL mechanism {name}; it enables: SCRAM-SHA-512"
                )),
                "{msg}"
            );
        }
        login_then_metadata(&addr, SaslMechanism::scram_sha512("alice", "alice-secret")).await;
    });
}

/// tansu does not answer UNSUPPORTED_SASL_MECHANISM: it closes the
/// connection, which stays a retriable disconnect (as in the Java client),
/// with a hint naming the mechanism.
#[test]
fn tansu_closes_the_connection_on_an_unsupported_mechanism() {
    let Some(addr) = support::sasl_tansu() else {
        return;
    };
    support::run_within(60, async {
        let err = Connection::connect(&addr, opts(SaslMechanism::plain("alice", "x")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
        assert!(
            err.to_string().contains("during SASL PLAIN authentication"),
            "{err}"
        );
    });
}
