//! Loading the TLS configuration: PEM files and their errors.

use std::path::PathBuf;

use super::*;
use crate::ErrorKind;

const CERT: &str = include_str!("testdata/cert.pem");
const KEY: &str = include_str!("testdata/key.pem");
const OTHER_KEY: &str = include_str!("testdata/other-key.pem");

/// A file with `contents` in a directory unique to this test.
fn file(test: &str, name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("klamm-tls-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

fn err(cfg: &TlsConfig) -> Error {
    match TlsSettings::from_config(cfg) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_use_the_bundled_roots_and_verify() {
    let tls = TlsSettings::from_config(&TlsConfig::default()).expect("defaults");
    assert!(tls.verifies_certificates());
    assert!(tls.trust.contains("webpki"));
    assert_eq!(
        tls.server_name("broker.example.com:9093")
            .expect("name")
            .to_str(),
        "broker.example.com"
    );
}

#[test]
fn missing_ca_file_names_the_property_and_the_file() {
    let path = std::env::temp_dir().join("klamm-no-such-dir/ca.pem");
    let e = err(&TlsConfig {
        ca_location: Some(path.clone()),
        ..TlsConfig::default()
    });
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(e.config_key(), Some("ssl.ca.location"));
    let msg = e.to_string();
    assert!(msg.contains("cannot read"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn garbage_ca_file_holds_no_certificate() {
    let path = file(
        "garbage-ca",
        "ca.pem",
        "this is not a certificate\n\x01\x02\n",
    );
    let e = err(&TlsConfig {
        ca_location: Some(path.clone()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.ca.location"));
    let msg = e.to_string();
    assert!(msg.contains("holds no PEM certificate"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn broken_pem_block_is_named() {
    let path = file(
        "broken-pem",
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
    );
    let e = err(&TlsConfig {
        ca_location: Some(path.clone()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.ca.location"));
    let msg = e.to_string();
    assert!(msg.contains("not valid PEM"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn key_without_certificate_is_rejected() {
    let key = file("key-only", "key.pem", KEY);
    let e = err(&TlsConfig {
        key_location: Some(key),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.certificate.location"));
    assert!(e.to_string().contains("ssl.key.location"), "{e}");
}

#[test]
fn certificate_without_key_is_rejected() {
    let cert = file("cert-only", "cert.pem", CERT);
    let e = err(&TlsConfig {
        certificate_location: Some(cert),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.key.location"));
}

#[test]
fn key_file_without_a_key_is_named() {
    let cert = file("no-key", "cert.pem", CERT);
    // A certificate where the key should be.
    let key = file("no-key", "key.pem", CERT);
    let e = err(&TlsConfig {
        certificate_location: Some(cert),
        key_location: Some(key.clone()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.key.location"));
    let msg = e.to_string();
    assert!(msg.contains("holds no PEM private key"), "{msg}");
    assert!(msg.contains(&key.display().to_string()), "{msg}");
}

#[test]
fn missing_key_file_is_named() {
    let cert = file("missing-key", "cert.pem", CERT);
    let key = std::env::temp_dir().join("klamm-no-such-dir/client.key");
    let e = err(&TlsConfig {
        certificate_location: Some(cert),
        key_location: Some(key.clone()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.key.location"));
    assert!(e.to_string().contains(&key.display().to_string()), "{e}");
}

#[test]
fn key_that_does_not_match_the_certificate_is_rejected() {
    let cert = file("mismatch", "cert.pem", CERT);
    let key = file("mismatch", "key.pem", OTHER_KEY);
    let e = err(&TlsConfig {
        certificate_location: Some(cert),
        key_location: Some(key),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.key.location"));
    assert!(e.to_string().contains("cannot be used"), "{e}");
}

#[test]
fn valid_files_load() {
    let ca = file("valid", "ca.pem", CERT);
    let cert = file("valid", "cert.pem", CERT);
    let key = file("valid", "key.pem", KEY);
    let tls = TlsSettings::from_config(&TlsConfig {
        ca_location: Some(ca.clone()),
        certificate_location: Some(cert),
        key_location: Some(key),
        sni_hostname: Some("kafka.example.com".into()),
        ..TlsConfig::default()
    })
    .expect("valid PEM files load");
    assert!(tls.trust.contains(&ca.display().to_string()));
    // The SNI override replaces the broker's host.
    assert_eq!(
        tls.server_name("127.0.0.1:9093").expect("name").to_str(),
        "kafka.example.com"
    );
}

#[test]
fn verification_off_loads_without_a_ca() {
    let tls = TlsSettings::from_config(&TlsConfig {
        verify_certificates: false,
        ..TlsConfig::default()
    })
    .expect("no verification");
    assert!(!tls.verifies_certificates());
}

#[test]
fn bad_sni_override_is_a_config_error() {
    let e = err(&TlsConfig {
        sni_hostname: Some("not a host!".into()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.sni.hostname"));
}

#[test]
fn broker_hosts() {
    assert_eq!(broker_host("kafka:9092"), "kafka");
    assert_eq!(broker_host("127.0.0.1:9092"), "127.0.0.1");
    assert_eq!(broker_host("[::1]:9092"), "::1");
    assert_eq!(broker_host("kafka"), "kafka");
}

#[test]
fn failures_are_explained() {
    let name = ServerName::try_from("kafka.example.com").expect("name");
    let io = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let unknown = failure_reason(
        &io(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )),
        &name,
        "the CA file ca.pem",
    )
    .expect("a TLS failure");
    assert!(unknown.contains("not trusted"), "{unknown}");
    assert!(unknown.contains("ca.pem"), "{unknown}");

    let mismatch = failure_reason(
        &io(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: name.to_owned(),
                presented: vec!["DnsName(\"localhost\")".into()],
            },
        )),
        &name,
        "x",
    )
    .expect("a TLS failure");
    assert!(mismatch.contains("does not match"), "{mismatch}");
    assert!(mismatch.contains("kafka.example.com"), "{mismatch}");

    let required = stream_failure_reason(&io(rustls::Error::AlertReceived(
        AlertDescription::CertificateRequired,
    )))
    .expect("a TLS failure");
    assert!(
        required.contains("requires a client certificate"),
        "{required}"
    );

    // Plain I/O errors are not TLS failures.
    assert!(stream_failure_reason(&io::Error::from(io::ErrorKind::ConnectionReset)).is_none());
}

#[test]
fn pem_text_loads_like_files_and_names_its_property_when_bad() {
    let tls = TlsSettings::from_config(&TlsConfig {
        ca_pem: Some(CERT.into()),
        certificate_pem: Some(CERT.into()),
        key_pem: Some(KEY.into()),
        ..TlsConfig::default()
    })
    .expect("valid PEM text loads");
    assert!(tls.trust.contains("ssl.ca.pem"));

    let e = err(&TlsConfig {
        ca_pem: Some("no certificate here".into()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.ca.pem"));
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");

    let e = err(&TlsConfig {
        certificate_pem: Some(CERT.into()),
        key_pem: Some(CERT.into()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.key.pem"));
    assert!(e.to_string().contains("holds no PEM private key"), "{e}");

    let e = err(&TlsConfig {
        certificate_pem: Some(CERT.into()),
        key_pem: Some(OTHER_KEY.into()),
        ..TlsConfig::default()
    });
    assert_eq!(e.config_key(), Some("ssl.key.pem"));
    assert!(
        e.to_string()
            .contains("cannot be used with the certificate"),
        "{e}"
    );
}

#[test]
fn debug_never_prints_a_private_key() {
    let cfg = TlsConfig {
        key_pem: Some(KEY.into()),
        certificate_pem: Some(CERT.into()),
        ..TlsConfig::default()
    };
    let shown = format!("{cfg:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}
