//! Kafka record data: v2 record batches (magic 2), control records, the
//! legacy message sets (magic 0 and 1), and the decoder for the `records`
//! field of Fetch responses.
//!
//! Work in progress: this commit holds the v2 record layer only; batches
//! follow once the compression module is merged.

mod record;

pub use record::{Header, Record};
