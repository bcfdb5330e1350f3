//! The seed corpus writer and the checks that every target survives its
//! seeds and small inputs.

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
    (ListConfigResources, ListConfigResourcesRequest, ListConfigResourcesResponse),
    (DescribeTopicPartitions, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse),
    (ShareGroupHeartbeat, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse),
    (ShareGroupDescribe, ShareGroupDescribeRequest, ShareGroupDescribeResponse),
    (ShareFetch, ShareFetchRequest, ShareFetchResponse),
    (ShareAcknowledge, ShareAcknowledgeRequest, ShareAcknowledgeResponse),
    (AddRaftVoter, AddRaftVoterRequest, AddRaftVoterResponse),
    (RemoveRaftVoter, RemoveRaftVoterRequest, RemoveRaftVoterResponse),
    (UpdateRaftVoter, UpdateRaftVoterRequest, UpdateRaftVoterResponse),
    (InitializeShareGroupState, InitializeShareGroupStateRequest, InitializeShareGroupStateResponse),
    (ReadShareGroupState, ReadShareGroupStateRequest, ReadShareGroupStateResponse),
    (WriteShareGroupState, WriteShareGroupStateRequest, WriteShareGroupStateResponse),
    (DeleteShareGroupState, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse),
    (ReadShareGroupStateSummary, ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse),
    (StreamsGroupHeartbeat, StreamsGroupHeartbeatRequest, StreamsGroupHeartbeatResponse),
    (StreamsGroupDescribe, StreamsGroupDescribeRequest, StreamsGroupDescribeResponse),
    (DescribeShareGroupOffsets, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse),
    (AlterShareGroupOffsets, AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse),
    (DeleteShareGroupOffsets, DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse),
    (StreamsGroupTopologyDescriptionUpdate, StreamsGroupTopologyDescriptionUpdateRequest, StreamsGroupTopologyDescriptionUpdateResponse),
    (UnregisterController, UnregisterControllerRequest, UnregisterControllerResponse),
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
