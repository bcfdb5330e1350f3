//! The consumer; today only transaction filtering for `read_committed`.
//!
//! [`transactions`] turns one partition's Fetch data into the record
//! batches a consumer with a given [`IsolationLevel`] must see: under
//! `read_committed`, the data of aborted transactions, control batches and
//! anything at or past the last stable offset are dropped.
//!
//! [`IsolationLevel`]: crate::config::IsolationLevel

pub mod transactions;

pub use transactions::{TransactionFilter, committed_batches};
