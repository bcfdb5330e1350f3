//! PLAIN (RFC 4616): one message, `authzid NUL authcid NUL passwd`, with
//! an empty authorization id as Kafka clients send it.

use bytes::Bytes;

use crate::error::{Error, Result};

/// The PLAIN message for `username` and `password`.
pub(crate) fn initial_response(username: &str, password: &str) -> Result<Bytes> {
    if username.is_empty() {
        return Err(Error::Auth("PLAIN: the username is empty".into()));
    }
    if username.contains('\0') || password.contains('\0') {
        return Err(Error::Auth(
            "PLAIN: the username and password must not contain NUL".into(),
        ));
    }
    let mut msg = Vec::with_capacity(2 + username.len() + password.len());
    msg.push(0);
    msg.extend_from_slice(username.as_bytes());
    msg.push(0);
    msg.extend_from_slice(password.as_bytes());
    Ok(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_nul_user_nul_password() {
        let m = initial_response("alice", "pä ss").unwrap();
        assert_eq!(&m[..], "\0alice\0pä ss".as_bytes());
    }

    #[test]
    fn nul_and_empty_user_are_refused() {
        assert!(matches!(initial_response("a\0b", "x"), Err(Error::Auth(_))));
        assert!(matches!(initial_response("a", "x\0"), Err(Error::Auth(_))));
        assert!(matches!(initial_response("", "x"), Err(Error::Auth(_))));
    }
}
