//! SCRAM-SHA-256 and SCRAM-SHA-512, client side (RFC 5802, RFC 7677), as
//! Kafka uses them (KIP-84): no channel binding (`n,,`), no authorization
//! id, at least 4096 iterations.
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<salt, base64>,i=<iterations>
//! client-final  c=biws,r=<nonce>,p=<ClientKey XOR HMAC(StoredKey, AuthMessage)>
//! server-final  v=<HMAC(ServerKey, AuthMessage)>   or   e=<error>
//! ```
//!
//! SASLprep (RFC 4013) is limited: usernames and passwords with control
//! characters are refused, and everything else is sent as its UTF-8 bytes
//! without normalisation. That is what Kafka's own Java client and broker
//! do (`ScramFormatter` does not normalise either), so credentials created
//! with Kafka's tools match; a non-Kafka server that normalises non-ASCII
//! passwords (e.g. mapping non-ASCII spaces or applying NFKC) may disagree
//! on such passwords.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::error::{Error, Result};

/// Kafka's smallest accepted iteration count (`ScramMechanism.minIterations`).
pub(crate) const MIN_ITERATIONS: u32 = 4096;
/// A bound on what a server may demand, so a hostile one cannot make the
/// client spin: Kafka itself stores at most 16384 iterations.
pub(crate) const MAX_ITERATIONS: u32 = 1_000_000;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Self::Sha512 => {
                let mut m = <Hmac<Sha512>>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Whether `mac` is HMAC(key, data), compared in constant time.
    fn hmac_matches(self, key: &[u8], data: &[u8], mac: &[u8]) -> bool {
        match self {
            Self::Sha256 => {
                let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.verify_slice(mac).is_ok()
            }
            Self::Sha512 => {
                let mut m = <Hmac<Sha512>>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.verify_slice(mac).is_ok()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)` for a credential being set.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        self.hi(password, salt, iterations)
    }

    /// `Hi(password, salt, i)`: PBKDF2 with HMAC of this hash.
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Self::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

enum State {
    Initial,
    SentFinal {
        server_key: Vec<u8>,
        auth_message: String,
    },
    Done,
}

/// The client side of one SCRAM exchange.
pub(crate) struct ScramClient {
    hash: ScramHash,
    username: String,
    password: String,
    nonce: String,
    state: State,
}

impl ScramClient {
    /// A client with a fresh random nonce (24 bytes from the OS, base64).
    pub(crate) fn new(hash: ScramHash, username: &str, password: &str) -> Result<Self> {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw)
            .map_err(|e| Error::Auth(format!("{}: no random nonce: {e}", hash.name())))?;
        Self::with_nonce(hash, username, password, &B64.encode(raw))
    }

    /// A client with a given nonce (printable ASCII without `,`), for
    /// test vectors.
    pub(crate) fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> Result<Self> {
        let mech = hash.name();
        if username.is_empty() {
            return Err(Error::Auth(format!("{mech}: the username is empty")));
        }
        if username.chars().any(char::is_control) || password.chars().any(char::is_control) {
            return Err(Error::Auth(format!(
                "{mech}: the username and password must not contain control characters \
                 (SASLprep prohibits them)"
            )));
        }
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(Error::Auth(format!("{mech}: invalid client nonce")));
        }
        Ok(ScramClient {
            hash,
            username: username.to_string(),
            password: password.to_string(),
            nonce: nonce.to_string(),
            state: State::Initial,
        })
    }

    fn bare_first(&self) -> String {
        format!("n={},r={}", escape_username(&self.username), self.nonce)
    }

    /// The client-first message.
    pub(crate) fn client_first(&self) -> String {
        format!("n,,{}", self.bare_first())
    }

    fn fail(&self, why: impl std::fmt::Display) -> Error {
        Error::Auth(format!("{}: {why}", self.hash.name()))
    }

    /// Checks the server-first message and returns the client-final one.
    pub(crate) fn handle_server_first(&mut self, server_first: &str) -> Result<String> {
        if !matches!(self.state, State::Initial) {
            return Err(self.fail("server-first message out of order"));
        }
        let attrs = parse_attributes(server_first).map_err(|e| self.fail(e))?;
        if let Some(err) = get(&attrs, 'e') {
            return Err(self.fail(format!("the server refused: {err}")));
        }
        if attrs.first().is_some_and(|(k, _)| *k == 'm') {
            return Err(self.fail("the server requires an unsupported extension (m=)"));
        }
        let nonce = get(&attrs, 'r').ok_or_else(|| self.fail("server-first has no nonce (r=)"))?;
        let salt = get(&attrs, 's').ok_or_else(|| self.fail("server-first has no salt (s=)"))?;
        let iterations = get(&attrs, 'i')
            .ok_or_else(|| self.fail("server-first has no iteration count (i=)"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(self.fail("the server nonce does not extend the client nonce"));
        }
        if !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(self.fail("the server nonce has invalid characters"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| self.fail("the salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| self.fail(format!("bad iteration count {iterations:?}")))?;
        if iterations < MIN_ITERATIONS {
            return Err(self.fail(format!(
                "the server asks for {iterations} iterations; at least {MIN_ITERATIONS} are required"
            )));
        }
        if iterations > MAX_ITERATIONS {
            return Err(self.fail(format!(
                "the server asks for {iterations} iterations; klamm allows at most {MAX_ITERATIONS}"
            )));
        }

        let h = self.hash;
        let salted = h.hi(self.password.as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let server_key = h.hmac(&salted, b"Server Key");
        // "biws" is base64("n,,"): no channel binding, no authzid.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare_first());
        let signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.state = State::SentFinal {
            server_key,
            auth_message,
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message: `v=` must carry the server
    /// signature; `e=` is the server's refusal.
    pub(crate) fn handle_server_final(&mut self, server_final: &str) -> Result<()> {
        let State::SentFinal {
            server_key,
            auth_message,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(self.fail("server-final message out of order"));
        };
        let attrs = parse_attributes(server_final).map_err(|e| self.fail(e))?;
        if let Some(err) = get(&attrs, 'e') {
            return Err(self.fail(format!("the server refused: {err}")));
        }
        let v = get(&attrs, 'v').ok_or_else(|| self.fail("server-final has no verifier (v=)"))?;
        let v = B64
            .decode(v)
            .map_err(|_| self.fail("the server signature is not base64"))?;
        if !self
            .hash
            .hmac_matches(&server_key, auth_message.as_bytes(), &v)
        {
            return Err(self.fail(
                "the server signature does not match: the server does not know the password",
            ));
        }
        Ok(())
    }
}

/// `saslname` escaping (RFC 5802 §5.1): `=` → `=3D`, `,` → `=2C`.
pub(crate) fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Splits `a=value,b=value` into (attribute, value) pairs.
fn parse_attributes(msg: &str) -> std::result::Result<Vec<(char, &str)>, String> {
    msg.split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) if k.is_ascii_alphabetic() => Ok((k, &part[2..])),
                _ => Err(format!("malformed SCRAM message attribute {part:?}")),
            }
        })
        .collect()
}

fn get<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    fn client(hash: ScramHash) -> ScramClient {
        ScramClient::with_nonce(hash, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap()
    }

    /// RFC 7677 §3, exactly.
    #[test]
    fn rfc7677_scram_sha256_example() {
        let mut c = client(ScramHash::Sha256);
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            c.handle_server_first(SERVER_FIRST).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.handle_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    /// The same exchange with SHA-512. There is no RFC vector; the expected
    /// messages were computed independently with Python 3.11's `hashlib`
    /// and `hmac` (`hashlib.pbkdf2_hmac("sha512", b"pencil",
    /// b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)`, then ClientKey,
    /// StoredKey, ServerKey, AuthMessage, proof and server signature as in
    /// RFC 5802 §3), and the proof was accepted by the `scramp` 1.4.5 server
    /// (`ScramMechanism("SCRAM-SHA-512")`) with the same salt and nonces,
    /// which returned the same `v=`.
    #[test]
    fn scram_sha512_vector_from_an_independent_implementation() {
        let mut c = client(ScramHash::Sha512);
        assert_eq!(
            c.handle_server_first(SERVER_FIRST).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ=="
        );
        c.handle_server_final(
            "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==",
        )
        .unwrap();
    }

    #[test]
    fn a_wrong_server_signature_is_an_auth_error() {
        let mut c = client(ScramHash::Sha256);
        c.handle_server_first(SERVER_FIRST).unwrap();
        let err = c
            .handle_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(
            matches!(&err, Error::Auth(m) if m.contains("signature does not match")),
            "{err}"
        );
    }

    #[test]
    fn server_errors_carry_the_servers_message() {
        let mut c = client(ScramHash::Sha512);
        c.handle_server_first(SERVER_FIRST).unwrap();
        let err = c.handle_server_final("e=unknown-user").unwrap_err();
        assert!(
            matches!(&err, Error::Auth(m) if m.contains("unknown-user")),
            "{err}"
        );
        let err = client(ScramHash::Sha256)
            .handle_server_first("e=invalid-encoding")
            .unwrap_err();
        assert!(matches!(&err, Error::Auth(m) if m.contains("invalid-encoding")));
    }

    #[test]
    fn usernames_are_escaped() {
        assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
        let c = ScramClient::with_nonce(ScramHash::Sha256, "a,=", "p", "xyz").unwrap();
        assert_eq!(c.client_first(), "n,,n=a=2C=3D,r=xyz");
    }

    #[test]
    fn bad_server_first_messages_are_refused() {
        let bad = [
            // nonce does not start with ours
            "r=XOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // nonce not extended
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // too few iterations
            "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
            // absurdly many
            "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000",
            "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=x",
            "r=rOprNGfwEbeRWgbNEkqO%hv,s=!!!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO%hv,i=4096",
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "m=ext,r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "garbage",
            "",
        ];
        for msg in bad {
            let err = client(ScramHash::Sha256).handle_server_first(msg);
            assert!(matches!(err, Err(Error::Auth(_))), "{msg:?} was accepted");
        }
    }

    #[test]
    fn server_final_without_verifier_or_out_of_order_is_refused() {
        let mut c = client(ScramHash::Sha256);
        assert!(c.handle_server_final("v=abc").is_err());
        let mut c = client(ScramHash::Sha256);
        c.handle_server_first(SERVER_FIRST).unwrap();
        assert!(c.handle_server_final("x=1").is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(ScramClient::with_nonce(ScramHash::Sha256, "a\u{7}", "p", "n").is_err());
        assert!(ScramClient::with_nonce(ScramHash::Sha256, "a", "p\u{85}", "n").is_err());
        assert!(ScramClient::with_nonce(ScramHash::Sha256, "", "p", "n").is_err());
        // Other non-ASCII passes through unnormalised, as in Kafka.
        assert!(ScramClient::with_nonce(ScramHash::Sha256, "jürgen", "pässwörd", "n").is_ok());
    }

    #[test]
    fn random_nonces_differ() {
        let a = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        let b = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert!(a.nonce.len() >= 24);
    }
}
