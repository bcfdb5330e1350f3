//! The primitive types of the Kafka protocol: fixed-width integers, varints,
//! strings, byte arrays, arrays, UUIDs and tagged-field framing, in their
//! classic and compact ("flexible version") forms.
//!
//! Readers take `&mut Bytes` so that byte fields can be handed out as
//! zero-copy slices of the input. Every reader checks the bytes that remain
//! before it reads, so a short or hostile input gives a [`DecodeError`] and
//! never a panic; no reader reserves memory from a length prefix beyond the
//! bytes actually left in the input.
//!
//! # References
//! - Kafka protocol guide, "Protocol Primitive Types"
//! - KIP-482 (compact encodings and tagged fields)

use bytes::{Buf, BufMut, Bytes};

use super::error::{DecodeError, DecodeErrorKind, EncodeError};

pub use super::int32_list::Int32List;

/// A Kafka UUID: 16 raw bytes, written most significant byte first.
///
/// ```
/// use klamm::protocol::primitives::Uuid;
/// let id = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
/// assert_eq!(id.as_bytes()[0], 1);
/// assert_eq!(Uuid::default(), Uuid::ZERO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses as "no topic id".
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// Builds a UUID from its 128-bit big-endian value.
    pub const fn from_u128(v: u128) -> Self {
        Uuid(v.to_be_bytes())
    }

    /// The 128-bit value.
    pub const fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The form Kafka's tools print (Java's `Uuid.toString`): URL-safe
    /// base64 without padding, 22 characters.
    ///
    /// ```
    /// use klamm::protocol::primitives::Uuid;
    /// let id = Uuid::from_u128(0xab50_672c_bf2f_4009_99a4_a9ca_c759_564f);
    /// assert_eq!(id.to_kafka_string(), "q1BnLL8vQAmZpKnKx1lWTw");
    /// assert_eq!(Uuid::parse("q1BnLL8vQAmZpKnKx1lWTw"), Some(id));
    /// assert_eq!(Uuid::parse("ab50672cbf2f400999a4a9cac759564f"), Some(id));
    /// assert_eq!(Uuid::parse("not an id"), None);
    /// ```
    pub fn to_kafka_string(&self) -> String {
        let v = self.as_u128();
        // 128 bits as 22 six-bit groups: the first 21 take 126 bits, the
        // last holds the remaining two in its high bits.
        (0..22)
            .map(|i| {
                let sextet = if i < 21 {
                    (v >> (122 - 6 * i)) & 0x3f
                } else {
                    (v & 0x3) << 4
                };
                B64URL[sextet as usize] as char
            })
            .collect()
    }

    /// Reads a topic id as Kafka's tools print it (22 characters of
    /// URL-safe base64) or as 32 hex digits (this type's `Display`).
    pub fn parse(s: &str) -> Option<Uuid> {
        match s.len() {
            32 => u128::from_str_radix(s, 16).ok().map(Uuid::from_u128),
            22 => {
                let mut v: u128 = 0;
                for (i, c) in s.bytes().enumerate() {
                    let sextet = B64URL.iter().position(|&b| b == c)? as u128;
                    if i < 21 {
                        v |= sextet << (122 - 6 * i);
                    } else if sextet & 0xf != 0 {
                        return None; // bits beyond the 128th
                    } else {
                        v |= sextet >> 4;
                    }
                }
                Some(Uuid::from_u128(v))
            }
            _ => None,
        }
    }
}

/// The URL-safe base64 alphabet (RFC 4648 §5).
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uuid({:032x})", self.as_u128())
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.as_u128())
    }
}

/// A tagged field this library does not know, kept so it can be re-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTaggedField {
    /// The tag number.
    pub tag: u32,
    /// The field's bytes, exactly as they were on the wire.
    pub data: Bytes,
}

/// Which of a struct's known tagged fields were on the wire: one bit per
/// tagged field, in tag order.
///
/// Two bytes: no message of Kafka's has more than four known tagged fields
/// in one struct (codegen refuses more than 16), and two bytes mostly fit
/// in the padding the struct already has after its small fields, so
/// decoded structs do not grow.
///
/// A tagged field is written when its value differs from its default, and
/// also when its bit is set. Decoding sets the bit of every tagged field
/// the sender wrote, so a frame whose sender wrote a tagged field at its
/// default value (tansu does, for ApiVersions, Fetch and CreateTopics)
/// encodes back to the same bytes. Values built in code start with no
/// bits and leave defaults out, as Kafka's own clients do.
///
/// It describes the bytes, not the value: two `TagPresence` always
/// compare equal, so messages compare by their fields alone.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use klamm::protocol::codec::Message;
/// use klamm::protocol::messages::ApiVersionsResponse;
///
/// // v3 with FinalizedFeaturesEpoch (tag 1) written at its default, -1.
/// let wire = Bytes::from_static(&[0, 0, 1, 0, 0, 0, 0, 1, 1, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/// let msg = ApiVersionsResponse::decode(&mut wire.clone(), 3).unwrap();
/// assert_eq!(msg.finalized_features_epoch, -1);
/// assert!(msg.tags_present.has(1));
/// let mut again = BytesMut::new();
/// msg.encode(&mut again, 3).unwrap();
/// assert_eq!(again.freeze(), wire);
/// // Built in code, the default is left out.
/// let fresh = ApiVersionsResponse::default();
/// assert_eq!(fresh, msg);
/// assert!(fresh.encoded_len(3) < wire.len());
/// ```
#[derive(Clone, Copy, Default)]
pub struct TagPresence(u16);

impl TagPresence {
    /// From raw bits (bit `i` for the struct's `i`-th tagged field).
    pub const fn from_bits(bits: u16) -> Self {
        TagPresence(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether tagged field `i` (in tag order) was on the wire.
    #[inline]
    pub const fn has(self, i: u32) -> bool {
        i < 16 && self.0 & (1 << i) != 0
    }

    /// Marks tagged field `i` as present.
    #[inline]
    pub fn set(&mut self, i: u32) {
        if i < 16 {
            self.0 |= 1 << i;
        }
    }
}

impl PartialEq for TagPresence {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for TagPresence {}

impl std::fmt::Debug for TagPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TagPresence({:#b})", self.0)
    }
}

type DResult<T> = Result<T, DecodeError>;

#[inline]
fn ensure(buf: &Bytes, needed: usize) -> DResult<()> {
    if buf.len() < needed {
        Err(DecodeError::eof(needed, buf.len()))
    } else {
        Ok(())
    }
}

macro_rules! fixed_reader {
    ($(#[$m:meta])* $name:ident, $ty:ty, $get:ident) => {
        $(#[$m])*
        #[inline]
        pub fn $name(buf: &mut Bytes) -> DResult<$ty> {
            ensure(buf, std::mem::size_of::<$ty>())?;
            Ok(buf.$get())
        }
    };
}

fixed_reader!(/// Reads an `int8`.
    read_i8, i8, get_i8);
fixed_reader!(/// Reads an `int16` (big-endian).
    read_i16, i16, get_i16);
fixed_reader!(/// Reads an `int32` (big-endian).
    read_i32, i32, get_i32);
fixed_reader!(/// Reads an `int64` (big-endian).
    read_i64, i64, get_i64);
fixed_reader!(/// Reads a `uint8`.
    read_u8, u8, get_u8);
fixed_reader!(/// Reads a `uint16` (big-endian).
    read_u16, u16, get_u16);
fixed_reader!(/// Reads a `uint32` (big-endian).
    read_u32, u32, get_u32);
fixed_reader!(/// Reads a `float64` (IEEE 754, big-endian).
    read_f64, f64, get_f64);

/// Reads a `boolean`: any non-zero byte is `true`, as in the Java client.
#[inline]
pub fn read_bool(buf: &mut Bytes) -> DResult<bool> {
    Ok(read_u8(buf)? != 0)
}

/// Reads a `uuid`.
#[inline]
pub fn read_uuid(buf: &mut Bytes) -> DResult<Uuid> {
    ensure(buf, 16)?;
    let mut b = [0u8; 16];
    buf.copy_to_slice(&mut b);
    Ok(Uuid(b))
}

/// Reads an unsigned varint of at most 5 bytes (a `u32`).
#[inline(always)]
pub fn read_unsigned_varint(buf: &mut Bytes) -> DResult<u32> {
    // One byte is by far the most common (array and string lengths, tag
    // counts of flexible versions): no loop and no call for it.
    if let Some(&b) = buf.first()
        && b < 0x80
    {
        buf.advance(1);
        return Ok(u32::from(b));
    }
    read_unsigned_varint_long(buf)
}

/// [`read_unsigned_varint`] past its first byte, kept out of line.
#[inline(never)]
fn read_unsigned_varint_long(buf: &mut Bytes) -> DResult<u32> {
    let v = read_unsigned_varlong_max(buf, 5)?;
    u32::try_from(v).map_err(|_| DecodeError::new(DecodeErrorKind::VarintTooLong))
}

/// Reads an unsigned varint of at most 10 bytes (a `u64`).
#[inline]
pub fn read_unsigned_varlong(buf: &mut Bytes) -> DResult<u64> {
    read_unsigned_varlong_max(buf, 10)
}

#[inline]
fn read_unsigned_varlong_max(buf: &mut Bytes, max_bytes: usize) -> DResult<u64> {
    let (v, n) = decode_uvarint_slice(buf.as_ref(), max_bytes)?;
    buf.advance(n);
    Ok(v)
}

/// Decodes an unsigned varint from the front of a slice, returning the value
/// and the number of bytes it took. Used by readers that work on slices.
#[inline]
pub fn decode_uvarint_slice(s: &[u8], max_bytes: usize) -> DResult<(u64, usize)> {
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let Some(&b) = s.get(i) else {
            return Err(DecodeError::eof(i + 1, s.len()));
        };
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return Err(DecodeError::new(DecodeErrorKind::VarintTooLong));
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(DecodeError::new(DecodeErrorKind::VarintTooLong))
}

/// Reads a zig-zag encoded signed varint (`varint`, an `i32`).
#[inline]
pub fn read_varint(buf: &mut Bytes) -> DResult<i32> {
    let v = read_unsigned_varint(buf)?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Reads a zig-zag encoded signed varlong (`varlong`, an `i64`).
#[inline]
pub fn read_varlong(buf: &mut Bytes) -> DResult<i64> {
    let v = read_unsigned_varlong(buf)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Takes `len` bytes from the front of `buf` as a zero-copy slice.
#[inline]
pub fn take_bytes(buf: &mut Bytes, len: usize) -> DResult<Bytes> {
    ensure(buf, len)?;
    Ok(buf.split_to(len))
}

fn bytes_to_string(b: Bytes) -> DResult<String> {
    String::from_utf8(b.into()).map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8))
}

/// Reads a classic length (`int16` for strings, `int32` for bytes and
/// arrays): `None` for -1 (null), an error for any other negative value.
#[inline]
fn classic_len(n: i64) -> DResult<Option<usize>> {
    match n {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::new(DecodeErrorKind::NegativeLength(n))),
        n => Ok(Some(n as usize)),
    }
}

/// Reads a compact length (unsigned varint holding length + 1): `None` for
/// 0 (null).
#[inline]
fn compact_len(buf: &mut Bytes) -> DResult<Option<usize>> {
    let n = read_unsigned_varint(buf)?;
    Ok(n.checked_sub(1).map(|n| n as usize))
}

fn non_null<T>(v: Option<T>) -> DResult<T> {
    v.ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull))
}

/// Reads a nullable string, classic (`int16` length) or compact.
pub fn read_nullable_string(buf: &mut Bytes, compact: bool) -> DResult<Option<String>> {
    let len = if compact {
        compact_len(buf)?
    } else {
        classic_len(i64::from(read_i16(buf)?))?
    };
    match len {
        None => Ok(None),
        Some(n) => take_bytes(buf, n).and_then(bytes_to_string).map(Some),
    }
}

/// Reads a non-nullable string, classic or compact.
pub fn read_string(buf: &mut Bytes, compact: bool) -> DResult<String> {
    non_null(read_nullable_string(buf, compact)?)
}

/// Reads nullable bytes, classic (`int32` length) or compact, as a
/// zero-copy slice of the input.
pub fn read_nullable_bytes(buf: &mut Bytes, compact: bool) -> DResult<Option<Bytes>> {
    let len = if compact {
        compact_len(buf)?
    } else {
        classic_len(i64::from(read_i32(buf)?))?
    };
    match len {
        None => Ok(None),
        Some(n) => take_bytes(buf, n).map(Some),
    }
}

/// Reads non-nullable bytes, classic or compact.
pub fn read_bytes(buf: &mut Bytes, compact: bool) -> DResult<Bytes> {
    non_null(read_nullable_bytes(buf, compact)?)
}

/// Reads an array's element count (`None` for a null array). The count is
/// checked against the bytes left: every element takes at least one byte,
/// so a count larger than the remaining input is rejected before anything
/// is allocated.
#[inline]
pub fn read_array_len(buf: &mut Bytes, compact: bool) -> DResult<Option<usize>> {
    let len = if compact {
        compact_len(buf)?
    } else {
        classic_len(i64::from(read_i32(buf)?))?
    };
    if let Some(n) = len {
        if n > buf.len() {
            return Err(DecodeError::new(DecodeErrorKind::LengthTooLarge {
                length: n as u64,
                limit: buf.len() as u64,
            }));
        }
    }
    Ok(len)
}

/// Reads a tagged-field header: the tag and the field's bytes.
pub fn read_tagged_field(buf: &mut Bytes) -> DResult<(u32, Bytes)> {
    let tag = read_unsigned_varint(buf)?;
    let size = read_unsigned_varint(buf)? as usize;
    Ok((tag, take_bytes(buf, size)?))
}

/// Checks that a decode consumed all of a tagged field's bytes.
pub fn expect_empty(buf: &Bytes) -> DResult<()> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::new(DecodeErrorKind::TrailingBytes(buf.len())))
    }
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

type EResult = Result<(), EncodeError>;

/// Writes an unsigned varint.
#[inline]
pub fn put_unsigned_varint<B: BufMut>(buf: &mut B, v: u32) {
    put_unsigned_varlong(buf, u64::from(v));
}

/// Writes an unsigned varlong.
#[inline]
pub fn put_unsigned_varlong<B: BufMut>(buf: &mut B, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes a zig-zag signed varint.
#[inline]
pub fn put_varint<B: BufMut>(buf: &mut B, v: i32) {
    put_unsigned_varint(buf, ((v << 1) ^ (v >> 31)) as u32);
}

/// Writes a zig-zag signed varlong.
#[inline]
pub fn put_varlong<B: BufMut>(buf: &mut B, v: i64) {
    put_unsigned_varlong(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Bytes an unsigned varint takes.
#[inline]
pub const fn unsigned_varint_len(v: u32) -> usize {
    unsigned_varlong_len(v as u64)
}

/// Bytes an unsigned varlong takes.
#[inline]
pub const fn unsigned_varlong_len(v: u64) -> usize {
    // ceil(bits / 7) for 1..=64 significant bits, as (bits * 9 + 64) / 64:
    // a multiply by 9 and a shift, where a division by 7 costs a wide
    // multiply (checked for every bit count in the tests).
    let bits = 64 - (v | 1).leading_zeros() as usize;
    (bits * 9 + 64) >> 6
}

/// Bytes a zig-zag varint takes.
#[inline]
pub const fn varint_len(v: i32) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// Bytes a zig-zag varlong takes.
#[inline]
pub const fn varlong_len(v: i64) -> usize {
    unsigned_varlong_len(((v << 1) ^ (v >> 63)) as u64)
}

/// Writes a length prefix for a string (`int16`), bytes or array (`int32`),
/// or their compact forms; `None` writes null.
#[inline]
fn put_len<B: BufMut>(
    buf: &mut B,
    len: Option<usize>,
    compact: bool,
    short: bool,
    what: &'static str,
) -> EResult {
    let limit = if compact {
        u32::MAX as usize - 1
    } else if short {
        i16::MAX as usize
    } else {
        i32::MAX as usize
    };
    match len {
        Some(n) if n > limit => Err(EncodeError::TooLong {
            what,
            length: n,
            limit,
        }),
        Some(n) if compact => {
            put_unsigned_varint(buf, n as u32 + 1);
            Ok(())
        }
        Some(n) if short => {
            buf.put_i16(n as i16);
            Ok(())
        }
        Some(n) => {
            buf.put_i32(n as i32);
            Ok(())
        }
        None if compact => {
            buf.put_u8(0);
            Ok(())
        }
        None if short => {
            buf.put_i16(-1);
            Ok(())
        }
        None => {
            buf.put_i32(-1);
            Ok(())
        }
    }
}

/// Bytes a length prefix takes.
#[inline]
fn len_len(len: Option<usize>, compact: bool, short: bool) -> usize {
    if compact {
        unsigned_varint_len(len.map_or(0, |n| n as u32 + 1))
    } else if short {
        2
    } else {
        4
    }
}

/// Writes a nullable string.
pub fn put_nullable_string<B: BufMut>(buf: &mut B, s: Option<&str>, compact: bool) -> EResult {
    put_len(buf, s.map(str::len), compact, true, "string")?;
    if let Some(s) = s {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes a string.
pub fn put_string<B: BufMut>(buf: &mut B, s: &str, compact: bool) -> EResult {
    put_nullable_string(buf, Some(s), compact)
}

/// Encoded size of a nullable string.
#[inline]
pub fn nullable_string_len(s: Option<&str>, compact: bool) -> usize {
    len_len(s.map(str::len), compact, true) + s.map_or(0, str::len)
}

/// Encoded size of a string.
#[inline]
pub fn string_len(s: &str, compact: bool) -> usize {
    nullable_string_len(Some(s), compact)
}

/// Writes the length prefix of nullable bytes (`None` for null) without
/// the bytes themselves, for a writer that sends them from where they are.
pub fn put_nullable_bytes_len<B: BufMut>(
    buf: &mut B,
    len: Option<usize>,
    compact: bool,
) -> EResult {
    put_len(buf, len, compact, false, "bytes")
}

/// Writes nullable bytes.
pub fn put_nullable_bytes<B: BufMut>(buf: &mut B, b: Option<&[u8]>, compact: bool) -> EResult {
    put_nullable_bytes_len(buf, b.map(<[u8]>::len), compact)?;
    if let Some(b) = b {
        buf.put_slice(b);
    }
    Ok(())
}

/// Writes bytes.
pub fn put_bytes<B: BufMut>(buf: &mut B, b: &[u8], compact: bool) -> EResult {
    put_nullable_bytes(buf, Some(b), compact)
}

/// Encoded size of nullable bytes.
#[inline]
pub fn nullable_bytes_len(b: Option<&[u8]>, compact: bool) -> usize {
    len_len(b.map(<[u8]>::len), compact, false) + b.map_or(0, <[u8]>::len)
}

/// Encoded size of bytes.
#[inline]
pub fn bytes_len(b: &[u8], compact: bool) -> usize {
    nullable_bytes_len(Some(b), compact)
}

/// Writes an array's element count (`None` for a null array).
pub fn put_array_len<B: BufMut>(buf: &mut B, len: Option<usize>, compact: bool) -> EResult {
    put_len(buf, len, compact, false, "array")
}

/// Encoded size of an array's count prefix.
#[inline]
pub fn array_len_len(len: Option<usize>, compact: bool) -> usize {
    len_len(len, compact, false)
}

/// Writes a `uuid`.
#[inline]
pub fn put_uuid<B: BufMut>(buf: &mut B, u: &Uuid) {
    buf.put_slice(&u.0);
}

/// Writes a tagged field whose body is already encoded.
pub fn put_tagged_field<B: BufMut>(buf: &mut B, tag: u32, data: &[u8]) -> EResult {
    let size = u32::try_from(data.len()).map_err(|_| EncodeError::TooLong {
        what: "tagged field",
        length: data.len(),
        limit: u32::MAX as usize,
    })?;
    put_unsigned_varint(buf, tag);
    put_unsigned_varint(buf, size);
    buf.put_slice(data);
    Ok(())
}

/// Encoded size of a tagged field with a body of `size` bytes.
#[inline]
pub fn tagged_field_len(tag: u32, size: usize) -> usize {
    unsigned_varint_len(tag) + unsigned_varint_len(size as u32) + size
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Bytes {
        Bytes::copy_from_slice(v)
    }

    #[test]
    fn varints_match_the_spec_examples() {
        // Zig-zag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 2147483647 -> 4294967294.
        for (v, enc) in [
            (0i32, vec![0x00]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (-2, vec![0x03]),
            (63, vec![0x7e]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
            (i32::MAX, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, enc, "encoding {v}");
            assert_eq!(varint_len(v), enc.len());
            assert_eq!(read_varint(&mut b(&enc)).unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            assert_eq!(read_varlong(&mut b(&out)).unwrap(), v);
        }
    }

    #[test]
    fn varint_lengths_match_the_bytes_written_at_every_bit_count() {
        for bits in 0..=64u32 {
            let v = if bits == 0 {
                0
            } else {
                u64::MAX >> (64 - bits)
            };
            let mut out = Vec::new();
            put_unsigned_varlong(&mut out, v);
            assert_eq!(unsigned_varlong_len(v), out.len(), "{bits} bits");
            assert_eq!(out.len(), (bits.max(1) as usize).div_ceil(7), "{bits} bits");
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let err = read_unsigned_varint(&mut b(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01])).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::VarintTooLong);
        // 5 bytes but above u32::MAX.
        let err = read_unsigned_varint(&mut b(&[0xff, 0xff, 0xff, 0xff, 0x7f])).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::VarintTooLong);
        let err = read_unsigned_varlong(&mut b(&[0xff; 10])).unwrap_err();
        assert_eq!(err.kind(), &DecodeErrorKind::VarintTooLong);
        assert!(read_unsigned_varint(&mut b(&[0x80])).is_err());
    }

    #[test]
    fn strings_classic_and_compact() {
        let mut out = Vec::new();
        put_string(&mut out, "kafka", false).unwrap();
        assert_eq!(out, b"\x00\x05kafka");
        let mut out = Vec::new();
        put_string(&mut out, "kafka", true).unwrap();
        assert_eq!(out, b"\x06kafka");
        let mut out = Vec::new();
        put_nullable_string(&mut out, None, true).unwrap();
        put_nullable_string(&mut out, None, false).unwrap();
        assert_eq!(out, b"\x00\xff\xff");
        let mut input = b(b"\x00\xff\xff\x06kafka");
        assert_eq!(read_nullable_string(&mut input, true).unwrap(), None);
        assert_eq!(read_nullable_string(&mut input, false).unwrap(), None);
        assert_eq!(read_string(&mut input, true).unwrap(), "kafka");
        assert!(input.is_empty());
    }

    #[test]
    fn hostile_lengths_are_rejected_without_allocating() {
        assert_eq!(
            read_string(&mut b(b"\xff\xfe"), false).unwrap_err().kind(),
            &DecodeErrorKind::NegativeLength(-2)
        );
        assert_eq!(
            read_string(&mut b(b"\xff\xff"), false).unwrap_err().kind(),
            &DecodeErrorKind::UnexpectedNull
        );
        assert!(matches!(
            read_bytes(&mut b(b"\x7f\xff\xff\xff"), false)
                .unwrap_err()
                .kind(),
            DecodeErrorKind::UnexpectedEof { .. }
        ));
        assert!(matches!(
            read_array_len(&mut b(b"\x7f\xff\xff\xff\x00"), false)
                .unwrap_err()
                .kind(),
            DecodeErrorKind::LengthTooLarge { .. }
        ));
        assert_eq!(
            read_string(&mut b(b"\x00\x02\xff\xfe"), false)
                .unwrap_err()
                .kind(),
            &DecodeErrorKind::InvalidUtf8
        );
    }

    #[test]
    fn bytes_are_zero_copy() {
        let input = b(b"\x00\x00\x00\x03abcrest");
        let mut cursor = input.clone();
        let got = read_bytes(&mut cursor, false).unwrap();
        assert_eq!(&got[..], b"abc");
        assert_eq!(got.as_ptr(), input[4..].as_ptr());
    }

    #[test]
    fn string_too_long_for_classic_prefix() {
        let s = "x".repeat(40_000);
        let err = put_string(&mut Vec::new(), &s, false).unwrap_err();
        assert!(matches!(err, EncodeError::TooLong { length: 40_000, .. }));
        assert!(put_string(&mut Vec::new(), &s, true).is_ok());
    }

    #[test]
    fn uuid_and_tagged_fields() {
        let u = Uuid::from_u128(0x00112233445566778899aabbccddeeff);
        let mut out = Vec::new();
        put_uuid(&mut out, &u);
        put_tagged_field(&mut out, 3, b"xy").unwrap();
        assert_eq!(out.len(), 16 + tagged_field_len(3, 2));
        let mut input = b(&out);
        assert_eq!(read_uuid(&mut input).unwrap(), u);
        let (tag, data) = read_tagged_field(&mut input).unwrap();
        assert_eq!((tag, &data[..]), (3, &b"xy"[..]));
    }
}
