//! Producer unit tests: the accumulator on its own, and the whole producer
//! against a scripted fake broker.

mod accumulator;
mod fake;
mod faults;
mod send_all;
mod split;
