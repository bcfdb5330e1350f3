//! # klamm
//!
//! A pure-Rust client for the Apache Kafka wire protocol.
//!
//! Today klamm provides the protocol layer: codecs for every request and
//! response of every Kafka API, record batches and legacy message sets,
//! and all compression codecs, plus the [`Config`] that the network layer,
//! producers, consumers and admin will share. See the README for what is
//! not built yet.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod consumer;
pub mod error;
pub mod net;
pub mod producer;
pub mod protocol;
#[cfg(test)]
mod test_support;

pub use client::Client;
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
