//! Byte-exact re-encoding of real traffic: every frame that crossed a
//! relay between Apache Kafka 4.4 (the single node) and its clients — the
//! Java client (kafka-clients 4.4.0: producer, consumer, group members of
//! both rebalance protocols) and klamm (producer, consumer, share
//! consumer) — is decoded with
//! klamm's codecs and encoded again, and must give the same bytes:
//! requests and answers, headers included, at the versions each side
//! chose.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use klamm::Client;
use klamm::protocol::codec::Message;
use klamm::protocol::frame::{decode_request, decode_response};
use klamm::protocol::messages::ApiKey;
use klamm::share::{AckMode, ShareConsumer, ShareOptions};
use support::interop_peers::{PeerProgram, klamm_writes};
use support::read::config;
use support::relay::{RawFrame, Relay};
use support::topics::create_topic;

/// Decodes `f` and encodes it again.
fn reencode(f: &RawFrame) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    if f.request {
        let (header, body) = decode_request(f.bytes.clone()).map_err(|e| e.to_string())?;
        header
            .encode(&mut out, f.api.request_header_version(f.version))
            .map_err(|e| e.to_string())?;
        body.encode(&mut out, f.version)
            .map_err(|e| e.to_string())?;
    } else {
        let (header, body) =
            decode_response(f.bytes.clone(), f.api, f.version).map_err(|e| e.to_string())?;
        header
            .encode(&mut out, f.api.response_header_version(f.version))
            .map_err(|e| e.to_string())?;
        body.encode(&mut out, f.version)
            .map_err(|e| e.to_string())?;
    }
    Ok(out.freeze())
}

/// The frames that do not come back byte for byte, described.
fn mismatches(frames: &[RawFrame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| {
            let what = format!(
                "{} {:?} v{} ({} bytes, connection {})",
                if f.request { "request" } else { "answer" },
                f.api,
                f.version,
                f.bytes.len(),
                f.connection
            );
            match reencode(f) {
                Ok(b) if b == f.bytes => None,
                Ok(b) => {
                    let at = b
                        .iter()
                        .zip(f.bytes.iter())
                        .position(|(x, y)| x != y)
                        .unwrap_or(b.len().min(f.bytes.len()));
                    Some(format!(
                        "{what}: differs from byte {at} (re-encoded {} bytes)",
                        b.len()
                    ))
                }
                Err(e) => Some(format!("{what}: {e}")),
            }
        })
        .collect()
}

#[test]
fn real_traffic_of_kafka_java_and_klamm_encodes_back_to_the_same_bytes() {
    support::run_within(300, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let Some(java) = PeerProgram::java() else {
            return;
        };
        let relay = Relay::start(addr.clone(), vec![]).await;
        let direct = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = Arc::from(support::unique_topic("klamm-byte-exact").as_str());
        create_topic(&direct, &topic, 2).await;

        // klamm through the relay: produce, consume, a share group.
        let client = Client::connect(config(&relay.addr)).await.expect("connect");
        klamm_writes(&client, &topic, 2, 200).await;
        let consumer = klamm::consumer::Consumer::new(client.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, klamm::consumer::StartOffset::Oldest)
            .await
            .expect("consume");
        for _ in 0..50 {
            tokio::time::timeout(Duration::from_secs(20), pc.recv())
                .await
                .expect("a record in time")
                .expect("open")
                .expect("record");
        }
        drop(pc);
        consumer.close().await;
        let group = support::unique_topic("klamm-byte-exact");
        support::share::configure_group(&direct, &group, 30_000).await;
        let share = ShareConsumer::new(
            client.clone(),
            group.clone(),
            &[&topic],
            ShareOptions {
                ack_mode: AckMode::Implicit,
                ..Default::default()
            },
        )
        .await
        .expect("share consumer");
        let mut shared = 0;
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        while shared < 100 && tokio::time::Instant::now() < until {
            shared += share
                .poll(Duration::from_millis(500))
                .await
                .expect("poll")
                .len();
        }
        assert!(shared >= 100, "share records: {shared}");
        share.close().await.expect("close");

        // The Java client through the relay: produce and consume.
        let run = java
            .run(
                &[
                    "produce",
                    "--bootstrap",
                    &relay.addr,
                    "--topic",
                    &topic,
                    "--partitions",
                    "2",
                    "--count",
                    "100",
                    "--codec",
                    "zstd",
                ],
                Duration::from_secs(60),
            )
            .await;
        run.assert_ok();
        let run = java
            .run(
                &[
                    "consume",
                    "--bootstrap",
                    &relay.addr,
                    "--topic",
                    &topic,
                    "--partitions",
                    "2",
                    "--count",
                    "300",
                    "--output",
                    "dump",
                ],
                Duration::from_secs(60),
            )
            .await;
        assert!(run.status.success(), "{}", run.describe());

        // Java group members through the relay, one per rebalance
        // protocol, each until it has read records and committed.
        for protocol in ["classic", "consumer"] {
            let group = support::unique_topic("klamm-byte-exact-group");
            let args: Vec<String> = [
                "--bootstrap",
                &relay.addr,
                "--group",
                &group,
                "--topics",
                &topic,
                "--protocol",
                protocol,
                "--client-id",
                "byte-exact",
                "--max-records",
                "150",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut member = support::group_members::PeerMember::start(
                &java,
                protocol,
                &args,
                Duration::from_secs(60),
            );
            let summary = member.wait(Duration::from_secs(90)).await;
            assert_eq!(summary["ok"], true, "{summary}\n{}", member.describe());
        }

        let frames = relay.log.raw_frames();
        let mut by_api: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for f in &frames {
            let e = by_api
                .entry(format!("{:?} v{}", f.api, f.version))
                .or_default();
            if f.request {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        eprintln!(
            "{} frames (requests, answers) by API and version: {by_api:?}",
            frames.len()
        );
        for api in [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::ListOffsets,
            ApiKey::FindCoordinator,
            ApiKey::ShareGroupHeartbeat,
            ApiKey::ShareFetch,
            ApiKey::ShareAcknowledge,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::OffsetCommit,
            ApiKey::OffsetFetch,
            ApiKey::ConsumerGroupHeartbeat,
        ] {
            assert!(
                frames.iter().any(|f| f.api == api && !f.request),
                "no {api:?} answer captured"
            );
        }
        let bad = mismatches(&frames);
        assert!(
            bad.is_empty(),
            "{} of {} frames differ:\n{}",
            bad.len(),
            frames.len(),
            bad.join("\n")
        );

        // Control: a request whose body starts with a length written as a
        // two-byte varint (legal, not minimal) decodes to the same value
        // but does not come back byte for byte, and the check says so.
        let f = frames
            .iter()
            .find(|f| f.request && f.api == ApiKey::ApiVersions && f.version >= 3)
            .expect("a flexible ApiVersions request")
            .clone();
        let (header, _) = decode_request(f.bytes.clone()).expect("decodes");
        let at = header.encoded_len(f.api.request_header_version(f.version));
        let first = f.bytes[at];
        assert!(first < 0x80, "a one-byte length to stretch");
        let mut stretched = f.bytes[..at].to_vec();
        stretched.extend_from_slice(&[first | 0x80, 0x00]);
        stretched.extend_from_slice(&f.bytes[at + 1..]);
        let control = RawFrame {
            bytes: Bytes::from(stretched),
            ..f
        };
        assert!(decode_request(control.bytes.clone()).is_ok());
        assert_eq!(mismatches(std::slice::from_ref(&control)).len(), 1);
    });
}

/// The same over tansu, the second broker implementation: klamm creates a
/// topic, produces and consumes through a relay, and every frame both
/// ways comes back byte for byte. tansu writes some tagged fields at their
/// default values (ApiVersions, CreateTopics, Fetch answers); the control
/// shows that those frames would not survive without the tag-presence
/// bits: re-encoded with them cleared, at least one answer changes.
#[test]
fn tansu_traffic_encodes_back_to_the_same_bytes_tagged_defaults_included() {
    use klamm::protocol::messages::ResponseBody;
    use klamm::protocol::primitives::TagPresence;
    support::run_within(120, async {
        let Some(addr) = support::tansu() else {
            return;
        };
        let relay = Relay::start(addr.clone(), vec![]).await;
        let client = Client::connect(config(&relay.addr)).await.expect("connect");
        let topic: Arc<str> = Arc::from(support::unique_topic("klamm-byte-exact-tansu").as_str());
        create_topic(&client, &topic, 1).await;
        klamm_writes(&client, &topic, 1, 50).await;
        let consumer = klamm::consumer::Consumer::new(client.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, klamm::consumer::StartOffset::Oldest)
            .await
            .expect("consume");
        for _ in 0..50 {
            tokio::time::timeout(Duration::from_secs(20), pc.recv())
                .await
                .expect("a record in time")
                .expect("open")
                .expect("record");
        }
        drop(pc);
        consumer.close().await;

        let frames = relay.log.raw_frames();
        for api in [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::CreateTopics,
            ApiKey::Produce,
            ApiKey::Fetch,
        ] {
            assert!(
                frames.iter().any(|f| f.api == api && !f.request),
                "no {api:?} answer captured"
            );
        }
        let bad = mismatches(&frames);
        assert!(
            bad.is_empty(),
            "{} of {} frames differ:\n{}",
            bad.len(),
            frames.len(),
            bad.join("\n")
        );

        // Control: the answers re-encoded with their top-level presence
        // bits cleared (what klamm did before it kept them).
        let mut changed = Vec::new();
        for f in frames.iter().filter(|f| !f.request) {
            let (header, mut body) =
                decode_response(f.bytes.clone(), f.api, f.version).expect("decodes");
            match &mut body {
                ResponseBody::ApiVersions(r) => r.tags_present = TagPresence::default(),
                ResponseBody::CreateTopics(r) => {
                    for t in &mut r.topics {
                        t.tags_present = TagPresence::default();
                    }
                }
                ResponseBody::Fetch(r) => {
                    r.tags_present = TagPresence::default();
                    for t in &mut r.responses {
                        for p in &mut t.partitions {
                            p.tags_present = TagPresence::default();
                        }
                    }
                }
                _ => continue,
            }
            let mut out = BytesMut::new();
            header
                .encode(&mut out, f.api.response_header_version(f.version))
                .expect("header");
            body.encode(&mut out, f.version).expect("body");
            if out.freeze() != f.bytes {
                changed.push(format!("{:?} v{}", f.api, f.version));
            }
        }
        eprintln!("answers that need their presence bits: {changed:?}");
        assert!(
            !changed.is_empty(),
            "no tansu answer carried a tagged field at its default"
        );
    });
}
