//! SASL over a connection, against scripted in-process peers: the
//! handshake, each mechanism's framing, broker refusals, and KIP-368
//! re-authentication (scheduling, no interleaved requests, failure closes
//! the connection, the task does not keep a connection alive).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{OAuthToken, SaslMechanism, SaslSession};
use crate::error::{Error, ErrorKind};
use crate::net::tests::{Peer, metadata_answer, metadata_for, opts, peer};
use crate::net::{Connection, ConnectionOptions};
use crate::protocol::messages::*;
use crate::test_support::{bounded, eventually};

fn sasl_opts(mech: SaslMechanism) -> ConnectionOptions {
    ConnectionOptions {
        sasl: Some(mech),
        ..opts()
    }
}

impl Peer {
    /// Reads a SaslHandshake v1 for `mechanism` and accepts it.
    async fn accept_handshake(&mut self, mechanism: &str) {
        let (h, body) = self.read().await;
        let RequestBody::SaslHandshake(req) = body else {
            panic!("expected SaslHandshake, got {body:?}")
        };
        assert_eq!(h.request_api_version, 1);
        assert_eq!(req.mechanism, mechanism);
        let resp = SaslHandshakeResponse {
            mechanisms: vec![mechanism.to_string()],
            ..Default::default()
        };
        self.answer(ApiKey::SaslHandshake, h.correlation_id, &resp, 1)
            .await;
    }

    /// Reads a SaslAuthenticate; returns its bytes and how to answer it.
    async fn read_authenticate(&mut self) -> (RequestHeader, Bytes) {
        let (h, body) = self.read().await;
        let RequestBody::SaslAuthenticate(req) = body else {
            panic!("expected SaslAuthenticate, got {body:?}")
        };
        (h, req.auth_bytes)
    }

    async fn answer_authenticate(&mut self, h: &RequestHeader, resp: SaslAuthenticateResponse) {
        self.answer(
            ApiKey::SaslAuthenticate,
            h.correlation_id,
            &resp,
            h.request_api_version,
        )
        .await;
    }
}

fn ok_auth(bytes: &'static [u8], lifetime_ms: i64) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse {
        auth_bytes: Bytes::from_static(bytes),
        session_lifetime_ms: lifetime_ms,
        ..Default::default()
    }
}

fn failed_auth(message: &str) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse {
        error_code: 58,
        error_message: Some(message.to_string()),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn plain_login_then_requests_flow() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            p.accept_handshake("PLAIN").await;
            let (h, bytes) = p.read_authenticate().await;
            assert_eq!(h.request_api_version, 2, "the highest SaslAuthenticate");
            assert_eq!(&bytes[..], b"\0alice\0secret");
            p.answer_authenticate(&h, ok_auth(b"", 0)).await;
            let (h, body) = p.read().await;
            p.answer(
                ApiKey::Metadata,
                h.correlation_id,
                &metadata_answer(&body),
                h.request_api_version,
            )
            .await;
        })
        .await;
        let conn = Connection::connect(&addr, sasl_opts(SaslMechanism::plain("alice", "secret")))
            .await
            .expect("authenticated");
        assert_eq!(
            conn.sasl_session(),
            Some(SaslSession {
                mechanism: "PLAIN",
                session_lifetime: None
            })
        );
        conn.send(&metadata_for("t"))
            .await
            .expect("metadata after login");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_unsupported_mechanism_lists_the_enabled_ones() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            let (h, _) = p.read().await;
            let resp = SaslHandshakeResponse {
                error_code: 33,
                mechanisms: vec!["SCRAM-SHA-512".into(), "GSSAPI".into()],
                ..Default::default()
            };
            p.answer(ApiKey::SaslHandshake, h.correlation_id, &resp, 1)
                .await;
            let _ = p.quiet_for(Duration::from_secs(2)).await;
        })
        .await;
        let err = Connection::connect(&addr, sasl_opts(SaslMechanism::plain("a", "b")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(!err.is_retriable());
        let msg = err.to_string();
        assert!(
            msg.contains("PLAIN") && msg.contains("SCRAM-SHA-512, GSSAPI"),
            "{msg}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_login_carries_the_brokers_message() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            p.accept_handshake("PLAIN").await;
            let (h, _) = p.read_authenticate().await;
            p.answer_authenticate(&h, failed_auth("Invalid username or password"))
                .await;
            let _ = p.quiet_for(Duration::from_secs(2)).await;
        })
        .await;
        let err = Connection::connect(&addr, sasl_opts(SaslMechanism::plain("a", "b")))
            .await
            .unwrap_err();
        let Error::Auth(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("SASL_AUTHENTICATION_FAILED"), "{msg}");
        assert!(msg.contains("Invalid username or password"), "{msg}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn scram_server_error_in_the_final_message_is_an_auth_error() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            p.accept_handshake("SCRAM-SHA-256").await;
            let (h, first) = p.read_authenticate().await;
            let first = String::from_utf8(first.to_vec()).unwrap();
            let nonce = first.strip_prefix("n,,n=bob,r=").expect("client-first").to_string();
            let server_first = format!("r={nonce}srv,s=QSXCR+Q6sek8bf92,i=4096");
            p.answer_authenticate(&h, SaslAuthenticateResponse {
                auth_bytes: server_first.into_bytes().into(),
                ..Default::default()
            })
            .await;
            let (h, fin) = p.read_authenticate().await;
            let fin = String::from_utf8(fin.to_vec()).unwrap();
            assert!(fin.starts_with(&format!("c=biws,r={nonce}srv,p=")), "{fin}");
            p.answer_authenticate(&h, ok_auth(b"e=unknown-user", 0)).await;
            let _ = p.quiet_for(Duration::from_secs(2)).await;
        })
        .await;
        let err = Connection::connect(&addr, sasl_opts(SaslMechanism::scram_sha256("bob", "pw")))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Auth(m) if m.contains("unknown-user") && m.contains("SCRAM-SHA-256")),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn oauthbearer_sends_the_token_and_reports_a_json_error() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.handshake().await;
            // First connection attempt: accepted.
            p.accept_handshake("OAUTHBEARER").await;
            let (h, bytes) = p.read_authenticate().await;
            assert_eq!(&bytes[..], b"n,,\x01auth=Bearer good\x01ext=v\x01\x01");
            p.answer_authenticate(&h, ok_auth(b"", 0)).await;
            // Then sasl::authenticate again on the same connection: refused.
            p.accept_handshake("OAUTHBEARER").await;
            let (h, _) = p.read_authenticate().await;
            p.answer_authenticate(&h, ok_auth(br#"{"status":"invalid_token"}"#, 0))
                .await;
            let (h, bytes) = p.read_authenticate().await;
            assert_eq!(&bytes[..], b"\x01");
            p.answer_authenticate(&h, failed_auth("token expired")).await;
            let _ = p.quiet_for(Duration::from_secs(2)).await;
        })
        .await;
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let mech = SaslMechanism::oauthbearer(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(if n == 0 {
                    OAuthToken::new("good").with_extension("ext", "v")
                } else {
                    OAuthToken::new("stale")
                })
            }
        });
        let conn = Connection::connect(&addr, sasl_opts(mech.clone()))
            .await
            .expect("token accepted");
        let err = super::authenticate(&conn, &mech).await.unwrap_err();
        assert!(
            matches!(&err, Error::Auth(m) if m.contains("invalid_token") && m.contains("token expired")),
            "{err:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2, "a fresh token per authentication");
    })
    .await;
}

/// The broker announces a 300 ms session: the client re-authenticates
/// (handshake and all) every 255–285 ms while other requests keep flowing,
/// and none of them lands inside a re-authentication. On the paused clock
/// the count in 1.2 s is exact: the login and four re-authentications.
#[tokio::test(start_paused = true)]
async fn reauthenticates_before_the_session_expires() {
    bounded(async {
        let logins = Arc::new(Mutex::new(Vec::new()));
        let interleaved = Arc::new(AtomicBool::new(false));
        let (l, i) = (logins.clone(), interleaved.clone());
        let addr = peer(move |mut p| async move {
            p.handshake().await;
            let mut in_exchange = false;
            loop {
                let (h, body) = p.read().await;
                match body {
                    RequestBody::SaslHandshake(_) => {
                        in_exchange = true;
                        let resp = SaslHandshakeResponse {
                            mechanisms: vec!["PLAIN".into()],
                            ..Default::default()
                        };
                        p.answer(ApiKey::SaslHandshake, h.correlation_id, &resp, 1)
                            .await;
                    }
                    RequestBody::SaslAuthenticate(_) => {
                        assert!(in_exchange, "SaslAuthenticate without a handshake");
                        in_exchange = false;
                        l.lock().expect("logins").push(tokio::time::Instant::now());
                        p.answer_authenticate(&h, ok_auth(b"", 300)).await;
                    }
                    other => {
                        if in_exchange {
                            i.store(true, Ordering::SeqCst);
                        }
                        p.answer(
                            ApiKey::Metadata,
                            h.correlation_id,
                            &metadata_answer(&other),
                            h.request_api_version,
                        )
                        .await;
                    }
                }
            }
        })
        .await;
        let conn = Connection::connect(&addr, sasl_opts(SaslMechanism::plain("a", "b")))
            .await
            .expect("login");
        assert_eq!(
            conn.sasl_session().and_then(|s| s.session_lifetime),
            Some(Duration::from_millis(300))
        );
        let start = tokio::time::Instant::now();
        while start.elapsed() < Duration::from_millis(1200) {
            let reqs = (0..4).map(|n| {
                let conn = conn.clone();
                async move { conn.send(&metadata_for(&format!("t{n}"))).await }
            });
            for r in crate::net::tests::futures_join_all(reqs).await {
                r.expect("requests keep working across re-authentications");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let logins = logins.lock().expect("logins").clone();
        let gaps: Vec<Duration> = logins.windows(2).map(|w| w[1] - w[0]).collect();
        // The login, then a re-authentication 85-95 % into each 300 ms
        // session: 4 of them in 1.2 s (the 5th would come at 1275 ms at
        // the earliest).
        assert_eq!(logins.len(), 5, "authentications {gaps:?} apart");
        for gap in &gaps {
            assert!(
                (Duration::from_millis(255)..=Duration::from_millis(285)).contains(gap),
                "re-authenticated {gap:?} after the last authentication: {gaps:?}"
            );
        }
        assert!(
            !interleaved.load(Ordering::SeqCst),
            "a request went out mid-exchange"
        );
        assert!(!conn.is_closed());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_reauthentication_closes_the_connection() {
    bounded(async {
        let (refused_tx, refused) = tokio::sync::oneshot::channel();
        let addr = peer(|mut p| async move {
            p.handshake().await;
            p.accept_handshake("PLAIN").await;
            let (h, _) = p.read_authenticate().await;
            p.answer_authenticate(&h, ok_auth(b"", 200)).await;
            p.accept_handshake("PLAIN").await;
            let (h, _) = p.read_authenticate().await;
            p.answer_authenticate(&h, failed_auth("password changed"))
                .await;
            let _ = refused_tx.send(tokio::time::Instant::now());
            let _ = p.quiet_for(Duration::from_secs(3)).await;
        })
        .await;
        let conn = Connection::connect(&addr, sasl_opts(SaslMechanism::plain("a", "b")))
            .await
            .expect("login");
        let start = tokio::time::Instant::now();
        eventually("the connection closed", || conn.is_closed()).await;
        let closed_at = tokio::time::Instant::now();
        // On the paused clock: the re-authentication came 85-95 % into
        // the 200 ms session, and its refusal closed the connection at
        // once (seen within the millisecond `eventually` checks in).
        let refused_at = refused.await.expect("the peer refused");
        let reauthenticated = refused_at - start;
        assert!(
            (Duration::from_millis(170)..=Duration::from_millis(190)).contains(&reauthenticated),
            "re-authenticated {reauthenticated:?} after the login"
        );
        assert!(
            closed_at - refused_at <= Duration::from_millis(1),
            "closed {:?} after the refusal",
            closed_at - refused_at
        );
        let err = conn.send(&metadata_for("t")).await.unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
        assert!(err.is_retriable());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_reauthentication_task_does_not_keep_a_connection_open() {
    bounded(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let addr = peer(|mut p| async move {
            p.handshake().await;
            p.accept_handshake("PLAIN").await;
            let (h, _) = p.read_authenticate().await;
            p.answer_authenticate(&h, ok_auth(b"", 60_000)).await;
            // Dropping every handle closes the socket.
            let mut byte = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(3), p.stream.read(&mut byte)).await;
            let _ = tx.send(matches!(n, Ok(Ok(0))));
        })
        .await;
        let conn = Connection::connect(&addr, sasl_opts(SaslMechanism::plain("a", "b")))
            .await
            .expect("login");
        drop(conn);
        assert!(rx.await.unwrap(), "the socket was not closed");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn without_negotiated_versions_v1_is_used() {
    bounded(async {
        let addr = peer(|mut p| async move {
            p.accept_handshake("SCRAM-SHA-512").await;
            let (h, _) = p.read_authenticate().await;
            assert_eq!(h.request_api_version, 1);
            p.answer_authenticate(&h, failed_auth("no")).await;
            let _ = p.quiet_for(Duration::from_secs(2)).await;
        })
        .await;
        let opts = ConnectionOptions {
            negotiate_versions: false,
            ..sasl_opts(SaslMechanism::scram_sha512("u", "p"))
        };
        let err = Connection::connect(&addr, opts).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
    })
    .await;
}

#[test]
fn reauthentication_happens_at_85_to_95_percent() {
    let l = Duration::from_secs(100);
    assert_eq!(super::reauth_delay(l, 0.0), Duration::from_secs(85));
    assert_eq!(super::reauth_delay(l, 1.0), Duration::from_secs(95));
    for _ in 0..100 {
        let u = super::random_unit();
        assert!((0.0..1.0).contains(&u));
    }
}

#[test]
fn mechanisms_from_config() {
    use crate::config::{SaslConfig, SaslMechanism as Name};
    let mut c = SaslConfig {
        mechanism: Some(Name::ScramSha512),
        username: Some("u".into()),
        password: Some("p".into()),
        ..Default::default()
    };
    let m = SaslMechanism::from_config(&c, None).unwrap().unwrap();
    assert_eq!(m.name(), "SCRAM-SHA-512");
    c.password = None;
    let err = SaslMechanism::from_config(&c, None).unwrap_err();
    assert_eq!(err.config_key(), Some("sasl.password"));
    c.mechanism = Some(Name::OauthBearer);
    assert!(SaslMechanism::from_config(&c, None).is_err());
    c.mechanism = None;
    assert!(SaslMechanism::from_config(&c, None).unwrap().is_none());
}
