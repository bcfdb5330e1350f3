//! Whole Kafka frames: the 4-byte size prefix, the request or response
//! header (whose version depends on the API and its version), and the body.
//!
//! Still no I/O: [`split_frame`] takes complete frames off the front of a
//! buffer that the network layer fills; the rest turn frames into values
//! and back.
//!
//! # References
//! - Kafka protocol guide, "Common Request and Response Structure"
//! - KIP-482 (request header v2, response header v1)
//! - KIP-511 (ApiVersions responses always use response header v0)

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::codec::{Message, PartsWriter};
use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::messages::{ApiKey, Request, RequestBody, RequestHeader, ResponseBody, ResponseHeader};

/// The default largest frame accepted from a peer: 100 MiB, the Java
/// broker's `socket.request.max.bytes` default.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Takes one complete frame (without its size prefix) off the front of
/// `buf`, or returns `Ok(None)` when more bytes are needed. A negative size
/// or one above `max_size` is an error, and nothing is reserved before the
/// whole frame has arrived.
///
/// ```
/// use bytes::BytesMut;
/// use klamm::protocol::frame::split_frame;
///
/// let mut buf = BytesMut::from(&[0, 0, 0, 2, 0xab][..]);
/// assert!(split_frame(&mut buf, 1024).unwrap().is_none()); // one byte missing
/// buf.extend_from_slice(&[0xcd, 0x00]);
/// let frame = split_frame(&mut buf, 1024).unwrap().unwrap();
/// assert_eq!(&frame[..], &[0xab, 0xcd]);
/// assert_eq!(&buf[..], &[0x00]); // the start of the next frame stays
/// ```
pub fn split_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<BytesMut>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(
            DecodeError::new(DecodeErrorKind::NegativeLength(i64::from(size)))
                .context("frame size"),
        );
    }
    let size = size as usize;
    if size > max_size {
        return Err(DecodeError::new(DecodeErrorKind::LengthTooLarge {
            length: size as u64,
            limit: max_size as u64,
        })
        .context("frame size"));
    }
    if buf.len() < 4 + size {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size)))
}

fn check_empty(buf: &Bytes, what: &'static str) -> Result<(), DecodeError> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::new(DecodeErrorKind::TrailingBytes(buf.len())).context(what))
    }
}

/// Writes a complete request frame: size prefix, header and body. The
/// header's API key and version are set from `R` and `version`; its header
/// version is the one Kafka prescribes for that API version.
///
/// ```
/// use bytes::BytesMut;
/// use klamm::protocol::frame::{decode_request, encode_request};
/// use klamm::protocol::messages::{ApiVersionsRequest, RequestBody};
///
/// let mut out = BytesMut::new();
/// encode_request(&mut out, 7, Some("my-app"), &ApiVersionsRequest::default(), 3).unwrap();
/// let (header, body) = decode_request(out.freeze().slice(4..)).unwrap();
/// assert_eq!(header.correlation_id, 7);
/// assert_eq!(header.client_id.as_deref(), Some("my-app"));
/// assert!(matches!(body, RequestBody::ApiVersions(_)));
/// ```
pub fn encode_request<R: Request, B: BufMut>(
    buf: &mut B,
    correlation_id: i32,
    client_id: Option<&str>,
    body: &R,
    version: i16,
) -> Result<(), EncodeError> {
    let header = request_header::<R>(correlation_id, client_id, version);
    let header_version = R::API_KEY.request_header_version(version);
    write_framed(buf, &header, header_version, body, version)
}

/// [`encode_request`] into a buffer of exactly the frame's size: the size
/// is worked out once, before writing, so the buffer never grows (a
/// growing buffer copies what it holds, which for a Produce request is
/// every record batch again).
///
/// ```
/// use klamm::protocol::frame::{decode_request, encode_request_frame};
/// use klamm::protocol::messages::ApiVersionsRequest;
///
/// let frame = encode_request_frame(7, Some("my-app"), &ApiVersionsRequest::default(), 3).unwrap();
/// assert_eq!(frame.len(), frame.capacity());
/// let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
/// assert_eq!(size as usize, frame.len() - 4);
/// let (header, _) = decode_request(frame.freeze().slice(4..)).unwrap();
/// assert_eq!(header.correlation_id, 7);
/// ```
pub fn encode_request_frame<R: Request>(
    correlation_id: i32,
    client_id: Option<&str>,
    body: &R,
    version: i16,
) -> Result<BytesMut, EncodeError> {
    let header = request_header::<R>(correlation_id, client_id, version);
    let header_version = R::API_KEY.request_header_version(version);
    let size = frame_size(&header, header_version, body, version)?;
    let mut buf = BytesMut::with_capacity(4 + size as usize);
    write_sized(&mut buf, size, &header, header_version, body, version)?;
    Ok(buf)
}

/// Record batches at least this long go into a request frame as parts of
/// their own rather than copied (smaller ones cost less to copy than an
/// extra part).
pub const SHARE_RECORDS_FROM: usize = 512;

/// A request frame as the buffers to write, in order: a head that holds
/// the size prefix and the header (so the correlation id can still be set)
/// and, for a request carrying record batches, the batches themselves and
/// the bytes between them.
#[derive(Debug, Default)]
pub struct RequestFrame {
    /// The first part: size prefix, request header and what follows up to
    /// the first shared record batch.
    pub head: BytesMut,
    /// The parts after the head (empty when the request shares no batch).
    pub rest: Vec<Bytes>,
}

impl RequestFrame {
    /// The frame's whole length, size prefix included.
    pub fn len(&self) -> usize {
        self.head.len() + self.rest.iter().map(Bytes::len).sum::<usize>()
    }

    /// Whether the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame as one buffer (a copy of every part).
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.len());
        out.extend_from_slice(&self.head);
        for p in &self.rest {
            out.extend_from_slice(p);
        }
        out
    }
}

impl From<BytesMut> for RequestFrame {
    fn from(head: BytesMut) -> Self {
        Self {
            head,
            rest: Vec::new(),
        }
    }
}

/// [`encode_request_frame`] for a connection that writes frames as parts:
/// a request holding record batches (a Produce request) keeps each batch of
/// at least [`SHARE_RECORDS_FROM`] bytes as a part of its own instead of
/// copying it into the frame; any other request is one buffer of exactly
/// its size.
///
/// ```
/// use bytes::Bytes;
/// use klamm::protocol::frame::{decode_request, encode_request_parts};
/// use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
/// use klamm::protocol::messages::{ProduceRequest, RequestBody};
///
/// let batch = Bytes::from(vec![0u8; 2048]);
/// let req = ProduceRequest {
///     acks: -1,
///     timeout_ms: 30_000,
///     topic_data: vec![TopicProduceData {
///         name: "events".into(),
///         partition_data: vec![PartitionProduceData { index: 3, records: Some(batch.clone()), ..Default::default() }],
///         ..Default::default()
///     }],
///     ..Default::default()
/// };
/// let frame = encode_request_parts(7, Some("my-app"), &req, 9).unwrap();
/// assert_eq!(frame.rest[0].as_ptr(), batch.as_ptr()); // not copied
/// let whole = frame.to_bytes().freeze();
/// let size = i32::from_be_bytes([whole[0], whole[1], whole[2], whole[3]]);
/// assert_eq!(size as usize, frame.len() - 4);
/// let (header, body) = decode_request(whole.slice(4..)).unwrap();
/// assert_eq!(header.correlation_id, 7);
/// assert!(matches!(body, RequestBody::Produce(p) if p == req));
/// ```
pub fn encode_request_parts<R: Request>(
    correlation_id: i32,
    client_id: Option<&str>,
    body: &R,
    version: i16,
) -> Result<RequestFrame, EncodeError> {
    if !R::HAS_RECORDS {
        return encode_request_frame(correlation_id, client_id, body, version).map(Into::into);
    }
    let header = request_header::<R>(correlation_id, client_id, version);
    let header_version = R::API_KEY.request_header_version(version);
    let size = frame_size(&header, header_version, body, version)?;
    // What is not shared (header, names, small batches) is usually small;
    // the writer's buffer grows if not.
    let mut w = PartsWriter::new((4 + size as usize).min(16 * 1024), SHARE_RECORDS_FROM);
    w.buf().put_i32(size);
    header.encode(w.buf(), header_version)?;
    body.encode_parts(&mut w, version)?;
    let (head, rest) = w.finish();
    Ok(RequestFrame { head, rest })
}

fn request_header<R: Request>(
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
) -> RequestHeader {
    RequestHeader {
        request_api_key: R::API_KEY.code(),
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    }
}

/// Writes a complete response frame for `api_key` at `version`.
pub fn encode_response<M: Message, B: BufMut>(
    buf: &mut B,
    api_key: ApiKey,
    correlation_id: i32,
    body: &M,
    version: i16,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    write_framed(
        buf,
        &header,
        api_key.response_header_version(version),
        body,
        version,
    )
}

fn write_framed<H: Message, M: Message, B: BufMut>(
    buf: &mut B,
    header: &H,
    header_version: i16,
    body: &M,
    version: i16,
) -> Result<(), EncodeError> {
    let size = frame_size(header, header_version, body, version)?;
    write_sized(buf, size, header, header_version, body, version)
}

/// Writes a frame whose size prefix [`frame_size`] worked out.
fn write_sized<H: Message, M: Message, B: BufMut>(
    buf: &mut B,
    size: i32,
    header: &H,
    header_version: i16,
    body: &M,
    version: i16,
) -> Result<(), EncodeError> {
    buf.put_i32(size);
    header.encode(buf, header_version)?;
    body.encode(buf, version)
}

/// The size prefix of a frame: header and body, without the prefix.
fn frame_size<H: Message, M: Message>(
    header: &H,
    header_version: i16,
    body: &M,
    version: i16,
) -> Result<i32, EncodeError> {
    let size = header.encoded_len(header_version) + body.encoded_len(version);
    i32::try_from(size).map_err(|_| EncodeError::TooLong {
        what: "frame",
        length: size,
        limit: i32::MAX as usize,
    })
}

/// Decodes a request frame (without its size prefix): the header, whose
/// version follows from the API key and version at its front, then the
/// body. Bytes left after the body are an error.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestBody), DecodeError> {
    if frame.len() < 4 {
        return Err(DecodeError::eof(4, frame.len()).context("RequestHeader"));
    }
    let code = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let key = ApiKey::from_code(code)
        .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownApiKey(code)))?;
    let (min, max) = key.versions();
    if version < min || version > max {
        return Err(
            DecodeError::new(DecodeErrorKind::UnsupportedVersion { version, min, max })
                .context(key.name()),
        );
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))?;
    let body = RequestBody::decode(key, &mut frame, version)?;
    check_empty(&frame, key.name())?;
    Ok((header, body))
}

/// Decodes a response frame (without its size prefix) to a request the
/// caller sent as `api_key` at `version` (responses do not name their API;
/// the caller matches them by correlation id).
pub fn decode_response(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
    let body = ResponseBody::decode(api_key, &mut frame, version)?;
    check_empty(&frame, api_key.name())?;
    Ok((header, body))
}

/// Decodes a response frame (without its size prefix) to a request of type
/// `R` sent at `version`, giving the typed response.
pub fn decode_response_to<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
    let body = R::Response::decode(&mut frame, version)?;
    check_empty(&frame, R::API_KEY.name())?;
    Ok((header, body))
}

/// Reads only the correlation id at the front of a response frame, so a
/// connection can find the waiting request before decoding the rest.
pub fn response_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    match frame {
        [a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::eof(4, frame.len()).context("ResponseHeader")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::{
        ApiVersionsResponse, ControlledShutdownRequest, MetadataRequest, ProduceRequest,
        api_versions_response::ApiVersion,
    };

    #[test]
    fn request_header_v2_keeps_a_classic_client_id() {
        // Metadata v12 is flexible: header v2 = api key, version, correlation
        // id, client id as a *classic* int16-length string, tagged fields.
        let mut out = BytesMut::new();
        let req = MetadataRequest {
            topics: None,
            ..Default::default()
        };
        encode_request(&mut out, 0x0102_0304, Some("ab"), &req, 12).unwrap();
        assert_eq!(
            &out[..14],
            &[
                0, 0, 0, 17, // size: 13 header + 4 body
                0, 3, 0, 12, // api key 3, version 12
                1, 2, 3, 4, // correlation id
                0, 2, // client id length (int16)
            ]
        );
        // "ab", header tagged fields; body: Topics null (compact 0),
        // AllowAutoTopicCreation true (its default), IncludeTopicAuthorizedOperations
        // false, body tagged fields.
        assert_eq!(&out[14..], &[b'a', b'b', 0, 0, 1, 0, 0]);
        let (header, body) = decode_request(out.freeze().slice(4..)).unwrap();
        assert_eq!(header.client_id.as_deref(), Some("ab"));
        assert_eq!(body, RequestBody::Metadata(req));
    }

    #[test]
    fn controlled_shutdown_v0_uses_header_v0() {
        let mut out = BytesMut::new();
        let req = ControlledShutdownRequest {
            broker_id: 5,
            ..Default::default()
        };
        encode_request(&mut out, 9, Some("ignored by v0"), &req, 0).unwrap();
        // size, api key 7, version 0, correlation id 9, broker id 5: no client id.
        assert_eq!(&out[..], &[0, 0, 0, 12, 0, 7, 0, 0, 0, 0, 0, 9, 0, 0, 0, 5]);
    }

    #[test]
    fn api_versions_response_header_is_v0_even_when_flexible() {
        let resp = ApiVersionsResponse {
            api_keys: vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 3,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_response(&mut out, ApiKey::ApiVersions, 42, &resp, 3).unwrap();
        // Header v0 is only the correlation id: no tagged-field byte follows it.
        assert_eq!(&out[4..8], &[0, 0, 0, 42]);
        assert_eq!(&out[8..10], &[0, 0]); // error code
        let (header, body) =
            decode_response(out.freeze().slice(4..), ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(header.correlation_id, 42);
        assert_eq!(body, ResponseBody::ApiVersions(resp));
    }

    #[test]
    fn trailing_bytes_and_bad_headers_are_errors() {
        let mut out = BytesMut::new();
        encode_request(&mut out, 1, None, &ProduceRequest::default(), 3).unwrap();
        out.put_u8(0);
        let err = decode_request(out.freeze().slice(4..)).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::TrailingBytes(1));
        let err = decode_request(Bytes::from_static(&[0x7f, 0, 0, 0])).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::UnknownApiKey(0x7f00));
        let err = decode_request(Bytes::from_static(&[0, 0, 0, 99, 0, 0, 0, 0])).unwrap_err();
        assert!(matches!(
            err.kind(),
            DecodeErrorKind::UnsupportedVersion { version: 99, .. }
        ));
        assert!(decode_request(Bytes::from_static(&[0])).is_err());
    }

    #[test]
    fn frames_are_bounded() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            split_frame(&mut buf, 10).unwrap_err().kind(),
            DecodeErrorKind::NegativeLength(-1)
        ));
        let mut buf = BytesMut::from(&[0, 0, 1, 0][..]);
        assert!(matches!(
            split_frame(&mut buf, 255).unwrap_err().kind(),
            DecodeErrorKind::LengthTooLarge {
                length: 256,
                limit: 255
            }
        ));
        let mut buf = BytesMut::from(&[0, 0][..]);
        assert!(split_frame(&mut buf, 10).unwrap().is_none());
        assert_eq!(response_correlation_id(&[0, 0, 1, 0, 9]).unwrap(), 256);
        assert!(response_correlation_id(&[0, 0]).is_err());
    }
}
