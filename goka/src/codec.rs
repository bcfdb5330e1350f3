//! How values become bytes and back (goka's `Codec`), with goka's three
//! built-in codecs and JSON.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::{BoxError, Error};

/// Encodes and decodes the values of one topic. goka's codecs work on
/// `interface{}`; here each has its value type.
pub trait Codec: Send + Sync + 'static {
    /// The values.
    type Value: Send + Sync + 'static;
    /// The bytes of `value`.
    fn encode(&self, value: &Self::Value) -> Result<Vec<u8>, BoxError>;
    /// The value of `data`.
    fn decode(&self, data: &[u8]) -> Result<Self::Value, BoxError>;
}

/// Bytes as they are (goka's `codec.Bytes`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Value = Vec<u8>;
    fn encode(&self, value: &Vec<u8>) -> Result<Vec<u8>, BoxError> {
        Ok(value.clone())
    }
    fn decode(&self, data: &[u8]) -> Result<Vec<u8>, BoxError> {
        Ok(data.to_vec())
    }
}

/// UTF-8 text (goka's `codec.String`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringCodec;

impl Codec for StringCodec {
    type Value = String;
    fn encode(&self, value: &String) -> Result<Vec<u8>, BoxError> {
        Ok(value.as_bytes().to_vec())
    }
    fn decode(&self, data: &[u8]) -> Result<String, BoxError> {
        Ok(String::from_utf8(data.to_vec())?)
    }
}

/// A signed integer as decimal text (goka's `codec.Int64`: 12 is `"12"`).
///
/// ```
/// use klamm_goka::{Codec, Int64Codec};
/// assert_eq!(Int64Codec.encode(&-12).unwrap(), b"-12");
/// assert_eq!(Int64Codec.decode(b"42").unwrap(), 42);
/// assert!(Int64Codec.decode(b"4x").is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Int64Codec;

impl Codec for Int64Codec {
    type Value = i64;
    fn encode(&self, value: &i64) -> Result<Vec<u8>, BoxError> {
        Ok(value.to_string().into_bytes())
    }
    fn decode(&self, data: &[u8]) -> Result<i64, BoxError> {
        Ok(std::str::from_utf8(data)?.parse()?)
    }
}

/// Any serde type as JSON (goka's examples write their own).
#[derive(Debug)]
pub struct JsonCodec<T>(PhantomData<fn() -> T>);

impl<T> JsonCodec<T> {
    /// The codec.
    pub fn new() -> JsonCodec<T> {
        JsonCodec(PhantomData)
    }
}

impl<T> Default for JsonCodec<T> {
    fn default() -> Self {
        JsonCodec::new()
    }
}

impl<T> Clone for JsonCodec<T> {
    fn clone(&self) -> Self {
        JsonCodec::new()
    }
}

impl<T> Codec for JsonCodec<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    type Value = T;
    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
    }
    fn decode(&self, data: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_slice(data)?)
    }
}

/// A codec behind its value type, for edges of a graph that hold
/// different types.
pub(crate) trait AnyCodec: Send + Sync {
    fn encode_any(&self, value: &dyn Any) -> Result<Vec<u8>, Error>;
    fn decode_any(&self, data: &[u8]) -> Result<Box<dyn Any + Send>, Error>;
    fn type_name(&self) -> &'static str;
}

impl<C: Codec> AnyCodec for C {
    fn encode_any(&self, value: &dyn Any) -> Result<Vec<u8>, Error> {
        let value = value.downcast_ref::<C::Value>().ok_or_else(|| {
            Error::Context(format!(
                "the value is not a {} (the codec's type)",
                std::any::type_name::<C::Value>()
            ))
        })?;
        self.encode(value).map_err(Error::Codec)
    }

    fn decode_any(&self, data: &[u8]) -> Result<Box<dyn Any + Send>, Error> {
        Ok(Box::new(self.decode(data).map_err(Error::Codec)?))
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<C::Value>()
    }
}

pub(crate) type SharedCodec = Arc<dyn AnyCodec>;

/// Decodes with `codec` into `T`, or says which type the codec makes.
pub(crate) fn decode_as<T: 'static>(codec: &SharedCodec, data: &[u8]) -> Result<T, Error> {
    let any = codec.decode_any(data)?;
    any.downcast::<T>().map(|b| *b).map_err(|_| {
        Error::Context(format!(
            "asked for a {} but the codec gives {}",
            std::any::type_name::<T>(),
            codec.type_name()
        ))
    })
}
