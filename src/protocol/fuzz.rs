//! Fuzz entry points for the protocol decoders.
//!
//! Every function here takes arbitrary bytes and feeds them to one decoder
//! (or a decode/encode round trip). None of them may panic on any input: a
//! decoder must answer hostile bytes with an error. The functions panic
//! only to report a real bug, such as an encoder that cannot write back
//! what its decoder accepted, or a round trip that changes the bytes.
//!
//! They are shared by the cargo-fuzz crate in `fuzz/` (one
//! `fuzz_target!` per entry of [`TARGETS`], each calling [`run`]) and by
//! the replay test `tests/fuzz_corpus.rs`, which runs every file of the
//! committed corpus `fuzz/corpus/<target>/` through [`run`] on stable Rust.
//!
//! Decompression is capped at [`MAX_DECOMPRESSED`] (1 MiB) everywhere, so
//! a compression bomb cannot make the fuzzer run out of memory.
//!
//! ```
//! use klamm::protocol::fuzz;
//!
//! assert!(fuzz::TARGETS.contains(&"record_batch"));
//! assert!(fuzz::run("record_batch", b"not a batch"));
//! assert!(!fuzz::run("no_such_target", b""));
//! ```
//!
//! # Input layouts
//!
//! - `request_body`, `response_body`: byte 0 picks the API
//!   (`ApiKey::ALL[b0 % 76]`), byte 1 the version within that API's range
//!   (`min + b1 % (max - min + 1)`), the rest is the message body.
//! - `roundtrip`: byte 0 picks the mode (`b0 % 4`): 0 a request and 1 a
//!   response (then API and version bytes and the body, as above), 2 a v2
//!   record batch and 3 a legacy message set (the rest of the input).
//! - `request_frame`: a request frame without its size prefix; the same
//!   bytes are also split as a stream of size-prefixed frames.
//! - every other target: the whole input goes to the decoder.

use bytes::{Bytes, BytesMut};

use super::compression::{self, Compression};
use super::frame;
use super::messages::{ApiKey, RequestBody, ResponseBody};
use super::records::{
    DecodeOptions, EncodeOptions, LegacyBatch, LegacyMagic, RecordBatch, TimestampType,
    decode_record_set, encode_message_set,
};

/// The decompression cap for every target: 1 MiB.
pub const MAX_DECOMPRESSED: usize = 1024 * 1024;

/// The largest frame `request_frame` lets [`frame::split_frame`] accept.
pub const MAX_SPLIT_FRAME: usize = 4096;

/// The name of every fuzz target, in the order of the `fuzz/fuzz_targets`
/// files. [`run`] accepts exactly these names.
pub const TARGETS: &[&str] = &[
    "request_body",
    "response_body",
    "request_frame",
    "record_batch",
    "record_set",
    "message_set",
    "decompress_gzip",
    "decompress_snappy",
    "decompress_lz4",
    "decompress_zstd",
    "roundtrip",
];

/// Runs the target named `target` on `data`. Returns `false` (and does
/// nothing) when no target has that name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "request_body" => request_body(data),
        "response_body" => response_body(data),
        "request_frame" => request_frame(data),
        "record_batch" => record_batch(data),
        "record_set" => record_set(data),
        "message_set" => message_set(data),
        "decompress_gzip" => decompress_gzip(data),
        "decompress_snappy" => decompress_snappy(data),
        "decompress_lz4" => decompress_lz4(data),
        "decompress_zstd" => decompress_zstd(data),
        "roundtrip" => roundtrip(data),
        _ => return false,
    }
    true
}

fn opts(verify_crc: bool) -> DecodeOptions {
    DecodeOptions::default()
        .with_verify_crc(verify_crc)
        .with_max_decompressed_size(MAX_DECOMPRESSED)
}

/// Splits `data` into (API, version, body) by its first two bytes, or
/// `None` when it is shorter than two bytes.
pub fn select_api(data: &[u8]) -> Option<(ApiKey, i16, &[u8])> {
    let [a, v, body @ ..] = data else {
        return None;
    };
    let key = ApiKey::ALL[usize::from(*a) % ApiKey::ALL.len()];
    let (min, max) = key.versions();
    let span = i32::from(max) - i32::from(min) + 1;
    let version = (i32::from(min) + i32::from(*v) % span) as i16;
    Some((key, version, body))
}

/// The two-byte prefix [`select_api`] maps to `key` at `version`.
pub fn api_prefix(key: ApiKey, version: i16) -> [u8; 2] {
    let (min, _) = key.versions();
    [key.code() as u8, (version - min) as u8]
}

/// `RequestBody::decode` on the body, for the API and version the first
/// two bytes pick.
pub fn request_body(data: &[u8]) {
    if let Some((key, version, body)) = select_api(data) {
        let _ = RequestBody::decode(key, &mut Bytes::copy_from_slice(body), version);
    }
}

/// `ResponseBody::decode` on the body, for the API and version the first
/// two bytes pick.
pub fn response_body(data: &[u8]) {
    if let Some((key, version, body)) = select_api(data) {
        let _ = ResponseBody::decode(key, &mut Bytes::copy_from_slice(body), version);
    }
}

/// [`frame::decode_request`] on the whole input, then
/// [`frame::split_frame`] (at most [`MAX_SPLIT_FRAME`] bytes a frame) over
/// it as a stream, decoding each frame it yields.
pub fn request_frame(data: &[u8]) {
    let _ = frame::decode_request(Bytes::copy_from_slice(data));
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match frame::split_frame(&mut buf, MAX_SPLIT_FRAME) {
            Ok(Some(f)) => {
                assert!(f.len() <= MAX_SPLIT_FRAME, "split_frame exceeded its max");
                assert_eq!(before, buf.len() + 4 + f.len(), "split_frame lost bytes");
                let _ = frame::decode_request(f.freeze());
            }
            Ok(None) => {
                assert_eq!(before, buf.len(), "split_frame consumed a partial frame");
                break;
            }
            Err(_) => break,
        }
    }
}

/// [`RecordBatch::decode`] with and without CRC checks, reading every
/// derived value (offsets, timestamps, control records) of a decoded batch.
pub fn record_batch(data: &[u8]) {
    for verify in [false, true] {
        let mut buf = Bytes::copy_from_slice(data);
        if let Ok(batch) = RecordBatch::decode(&mut buf, &opts(verify)) {
            touch_batch(&batch);
        }
    }
}

fn touch_batch(batch: &RecordBatch) {
    let _ = batch.last_offset();
    let _ = batch.next_offset();
    let _ = batch.effective_max_timestamp();
    let _ = batch.delete_horizon_ms();
    for r in batch.iter() {
        let _ = (r.offset, r.timestamp);
        for h in &r.record.headers {
            let _ = h.key_str();
        }
    }
    batch.control_records().for_each(drop);
}

/// [`decode_record_set`] with and without CRC checks.
pub fn record_set(data: &[u8]) {
    for verify in [false, true] {
        if let Ok(set) = decode_record_set(Bytes::copy_from_slice(data), &opts(verify)) {
            assert!(set.truncated_bytes <= data.len());
            let _ = set.record_count();
            for b in &set.batches {
                let _ = b.next_offset();
                if let super::records::Batch::V2(batch) = b {
                    touch_batch(batch);
                }
            }
        }
    }
}

/// [`LegacyBatch::decode`] repeatedly over the input until it fails or the
/// input is used up, with and without CRC checks.
pub fn message_set(data: &[u8]) {
    for verify in [false, true] {
        let mut buf = Bytes::copy_from_slice(data);
        while !buf.is_empty() {
            let before = buf.len();
            match LegacyBatch::decode(&mut buf, &opts(verify)) {
                Ok(b) => {
                    assert!(buf.len() < before, "LegacyBatch::decode made no progress");
                    let _ = b.next_offset();
                }
                Err(_) => break,
            }
        }
    }
}

fn decompress_target(codec: Compression, data: &[u8]) {
    if let Ok(out) = compression::decompress(codec, data, MAX_DECOMPRESSED) {
        assert!(out.len() <= MAX_DECOMPRESSED, "{codec} exceeded its cap");
    }
    // And the other way: what klamm compresses must come back unchanged.
    let mut packed = Vec::new();
    compression::compress(codec, None, data, &mut packed)
        .unwrap_or_else(|e| panic!("{codec}: compressing {} bytes failed: {e}", data.len()));
    let back = compression::decompress(codec, &packed, data.len())
        .unwrap_or_else(|e| panic!("{codec}: decompressing own output failed: {e}"));
    assert!(
        back == data,
        "{codec}: compression round trip changed the data"
    );
}

/// [`compression::decompress`] of gzip input (capped), and a gzip
/// compress/decompress round trip of the input.
pub fn decompress_gzip(data: &[u8]) {
    decompress_target(Compression::Gzip, data);
}

/// [`compression::decompress`] of snappy input (xerial framing or a raw
/// block, capped), and a snappy round trip of the input.
pub fn decompress_snappy(data: &[u8]) {
    decompress_target(Compression::Snappy, data);
}

/// [`compression::decompress`] of LZ4 frames (capped), and LZ4 round trips
/// of the input in both the current and the magic-0 framing.
pub fn decompress_lz4(data: &[u8]) {
    decompress_target(Compression::Lz4, data);
    let mut packed = Vec::new();
    compression::compress_lz4_legacy_v0(data, &mut packed)
        .unwrap_or_else(|e| panic!("lz4 legacy: compressing failed: {e}"));
    let back = compression::decompress(Compression::Lz4, &packed, data.len())
        .unwrap_or_else(|e| panic!("lz4 legacy: decompressing own output failed: {e}"));
    assert!(back == data, "lz4 legacy: round trip changed the data");
}

/// [`compression::decompress`] of zstd frames (capped), and a zstd round
/// trip of the input.
pub fn decompress_zstd(data: &[u8]) {
    decompress_target(Compression::Zstd, data);
}

/// Decode/encode round trips; see the module documentation for the input
/// layout.
///
/// For messages: whatever decodes must encode (an error is a bug), to
/// exactly `encoded_len` bytes, which must decode again and re-encode to
/// the same bytes. Bytes are compared rather than values, since a float64
/// field may hold NaN.
///
/// For a v2 batch that decodes with its CRC checked: re-encoded without
/// compression it must decode to the same batch. For legacy messages that
/// decode with their CRC checked: re-encoded as plain messages they must
/// decode to the same keys, values, offsets and timestamps.
pub fn roundtrip(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Some((key, version, body)) = select_api(rest) {
                roundtrip_request(key, version, body);
            }
        }
        1 => {
            if let Some((key, version, body)) = select_api(rest) {
                roundtrip_response(key, version, body);
            }
        }
        2 => roundtrip_record_batch(rest),
        _ => roundtrip_message_set(rest),
    }
}

macro_rules! roundtrip_body {
    ($name:ident, $body:ty, $what:literal) => {
        fn $name(key: ApiKey, version: i16, body: &[u8]) {
            let Ok(value) = <$body>::decode(key, &mut Bytes::copy_from_slice(body), version) else {
                return;
            };
            let mut b2 = BytesMut::new();
            if let Err(e) = value.encode(&mut b2, version) {
                panic!(
                    "{} {key} v{version}: decoded but cannot encode: {e}\n{value:?}",
                    $what
                );
            }
            assert_eq!(
                value.encoded_len(version),
                b2.len(),
                "{} {key} v{version}: encoded_len disagrees with the bytes written\n{value:?}",
                $what
            );
            let b2 = b2.freeze();
            let mut rest = b2.clone();
            let again = match <$body>::decode(key, &mut rest, version) {
                Ok(v) => v,
                Err(e) => panic!(
                    "{} {key} v{version}: own encoding does not decode: {e}\n{value:?}\n{b2:?}",
                    $what
                ),
            };
            assert!(
                rest.is_empty(),
                "{} {key} v{version}: {} bytes left after decoding own encoding",
                $what,
                rest.len()
            );
            let mut b3 = BytesMut::new();
            if let Err(e) = again.encode(&mut b3, version) {
                panic!("{} {key} v{version}: re-encode failed: {e}", $what);
            }
            assert!(
                b3[..] == b2[..],
                "{} {key} v{version}: re-encoding changed the bytes\nfirst:  {b2:?}\nsecond: {b3:?}\n{value:?}",
                $what
            );
        }
    };
}

roundtrip_body!(roundtrip_request, RequestBody, "request");
roundtrip_body!(roundtrip_response, ResponseBody, "response");

fn roundtrip_record_batch(data: &[u8]) {
    let strict = opts(true);
    let Ok(mut batch) = RecordBatch::decode(&mut Bytes::copy_from_slice(data), &strict) else {
        return;
    };
    let encoded = batch
        .encode_to_vec(&EncodeOptions::default())
        .unwrap_or_else(|e| panic!("decoded v2 batch cannot be re-encoded: {e}\n{batch:?}"));
    let mut input = Bytes::from(encoded);
    let back = RecordBatch::decode(&mut input, &strict)
        .unwrap_or_else(|e| panic!("re-encoded v2 batch does not decode: {e}\n{batch:?}"));
    assert!(input.is_empty(), "re-encoded v2 batch left bytes over");
    batch.compression = Compression::None;
    assert_eq!(
        back, batch,
        "v2 batch changed in an uncompressed round trip"
    );
}

fn roundtrip_message_set(data: &[u8]) {
    let strict = opts(true);
    let mut buf = Bytes::copy_from_slice(data);
    while !buf.is_empty() {
        let Ok(batch) = LegacyBatch::decode(&mut buf, &strict) else {
            return;
        };
        // Under log-append time every message carries the wrapper's time.
        let ts_type = match batch.magic {
            LegacyMagic::V0 => TimestampType::CreateTime,
            LegacyMagic::V1 => batch.timestamp_type,
        };
        let mut out = Vec::new();
        encode_message_set(
            &batch.messages,
            batch.magic,
            ts_type,
            &EncodeOptions::default(),
            &mut out,
        )
        .unwrap_or_else(|e| panic!("decoded legacy messages cannot be re-encoded: {e}"));
        let mut input = Bytes::from(out);
        for m in &batch.messages {
            let back = LegacyBatch::decode(&mut input, &strict)
                .unwrap_or_else(|e| panic!("re-encoded legacy message does not decode: {e}"));
            assert_eq!(
                back.messages.len(),
                1,
                "a plain message decoded as a wrapper"
            );
            let b = &back.messages[0];
            assert_eq!((b.offset, &b.key, &b.value), (m.offset, &m.key, &m.value));
            if m.timestamp.is_some() {
                assert_eq!(b.timestamp, m.timestamp, "legacy timestamp changed");
            }
        }
        assert!(input.is_empty(), "re-encoded legacy set left bytes over");
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use bytes::{BufMut, Bytes, BytesMut};

    use super::*;
    use crate::protocol::codec::{Message, TestRng};
    use crate::protocol::frame::encode_request;
    use crate::protocol::messages::*;
    use crate::protocol::records::{
        ControlRecord, Header, LegacyMessage, Record, RecordBatch, encode_message_set,
    };

    macro_rules! random_bodies {
        ($(($api:ident, $req:ident, $resp:ident),)*) => {
            fn random_request(key: ApiKey, rng: &mut TestRng, version: i16) -> RequestBody {
                match key {
                    $(ApiKey::$api => RequestBody::$api($req::random(rng, version)),)*
                }
            }
            fn random_response(key: ApiKey, rng: &mut TestRng, version: i16) -> ResponseBody {
                match key {
                    $(ApiKey::$api => ResponseBody::$api($resp::random(rng, version)),)*
                }
            }
            fn default_request(key: ApiKey) -> RequestBody {
                match key {
                    $(ApiKey::$api => RequestBody::$api($req::default()),)*
                }
            }
            fn default_response(key: ApiKey) -> ResponseBody {
                match key {
                    $(ApiKey::$api => ResponseBody::$api($resp::default()),)*
                }
            }
        };
    }

    random_bodies! {
        (Produce, ProduceRequest, ProduceResponse),
        (Fetch, FetchRequest, FetchResponse),
        (ListOffsets, ListOffsetsRequest, ListOffsetsResponse),
        (Metadata, MetadataRequest, MetadataResponse),
        (LeaderAndIsr, LeaderAndIsrRequest, LeaderAndIsrResponse),
        (StopReplica, StopReplicaRequest, StopReplicaResponse),
        (UpdateMetadata, UpdateMetadataRequest, UpdateMetadataResponse),
        (ControlledShutdown, ControlledShutdownRequest, ControlledShutdownResponse),
        (OffsetCommit, OffsetCommitRequest, OffsetCommitResponse),
        (OffsetFetch, OffsetFetchRequest, OffsetFetchResponse),
        (FindCoordinator, FindCoordinatorRequest, FindCoordinatorResponse),
        (JoinGroup, JoinGroupRequest, JoinGroupResponse),
        (Heartbeat, HeartbeatRequest, HeartbeatResponse),
        (LeaveGroup, LeaveGroupRequest, LeaveGroupResponse),
        (SyncGroup, SyncGroupRequest, SyncGroupResponse),
        (DescribeGroups, DescribeGroupsRequest, DescribeGroupsResponse),
        (ListGroups, ListGroupsRequest, ListGroupsResponse),
        (SaslHandshake, SaslHandshakeRequest, SaslHandshakeResponse),
        (ApiVersions, ApiVersionsRequest, ApiVersionsResponse),
        (CreateTopics, CreateTopicsRequest, CreateTopicsResponse),
        (DeleteTopics, DeleteTopicsRequest, DeleteTopicsResponse),
        (DeleteRecords, DeleteRecordsRequest, DeleteRecordsResponse),
        (InitProducerId, InitProducerIdRequest, InitProducerIdResponse),
        (OffsetForLeaderEpoch, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse),
        (AddPartitionsToTxn, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse),
        (AddOffsetsToTxn, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse),
        (EndTxn, EndTxnRequest, EndTxnResponse),
        (WriteTxnMarkers, WriteTxnMarkersRequest, WriteTxnMarkersResponse),
        (TxnOffsetCommit, TxnOffsetCommitRequest, TxnOffsetCommitResponse),
        (DescribeAcls, DescribeAclsRequest, DescribeAclsResponse),
        (CreateAcls, CreateAclsRequest, CreateAclsResponse),
        (DeleteAcls, DeleteAclsRequest, DeleteAclsResponse),
        (DescribeConfigs, DescribeConfigsRequest, DescribeConfigsResponse),
        (AlterConfigs, AlterConfigsRequest, AlterConfigsResponse),
        (AlterReplicaLogDirs, AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse),
        (DescribeLogDirs, DescribeLogDirsRequest, DescribeLogDirsResponse),
        (SaslAuthenticate, SaslAuthenticateRequest, SaslAuthenticateResponse),
        (CreatePartitions, CreatePartitionsRequest, CreatePartitionsResponse),
        (CreateDelegationToken, CreateDelegationTokenRequest, CreateDelegationTokenResponse),
        (RenewDelegationToken, RenewDelegationTokenRequest, RenewDelegationTokenResponse),
        (ExpireDelegationToken, ExpireDelegationTokenRequest, ExpireDelegationTokenResponse),
        (DescribeDelegationToken, DescribeDelegationTokenRequest, DescribeDelegationTokenResponse),
        (DeleteGroups, DeleteGroupsRequest, DeleteGroupsResponse),
        (ElectLeaders, ElectLeadersRequest, ElectLeadersResponse),
        (IncrementalAlterConfigs, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse),
        (AlterPartitionReassignments, AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse),
        (ListPartitionReassignments, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse),
        (OffsetDelete, OffsetDeleteRequest, OffsetDeleteResponse),
        (DescribeClientQuotas, DescribeClientQuotasRequest, DescribeClientQuotasResponse),
        (AlterClientQuotas, AlterClientQuotasRequest, AlterClientQuotasResponse),
        (DescribeUserScramCredentials, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse),
        (AlterUserScramCredentials, AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse),
        (Vote, VoteRequest, VoteResponse),
        (BeginQuorumEpoch, BeginQuorumEpochRequest, BeginQuorumEpochResponse),
        (EndQuorumEpoch, EndQuorumEpochRequest, EndQuorumEpochResponse),
        (DescribeQuorum, DescribeQuorumRequest, DescribeQuorumResponse),
        (AlterPartition, AlterPartitionRequest, AlterPartitionResponse),
        (UpdateFeatures, UpdateFeaturesRequest, UpdateFeaturesResponse),
        (Envelope, EnvelopeRequest, EnvelopeResponse),
        (FetchSnapshot, FetchSnapshotRequest, FetchSnapshotResponse),
        (DescribeCluster, DescribeClusterRequest, DescribeClusterResponse),
        (DescribeProducers, DescribeProducersRequest, DescribeProducersResponse),
        (BrokerRegistration, BrokerRegistrationRequest, BrokerRegistrationResponse),
        (BrokerHeartbeat, BrokerHeartbeatRequest, BrokerHeartbeatResponse),
        (UnregisterBroker, UnregisterBrokerRequest, UnregisterBrokerResponse),
        (DescribeTransactions, DescribeTransactionsRequest, DescribeTransactionsResponse),
        (ListTransactions, ListTransactionsRequest, ListTransactionsResponse),
        (AllocateProducerIds, AllocateProducerIdsRequest, AllocateProducerIdsResponse),
        (ConsumerGroupHeartbeat, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse),
        (ConsumerGroupDescribe, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse),
        (ControllerRegistration, ControllerRegistrationRequest, ControllerRegistrationResponse),
        (GetTelemetrySubscriptions, GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse),
        (PushTelemetry, PushTelemetryRequest, PushTelemetryResponse),
        (AssignReplicasToDirs, AssignReplicasToDirsRequest, AssignReplicasToDirsResponse),
        (ListClientMetricsResources, ListClientMetricsResourcesRequest, ListClientMetricsResourcesResponse),
        (DescribeTopicPartitions, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse),
    }

    fn corpus_dir(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
    }

    /// Collects seeds per target, then writes them.
    #[derive(Default)]
    struct Seeds(Vec<(&'static str, String, Vec<u8>)>);

    impl Seeds {
        fn add(&mut self, target: &'static str, name: impl Into<String>, data: impl AsRef<[u8]>) {
            assert!(TARGETS.contains(&target), "{target}");
            self.0.push((target, name.into(), data.as_ref().to_vec()));
        }
    }

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/produce");
        let mut out: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .map(|p| {
                let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
                (stem, std::fs::read(&p).unwrap())
            })
            .collect();
        out.sort();
        out
    }

    /// The records field of a captured Produce frame (with size prefix).
    fn fixture_records(frame: &[u8]) -> Bytes {
        let (_, body) = frame::decode_request(Bytes::copy_from_slice(&frame[4..])).unwrap();
        let RequestBody::Produce(p) = body else {
            panic!("not a Produce request")
        };
        p.topic_data[0].partition_data[0].records.clone().unwrap()
    }

    fn sample_batch(n: usize) -> RecordBatch {
        let mut b = RecordBatch::new(1000, 1_700_000_000_000);
        b.producer_id = 42;
        b.producer_epoch = 1;
        b.base_sequence = 7;
        for i in 0..n {
            let mut r = Record::new(
                (i % 3 != 2).then(|| Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(
                    format!("value-{i}: the quick brown fox").repeat(2),
                )),
            )
            .with_offset_delta(i as i32)
            .with_timestamp_delta(i as i64 * 5);
            if i % 2 == 1 {
                r = r
                    .with_header(Header::new("h1", "a"))
                    .with_header(Header::null("h2"));
            }
            b.records.push(r);
        }
        b
    }

    fn sample_messages(magic: LegacyMagic, n: usize) -> Vec<LegacyMessage> {
        (0..n)
            .map(|i| LegacyMessage {
                offset: 500 + i as i64,
                timestamp: (magic == LegacyMagic::V1).then_some(1_700_000_000_000 + i as i64),
                key: (i != 1).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("legacy value {i}"))),
            })
            .collect()
    }

    const CODECS: [Compression; 5] = Compression::ALL;

    fn record_seeds(seeds: &mut Seeds) {
        let mut batches: Vec<(String, Vec<u8>)> = Vec::new();
        for codec in CODECS {
            for n in [0, 1, 5] {
                let bytes = sample_batch(n)
                    .encode_to_vec(&EncodeOptions::compressed(codec))
                    .unwrap();
                batches.push((format!("v2-{codec}-{n}"), bytes));
            }
        }
        let mut txn = sample_batch(3);
        txn.is_transactional = true;
        txn.timestamp_type = TimestampType::LogAppendTime;
        batches.push((
            "v2-txn-logappend".into(),
            txn.encode_to_vec(&EncodeOptions::default()).unwrap(),
        ));
        let mut horizon = sample_batch(2);
        horizon.has_delete_horizon = true;
        batches.push((
            "v2-delete-horizon".into(),
            horizon.encode_to_vec(&EncodeOptions::default()).unwrap(),
        ));
        for commit in [true, false] {
            let marker = ControlRecord::end_transaction(commit, 3).to_batch(77, 5, 42, 1);
            batches.push((
                format!("v2-control-{}", if commit { "commit" } else { "abort" }),
                marker.encode_to_vec(&EncodeOptions::default()).unwrap(),
            ));
        }
        let mut legacy: Vec<(String, Vec<u8>)> = Vec::new();
        for magic in [LegacyMagic::V0, LegacyMagic::V1] {
            for codec in &CODECS[..4] {
                for ts in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
                    if ts == TimestampType::LogAppendTime && magic == LegacyMagic::V0 {
                        continue;
                    }
                    let mut out = Vec::new();
                    encode_message_set(
                        &sample_messages(magic, 3),
                        magic,
                        ts,
                        &EncodeOptions::compressed(*codec),
                        &mut out,
                    )
                    .unwrap();
                    let ts = if ts == TimestampType::LogAppendTime {
                        "-logappend"
                    } else {
                        ""
                    };
                    legacy.push((format!("magic{}-{codec}{ts}", magic.value()), out));
                }
            }
        }
        for (name, frame) in fixtures() {
            let records = fixture_records(&frame).to_vec();
            if name.contains("magic") {
                legacy.push((format!("fixture-{name}"), records));
            } else {
                batches.push((format!("fixture-{name}"), records));
            }
        }
        for (name, b) in &batches {
            seeds.add("record_batch", name.clone(), b);
            seeds.add("record_set", name.clone(), b);
            seeds.add(
                "roundtrip",
                format!("batch-{name}"),
                [&[2u8][..], b].concat(),
            );
        }
        for (name, m) in &legacy {
            seeds.add("message_set", name.clone(), m);
            seeds.add("record_set", name.clone(), m);
            seeds.add(
                "roundtrip",
                format!("legacy-{name}"),
                [&[3u8][..], m].concat(),
            );
        }
        // Record sets: v2 and legacy mixed, and cut short as a broker would.
        let plain = &batches.iter().find(|(n, _)| n == "v2-none-5").unwrap().1;
        let zstd = &batches.iter().find(|(n, _)| n == "v2-zstd-5").unwrap().1;
        let l0 = &legacy.iter().find(|(n, _)| n == "magic0-none").unwrap().1;
        let l1 = &legacy.iter().find(|(n, _)| n == "magic1-gzip").unwrap().1;
        let mixed = [&l0[..], l1, plain, zstd].concat();
        seeds.add("record_set", "mixed", &mixed);
        seeds.add("record_set", "mixed-cut", &mixed[..mixed.len() - 10]);
        seeds.add(
            "record_set",
            "v2-cut-header",
            [&plain[..], &zstd[..30]].concat(),
        );
        seeds.add("message_set", "magic0-then-magic1", [&l0[..], l1].concat());
        seeds.add(
            "record_batch",
            "v2-none-5-trailing",
            [&plain[..], &[0, 1, 2]].concat(),
        );
    }

    fn compression_seeds(seeds: &mut Seeds) {
        let text = b"the quick brown fox jumps over the lazy dog; ".repeat(8);
        let inputs: [(&str, &[u8]); 4] = [
            ("empty", b""),
            ("short", b"klamm"),
            ("text", &text),
            ("bytes", &(0..=255u8).collect::<Vec<_>>()),
        ];
        for (codec, target) in [
            (Compression::Gzip, "decompress_gzip"),
            (Compression::Snappy, "decompress_snappy"),
            (Compression::Lz4, "decompress_lz4"),
            (Compression::Zstd, "decompress_zstd"),
        ] {
            for (name, input) in inputs {
                let mut out = Vec::new();
                compression::compress(codec, None, input, &mut out).unwrap();
                seeds.add(target, name, &out);
                if codec == Compression::Lz4 {
                    let mut out = Vec::new();
                    compression::compress_lz4_legacy_v0(input, &mut out).unwrap();
                    seeds.add(target, format!("legacy-{name}"), &out);
                }
            }
            // Two frames (or members, or streams) back to back.
            let mut two = Vec::new();
            compression::compress(codec, None, b"first ", &mut two).unwrap();
            compression::compress(codec, None, b"second", &mut two).unwrap();
            seeds.add(target, "concatenated", &two);
        }
        // A raw snappy block, without the xerial framing.
        let raw = snap::raw::Encoder::new().compress_vec(&text).unwrap();
        seeds.add("decompress_snappy", "raw-block", &raw);
    }

    fn message_seeds(seeds: &mut Seeds) {
        let mut frames = 0;
        for (i, key) in ApiKey::ALL.into_iter().enumerate() {
            let (min, max) = key.versions();
            let name = key.name().to_lowercase();
            // A non-trivial value at a version that moves through the range
            // (for `roundtrip`, requests of even and responses of odd APIs).
            let span = (max - min + 1) as usize;
            let version = min + ((i * 7) % span) as i16;
            let mut rng = TestRng::new(i as u64 + 1);
            let req = random_request(key, &mut rng, version);
            let resp = random_response(key, &mut rng, version);
            let mut b = BytesMut::new();
            b.put_slice(&api_prefix(key, version));
            req.encode(&mut b, version).unwrap();
            seeds.add("request_body", format!("{name}-v{version}-random"), &b);
            if i % 2 == 0 {
                seeds.add(
                    "roundtrip",
                    format!("req-{name}-v{version}"),
                    [&[0u8][..], &b].concat(),
                );
            }
            let mut b = BytesMut::new();
            b.put_slice(&api_prefix(key, version));
            resp.encode(&mut b, version).unwrap();
            seeds.add("response_body", format!("{name}-v{version}-random"), &b);
            if i % 2 == 1 {
                seeds.add(
                    "roundtrip",
                    format!("resp-{name}-v{version}"),
                    [&[1u8][..], &b].concat(),
                );
            }
            // The default value at the highest version.
            let mut b = BytesMut::new();
            b.put_slice(&api_prefix(key, max));
            if default_request(key).encode(&mut b, max).is_ok() {
                seeds.add("request_body", format!("{name}-v{max}-default"), &b);
            }
            let mut b = BytesMut::new();
            b.put_slice(&api_prefix(key, max));
            if default_response(key).encode(&mut b, max).is_ok() {
                seeds.add("response_body", format!("{name}-v{max}-default"), &b);
            }
            // A whole request frame for every fourth API.
            if i % 4 == 0 {
                let mut out = BytesMut::new();
                let req = random_request(key, &mut TestRng::new(99 + i as u64), version);
                let mut body = BytesMut::new();
                req.encode(&mut body, version).unwrap();
                let header = RequestHeader {
                    request_api_key: key.code(),
                    request_api_version: version,
                    correlation_id: i as i32,
                    client_id: Some("klamm-fuzz".into()),
                    ..Default::default()
                };
                let hv = key.request_header_version(version);
                out.put_i32((header.encoded_len(hv) + body.len()) as i32);
                header.encode(&mut out, hv).unwrap();
                out.put_slice(&body);
                seeds.add("request_frame", format!("{name}-v{version}"), &out[4..]);
                frames += 1;
            }
        }
        assert!(frames > 10);
        // A stream of two size-prefixed frames for split_frame.
        let mut stream = BytesMut::new();
        encode_request(&mut stream, 1, Some("a"), &ApiVersionsRequest::default(), 3).unwrap();
        encode_request(&mut stream, 2, None, &MetadataRequest::default(), 12).unwrap();
        seeds.add("request_frame", "two-frames-stream", &stream);
        for (name, frame) in fixtures() {
            seeds.add("request_frame", format!("fixture-{name}"), &frame[4..]);
        }
    }

    /// Writes the seed corpus to `fuzz/corpus/<target>/`. Run it with
    /// `cargo test --lib write_seed_corpus -- --ignored`; it overwrites
    /// only its own `seed-*` files and leaves inputs the fuzzer found.
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        let mut seeds = Seeds::default();
        message_seeds(&mut seeds);
        record_seeds(&mut seeds);
        compression_seeds(&mut seeds);
        for target in TARGETS {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).unwrap();
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
                {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        for (target, name, data) in &seeds.0 {
            // Every seed must be a clean run of its target.
            assert!(run(target, data));
            std::fs::write(corpus_dir(target).join(format!("seed-{name}")), data).unwrap();
        }
        for target in TARGETS {
            let n = seeds.0.iter().filter(|(t, ..)| t == target).count();
            println!("{target}: {n} seeds");
            assert!(n > 0, "{target} has no seeds");
        }
    }

    #[test]
    fn seeds_pass_every_target_and_selectors_invert() {
        let mut seeds = Seeds::default();
        message_seeds(&mut seeds);
        record_seeds(&mut seeds);
        compression_seeds(&mut seeds);
        for (target, _, data) in &seeds.0 {
            assert!(run(target, data));
        }
        for key in ApiKey::ALL {
            let (min, max) = key.versions();
            for v in min..=max {
                let p = api_prefix(key, v);
                assert_eq!(select_api(&p).map(|(k, v, _)| (k, v)), Some((key, v)));
            }
        }
    }

    #[test]
    fn every_target_survives_small_inputs() {
        for target in TARGETS {
            for data in [
                &[][..],
                &[0],
                &[0xff; 3],
                &[1, 2, 3, 4, 5, 6, 7, 8],
                &[0; 80],
            ] {
                assert!(run(target, data));
            }
        }
    }
}
