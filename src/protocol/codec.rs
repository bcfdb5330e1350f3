//! The [`Message`] trait every generated message implements, and the small
//! generic helpers the generated code is written in terms of.
//!
//! Generated code lives in [`crate::protocol::messages`]; everything it
//! needs beyond the primitives is here, so the generator stays simple and
//! the logic stays in hand-written, tested code.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::primitives::{
    Int32List, RawTaggedField, array_len_len, put_array_len, put_nullable_bytes,
    put_nullable_bytes_len, put_tagged_field, read_array_len, tagged_field_len,
};

/// A Kafka protocol message (a request, response, header or data record)
/// or one of its nested structures, encodable at every version it supports.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use klamm::protocol::codec::Message;
/// use klamm::protocol::messages::FindCoordinatorRequest;
///
/// let req = FindCoordinatorRequest {
///     key_type: 0,
///     coordinator_keys: vec!["my-group".to_string()],
///     ..Default::default()
/// };
/// let mut buf = BytesMut::new();
/// req.encode(&mut buf, 4).unwrap();
/// assert_eq!(buf.len(), req.encoded_len(4));
/// let back = FindCoordinatorRequest::decode(&mut buf.freeze(), 4).unwrap();
/// assert_eq!(back, req);
/// // Version 0 cannot carry a list of keys: encoding refuses rather than drop it.
/// assert!(req.encode(&mut BytesMut::new(), 0).is_err());
/// ```
pub trait Message: Sized {
    /// The message or struct name, as in Kafka's definitions.
    const NAME: &'static str;
    /// The lowest and highest version this message supports.
    const VERSIONS: (i16, i16);
    /// Whether the message holds record batches (a `records` field, here or
    /// in a structure defined inline in it) that [`Message::encode_parts`]
    /// can leave in their own buffers instead of copying them.
    const HAS_RECORDS: bool = false;

    /// Writes the message body at `version` without checking the version range.
    fn encode_body<B: BufMut>(&self, buf: &mut B, version: i16) -> Result<(), EncodeError>;

    /// [`Message::encode_body`] into a [`PartsWriter`]: messages with
    /// record batches hand each batch to the writer as it is (see
    /// [`PartsWriter::put_records`]); every other message writes into the
    /// writer's current buffer.
    fn encode_body_parts(&self, w: &mut PartsWriter, version: i16) -> Result<(), EncodeError> {
        self.encode_body(w.buf(), version)
    }
    /// Reads the message body at `version` without checking the version range.
    fn decode_body(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
    /// The number of bytes [`Message::encode_body`] writes at `version`.
    fn body_len(&self, version: i16) -> usize;

    /// Writes the message at `version`.
    fn encode<B: BufMut>(&self, buf: &mut B, version: i16) -> Result<(), EncodeError> {
        check_encode_version::<Self>(version)?;
        self.encode_body(buf, version)
    }

    /// Writes the message at `version` as [`Message::encode`] does, but in
    /// parts: record batches larger than the writer's threshold are not
    /// copied (see [`PartsWriter`]).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use klamm::protocol::codec::{Message, PartsWriter};
    /// use klamm::protocol::messages::ProduceRequest;
    /// use klamm::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    ///
    /// let batch = Bytes::from(vec![7u8; 4096]);
    /// let req = ProduceRequest {
    ///     acks: -1,
    ///     timeout_ms: 30_000,
    ///     topic_data: vec![TopicProduceData {
    ///         name: "events".into(),
    ///         partition_data: vec![PartitionProduceData {
    ///             index: 0,
    ///             records: Some(batch.clone()),
    ///             ..Default::default()
    ///         }],
    ///         ..Default::default()
    ///     }],
    ///     ..Default::default()
    /// };
    /// let mut w = PartsWriter::new(64, 1024);
    /// req.encode_parts(&mut w, 9).unwrap();
    /// let (head, rest) = w.finish();
    /// // The batch is the second part, the same memory as `batch`.
    /// assert_eq!(rest[0].as_ptr(), batch.as_ptr());
    /// // Joined, the parts are what `encode` writes.
    /// let mut joined = head.to_vec();
    /// rest.iter().for_each(|p| joined.extend_from_slice(p));
    /// let mut whole = Vec::new();
    /// req.encode(&mut whole, 9).unwrap();
    /// assert_eq!(joined, whole);
    /// ```
    fn encode_parts(&self, w: &mut PartsWriter, version: i16) -> Result<(), EncodeError> {
        check_encode_version::<Self>(version)?;
        self.encode_body_parts(w, version)
    }

    /// Reads the message at `version` from the front of `buf`, leaving any
    /// following bytes in place. Byte fields are zero-copy slices of `buf`.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {
        let (min, max) = Self::VERSIONS;
        if version < min || version > max {
            return Err(DecodeError::new(DecodeErrorKind::UnsupportedVersion {
                version,
                min,
                max,
            })
            .context(Self::NAME));
        }
        Self::decode_body(buf, version).map_err(|e| e.context(Self::NAME))
    }

    /// The number of bytes [`Message::encode`] writes at `version`.
    fn encoded_len(&self, version: i16) -> usize {
        self.body_len(version)
    }
}

type DResult<T> = Result<T, DecodeError>;
type EResult = Result<(), EncodeError>;

fn check_encode_version<M: Message>(version: i16) -> EResult {
    let (min, max) = M::VERSIONS;
    if version < min || version > max {
        return Err(EncodeError::UnsupportedVersion {
            message: M::NAME,
            version,
            min,
            max,
        });
    }
    Ok(())
}

/// A writer that encodes a message as a list of buffers instead of one:
/// record batches of at least `share_from` bytes are kept as the `Bytes`
/// they already are (a reference count, no copy), and everything around
/// them goes into buffers of the writer's own. A connection writes the
/// parts with one vectored write, so a Produce request's batches go from
/// the producer's buffers to the socket without being copied into the
/// request first.
///
/// The first part stays a `BytesMut` (a connection writes the correlation
/// id into it); the others are frozen.
#[derive(Debug)]
pub struct PartsWriter {
    cur: BytesMut,
    first: Option<BytesMut>,
    rest: Vec<Bytes>,
    share_from: usize,
}

impl PartsWriter {
    /// A writer whose own buffer starts with room for `capacity` bytes and
    /// which leaves record batches of `share_from` bytes or more uncopied.
    pub fn new(capacity: usize, share_from: usize) -> Self {
        Self {
            cur: BytesMut::with_capacity(capacity),
            first: None,
            rest: Vec::new(),
            share_from,
        }
    }

    /// The buffer that fields other than record batches are written into.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.cur
    }

    /// Writes a `records` field (`None` for null): its length prefix into
    /// the current buffer, then the batches themselves, copied when they
    /// are shorter than the writer's threshold and kept as a part of their
    /// own otherwise.
    pub fn put_records(&mut self, records: Option<&Bytes>, compact: bool) -> EResult {
        match records {
            Some(b) if b.len() >= self.share_from => {
                put_nullable_bytes_len(&mut self.cur, Some(b.len()), compact)?;
                let done = self.cur.split();
                match &self.first {
                    None => self.first = Some(done),
                    Some(_) => self.rest.push(done.freeze()),
                }
                self.rest.push(b.clone());
                Ok(())
            }
            _ => put_nullable_bytes(&mut self.cur, records.map(|b| &b[..]), compact),
        }
    }

    /// The parts written: the first (mutable) and the rest, in order. A
    /// part is empty only for an empty message or, with a threshold of 0,
    /// an empty record batch (a connection skips empty parts).
    pub fn finish(mut self) -> (BytesMut, Vec<Bytes>) {
        match self.first.take() {
            None => (self.cur, self.rest),
            Some(first) => {
                if !self.cur.is_empty() {
                    self.rest.push(self.cur.freeze());
                }
                (first, self.rest)
            }
        }
    }
}

/// [`put_array`] for a [`PartsWriter`]: the count goes into the current
/// buffer, and `f` writes each element through the writer (so elements
/// holding record batches can hand them over uncopied).
pub fn put_array_parts<T>(
    w: &mut PartsWriter,
    v: Option<&[T]>,
    compact: bool,
    mut f: impl FnMut(&mut PartsWriter, &T) -> EResult,
) -> EResult {
    put_array_len(w.buf(), v.map(<[T]>::len), compact)?;
    for e in v.unwrap_or_default() {
        f(w, e)?;
    }
    Ok(())
}

/// How many elements to reserve up front for an array announced as `n`
/// long: never more than 64 KiB worth, whatever the peer claims. Larger
/// arrays grow as their elements are actually decoded.
#[inline]
pub fn prealloc<T>(n: usize) -> usize {
    n.min((64 * 1024) / std::mem::size_of::<T>().max(1))
}

/// Reads an array (`None` when null) whose elements `f` decodes.
pub fn read_array<T>(
    buf: &mut Bytes,
    compact: bool,
    mut f: impl FnMut(&mut Bytes) -> DResult<T>,
) -> DResult<Option<Vec<T>>> {
    let Some(n) = read_array_len(buf, compact)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(prealloc::<T>(n));
    for _ in 0..n {
        out.push(f(buf)?);
    }
    Ok(Some(out))
}

/// Reads an array of `int32`s (`None` when null), as [`read_array`] with
/// `read_i32` does, failing the same way on a short buffer, but converting
/// the elements from one slice rather than reading them one bounded read
/// at a time (replica lists make up most of a large Metadata answer), into
/// an [`Int32List`] that allocates only for long lists. Always in line:
/// returned through memory, the list was read back by loads wider than the
/// stores that wrote it, and those stalls cost a third of a Metadata
/// decode.
#[inline(always)]
pub fn read_i32_array(buf: &mut Bytes, compact: bool) -> DResult<Option<Int32List>> {
    let Some(n) = read_array_len(buf, compact)? else {
        return Ok(None);
    };
    let whole = n.min(buf.len() / 4);
    let out = Int32List::from_be_bytes(&buf[..whole * 4]);
    bytes::Buf::advance(buf, whole * 4);
    if whole < n {
        return Err(DecodeError::eof(4, buf.len()));
    }
    Ok(Some(out))
}

/// Writes an array (`None` writes null) whose elements `f` encodes.
pub fn put_array<B: BufMut, T>(
    buf: &mut B,
    v: Option<&[T]>,
    compact: bool,
    mut f: impl FnMut(&mut B, &T) -> EResult,
) -> EResult {
    put_array_len(buf, v.map(<[T]>::len), compact)?;
    for e in v.unwrap_or_default() {
        f(buf, e)?;
    }
    Ok(())
}

/// Encoded size of an array whose element sizes `f` gives.
pub fn array_len<T>(v: Option<&[T]>, compact: bool, f: impl Fn(&T) -> usize) -> usize {
    array_len_len(v.map(<[T]>::len), compact) + v.unwrap_or_default().iter().map(f).sum::<usize>()
}

/// Reads a nullable struct: a marker byte (-1 null, otherwise present).
pub fn read_nullable_struct<T>(
    buf: &mut Bytes,
    f: impl FnOnce(&mut Bytes) -> DResult<T>,
) -> DResult<Option<T>> {
    if super::primitives::read_i8(buf)? < 0 {
        Ok(None)
    } else {
        f(buf).map(Some)
    }
}

/// Writes a nullable struct with its marker byte.
pub fn put_nullable_struct<B: BufMut, T>(
    buf: &mut B,
    v: Option<&T>,
    f: impl FnOnce(&mut B, &T) -> EResult,
) -> EResult {
    match v {
        None => {
            buf.put_i8(-1);
            Ok(())
        }
        Some(v) => {
            buf.put_i8(1);
            f(buf, v)
        }
    }
}

/// Turns a null into an error, for versions where null is not allowed.
#[inline]
pub fn required<T>(v: DResult<Option<T>>) -> DResult<T> {
    v?.ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull))
}

/// Rejects a null when `allowed` is false, otherwise passes the value on.
#[inline]
pub fn nullable_if<T>(v: DResult<Option<T>>, allowed: bool) -> DResult<Option<T>> {
    match v? {
        None if !allowed => Err(DecodeError::new(DecodeErrorKind::UnexpectedNull)),
        v => Ok(v),
    }
}

/// Writes the unknown tagged fields whose tags lie in `lo..hi`, so that
/// known and unknown tags come out in ascending order together.
pub fn put_unknown_tagged<B: BufMut>(
    buf: &mut B,
    fields: &[RawTaggedField],
    lo: u32,
    hi: u64,
) -> EResult {
    for f in fields
        .iter()
        .filter(|f| f.tag >= lo && u64::from(f.tag) < hi)
    {
        put_tagged_field(buf, f.tag, &f.data)?;
    }
    Ok(())
}

/// Encoded size of unknown tagged fields.
pub fn unknown_tagged_len(fields: &[RawTaggedField]) -> usize {
    fields
        .iter()
        .map(|f| tagged_field_len(f.tag, f.data.len()))
        .sum()
}

/// Keeps unknown tagged fields sorted by tag, so they re-encode in order.
pub fn push_unknown_tagged(fields: &mut Vec<RawTaggedField>, tag: u32, data: Bytes) {
    let at = fields.partition_point(|f| f.tag <= tag);
    fields.insert(at, RawTaggedField { tag, data });
}

/// The count prefix of a tagged-field section.
pub fn tagged_count(n: usize) -> Result<u32, EncodeError> {
    u32::try_from(n).map_err(|_| EncodeError::TooLong {
        what: "tagged fields",
        length: n,
        limit: u32::MAX as usize,
    })
}

/// The size prefix of one tagged field.
pub fn tagged_size(n: usize) -> Result<u32, EncodeError> {
    u32::try_from(n).map_err(|_| EncodeError::TooLong {
        what: "tagged field",
        length: n,
        limit: u32::MAX as usize,
    })
}

/// A deterministic random source for property tests of generated messages.
#[cfg(test)]
pub(crate) struct TestRng(u64);

#[cfg(test)]
impl TestRng {
    pub(crate) fn new(seed: u64) -> Self {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 20) as f64 - 1000.0
    }

    pub(crate) fn uuid(&mut self) -> super::primitives::Uuid {
        super::primitives::Uuid::from_u128(
            (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64()),
        )
    }

    pub(crate) fn string(&mut self) -> String {
        let n = (self.next_u64() % 12) as usize;
        (0..n)
            .map(|_| char::from(b'a' + (self.next_u64() % 26) as u8))
            .collect()
    }

    pub(crate) fn bytes(&mut self) -> Bytes {
        let n = (self.next_u64() % 24) as usize;
        (0..n)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    pub(crate) fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = (self.next_u64() % 4) as usize;
        (0..n).map(|_| f(self)).collect()
    }

    pub(crate) fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.next_u64() % 4 == 0 {
            None
        } else {
            Some(f(self))
        }
    }

    pub(crate) fn unknown_tagged(&mut self, flexible: bool) -> Vec<RawTaggedField> {
        if !flexible || self.next_u64() % 3 != 0 {
            return Vec::new();
        }
        // Tags far above any Kafka assigns, in ascending order.
        let mut tag = 10_000 + (self.next_u64() % 100) as u32;
        self.vec(|rng| {
            tag += 1 + (rng.next_u64() % 5) as u32;
            RawTaggedField {
                tag,
                data: rng.bytes(),
            }
        })
    }
}

/// Encodes random values of `T` at every version, checks `encoded_len`
/// against the bytes written, decodes them back and compares. Returns the
/// number of versions checked.
#[cfg(test)]
pub(crate) fn roundtrip_check<T: Message + PartialEq + std::fmt::Debug>(
    seeds: u64,
    generate: fn(&mut TestRng, i16) -> T,
) -> usize {
    let (lo, hi) = T::VERSIONS;
    for version in lo..=hi {
        for seed in 0..seeds {
            let mut rng = TestRng::new(seed.wrapping_mul(1000) + version as u64);
            let value = generate(&mut rng, version);
            let mut buf = bytes::BytesMut::new();
            if let Err(e) = value.encode(&mut buf, version) {
                panic!(
                    "{} v{version} seed {seed}: encode failed: {e}\n{value:?}",
                    T::NAME
                );
            }
            assert_eq!(
                buf.len(),
                value.encoded_len(version),
                "{} v{version} seed {seed}: encoded_len disagrees with the bytes written",
                T::NAME
            );
            let wire = buf.freeze();
            let mut bytes = wire.clone();
            let back = match T::decode(&mut bytes, version) {
                Ok(v) => v,
                Err(e) => panic!(
                    "{} v{version} seed {seed}: decode failed: {e}\n{value:?}",
                    T::NAME
                ),
            };
            assert!(
                bytes.is_empty(),
                "{} v{version}: {} bytes left over",
                T::NAME,
                bytes.len()
            );
            assert_eq!(
                back,
                value,
                "{} v{version} seed {seed}: round trip changed the value",
                T::NAME
            );
            // Byte-exact: what was decoded encodes to the same frame,
            // tagged fields written at their defaults included (the
            // generators set random presence bits).
            let mut again = bytes::BytesMut::new();
            back.encode(&mut again, version).unwrap_or_else(|e| {
                panic!("{} v{version} seed {seed}: re-encode failed: {e}", T::NAME)
            });
            assert_eq!(
                again.freeze(),
                wire,
                "{} v{version} seed {seed}: decode then encode changed the bytes",
                T::NAME
            );
            // In parts, with every record batch left where it is: the
            // same bytes, and parts only for messages holding batches.
            let mut w = PartsWriter::new(0, 0);
            value.encode_parts(&mut w, version).unwrap_or_else(|e| {
                panic!(
                    "{} v{version} seed {seed}: encode in parts failed: {e}",
                    T::NAME
                )
            });
            let (head, rest) = w.finish();
            let mut joined = head.to_vec();
            rest.iter().for_each(|p| joined.extend_from_slice(p));
            assert_eq!(
                joined,
                wire[..],
                "{} v{version} seed {seed}: the parts differ from the whole",
                T::NAME
            );
            assert!(
                T::HAS_RECORDS || rest.is_empty(),
                "{} v{version}: parts for a message without records",
                T::NAME
            );
        }
    }
    (hi - lo + 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::{
        FetchResponse, ProduceRequest,
        fetch_response::{FetchableTopicResponse, PartitionData},
        produce_request::{PartitionProduceData, TopicProduceData},
    };
    use crate::protocol::primitives::read_i32;

    fn joined(head: &BytesMut, rest: &[Bytes]) -> Vec<u8> {
        let mut out = head.to_vec();
        rest.iter().for_each(|p| out.extend_from_slice(p));
        out
    }

    /// Batches at or over the threshold become parts of their own (the
    /// same memory), smaller ones and nulls are copied, and the bytes
    /// between them are their own parts; the control is the whole
    /// encoding, byte for byte.
    #[test]
    fn a_produce_request_in_parts_shares_the_batches_over_the_threshold() {
        let big = Bytes::from(vec![1u8; 600]);
        let also_big = Bytes::from(vec![2u8; 512]);
        let small = Bytes::from(vec![3u8; 511]);
        let partition = |index, records: Option<&Bytes>| PartitionProduceData {
            index,
            records: records.cloned(),
            ..Default::default()
        };
        let req = ProduceRequest {
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![
                TopicProduceData {
                    name: "a".into(),
                    partition_data: vec![
                        partition(0, Some(&big)),
                        partition(1, Some(&small)),
                        partition(2, None),
                    ],
                    ..Default::default()
                },
                TopicProduceData {
                    name: "b".into(),
                    partition_data: vec![partition(0, Some(&also_big))],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        for version in [3, 8, 9, 12] {
            let mut w = PartsWriter::new(16, 512);
            req.encode_parts(&mut w, version).expect("encode in parts");
            let (head, rest) = w.finish();
            let mut whole = Vec::new();
            req.encode(&mut whole, version).expect("encode");
            assert_eq!(joined(&head, &rest), whole, "v{version}");
            // head, big, [small, null, topic b, …], also_big, and from
            // v9 (flexible) the tagged-field counts after it
            assert_eq!(rest.len(), if version >= 9 { 4 } else { 3 }, "v{version}");
            assert_eq!(rest[0].as_ptr(), big.as_ptr());
            assert_eq!(rest[2].as_ptr(), also_big.as_ptr());
            assert!(rest[1].len() > small.len(), "the small batch was copied");
        }
        // Below every batch's size, nothing is shared.
        let mut w = PartsWriter::new(16, 4096);
        req.encode_parts(&mut w, 9).expect("encode in parts");
        assert!(w.finish().1.is_empty());
    }

    /// Responses carry batches too (the fake cluster's Fetch answers).
    #[test]
    fn a_fetch_response_in_parts_is_its_whole_encoding() {
        let batch = Bytes::from(vec![9u8; 1024]);
        let resp = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![PartitionData {
                    partition_index: 4,
                    records: Some(batch.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        for version in [4, 12, 16] {
            let mut w = PartsWriter::new(0, 1);
            resp.encode_parts(&mut w, version).expect("encode in parts");
            let (head, rest) = w.finish();
            let mut whole = Vec::new();
            resp.encode(&mut whole, version).expect("encode");
            assert_eq!(joined(&head, &rest), whole, "v{version}");
            assert_eq!(rest[0].as_ptr(), batch.as_ptr(), "v{version}");
        }
    }

    /// `read_i32_array` against `read_array` with `read_i32`: the same
    /// values, nulls and errors, classic and compact, whole and cut short.
    #[test]
    fn i32_arrays_read_as_the_element_reader_reads_them() {
        // One list kept inline and one past the inline capacity.
        let short = vec![7, -1, i32::MAX, i32::MIN, 0];
        let long: Vec<i32> = (-5..20).collect();
        for (values, compact) in [
            (&short, false),
            (&short, true),
            (&long, false),
            (&long, true),
        ] {
            let mut wire = Vec::new();
            put_array(&mut wire, Some(&values[..]), compact, |b, v| {
                b.put_i32(*v);
                Ok(())
            })
            .unwrap();
            put_array::<_, i32>(&mut wire, None, compact, |_, _| Ok(())).unwrap();
            let mut fast = Bytes::from(wire.clone());
            let mut each = Bytes::from(wire.clone());
            let read = read_i32_array(&mut fast, compact).unwrap();
            assert_eq!(read.as_deref(), Some(&values[..]));
            assert_eq!(
                read_array(&mut each, compact, read_i32).unwrap(),
                Some(values.clone())
            );
            assert_eq!(read_i32_array(&mut fast, compact).unwrap(), None);
            assert!(fast.is_empty());
            // Cut inside every element: both fail alike (the length check
            // of `read_array_len` first, then the element read).
            let head = if compact { 1 } else { 4 };
            for cut in head..head + values.len() * 4 {
                let short = Bytes::from(wire[..cut].to_vec());
                let fast = read_i32_array(&mut short.clone(), compact).unwrap_err();
                let each = read_array(&mut short.clone(), compact, read_i32).unwrap_err();
                assert_eq!(fast.kind(), each.kind(), "compact {compact}, cut at {cut}");
            }
        }
    }
}
