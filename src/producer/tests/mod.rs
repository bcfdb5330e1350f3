//! Producer unit tests: the accumulator on its own, and the whole producer
//! against klamm-fake's in-process cluster.

mod accumulator;
mod cluster;
mod custom_partitioner;
mod faults;
mod send_all;
mod split;
