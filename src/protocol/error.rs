//! Errors raised while encoding or decoding wire data.
//!
//! Decoding errors carry a *kind* (what was wrong) and a *path* (where: the
//! chain of message and field names, outermost first, plus the byte offset
//! from the end of the input when it is known). The path is only built on the
//! error path, so successful decodes pay nothing for it.

use std::fmt;

/// What went wrong while decoding bytes from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before a value was complete.
    UnexpectedEof {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix was negative (other than the -1 that means null).
    NegativeLength(i64),
    /// A length prefix was larger than a configured or structural limit.
    LengthTooLarge {
        /// The length that was read.
        length: u64,
        /// The largest length accepted here.
        limit: u64,
    },
    /// A null value where this version does not allow null.
    UnexpectedNull,
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A varint ran past its maximum encoded size.
    VarintTooLong,
    /// A version outside the range this message supports.
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
        /// Lowest supported version.
        min: i16,
        /// Highest supported version.
        max: i16,
    },
    /// An API key that does not name a known Kafka API.
    UnknownApiKey(i16),
    /// Bytes were left after a complete value where none may follow.
    TrailingBytes(usize),
    /// A checksum did not match the data it covers.
    CrcMismatch {
        /// The checksum stored on the wire.
        stored: u32,
        /// The checksum computed over the data.
        computed: u32,
    },
    /// A value that is structurally invalid (an unknown magic byte, a bad
    /// attribute combination, ...). The text says which.
    Invalid(String),
    /// Decompressing a payload failed.
    Decompression(String),
    /// Decompressed output would exceed the configured cap.
    DecompressedTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Nesting went deeper than the decoder allows.
    TooDeep {
        /// The maximum depth.
        limit: usize,
    },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEof { needed, remaining } => {
                write!(
                    f,
                    "unexpected end of input: needed {needed} bytes, {remaining} left"
                )
            }
            Self::NegativeLength(n) => write!(f, "negative length {n}"),
            Self::LengthTooLarge { length, limit } => {
                write!(f, "length {length} exceeds the limit of {limit}")
            }
            Self::UnexpectedNull => f.write_str("null where this version does not allow null"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::VarintTooLong => f.write_str("varint is longer than its maximum size"),
            Self::UnsupportedVersion { version, min, max } => {
                write!(
                    f,
                    "version {version} is outside the supported range {min}..={max}"
                )
            }
            Self::UnknownApiKey(k) => write!(f, "unknown API key {k}"),
            Self::TrailingBytes(n) => write!(f, "{n} unexpected trailing bytes"),
            Self::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Self::Invalid(what) => write!(f, "invalid value: {what}"),
            Self::Decompression(what) => write!(f, "decompression failed: {what}"),
            Self::DecompressedTooLarge { limit } => {
                write!(f, "decompressed data exceeds the cap of {limit} bytes")
            }
            Self::TooDeep { limit } => write!(f, "nesting deeper than {limit} levels"),
        }
    }
}

/// An error decoding wire data: what was wrong and where.
///
/// ```
/// use bytes::Bytes;
/// use klamm::protocol::primitives::read_i32;
///
/// let mut buf = Bytes::from_static(&[0, 1]);
/// let err = read_i32(&mut buf).unwrap_err();
/// assert!(err.to_string().contains("needed 4 bytes"));
/// ```
///
/// The error is one pointer wide (its details live in a box), so the
/// `Result`s that every read returns stay small on the success path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(Box<Details>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    kind: DecodeErrorKind,
    /// Innermost first while the error travels outwards.
    path: Vec<&'static str>,
    remaining: Option<usize>,
}

impl DecodeError {
    /// A new error of the given kind, with no location yet.
    #[cold]
    pub fn new(kind: DecodeErrorKind) -> Self {
        Self(Box::new(Details {
            kind,
            path: Vec::new(),
            remaining: None,
        }))
    }

    /// Shorthand for an [`DecodeErrorKind::Invalid`] error.
    #[cold]
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::new(DecodeErrorKind::Invalid(what.into()))
    }

    /// Shorthand for an [`DecodeErrorKind::UnexpectedEof`] error.
    #[cold]
    pub fn eof(needed: usize, remaining: usize) -> Self {
        Self::new(DecodeErrorKind::UnexpectedEof { needed, remaining })
    }

    /// What was wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.0.kind
    }

    /// Where: the message and field names from the outermost inwards.
    pub fn path(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.path.iter().rev().copied()
    }

    /// How many input bytes were left when the error was found, if known.
    pub fn remaining_at_error(&self) -> Option<usize> {
        self.0.remaining
    }

    /// Adds an enclosing location (a field or message name). Called from the
    /// inside out, so the innermost name is pushed first.
    #[cold]
    pub fn context(mut self, name: &'static str) -> Self {
        self.0.path.push(name);
        self
    }

    /// Records how many bytes were left when the error happened, keeping the
    /// innermost (first recorded) figure.
    #[cold]
    pub fn at_remaining(mut self, remaining: usize) -> Self {
        if self.0.remaining.is_none() {
            self.0.remaining = Some(remaining);
        }
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.path.is_empty() {
            let mut first = true;
            for p in self.path() {
                if !first {
                    f.write_str(".")?;
                }
                first = false;
                f.write_str(p)?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{}", self.0.kind)?;
        if let Some(r) = self.0.remaining {
            write!(f, " ({r} bytes of input left)")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        Self::new(kind)
    }
}

/// An error encoding a value for the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field holds a non-default value but the chosen version cannot carry it.
    #[error("{message}.{field} holds a non-default value that version {version} cannot carry")]
    FieldNotSupported {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A field is null but the chosen version does not allow null there.
    #[error("{message}.{field} is null, which version {version} does not allow")]
    NullNotAllowed {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// The version is outside the message's supported range.
    #[error("{message} does not support version {version} (supported {min}..={max})")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
        /// Lowest supported version.
        min: i16,
        /// Highest supported version.
        max: i16,
    },
    /// A length does not fit the wire's length prefix.
    #[error("{what} is {length} long, more than the wire format can carry ({limit})")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        length: usize,
        /// The maximum.
        limit: usize,
    },
    /// A value that cannot be encoded (the text says why).
    #[error("cannot encode: {0}")]
    Invalid(String),
    /// Compressing a payload failed.
    #[error("compression failed: {0}")]
    Compression(String),
}
