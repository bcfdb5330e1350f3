//! One record of a v2 batch and its headers: the varint-framed layout
//! (length, attributes, timestamp delta, offset delta, key, value, headers).
//!
//! Decoding works on a byte slice with a position (no `Buf` bookkeeping per
//! field) and hands keys, values and header parts out as `Bytes` slices of
//! the buffer that owns the data, so nothing is copied.

use std::ops::DerefMut;

use bytes::{BufMut, Bytes};

use crate::protocol::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::protocol::primitives::{decode_uvarint_slice, varint_len, varlong_len};

type DResult<T> = Result<T, DecodeError>;

/// The smallest encoded record: a one-byte length, then attributes,
/// timestamp delta, offset delta, key length, value length and header
/// count of one byte each.
pub(crate) const MIN_RECORD_SIZE: usize = 7;

/// A record header. Headers are kept in a `Vec` in wire order, duplicates
/// included, as Kafka allows repeated keys.
///
/// The key is a string on the wire; it is kept as raw bytes (a zero-copy
/// slice of the input) and is not validated, matching the Java client's
/// lenient decoding. [`Header::key_str`] gives it as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// The header key (UTF-8 text in practice).
    pub key: Bytes,
    /// The header value; `None` is a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a non-null value.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A header whose value is null.
    pub fn null(key: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: None,
        }
    }

    /// The key as text, or `None` if it is not valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// A record of a v2 [`RecordBatch`](super::RecordBatch).
///
/// Offsets and timestamps are stored as deltas from the batch's base offset
/// and base timestamp, exactly as on the wire; use
/// [`RecordBatch::offset_of`](super::RecordBatch::offset_of),
/// [`RecordBatch::timestamp_of`](super::RecordBatch::timestamp_of) or
/// [`RecordBatch::iter`](super::RecordBatch::iter) for absolute values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Record {
    /// Record attributes (no bits are defined today; kept as read).
    pub attributes: i8,
    /// Timestamp minus the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch's base offset.
    pub offset_delta: i32,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in wire order, duplicates kept.
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with the given key and value, zero deltas and no headers.
    pub fn new(key: Option<Bytes>, value: Option<Bytes>) -> Self {
        Self {
            key,
            value,
            ..Self::default()
        }
    }

    /// Sets the offset delta.
    pub fn with_offset_delta(mut self, delta: i32) -> Self {
        self.offset_delta = delta;
        self
    }

    /// Sets the timestamp delta.
    pub fn with_timestamp_delta(mut self, delta: i64) -> Self {
        self.timestamp_delta = delta;
        self
    }

    /// Appends a header (after any existing ones, duplicates allowed).
    pub fn with_header(mut self, header: Header) -> Self {
        self.headers.push(header);
        self
    }

    /// The values of every header with this key, in order.
    pub fn header_values<'a>(
        &'a self,
        key: &'a [u8],
    ) -> impl Iterator<Item = Option<&'a Bytes>> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.key.as_ref() == key)
            .map(|h| h.value.as_ref())
    }

    /// The size of the record body (everything after the length prefix).
    /// Fails if a part is too long for its varint length.
    #[inline]
    pub(crate) fn body_len(&self) -> Result<usize, EncodeError> {
        // Every part's length is at most the body's length, so a body that
        // fits an `i32` has parts that do too: one check suffices on the
        // common path; the checked walk below names the part that failed.
        let n = self.body_len_unchecked();
        if n <= i32::MAX as usize {
            Ok(n)
        } else {
            self.body_len_checked()
        }
    }

    /// The body size without length checks: only correct once
    /// [`Record::body_len`] has succeeded for this record.
    #[inline]
    fn body_len_unchecked(&self) -> usize {
        #[inline]
        fn part(b: Option<&[u8]>) -> usize {
            match b {
                None => 1,
                // A length past `i32::MAX` makes the total fail the check
                // in `body_len`, so the truncated varint size is harmless.
                Some(b) => varint_len(b.len() as i32) + b.len(),
            }
        }
        let mut n = 1 + varlong_len(self.timestamp_delta) + varint_len(self.offset_delta);
        n = n
            .saturating_add(part(self.key.as_deref()))
            .saturating_add(part(self.value.as_deref()))
            .saturating_add(varint_len(self.headers.len() as i32));
        for h in &self.headers {
            n = n
                .saturating_add(part(Some(&h.key)))
                .saturating_add(part(h.value.as_deref()));
        }
        // Each header adds at least two bytes, so a header count past
        // `i32::MAX` also fails the check in `body_len`.
        n
    }

    #[cold]
    fn body_len_checked(&self) -> Result<usize, EncodeError> {
        let mut n = 1 + varlong_len(self.timestamp_delta) + varint_len(self.offset_delta);
        n += nullable_len(self.key.as_deref(), "record key")?;
        n += nullable_len(self.value.as_deref(), "record value")?;
        n += varint_len(len_i32(self.headers.len(), "header count")?);
        for h in &self.headers {
            n += nullable_len(Some(&h.key), "header key")?;
            n += nullable_len(h.value.as_deref(), "header value")?;
        }
        len_i32(n, "record")?;
        Ok(n)
    }

    /// Appends the record given its body length from [`Record::body_len`]
    /// (which validated every length, so the casts below cannot wrap).
    ///
    /// It makes room for the whole record and writes into that slice: one
    /// bounds check per byte, where a `BufMut` would check (and perhaps
    /// grow) its capacity on every put, and a record has up to eight
    /// varints and a byte.
    #[inline]
    pub(crate) fn write<T: BufMut + DerefMut<Target = [u8]>>(&self, out: &mut T, body_len: usize) {
        let start = out.len();
        let size = body_len + varint_len(body_len as i32);
        out.put_bytes(0, size);
        let mut w = SliceWriter {
            dst: &mut out[start..start + size],
            pos: 0,
        };
        w.varint(body_len as i32);
        w.byte(self.attributes as u8);
        w.varlong(self.timestamp_delta);
        w.varint(self.offset_delta);
        w.nullable(self.key.as_deref());
        w.nullable(self.value.as_deref());
        w.varint(self.headers.len() as i32);
        for h in &self.headers {
            w.nullable(Some(&h.key));
            w.nullable(h.value.as_deref());
        }
    }
}

/// A cursor writing varint-framed fields into a slice sized in advance.
struct SliceWriter<'a> {
    dst: &'a mut [u8],
    pos: usize,
}

impl SliceWriter<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.dst[self.pos] = b;
        self.pos += 1;
    }

    #[inline]
    fn uvarlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline]
    fn varint(&mut self, v: i32) {
        self.uvarlong(u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    #[inline]
    fn varlong(&mut self, v: i64) {
        self.uvarlong(((v << 1) ^ (v >> 63)) as u64);
    }

    #[inline]
    fn nullable(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.varint(-1),
            Some(b) => {
                self.varint(b.len() as i32);
                let end = self.pos + b.len();
                self.dst[self.pos..end].copy_from_slice(b);
                self.pos = end;
            }
        }
    }
}

fn len_i32(n: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(n).map_err(|_| EncodeError::TooLong {
        what,
        length: n,
        limit: i32::MAX as usize,
    })
}

#[inline]
fn nullable_len(b: Option<&[u8]>, what: &'static str) -> Result<usize, EncodeError> {
    Ok(match b {
        None => 1,
        Some(b) => varint_len(len_i32(b.len(), what)?) + b.len(),
    })
}

/// A cursor over (a window of) a `Bytes` buffer. Reads come straight from
/// the slice; byte fields are handed out as `Bytes::slice`s of the owner.
pub(crate) struct SliceReader<'a> {
    owner: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> SliceReader<'a> {
    /// A reader over `owner[start..]`.
    pub(crate) fn new(owner: &'a Bytes, start: usize) -> Self {
        let end = owner.len();
        Self {
            owner,
            pos: start.min(end),
            end,
        }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    #[inline]
    fn rest(&self) -> &'a [u8] {
        self.owner.get(self.pos..self.end).unwrap_or(&[])
    }

    #[inline]
    fn i8(&mut self) -> DResult<i8> {
        match self.rest().first() {
            Some(&b) => {
                self.pos += 1;
                Ok(b as i8)
            }
            None => Err(DecodeError::eof(1, 0)),
        }
    }

    /// The one- and two-byte varints that lengths and deltas of typical
    /// records take are read in line (six per record); longer ones, and
    /// errors, in [`Self::uvarint_long`]. (As one function it was not
    /// inlined: a call per varint, a quarter of a consumer's instructions.)
    #[inline(always)]
    fn uvarint(&mut self, max_bytes: usize) -> DResult<u64> {
        match *self.rest() {
            [b0, ..] if b0 < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b0))
            }
            [b0, b1, ..] if b1 < 0x80 => {
                self.pos += 2;
                Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
            }
            _ => self.uvarint_long(max_bytes),
        }
    }

    #[cold]
    #[inline(never)]
    fn uvarint_long(&mut self, max_bytes: usize) -> DResult<u64> {
        let (v, n) = decode_uvarint_slice(self.rest(), max_bytes)?;
        self.pos += n;
        Ok(v)
    }

    /// A zig-zag `varint`.
    #[inline]
    pub(crate) fn varint(&mut self) -> DResult<i32> {
        let v = u32::try_from(self.uvarint(5)?)
            .map_err(|_| DecodeError::new(DecodeErrorKind::VarintTooLong))?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// A zig-zag `varlong`.
    #[inline]
    fn varlong(&mut self) -> DResult<i64> {
        let v = self.uvarint(10)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    #[inline(always)]
    fn take(&mut self, len: usize) -> DResult<Bytes> {
        if len > self.remaining() {
            return Err(DecodeError::eof(len, self.remaining()));
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.owner.slice(start..self.pos))
    }

    /// Varint-length-prefixed bytes; -1 is null, other negatives are errors.
    #[inline(always)]
    fn nullable_bytes(&mut self) -> DResult<Option<Bytes>> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::new(DecodeErrorKind::NegativeLength(
                i64::from(n),
            ))),
            n => self.take(n as usize).map(Some),
        }
    }

    fn header(&mut self) -> DResult<Header> {
        let key = self.header_key().map_err(|e| e.context("key"))?;
        let value = self.nullable_bytes().map_err(|e| e.context("value"))?;
        Ok(Header { key, value })
    }

    fn header_key(&mut self) -> DResult<Bytes> {
        match self.varint()? {
            -1 => Err(DecodeError::new(DecodeErrorKind::UnexpectedNull)),
            n if n < 0 => Err(DecodeError::new(DecodeErrorKind::NegativeLength(
                i64::from(n),
            ))),
            n => self.take(n as usize),
        }
    }

    /// Decodes one record. Errors carry the field name; the caller adds
    /// `Record`. Always in line, so the record is built where the caller
    /// puts it: without LTO it was returned through memory and copied.
    #[inline(always)]
    pub(crate) fn record(&mut self) -> DResult<Record> {
        let len = self.varint().map_err(|e| e.context("length"))?;
        if len < 0 {
            return Err(
                DecodeError::new(DecodeErrorKind::NegativeLength(i64::from(len))).context("length"),
            );
        }
        let len = len as usize;
        if len > self.remaining() {
            return Err(DecodeError::eof(len, self.remaining()).context("length"));
        }
        let outer_end = self.end;
        self.end = self.pos + len;
        let r = self.record_body();
        self.end = outer_end;
        r
    }

    /// Decodes the fields of a record whose window is `pos..end`, which
    /// they must fill exactly. The `Record` is built only once every check
    /// has passed, so it is written once, straight into the result.
    #[inline(always)]
    fn record_body(&mut self) -> DResult<Record> {
        let attributes = self.i8().map_err(|e| e.context("attributes"))?;
        let timestamp_delta = self.varlong().map_err(|e| e.context("timestampDelta"))?;
        let offset_delta = self.varint().map_err(|e| e.context("offsetDelta"))?;
        let key = self.nullable_bytes().map_err(|e| e.context("key"))?;
        let value = self.nullable_bytes().map_err(|e| e.context("value"))?;
        let count = self.varint().map_err(|e| e.context("headerCount"))?;
        let headers = match count {
            0 => Vec::new(),
            n if n < 0 => {
                return Err(
                    DecodeError::new(DecodeErrorKind::NegativeLength(i64::from(n)))
                        .context("headerCount"),
                );
            }
            n => {
                let n = n as usize;
                // Each header takes at least two bytes (two varint lengths).
                if n > self.remaining() / 2 {
                    return Err(DecodeError::new(DecodeErrorKind::LengthTooLarge {
                        length: n as u64,
                        limit: (self.remaining() / 2) as u64,
                    })
                    .context("headerCount"));
                }
                let mut headers = Vec::with_capacity(n);
                for _ in 0..n {
                    headers.push(self.header().map_err(|e| e.context("Header"))?);
                }
                headers
            }
        };
        if self.pos != self.end {
            return Err(DecodeError::new(DecodeErrorKind::TrailingBytes(
                self.end - self.pos,
            )));
        }
        Ok(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(r: &Record) -> Record {
        let body = r.body_len().unwrap();
        let mut out = Vec::new();
        r.write(&mut out, body);
        assert_eq!(out.len(), body + varint_len(body as i32));
        let owner = Bytes::from(out);
        let mut rd = SliceReader::new(&owner, 0);
        let got = rd.record().unwrap();
        assert_eq!(rd.remaining(), 0);
        got
    }

    #[test]
    fn record_roundtrip_with_nulls_and_duplicate_headers() {
        let r = Record::new(None, Some(Bytes::from_static(b"v")))
            .with_offset_delta(300)
            .with_timestamp_delta(-5)
            .with_header(Header::new("k", "1"))
            .with_header(Header::null("k"))
            .with_header(Header::new("a", ""))
            .with_header(Header::new("k", "2"));
        let got = roundtrip(&r);
        assert_eq!(got, r);
        let ks: Vec<_> = got.header_values(b"k").collect();
        assert_eq!(
            ks,
            vec![
                Some(&Bytes::from_static(b"1")),
                None,
                Some(&Bytes::from_static(b"2"))
            ]
        );
        assert_eq!(got.headers[2].key_str(), Some("a"));
    }

    #[test]
    fn minimal_record_is_seven_bytes() {
        let r = Record::default();
        // length, attributes, ts, offset, key -1, value -1, count 0.
        assert_eq!(r.body_len().unwrap() + 1, MIN_RECORD_SIZE);
        let r = Record {
            key: Some(Bytes::new()),
            value: Some(Bytes::new()),
            ..Record::default()
        };
        // length, attributes, ts, offset, key len 0, value len 0, count 0.
        assert_eq!(r.body_len().unwrap() + 1, MIN_RECORD_SIZE);
    }

    fn decode(bytes: &[u8]) -> DResult<Record> {
        let owner = Bytes::copy_from_slice(bytes);
        SliceReader::new(&owner, 0).record()
    }

    #[test]
    fn hostile_records_are_typed_errors() {
        // Negative record length.
        let e = decode(&[0x03]).unwrap_err();
        assert_eq!(e.kind(), &DecodeErrorKind::NegativeLength(-2));
        // Length overruns the input.
        assert!(matches!(
            decode(&[0x20, 0, 0]).unwrap_err().kind(),
            DecodeErrorKind::UnexpectedEof { .. }
        ));
        // Key length -2.
        let e = decode(&[0x0c, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.kind(), &DecodeErrorKind::NegativeLength(-2));
        assert_eq!(e.path().collect::<Vec<_>>(), vec!["key"]);
        // Key length past the record end (record is 5 bytes, key says 2).
        let e = decode(&[0x0a, 0, 0, 0, 0x04, 0x00, 0, 0]).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::UnexpectedEof { .. }));
        // Huge header count.
        let e = decode(&[0x14, 0, 0, 0, 0x01, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x07]).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::LengthTooLarge { .. }));
        // Null header key.
        let e = decode(&[0x10, 0, 0, 0, 0x01, 0x01, 0x02, 0x01, 0x01]).unwrap_err();
        assert_eq!(e.kind(), &DecodeErrorKind::UnexpectedNull);
        assert_eq!(e.path().collect::<Vec<_>>(), vec!["Header", "key"]);
        // Declared length longer than the fields: trailing bytes.
        let e = decode(&[0x10, 0, 0, 0, 0x01, 0x01, 0x00, 0xaa, 0xbb]).unwrap_err();
        assert_eq!(e.kind(), &DecodeErrorKind::TrailingBytes(2));
    }
}
