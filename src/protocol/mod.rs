//! The Kafka wire protocol: primitive types, generated request and response
//! messages, record batches and compression. No I/O happens here: bytes go
//! in, values come out, and the reverse.
//!
//! # References
//! - Kafka protocol guide: <https://kafka.apache.org/protocol>
//! - KIP-482 (tagged fields and flexible versions)

pub mod api_versions;
pub mod codec;
pub mod compression;
pub mod error;
pub mod error_codes;
pub mod frame;
pub mod fuzz;
pub mod int32_list;
pub mod messages;
pub mod primitives;
pub mod records;

#[cfg(test)]
mod message_tests;

#[cfg(test)]
mod golden_tests;
