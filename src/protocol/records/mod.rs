//! Kafka record data: v2 record batches (magic 2), control records, the
//! legacy message sets (magic 0 and 1), and the decoder for the `records`
//! field of Fetch responses, which may mix them and end in a partial batch.
//!
//! Decoding from [`bytes::Bytes`] is zero-copy: keys, values and header
//! parts are slices of the input (or, for a compressed batch, of its one
//! decompressed buffer). Hostile input gives a
//! [`DecodeError`](crate::protocol::error::DecodeError) with a path
//! (`RecordBatch.Record.key`, ...), never a panic, and no length prefix
//! makes the decoder reserve more than the remaining bytes could hold.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use klamm::protocol::records::{
//!     DecodeOptions, EncodeOptions, Header, Record, RecordBatch,
//! };
//!
//! let mut batch = RecordBatch::new(100, 1_700_000_000_000);
//! batch.records.push(
//!     Record::new(Some(Bytes::from_static(b"k1")), Some(Bytes::from_static(b"hello")))
//!         .with_header(Header::new("trace", "abc")),
//! );
//! batch.records.push(
//!     Record::new(None, Some(Bytes::from_static(b"world")))
//!         .with_offset_delta(1)
//!         .with_timestamp_delta(5),
//! );
//!
//! let mut buf = BytesMut::new();
//! batch.encode(&mut buf, &EncodeOptions::default())?;
//!
//! let mut input = buf.freeze();
//! let decoded = RecordBatch::decode(&mut input, &DecodeOptions::default())?;
//! assert!(input.is_empty());
//! assert_eq!(decoded.records, batch.records);
//! assert_eq!(decoded.last_offset(), 101);
//! let second = decoded.iter().nth(1).unwrap();
//! assert_eq!((second.offset, second.timestamp), (101, 1_700_000_000_005));
//! assert_eq!(decoded.records[0].headers[0].key_str(), Some("trace"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Performance
//!
//! Decoding allocates the `Vec` of records and, only for records that have
//! headers, their header `Vec`; everything else is a slice. Encoding sizes
//! an uncompressed batch up front, reserves once and writes it in one pass,
//! back-filling length and CRC. `proptests::throughput` (an ignored test)
//! prints the rates for 1000 records of about 125 bytes.
//!
//! # References
//! - Kafka documentation, "Message Format" (record batch v2, control
//!   batches, legacy message sets)
//! - KIP-31/KIP-32 (relative offsets and timestamps in magic 1)
//! - KIP-98 (transactions and control records)

mod batch;
mod control;
mod legacy;
mod record;
mod set;

use std::ops::DerefMut;

use bytes::{BufMut, BytesMut};

use super::compression::{self, Compression};
use super::error::EncodeError;

pub(crate) use batch::EncodedRecords;
pub use batch::{BATCH_HEADER_SIZE, RecordBatch, RecordRef};
pub use control::{ControlRecord, ControlRecordType, EndTransactionMarker};
pub use legacy::{LegacyBatch, LegacyMagic, LegacyMessage, encode_message_set};
pub use record::{Header, Record};
pub use set::{Batch, RecordSet, decode_record_set};

/// How record timestamps were assigned (batch attribute bit 3; bit 3 of a
/// magic-1 message's attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch.
    LogAppendTime,
}

impl TimestampType {
    /// The type from attribute bit 3.
    pub(crate) fn from_bit(set: bool) -> Self {
        if set {
            Self::LogAppendTime
        } else {
            Self::CreateTime
        }
    }

    /// Whether attribute bit 3 is set.
    pub(crate) fn bit(self) -> bool {
        self == Self::LogAppendTime
    }
}

/// Options for decoding record data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The most bytes one compressed batch (or legacy wrapper message) may
    /// decompress to. Default [`compression::DEFAULT_MAX_DECOMPRESSED_SIZE`].
    pub max_decompressed_size: usize,
    /// Whether to check CRCs (CRC-32C for v2 batches, CRC-32 for legacy
    /// messages). Default `true`.
    pub verify_crc: bool,
    /// Whether the records of an uncompressed v2 batch are slices of a copy
    /// of the batch, a buffer of its own, rather than of the buffer the batch
    /// was read from, when its records take 1 KiB or less each on average.
    /// Default `false`: no copy.
    ///
    /// Every key and value sliced from one buffer shares that buffer's
    /// reference count. A consumer that decodes a fetch response on one
    /// thread while its records are dropped on another has both threads
    /// write that one count for every record, and the count's cache line
    /// moves between the cores each time. A buffer per batch keeps the two
    /// threads on different counts, and a record of a copied batch keeps
    /// only that copy alive, not the whole response. klamm's consumers set
    /// it: it halved the CPU per record of an uncompressed consume of
    /// 100-byte records (`benches/RESULTS.md`, "One buffer per batch").
    /// Bigger records are fewer per byte, and past 1 KiB the copy costs
    /// more than it saves, so their batches stay where they are. A compressed batch always has its
    /// own buffer, the decompressed records; the messages of a legacy
    /// message set are never copied.
    pub copy_uncompressed_batches: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_decompressed_size: compression::DEFAULT_MAX_DECOMPRESSED_SIZE,
            verify_crc: true,
            copy_uncompressed_batches: false,
        }
    }
}

impl DecodeOptions {
    /// Sets whether CRCs are verified.
    pub fn with_verify_crc(mut self, verify: bool) -> Self {
        self.verify_crc = verify;
        self
    }

    /// Sets whether the records of an uncompressed batch are slices of a
    /// copy of it (see [`DecodeOptions::copy_uncompressed_batches`]).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use klamm::protocol::records::{DecodeOptions, EncodeOptions, Record, RecordBatch};
    ///
    /// let mut batch = RecordBatch::new(0, 0);
    /// batch.records.push(Record::new(None, Some(Bytes::from_static(b"v"))));
    /// let wire = Bytes::from(batch.encode_to_vec(&EncodeOptions::default()).unwrap());
    /// let range = wire.as_ptr_range();
    /// let value_in_wire = |opts: DecodeOptions| {
    ///     let decoded = RecordBatch::decode(&mut wire.clone(), &opts).unwrap();
    ///     let value = decoded.records[0].value.clone().unwrap();
    ///     range.contains(&value.as_ptr())
    /// };
    /// assert!(value_in_wire(DecodeOptions::default()));
    /// assert!(!value_in_wire(DecodeOptions::default().with_copy_uncompressed_batches(true)));
    /// ```
    pub fn with_copy_uncompressed_batches(mut self, copy: bool) -> Self {
        self.copy_uncompressed_batches = copy;
        self
    }

    /// Sets the decompressed-size cap.
    pub fn with_max_decompressed_size(mut self, max: usize) -> Self {
        self.max_decompressed_size = max;
        self
    }
}

/// Options for encoding record data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeOptions {
    /// The codec for the records section (v2) or the wrapper message
    /// (legacy). This decides the codec written; a batch's own
    /// `compression` field only reports what it was decoded with.
    pub compression: Compression,
    /// The codec's level; `None` for its default.
    pub level: Option<i32>,
}

impl EncodeOptions {
    /// Options that compress with `codec` at its default level.
    pub fn compressed(codec: Compression) -> Self {
        Self {
            compression: codec,
            level: None,
        }
    }

    /// Sets the compression level.
    pub fn with_level(mut self, level: i32) -> Self {
        self.level = Some(level);
        self
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for Vec<u8> {}
    impl Sealed for bytes::BytesMut {}
}

/// A buffer record data can be encoded into: `Vec<u8>` or `BytesMut`.
/// Encoders write a header with placeholder length and CRC, then fill them
/// in place, so the buffer must allow writes to what it already holds.
pub trait EncodeTarget: BufMut + DerefMut<Target = [u8]> + sealed::Sealed {
    /// Drops everything after the first `len` bytes (used to undo a
    /// partial write on error).
    fn truncate_to(&mut self, len: usize);

    /// Reserves room for at least `additional` more bytes.
    fn reserve_more(&mut self, additional: usize);

    /// Appends `input` compressed with `codec`.
    fn append_compressed(
        &mut self,
        codec: Compression,
        level: Option<i32>,
        input: &[u8],
    ) -> Result<(), EncodeError>;

    /// Appends `input` compressed with the magic-0 LZ4 framing.
    fn append_lz4_legacy(&mut self, input: &[u8]) -> Result<(), EncodeError>;
}

impl EncodeTarget for Vec<u8> {
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }

    fn reserve_more(&mut self, additional: usize) {
        self.reserve(additional);
    }

    fn append_compressed(
        &mut self,
        codec: Compression,
        level: Option<i32>,
        input: &[u8],
    ) -> Result<(), EncodeError> {
        compression::compress(codec, level, input, self)
    }

    fn append_lz4_legacy(&mut self, input: &[u8]) -> Result<(), EncodeError> {
        compression::compress_lz4_legacy_v0(input, self)
    }
}

impl EncodeTarget for BytesMut {
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }

    fn reserve_more(&mut self, additional: usize) {
        self.reserve(additional);
    }

    fn append_compressed(
        &mut self,
        codec: Compression,
        level: Option<i32>,
        input: &[u8],
    ) -> Result<(), EncodeError> {
        let mut tmp = Vec::with_capacity(input.len() / 2 + 64);
        compression::compress(codec, level, input, &mut tmp)?;
        self.extend_from_slice(&tmp);
        Ok(())
    }

    fn append_lz4_legacy(&mut self, input: &[u8]) -> Result<(), EncodeError> {
        let mut tmp = Vec::with_capacity(input.len() / 2 + 64);
        compression::compress_lz4_legacy_v0(input, &mut tmp)?;
        self.extend_from_slice(&tmp);
        Ok(())
    }
}

/// Length as the `int32` the wire carries, or a `TooLong` error.
pub(crate) fn wire_len(n: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(n).map_err(|_| EncodeError::TooLong {
        what,
        length: n,
        limit: i32::MAX as usize,
    })
}

#[cfg(test)]
mod proptests;
