//! KIP-360 at producer level against Apache Kafka (the single node): an
//! idempotent `AsyncProducer` whose batch fails after it took sequence
//! numbers bumps its epoch and starts that partition's sequences again.
//!
//! The producer reaches the broker through the relay, which holds chosen
//! Produce requests (never forwarded, never answered), so the held batch
//! is never written and the broker's sequence has a gap where it would
//! have been.
//!
//! - A held batch that runs out of delivery time fails (its records are
//!   reported failed); the batches after it carry the same producer id,
//!   epoch + 1, and sequences from 0. The producer bumps the epoch itself:
//!   the only InitProducerId on the wire is the first (Apache Kafka
//!   answers one without a transactional id with a new producer id).
//! - A held batch followed by a batch the broker refuses with
//!   OUT_OF_ORDER_SEQUENCE_NUMBER (the sequence gap): the held batch fails
//!   once its retries are spent; the refused one is written under the new
//!   epoch, from sequence 0, and so are later records, exactly once and in
//!   order.
//!
//! In both, every record is either reported written, and stored once at
//! the offset reported, or reported failed, and not stored.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use klamm::config::Acks;
use klamm::producer::{AsyncProducer, DeliveryFuture, ProducerRecord, RecordMetadata};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::{ApiKey, ResponseBody};
use klamm::protocol::records::{DecodeOptions, RecordBatch};
use klamm::{Client, Config, ErrorKind};
use support::read::{config, stored_batches};
use support::relay::{Exchange, Fate, Relay, Rules};
use support::topics::create_topic;

async fn send(
    producer: &AsyncProducer,
    topic: &Arc<str>,
    range: std::ops::Range<usize>,
) -> Vec<DeliveryFuture> {
    let mut out = Vec::new();
    for i in range {
        let r = ProducerRecord::new(Arc::clone(topic), format!("r{i:02}")).with_partition(0);
        out.push(producer.send(r).await.expect("send"));
    }
    out
}

async fn outcomes(futures: Vec<DeliveryFuture>) -> Vec<klamm::Result<RecordMetadata>> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

/// (producer epoch, base sequence, record count) of the batch in a
/// recorded Produce request.
fn stamp(e: &Exchange) -> (i16, i32, usize) {
    let req = e.produce().expect("a Produce request");
    let data = req.topic_data[0].partition_data[0]
        .records
        .clone()
        .expect("records");
    let mut data = data;
    let b = RecordBatch::decode(&mut data, &DecodeOptions::default()).expect("batch");
    (b.producer_epoch, b.base_sequence, b.records.len())
}

/// The producer id and epoch of each InitProducerId exchange: (asked,
/// answered).
fn init_producer_ids(relay: &Relay) -> Vec<((i64, i16), (i64, i16))> {
    relay
        .log
        .of(ApiKey::InitProducerId)
        .iter()
        .map(|e| {
            let klamm::protocol::messages::RequestBody::InitProducerId(req) = &e.request else {
                unreachable!()
            };
            let Some(ResponseBody::InitProducerId(resp)) = &e.response else {
                panic!("InitProducerId unanswered: {e:?}")
            };
            assert_eq!(ErrorCode(resp.error_code), ErrorCode::NONE);
            (
                (req.producer_id, req.producer_epoch),
                (resp.producer_id, resp.producer_epoch),
            )
        })
        .collect()
}

/// Checks the partition against the records' outcomes: a record reported
/// written is stored once, at its offset; a failed one is not stored.
/// Returns the stored data batches.
async fn check_outcomes(
    client: &Client,
    topic: &str,
    results: &[(usize, &klamm::Result<RecordMetadata>)],
) -> Vec<RecordBatch> {
    let batches = stored_batches(client, topic, 0).await;
    let data: Vec<RecordBatch> = batches.into_iter().filter(|b| !b.is_control).collect();
    let stored: Vec<(i64, Bytes)> = data
        .iter()
        .flat_map(|b| {
            b.iter()
                .map(|r| (r.offset, r.record.value.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut want = Vec::new();
    for (i, result) in results {
        let value = Bytes::from(format!("r{i:02}"));
        match result {
            Ok(meta) => want.push((meta.offset, value)),
            Err(_) => assert!(
                !stored.iter().any(|(_, v)| *v == value),
                "r{i:02} was reported failed but is stored"
            ),
        }
    }
    assert_eq!(
        stored, want,
        "written records stored once each, at their offsets, in order"
    );
    data
}

fn producer_config(relay: &Relay) -> Config {
    let mut cfg = config(&relay.addr);
    cfg.producer.acks = Acks::All;
    cfg.producer.idempotence = true;
    cfg.producer.linger = Duration::from_millis(2);
    cfg.producer.retry_backoff = Duration::from_millis(50);
    cfg.producer.request_timeout = Duration::from_secs(1);
    cfg
}

#[test]
fn a_batch_that_expires_while_held_bumps_the_epoch() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        // The second Produce request is held.
        let relay = Relay::with_rules(
            addr.clone(),
            Rules {
                hold_at: vec![2],
                ..Rules::default()
            },
        )
        .await;
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-epoch-expire").into();
        create_topic(&client, &topic, 1).await;

        let mut cfg = producer_config(&relay);
        // The held request waits 3 s for an answer; by then the batch's
        // delivery time (2 s) is gone, so it fails instead of a retry.
        cfg.net.request_timeout = Duration::from_secs(3);
        cfg.producer.delivery_timeout = Duration::from_secs(2);
        let producer = AsyncProducer::new(Client::connect(cfg).await.expect("connect"))
            .await
            .expect("producer");

        let first = send(&producer, &topic, 0..5).await;
        producer.flush().await.expect("flush");
        let held = send(&producer, &topic, 5..10).await;
        let held = outcomes(held).await;
        for r in &held {
            let err = r.as_ref().expect_err("a held record fails");
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        }
        let after = send(&producer, &topic, 10..20).await;
        producer.flush().await.expect("flush");
        let first = outcomes(first).await;
        let after = outcomes(after).await;
        producer.close().await.expect("close");
        assert!(
            first.iter().chain(&after).all(|r| r.is_ok()),
            "{first:?} {after:?}"
        );
        assert_eq!(relay.holds.load(std::sync::atomic::Ordering::SeqCst), 1);

        let results: Vec<(usize, &klamm::Result<RecordMetadata>)> = first
            .iter()
            .chain(&held)
            .chain(&after)
            .enumerate()
            .collect();
        let data = check_outcomes(&client, &topic, &results).await;
        assert_eq!(
            data.len(),
            2,
            "the batch before and the one after: {data:?}"
        );
        let (before, bumped) = (&data[0], &data[1]);
        assert!(before.producer_id >= 0);
        assert_eq!(bumped.producer_id, before.producer_id, "same producer id");
        assert_eq!(
            bumped.producer_epoch,
            before.producer_epoch + 1,
            "the epoch was bumped"
        );
        assert_eq!(before.base_sequence, 0);
        assert_eq!(bumped.base_sequence, 0, "sequences start again");

        // On the wire: the held request had sequences 5.., and the only
        // InitProducerId is the first: the producer bumped its epoch itself
        // (Kafka answers InitProducerId without a transactional id with a
        // new producer id, whatever it names).
        let produces = relay.log.of(ApiKey::Produce);
        let held_req = produces
            .iter()
            .find(|e| e.fate == Fate::Held)
            .expect("the held request");
        assert_eq!(stamp(held_req), (before.producer_epoch, 5, 5));
        let ids = init_producer_ids(&relay);
        assert_eq!(
            ids,
            [((-1, -1), (before.producer_id, before.producer_epoch))],
            "one InitProducerId, at start"
        );
    });
}

#[test]
fn out_of_order_sequence_after_a_lost_batch_bumps_the_epoch_and_rewrites_the_next() {
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        // The second Produce request (batch B, records 5-9) and its retry
        // (the fourth request) are held; the third (batch C, 10-14) reaches
        // the broker with a gap before its sequence.
        let relay = Relay::with_rules(
            addr.clone(),
            Rules {
                hold_at: vec![2, 4],
                ..Rules::default()
            },
        )
        .await;
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic: Arc<str> = support::unique_topic("klamm-epoch-ooo").into();
        create_topic(&client, &topic, 1).await;

        let mut cfg = producer_config(&relay);
        cfg.net.request_timeout = Duration::from_secs(2);
        cfg.producer.delivery_timeout = Duration::from_secs(40);
        // One retry: B fails after its second attempt is held too; C has a
        // retry left after the broker refused it.
        cfg.producer.retries = 1;
        let producer = AsyncProducer::new(Client::connect(cfg).await.expect("connect"))
            .await
            .expect("producer");

        let a = send(&producer, &topic, 0..5).await;
        producer.flush().await.expect("flush");
        let b = send(&producer, &topic, 5..10).await;
        relay
            .log
            .wait_for("B held", Duration::from_secs(10), |log| {
                log.iter().any(|e| e.fate == Fate::Held).then_some(())
            })
            .await;
        let c = send(&producer, &topic, 10..15).await;
        let refused = relay
            .log
            .wait_for("C refused", Duration::from_secs(10), |log| {
                log.iter()
                    .filter(|e| e.produce().is_some())
                    .find(|e| {
                        e.produce_response().is_some_and(|r| {
                            r.responses
                                .iter()
                                .flat_map(|t| t.partition_responses.iter())
                                .any(|p| {
                                    ErrorCode(p.error_code)
                                        == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                                })
                        })
                    })
                    .cloned()
            })
            .await;
        let a = outcomes(a).await;
        let b = outcomes(b).await;
        let c = outcomes(c).await;
        let d = send(&producer, &topic, 15..20).await;
        let d = outcomes(d).await;
        producer.close().await.expect("close");

        for r in &b {
            let err = r.as_ref().expect_err("B fails");
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        }
        assert!(
            a.iter().chain(&c).chain(&d).all(|r| r.is_ok()),
            "{a:?} {c:?} {d:?}"
        );
        assert_eq!(relay.holds.load(std::sync::atomic::Ordering::SeqCst), 2);

        let results: Vec<(usize, &klamm::Result<RecordMetadata>)> =
            a.iter().chain(&b).chain(&c).chain(&d).enumerate().collect();
        let data = check_outcomes(&client, &topic, &results).await;
        let pid = data[0].producer_id;
        let epoch = data[0].producer_epoch;
        let stamps: Vec<(i64, i16, i32, usize)> = data
            .iter()
            .map(|b| {
                (
                    b.producer_id,
                    b.producer_epoch,
                    b.base_sequence,
                    b.records.len(),
                )
            })
            .collect();
        assert_eq!(
            stamps,
            [
                (pid, epoch, 0, 5),
                (pid, epoch + 1, 0, 5),
                (pid, epoch + 1, 5, 5)
            ],
            "A at the old epoch; C and D under the new one, sequences from 0"
        );

        // On the wire: B twice at sequence 5 (held both times), C first at
        // sequence 10 of the old epoch (refused), then at 0 of the new.
        let stamps: Vec<((i16, i32, usize), Fate)> = relay
            .log
            .of(ApiKey::Produce)
            .iter()
            .map(|e| (stamp(e), e.fate))
            .collect();
        assert_eq!(
            stamps,
            [
                ((epoch, 0, 5), Fate::Forwarded),
                ((epoch, 5, 5), Fate::Held),
                ((epoch, 10, 5), Fate::Forwarded),
                ((epoch, 5, 5), Fate::Held),
                ((epoch + 1, 0, 5), Fate::Forwarded),
                ((epoch + 1, 5, 5), Fate::Forwarded),
            ]
        );
        assert_eq!(stamp(&refused), (epoch, 10, 5));
        assert_eq!(init_producer_ids(&relay), [((-1, -1), (pid, epoch))]);
    });
}
