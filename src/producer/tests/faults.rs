//! The whole producer against klamm-fake's cluster: retries, dropped
//! connections, epoch bumps, timeouts and errors that end a batch.

use std::time::Duration;

use bytes::Bytes;

use super::cluster::{
    ApiKey, FakeCluster, Fault, cluster, code, config, init_requests, last_writer,
    produce_requests, producer, values,
};
use crate::ErrorKind;
use crate::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use crate::protocol::error_codes::ErrorCode;
use crate::test_support::trace::Capture;
use crate::test_support::{bounded, eventually};

/// Sends `n` numbered records to partition 0, `pause` between some.
async fn send_numbered(p: &AsyncProducer, from: usize, n: usize) -> Vec<DeliveryFuture> {
    let mut out = Vec::new();
    for i in from..from + n {
        let r = ProducerRecord::new("t", format!("{i:05}")).with_partition(0);
        out.push(p.send(r).await.expect("send"));
        if i % 7 == 0 {
            tokio::task::yield_now().await;
        }
    }
    out
}

fn numbered(from: usize, n: usize) -> Vec<Bytes> {
    (from..from + n)
        .map(|i| Bytes::from(format!("{i:05}")))
        .collect()
}

/// Makes `broker` a broker that takes connections and never answers.
fn silence(fake: &FakeCluster, broker: i32) {
    fake.inject(
        ApiKey::ApiVersions,
        Some(broker),
        Fault::NoResponse,
        u64::MAX,
    )
    .expect("injected");
}

#[tokio::test(start_paused = true)]
async fn retriable_errors_and_dropped_connections_lose_nothing_and_duplicate_nothing() {
    bounded(async {
        let fake = cluster(1, 1).await;
        let p = producer(config(&fake)).await;
        // One after another, on the next five Produce requests.
        for fault in [
            Fault::Error(code(ErrorCode::NOT_LEADER_OR_FOLLOWER)),
            Fault::CutAfterApply,
            Fault::Error(code(ErrorCode::REQUEST_TIMED_OUT)),
            Fault::CutBeforeApply,
            Fault::CutAfterApply,
        ] {
            fake.inject(ApiKey::Produce, None, fault, 1)
                .expect("injected");
        }
        let futures = send_numbered(&p, 0, 300).await;
        p.flush().await.expect("flush");
        let mut offsets = Vec::new();
        for f in futures {
            offsets.push(f.await.expect("delivered").offset);
        }
        assert_eq!(
            offsets,
            (0..300).collect::<Vec<i64>>(),
            "in order, each once"
        );
        assert_eq!(values(&fake, 0), numbered(0, 300));
        assert_eq!(fake.faults_left(None), 0, "every fault was hit");
        // The control: the two requests cut after they were written were
        // sent again, and the broker recognised their batches as retries.
        assert!(fake.duplicates("t", 0) >= 2, "{}", fake.duplicates("t", 0));
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn unknown_producer_id_bumps_the_epoch_and_restarts_sequences() {
    bounded(async {
        let fake = cluster(1, 1).await;
        let p = producer(config(&fake)).await;
        for f in send_numbered(&p, 0, 20).await {
            f.await.expect("delivered");
        }
        assert_eq!(last_writer(&fake, 0), Some((1000, 0, 19)));
        let unknown = Fault::Error(code(ErrorCode::UNKNOWN_PRODUCER_ID));
        fake.inject(ApiKey::Produce, None, unknown, 1)
            .expect("injected");
        let futures = send_numbered(&p, 20, 20).await;
        for f in futures {
            f.await.expect("delivered after the bump");
        }
        // The producer bumped its own epoch (KIP-360): same id, epoch 1,
        // sequences from 0 again; no InitProducerId after the first.
        assert_eq!(last_writer(&fake, 0), Some((1000, 1, 19)));
        let inits = init_requests(&fake);
        assert_eq!(inits, [(-1, -1)], "one producer id, asked for at start");
        assert_eq!(values(&fake, 0), numbered(0, 40));
        assert_eq!(p.stats().producer_id_requests, 2, "an id, then an epoch");
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_used_up_epoch_gets_a_new_producer_id() {
    bounded(async {
        let fake = cluster(1, 1).await;
        fake.first_producer_epoch(i16::MAX);
        let p = producer(config(&fake)).await;
        for f in send_numbered(&p, 0, 10).await {
            f.await.expect("delivered");
        }
        assert_eq!(last_writer(&fake, 0), Some((1000, i16::MAX, 9)));
        let unknown = Fault::Error(code(ErrorCode::UNKNOWN_PRODUCER_ID));
        fake.inject(ApiKey::Produce, None, unknown, 1)
            .expect("injected");
        for f in send_numbered(&p, 10, 10).await {
            f.await.expect("delivered under the new producer id");
        }
        // No epoch after i16::MAX: a new id, asked for without naming the
        // old one.
        let inits = init_requests(&fake);
        assert_eq!(inits, [(-1, -1), (-1, -1)]);
        assert_eq!(last_writer(&fake, 0), Some((1001, i16::MAX, 9)));
        assert_eq!(values(&fake, 0), numbered(0, 20));
        assert_eq!(p.stats().producer_id_requests, 2);
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn errors_that_are_not_retriable_fail_each_record_of_the_batch() {
    bounded(async {
        let fake = cluster(1, 1).await;
        let p = producer(config(&fake)).await;
        let invalid = Fault::Error(code(ErrorCode::INVALID_RECORD));
        fake.inject(ApiKey::Produce, None, invalid, 1)
            .expect("injected");
        let failed = send_numbered(&p, 0, 3).await;
        for f in failed {
            let err = f.await.expect_err("rejected");
            assert_eq!(err.kafka_code(), Some(ErrorCode::INVALID_RECORD));
        }
        // The producer carries on (under a new epoch: the failed batch
        // took sequence numbers).
        for f in send_numbered(&p, 3, 5).await {
            f.await.expect("delivered");
        }
        assert_eq!(values(&fake, 0), numbered(3, 5));
        assert_eq!(last_writer(&fake, 0), Some((1000, 1, 4)), "epoch 1, from 0");
        assert_eq!(init_requests(&fake).len(), 1);
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn records_that_cannot_be_delivered_in_time_fail_with_a_timeout_at_close() {
    bounded(async {
        let fake = cluster(1, 1).await;
        let mut cfg = config(&fake);
        let delivery_timeout = Duration::from_millis(600);
        let retry_backoff = cfg.producer.retry_backoff;
        cfg.producer.request_timeout = Duration::from_millis(200);
        cfg.producer.delivery_timeout = delivery_timeout;
        let p = producer(cfg).await;
        let refused = Fault::Error(code(ErrorCode::NOT_ENOUGH_REPLICAS));
        fake.inject(ApiKey::Produce, None, refused, 1000)
            .expect("injected");
        let started = tokio::time::Instant::now();
        let futures = send_numbered(&p, 0, 10).await;
        p.clone()
            .close()
            .await
            .expect("close returns once every record has its outcome");
        // On the paused clock: retried until no retry fitted within
        // delivery.timeout.ms, and given up no later than it.
        let took = started.elapsed();
        assert!(
            took >= delivery_timeout - retry_backoff && took <= delivery_timeout,
            "the records failed after {took:?}"
        );
        assert!(p.stats().batches_retried > 0, "{:?}", p.stats());
        for f in futures {
            let err = f
                .try_result()
                .expect("resolved by close")
                .expect_err("failed");
            assert!(
                err.kind() == ErrorKind::Timeout
                    || err.kafka_code() == Some(ErrorCode::NOT_ENOUGH_REPLICAS),
                "{err}"
            );
        }
        assert!(values(&fake, 0).is_empty());
        let err = p
            .send(ProducerRecord::new("t", "late").with_partition(0))
            .await
            .expect_err("closed");
        assert_eq!(err.kind(), ErrorKind::State, "{err}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_channel_form_reports_successes_and_errors() {
    bounded(async {
        let fake = cluster(1, 2).await;
        let p = producer(config(&fake)).await;
        let mut ch = p.into_channels(16);
        for i in 0..10 {
            let r = ProducerRecord::new("t", format!("{i}")).with_partition(i % 2);
            ch.input.send(r).await.expect("input");
        }
        ch.input
            .send(ProducerRecord::new("t", "nowhere").with_partition(5))
            .await
            .expect("input");
        drop(ch.input);
        let mut ok = 0;
        while let Some((record, meta)) = ch.successes.recv().await {
            assert_eq!(record.partition, Some(meta.partition));
            ok += 1;
        }
        let err = ch.errors.recv().await.expect("one error");
        assert_eq!(err.record.value.as_deref(), Some(&b"nowhere"[..]));
        assert_eq!(err.error.kind(), ErrorKind::Broker);
        assert!(ch.errors.recv().await.is_none());
        assert_eq!(ok, 10);
        assert_eq!(values(&fake, 0).len() + values(&fake, 1).len(), 10);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_broker_that_never_answers_holds_up_only_its_own_partitions() {
    bounded(async {
        // Broker 2, partition 1's leader, accepts connections and never
        // answers (not even the ApiVersions every connection starts with).
        let fake = cluster(2, 2).await;
        silence(&fake, 2);
        let request_timeout = Duration::from_millis(500);
        let mut cfg = config(&fake);
        let linger = cfg.producer.linger;
        cfg.net.request_timeout = request_timeout;
        cfg.consumer.fetch_max_wait = Duration::from_millis(100);
        cfg.producer.request_timeout = request_timeout;
        cfg.producer.delivery_timeout = Duration::from_secs(2);
        let p = producer(cfg).await;
        let stuck: Vec<DeliveryFuture> = {
            let mut v = Vec::new();
            for i in 0..5 {
                let r = ProducerRecord::new("t", format!("stuck {i}")).with_partition(1);
                v.push(p.send(r).await.expect("queued"));
            }
            v
        };
        let started = tokio::time::Instant::now();
        for f in send_numbered(&p, 0, 50).await {
            f.await.expect("partition 0 is not held up");
        }
        // On the paused clock: partition 0 took no longer than its linger,
        // as if broker 2 were not there, while broker 2's records wait on.
        let waited = started.elapsed();
        assert!(
            waited <= linger,
            "partition 0 waited {waited:?} (request timeout {request_timeout:?})"
        );
        assert!(
            stuck.iter().all(|f| f.try_result().is_none()),
            "partition 1's records were still waiting for broker 2"
        );
        p.close().await.expect("close");
        for f in stuck {
            let err = f
                .try_result()
                .expect("resolved by close")
                .expect_err("never written");
            assert!(err.is_retriable(), "{err}");
        }
        assert_eq!(values(&fake, 0), numbered(0, 50));
        // Broker 2 was asked (ApiVersions, unanswered) and wrote nothing.
        assert!(fake.requests(Some(2), ApiKey::ApiVersions) > 0);
        assert_eq!(fake.requests(Some(2), ApiKey::Produce), 0);
    })
    .await;
}

/// A connect that fails (broker 2 takes the connection but never answers
/// ApiVersions) puts the broker in the pool's reconnect backoff, where
/// every connect fails at once. The sender waits retry.backoff.ms before
/// connecting again rather than spinning on those failures.
#[tokio::test(start_paused = true)]
async fn a_failed_connect_is_not_retried_in_a_busy_loop() {
    let (capture, _guard) = Capture::start();
    bounded(async {
        let fake = cluster(2, 2).await;
        silence(&fake, 2);
        let request_timeout = Duration::from_millis(100);
        let retry_backoff = Duration::from_millis(50);
        let mut cfg = config(&fake);
        cfg.net.request_timeout = request_timeout;
        cfg.producer.request_timeout = request_timeout;
        cfg.consumer.fetch_max_wait = Duration::from_millis(50);
        // The pool's first reconnect backoff (16-24 ms) ends before the
        // sender's pause does.
        cfg.net.reconnect_backoff = Duration::from_millis(20);
        cfg.producer.retry_backoff = retry_backoff;
        cfg.producer.delivery_timeout = Duration::from_secs(1);
        let p = producer(cfg).await;
        let stuck = p
            .send(ProducerRecord::new("t", "stuck").with_partition(1))
            .await
            .expect("queued");
        capture.wait_for("producer connect failed", 1).await;
        // Every task gets to run many times over while the clock stands
        // still: a loop that reconnects at once would fail again and again.
        let failed_at = tokio::time::Instant::now();
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
        assert_eq!(tokio::time::Instant::now(), failed_at, "the clock stood");
        assert_eq!(
            capture.events("producer connect failed").len(),
            1,
            "connects retried with no time passing"
        );
        // After the pause the sender connects again, and that connect
        // fails as the first did.
        capture.wait_for("producer connect failed", 2).await;
        let failures = capture.events("producer connect failed");
        assert!(failures.iter().all(|f| f.fields["broker"] == "2"));
        let gap = failures[1].at - failures[0].at;
        assert!(
            gap >= retry_backoff + request_timeout
                && gap <= retry_backoff + request_timeout + Duration::from_millis(1),
            "the second connect failed {gap:?} after the first"
        );
        assert!(stuck.try_result().is_none(), "still waiting for broker 2");
        p.close().await.expect("close");
        let err = stuck
            .try_result()
            .expect("resolved by close")
            .expect_err("never written");
        assert!(err.is_retriable(), "{err}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn producer_ids_come_from_a_live_broker_when_the_first_listed_is_down() {
    bounded(async {
        // Broker 1, first by id, is listed but out of the producer's reach:
        // its connections close at their first request. Broker 2 leads.
        let fake = cluster(2, 1).await;
        fake.move_leader("t", 0, 2).expect("moved");
        fake.partition_client("cut-off", 1);
        let mut cfg = config(&fake);
        cfg.net.bootstrap_servers = vec![fake.addresses()[1].clone()];
        cfg.net.client_id = "cut-off".into();
        cfg.net.request_timeout = Duration::from_secs(1);
        cfg.producer.request_timeout = Duration::from_secs(1);
        // The producer id comes from broker 2.
        let p = producer(cfg).await;
        assert_eq!(init_requests(&fake).len(), 1);
        assert_eq!(fake.requests(Some(2), ApiKey::InitProducerId), 1);
        for f in send_numbered(&p, 0, 10).await {
            f.await.expect("delivered");
        }
        p.close().await.expect("close");
        assert_eq!(init_requests(&fake).len(), 1, "one producer id");
        assert_eq!(values(&fake, 0), numbered(0, 10));
        // The control: broker 1 was tried, and handled nothing.
        assert!(fake.connections(1) > 0, "broker 1 was never tried");
        assert!(fake.history().iter().all(|r| r.broker == 2));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_the_broker_may_have_written_is_not_sent_again_under_a_new_epoch() {
    bounded(async {
        let fake = cluster(1, 2).await;
        let mut cfg = config(&fake);
        // One batch per partition; the retry waits long enough for the
        // other partition's failure to come first.
        cfg.producer.linger = Duration::from_millis(50);
        cfg.producer.retry_backoff = Duration::from_millis(300);
        let p = producer(cfg).await;
        // Partition 0's batch is written, its answer lost: the producer
        // cannot know and will send it again.
        fake.inject(ApiKey::Produce, None, Fault::CutAfterApply, 1)
            .expect("injected");
        let too_large = Fault::Error(code(ErrorCode::MESSAGE_TOO_LARGE));
        fake.inject(ApiKey::Produce, None, too_large, 1)
            .expect("injected");
        let first = send_numbered(&p, 0, 5).await;
        eventually("the first request reached the broker", || {
            produce_requests(&fake) >= 1
        })
        .await;
        // Meanwhile partition 1's batch fails for good: its sequence
        // numbers are spent, so the epoch is bumped.
        let doomed = p
            .send(ProducerRecord::new("t", "doomed").with_partition(1))
            .await
            .expect("send");
        let err = doomed.await.expect_err("MESSAGE_TOO_LARGE is final");
        assert_eq!(err.kafka_code(), Some(ErrorCode::MESSAGE_TOO_LARGE));
        for f in first {
            f.await.expect("delivered");
        }
        // Records after the bump go under the new epoch.
        for f in send_numbered(&p, 5, 5).await {
            f.await.expect("delivered");
        }
        p.close().await.expect("close");
        assert_eq!(
            values(&fake, 0),
            numbered(0, 10),
            "partition 0 holds each record once"
        );
        // The control: the batch cut off was sent again, and recognised.
        assert_eq!(fake.duplicates("t", 0), 1);
        // The bump is the producer's own (same id, epoch + 1).
        assert_eq!(init_requests(&fake).len(), 1, "one producer id");
        let (_, epoch, _) = last_writer(&fake, 0).expect("an idempotent writer");
        assert_eq!(epoch, 1, "records after the bump carry the new epoch");
    })
    .await;
}

/// A topic the metadata does not know yet (just created, being
/// auto-created) is waited for, as the Java client waits up to
/// max.block.ms; the record then goes out.
#[tokio::test(start_paused = true)]
async fn a_send_waits_for_a_topic_to_appear_in_the_metadata() {
    bounded(async {
        let fake = cluster(1, 1).await;
        // The bootstrap's answer and three more lack the topic.
        let unknown = code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        fake.metadata_topic_error("t", unknown, 4);
        let mut cfg = config(&fake);
        cfg.producer.retry_backoff = Duration::from_millis(10);
        let p = producer(cfg).await;
        let sent = tokio::time::Instant::now();
        let f = p
            .send(ProducerRecord::new("t", "late").with_partition(0))
            .await
            .expect("queued once the topic appears");
        // Three pauses of retry.backoff.ms, each less 20 % jitter at most.
        assert!(sent.elapsed() >= Duration::from_millis(24), "three waits");
        f.await.expect("written");
        assert!(fake.requests(None, ApiKey::Metadata) >= 5);
        p.close().await.expect("close");
        assert_eq!(values(&fake, 0), vec![Bytes::from("late")]);
    })
    .await;
}

/// A topic the broker will not show (TOPIC_AUTHORIZATION_FAILED) fails the
/// send at once with that error, not after max.block.ms of retries; one
/// that never appears fails with a timeout at max.block.ms.
#[tokio::test(start_paused = true)]
async fn a_denied_topic_fails_at_once_and_a_missing_one_at_max_block() {
    bounded(async {
        let fake = cluster(1, 1).await;
        let denied = code(ErrorCode::TOPIC_AUTHORIZATION_FAILED);
        fake.metadata_topic_error("t", denied, 2);
        let p = producer(config(&fake)).await;
        let asked = fake.requests(None, ApiKey::Metadata);
        let err = p
            .send(ProducerRecord::new("t", "x").with_partition(0))
            .await
            .expect_err("denied");
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        );
        assert!(!err.is_retriable(), "{err}");
        assert_eq!(
            fake.requests(None, ApiKey::Metadata),
            asked + 1,
            "asked once"
        );
        p.close().await.expect("close");

        let fake = cluster(1, 1).await;
        let unknown = code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        fake.metadata_topic_error("t", unknown, 10_000);
        let mut cfg = config(&fake);
        cfg.producer.max_block = Duration::from_millis(200);
        cfg.producer.retry_backoff = Duration::from_millis(10);
        let p = producer(cfg).await;
        let sent = tokio::time::Instant::now();
        let err = p
            .send(ProducerRecord::new("t", "x").with_partition(0))
            .await
            .expect_err("never appears");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        let waited = sent.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited <= Duration::from_millis(210),
            "{waited:?}"
        );
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn metadata_without_brokers_is_a_broker_error_not_a_configuration_error() {
    bounded(async {
        // The bootstrap server answers, but its metadata names no broker,
        // so no one can be asked for a producer id.
        let broker = klamm_fake::ScriptedBroker::start()
            .await
            .expect("scripted broker");
        // klamm-fake's own klamm (the library, not this test build).
        use klamm_fake::klamm::protocol::messages::{MetadataRequest, MetadataResponse};
        broker.always(|_: MetadataRequest| MetadataResponse::default());
        let mut config = crate::Config::default();
        config.net.bootstrap_servers = vec![broker.addr()];
        assert!(
            config.producer.idempotence,
            "idempotent by default, as Java"
        );
        let client = crate::Client::connect(config).await.expect("connect");
        let err = AsyncProducer::new(client)
            .await
            .expect_err("no producer without a broker to ask");
        assert_eq!(err.kind(), ErrorKind::Broker, "{err}");
        assert_eq!(
            err.kafka_code(),
            Some(ErrorCode::BROKER_NOT_AVAILABLE),
            "{err}"
        );
        assert_eq!(err.config_key(), None, "{err}");
        assert!(err.to_string().contains("lists no brokers"), "{err}");
        assert!(broker.unexpected().is_empty(), "{:?}", broker.unexpected());
    })
    .await;
}
