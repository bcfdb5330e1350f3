//! klamm and Sarama (github.com/IBM/sarama v1.61.1, `peers/sarama`, built
//! by `scripts/peers`) on Apache Kafka 4.4.0, both directions, record by
//! record, for each codec: the interop pattern (peers/PATTERN.md: null and
//! empty keys and values, repeated and null-valued headers, explicit
//! timestamps) written by one client must come back from the other
//! byte-exact, in order, nothing missing and nothing extra.
//!
//! The peer is `KLAMM_SARAMA_PEER` (`scripts/test` exports it); without it
//! these tests fail unless `KLAMM_SKIP_BROKER_TESTS=1`.

mod support;

use klamm::protocol::compression::Compression;
use support::interop_peers::{
    PeerProgram, klamm_writes_peer_reads, pattern_agrees, peer_verifies, peer_writes_klamm_reads,
};

/// Partitions of each round-trip topic, and records per partition.
const PARTITIONS: i32 = 3;
const COUNT: u64 = 300;

#[test]
fn sarama_pattern_equals_klamms() {
    pattern_agrees(PeerProgram::sarama());
}

#[test]
fn sarama_verifies_60000_records_and_reports_the_two_wrong_ones() {
    peer_verifies(PeerProgram::sarama(), 20_000);
}

fn klamm_to_sarama(codec: Compression) {
    klamm_writes_peer_reads(PeerProgram::sarama(), codec, PARTITIONS, COUNT);
}

fn sarama_to_klamm(codec: Compression) {
    peer_writes_klamm_reads(PeerProgram::sarama(), codec, PARTITIONS, COUNT);
}

#[test]
fn klamm_writes_sarama_reads_none() {
    klamm_to_sarama(Compression::None);
}

#[test]
fn klamm_writes_sarama_reads_gzip() {
    klamm_to_sarama(Compression::Gzip);
}

#[test]
fn klamm_writes_sarama_reads_snappy() {
    klamm_to_sarama(Compression::Snappy);
}

#[test]
fn klamm_writes_sarama_reads_lz4() {
    klamm_to_sarama(Compression::Lz4);
}

#[test]
fn klamm_writes_sarama_reads_zstd() {
    klamm_to_sarama(Compression::Zstd);
}

#[test]
fn sarama_writes_klamm_reads_none() {
    sarama_to_klamm(Compression::None);
}

#[test]
fn sarama_writes_klamm_reads_gzip() {
    sarama_to_klamm(Compression::Gzip);
}

#[test]
fn sarama_writes_klamm_reads_snappy() {
    sarama_to_klamm(Compression::Snappy);
}

#[test]
fn sarama_writes_klamm_reads_lz4() {
    sarama_to_klamm(Compression::Lz4);
}

#[test]
fn sarama_writes_klamm_reads_zstd() {
    sarama_to_klamm(Compression::Zstd);
}
