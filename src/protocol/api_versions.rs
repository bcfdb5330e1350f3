//! Reading an ApiVersions answer whatever version the broker wrote it in.
//!
//! A client asks ApiVersions before it knows what the broker speaks, so it
//! may ask a version the broker does not have. Kafka brokers then answer
//! UNSUPPORTED_VERSION in the v0 layout (error code, the API list, no
//! throttle time), whatever version was asked, listing their own
//! ApiVersions range so the client can ask again; librdkafka's mock
//! cluster writes the error code alone. Decoding such an answer at the
//! version asked fails (a flexible version expects compact arrays and
//! tagged fields), so [`decode_api_versions_response`] reads it tolerantly.

use bytes::Bytes;

use super::codec::Message;
use super::error::DecodeError;
use super::error_codes::ErrorCode;
use super::messages::{ApiKey, ApiVersionsResponse};

/// What a broker answered to ApiVersions at some version.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiVersionsAnswer {
    /// An answer in the layout of the version asked (its error code may
    /// still be something other than UNSUPPORTED_VERSION).
    Answer(ApiVersionsResponse),
    /// UNSUPPORTED_VERSION: the broker does not have the version asked.
    Unsupported {
        /// The broker's ApiVersions (min, max), when its answer lists it.
        supported: Option<(i16, i16)>,
        /// The whole v0 answer, when the broker wrote one (Kafka does;
        /// librdkafka's mock sends only the error code).
        response: Option<ApiVersionsResponse>,
    },
}

impl ApiVersionsAnswer {
    /// The ApiVersions version to ask after `tried` was unsupported: the
    /// highest the broker lists, below `tried` (so asking again always
    /// ends), or v0 when it lists none. `None` for an answer that is not
    /// UNSUPPORTED_VERSION, and after v0 (there is nothing lower).
    pub fn retry_version(&self, tried: i16) -> Option<i16> {
        match self {
            ApiVersionsAnswer::Answer(_) => None,
            ApiVersionsAnswer::Unsupported { .. } if tried <= 0 => None,
            ApiVersionsAnswer::Unsupported { supported, .. } => {
                Some(supported.map_or(0, |(_, max)| max.min(tried - 1).max(0)))
            }
        }
    }
}

/// Decodes the body of an ApiVersions response (after its header, which
/// is always v0) to a request sent at `version`.
///
/// An UNSUPPORTED_VERSION answer is read in the v0 layout Kafka uses for
/// it, or as a bare error code; any other answer is decoded at `version`.
/// Fails only when the body is not an ApiVersions answer at all.
///
/// ```
/// use bytes::Bytes;
/// use klamm::protocol::api_versions::{decode_api_versions_response, ApiVersionsAnswer};
///
/// // UNSUPPORTED_VERSION (35) in the v0 layout, listing ApiVersions 0-3.
/// let body = Bytes::from_static(&[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3]);
/// let answer = decode_api_versions_response(&mut body.clone(), 4).unwrap();
/// assert!(matches!(answer, ApiVersionsAnswer::Unsupported { supported: Some((0, 3)), .. }));
/// assert_eq!(answer.retry_version(4), Some(3));
/// ```
pub fn decode_api_versions_response(
    body: &mut Bytes,
    version: i16,
) -> Result<ApiVersionsAnswer, DecodeError> {
    let code = match body.get(..2) {
        Some(&[a, b]) => i16::from_be_bytes([a, b]),
        _ => {
            return Err(DecodeError::eof(2, body.len()).context("ApiVersionsResponse"));
        }
    };
    if code != ErrorCode::UNSUPPORTED_VERSION.code() {
        return ApiVersionsResponse::decode(body, version).map(ApiVersionsAnswer::Answer);
    }
    let whole = body.clone();
    let v0 = ApiVersionsResponse::decode(&mut whole.clone(), 0);
    // Consumed either way: the caller has read this answer.
    *body = body.slice(body.len()..);
    let response = match v0 {
        Ok(r) => Some(r),
        // A bare error code, or a v0 layout cut short: the error is what
        // matters. A body that also decodes at the version asked (a
        // broker writing the error in that layout) is read that way.
        Err(_) => ApiVersionsResponse::decode(&mut whole.clone(), version).ok(),
    };
    let supported = response.as_ref().and_then(|r| {
        r.api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::ApiVersions.code() && k.min_version <= k.max_version)
            .map(|k| (k.min_version, k.max_version))
    });
    Ok(ApiVersionsAnswer::Unsupported {
        supported,
        response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::api_versions_response::ApiVersion;
    use bytes::BytesMut;

    fn v0_unsupported(keys: &[(i16, i16, i16)]) -> Bytes {
        let resp = ApiVersionsResponse {
            error_code: ErrorCode::UNSUPPORTED_VERSION.code(),
            api_keys: keys
                .iter()
                .map(|&(api_key, min_version, max_version)| ApiVersion {
                    api_key,
                    min_version,
                    max_version,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut b = BytesMut::new();
        resp.encode(&mut b, 0).unwrap();
        b.freeze()
    }

    #[test]
    fn kafkas_v0_answer_gives_the_broker_range() {
        // Hand-laid: error 35, one entry (key 18, 0..3); a v4 decode of
        // these bytes fails, which is why this entry point exists.
        let body = Bytes::from_static(&[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3]);
        assert_eq!(body, v0_unsupported(&[(18, 0, 3)]));
        assert!(ApiVersionsResponse::decode(&mut body.clone(), 4).is_err());
        let mut b = body.clone();
        let a = decode_api_versions_response(&mut b, 4).unwrap();
        assert!(b.is_empty(), "the answer is consumed");
        match &a {
            ApiVersionsAnswer::Unsupported {
                supported,
                response,
            } => {
                assert_eq!(*supported, Some((0, 3)));
                assert_eq!(response.as_ref().unwrap().api_keys.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.retry_version(5), Some(3));
        // Never the version that failed or above: a broker listing the
        // version it refused steps the client down anyway.
        assert_eq!(a.retry_version(3), Some(2));
        assert_eq!(a.retry_version(0), None, "nothing below v0");
    }

    #[test]
    fn a_bare_error_code_retries_at_v0() {
        let a = decode_api_versions_response(&mut Bytes::from_static(&[0, 35]), 3).unwrap();
        assert_eq!(
            a,
            ApiVersionsAnswer::Unsupported {
                supported: None,
                response: None
            }
        );
        assert_eq!(a.retry_version(3), Some(0));
        // An answer listing other APIs but not ApiVersions: v0 too.
        let a = decode_api_versions_response(&mut v0_unsupported(&[(3, 0, 12)]), 3).unwrap();
        assert_eq!(a.retry_version(3), Some(0));
    }

    #[test]
    fn other_answers_decode_at_the_version_asked() {
        let ok = ApiVersionsResponse {
            api_keys: vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 5,
                ..Default::default()
            }],
            throttle_time_ms: 7,
            ..Default::default()
        };
        let mut b = BytesMut::new();
        ok.encode(&mut b, 3).unwrap();
        let a = decode_api_versions_response(&mut b.freeze(), 3).unwrap();
        assert_eq!(a, ApiVersionsAnswer::Answer(ok));
        assert_eq!(a.retry_version(3), None);
        // Another error code is an answer, not a reason to step down.
        let denied = ApiVersionsResponse {
            error_code: ErrorCode::INVALID_REQUEST.code(),
            ..Default::default()
        };
        let mut b = BytesMut::new();
        denied.encode(&mut b, 3).unwrap();
        let a = decode_api_versions_response(&mut b.freeze(), 3).unwrap();
        assert!(matches!(a, ApiVersionsAnswer::Answer(r) if r.error_code == denied.error_code));
    }

    #[test]
    fn what_is_not_an_answer_is_an_error() {
        assert!(decode_api_versions_response(&mut Bytes::new(), 3).is_err());
        assert!(decode_api_versions_response(&mut Bytes::from_static(&[0]), 0).is_err());
        // No error code and a cut body: decoded at the version, and fails.
        assert!(decode_api_versions_response(&mut Bytes::from_static(&[0, 0, 0]), 3).is_err());
    }
}
