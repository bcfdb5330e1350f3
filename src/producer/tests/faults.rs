//! The whole producer against the scripted fake broker: retries, dropped
//! connections, epoch bumps, timeouts and errors that end a batch.

use std::time::Duration;

use bytes::Bytes;

use super::fake::{FakeBroker, Fault};
use crate::config::Config;
use crate::producer::{AsyncProducer, DeliveryFuture, ProducerRecord};
use crate::protocol::error_codes::ErrorCode;
use crate::{Client, ErrorKind};

fn config(fake: &FakeBroker) -> Config {
    let mut config = Config::default();
    config.net.bootstrap_servers = vec![fake.addr.clone()];
    config.producer.linger = Duration::from_millis(1);
    config.producer.retry_backoff = Duration::from_millis(10);
    config.producer.batch_size = 200;
    config
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("finished in time")
}

async fn producer(config: Config) -> AsyncProducer {
    let client = Client::connect(config).await.expect("connect");
    AsyncProducer::new(client).await.expect("producer")
}

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

#[tokio::test]
async fn retriable_errors_and_dropped_connections_lose_nothing_and_duplicate_nothing() {
    bounded(async {
        let fake = FakeBroker::start("t", 1).await;
        let p = producer(config(&fake)).await;
        fake.inject(&[
            Fault::Code(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            Fault::WriteThenDrop,
            Fault::Code(ErrorCode::REQUEST_TIMED_OUT),
            Fault::Drop,
            Fault::WriteThenDrop,
        ]);
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
        assert_eq!(fake.values(0), numbered(0, 300));
        assert!(fake.lock().faults.is_empty(), "every fault was hit");
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn unknown_producer_id_bumps_the_epoch_and_restarts_sequences() {
    bounded(async {
        let fake = FakeBroker::start("t", 1).await;
        let p = producer(config(&fake)).await;
        for f in send_numbered(&p, 0, 20).await {
            f.await.expect("delivered");
        }
        fake.inject(&[Fault::Code(ErrorCode::UNKNOWN_PRODUCER_ID)]);
        let futures = send_numbered(&p, 20, 20).await;
        for f in futures {
            f.await.expect("delivered after the bump");
        }
        let inits = fake.lock().init_requests.clone();
        assert_eq!(inits.len(), 2, "{inits:?}");
        assert_eq!(inits[0], (-1, -1), "a new producer id first");
        assert_eq!(
            inits[1],
            (1001, 0),
            "then a bump of the current id and epoch"
        );
        assert_eq!(fake.values(0), numbered(0, 40));
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_refused_epoch_bump_falls_back_to_a_new_producer_id() {
    bounded(async {
        let fake = FakeBroker::start("t", 1).await;
        fake.lock().refuse_bumps = true;
        let p = producer(config(&fake)).await;
        for f in send_numbered(&p, 0, 10).await {
            f.await.expect("delivered");
        }
        fake.inject(&[Fault::Code(ErrorCode::UNKNOWN_PRODUCER_ID)]);
        for f in send_numbered(&p, 10, 10).await {
            f.await.expect("delivered under the new producer id");
        }
        let inits = fake.lock().init_requests.clone();
        assert_eq!(inits, [(-1, -1), (1001, 0), (-1, -1)]);
        assert_eq!(fake.values(0), numbered(0, 20));
        assert_eq!(p.stats().producer_id_requests, 2);
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn errors_that_are_not_retriable_fail_each_record_of_the_batch() {
    bounded(async {
        let fake = FakeBroker::start("t", 1).await;
        let p = producer(config(&fake)).await;
        fake.inject(&[Fault::Code(ErrorCode::MESSAGE_TOO_LARGE)]);
        let failed = send_numbered(&p, 0, 3).await;
        for f in failed {
            let err = f.await.expect_err("rejected");
            assert_eq!(err.kafka_code(), Some(ErrorCode::MESSAGE_TOO_LARGE));
        }
        // The producer carries on (under a new epoch: the failed batch
        // took sequence numbers).
        for f in send_numbered(&p, 3, 5).await {
            f.await.expect("delivered");
        }
        assert_eq!(fake.values(0), numbered(3, 5));
        assert_eq!(fake.lock().init_requests.len(), 2);
        p.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn records_that_cannot_be_delivered_in_time_fail_with_a_timeout_at_close() {
    bounded(async {
        let fake = FakeBroker::start("t", 1).await;
        let mut cfg = config(&fake);
        cfg.producer.request_timeout = Duration::from_millis(200);
        cfg.producer.delivery_timeout = Duration::from_millis(600);
        let p = producer(cfg).await;
        fake.inject(&[Fault::Code(ErrorCode::NOT_ENOUGH_REPLICAS); 1000]);
        let futures = send_numbered(&p, 0, 10).await;
        p.clone()
            .close()
            .await
            .expect("close returns once every record has its outcome");
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
        assert!(fake.values(0).is_empty());
        let err = p
            .send(ProducerRecord::new("t", "late").with_partition(0))
            .await
            .expect_err("closed");
        assert_eq!(err.config_key(), Some("producer"));
    })
    .await;
}

#[tokio::test]
async fn the_channel_form_reports_successes_and_errors() {
    bounded(async {
        let fake = FakeBroker::start("t", 2).await;
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
        assert_eq!(fake.values(0).len() + fake.values(1).len(), 10);
    })
    .await;
}

#[tokio::test]
async fn a_broker_that_never_answers_holds_up_only_its_own_partitions() {
    bounded(async {
        // Broker 2 accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = i32::from(silent.local_addr().expect("addr").port());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let fake = FakeBroker::start("t", 2).await;
        fake.lock().silent_leader_port = Some(port);
        let mut cfg = config(&fake);
        cfg.net.request_timeout = Duration::from_millis(500);
        cfg.consumer.fetch_max_wait = Duration::from_millis(100);
        cfg.producer.request_timeout = Duration::from_millis(500);
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
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "partition 0 waited {:?}",
            started.elapsed()
        );
        p.close().await.expect("close");
        for f in stuck {
            let err = f
                .try_result()
                .expect("resolved by close")
                .expect_err("never written");
            assert!(err.is_retriable(), "{err}");
        }
        assert_eq!(fake.values(0), numbered(0, 50));
    })
    .await;
}

#[tokio::test]
async fn producer_ids_come_from_a_live_broker_when_the_first_listed_is_down() {
    bounded(async {
        // Broker 0, first by id, is down: nothing listens on its port.
        let down = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = i32::from(down.local_addr().expect("addr").port());
        drop(down);
        let fake = FakeBroker::start("t", 1).await;
        fake.lock().down_broker_port = Some(port);
        let mut cfg = config(&fake);
        cfg.net.request_timeout = Duration::from_secs(1);
        cfg.producer.request_timeout = Duration::from_secs(1);
        // The first producer id, then the bump UNKNOWN_PRODUCER_ID asks
        // for, both from broker 1.
        let p = producer(cfg).await;
        assert_eq!(fake.lock().init_requests.len(), 1);
        fake.inject(&[Fault::Code(ErrorCode::UNKNOWN_PRODUCER_ID)]);
        for f in send_numbered(&p, 0, 10).await {
            f.await.expect("delivered");
        }
        p.close().await.expect("close");
        assert_eq!(fake.lock().init_requests.len(), 2, "a first id and a bump");
        assert_eq!(fake.values(0), numbered(0, 10));
    })
    .await;
}

#[tokio::test]
async fn a_batch_the_broker_may_have_written_is_not_sent_again_under_a_new_epoch() {
    bounded(async {
        let fake = FakeBroker::start("t", 2).await;
        let mut cfg = config(&fake);
        // One batch per partition; the retry waits long enough for the
        // other partition's failure to come first.
        cfg.producer.linger = Duration::from_millis(50);
        cfg.producer.retry_backoff = Duration::from_millis(300);
        let p = producer(cfg).await;
        // Partition 0's batch is written, its answer lost: the producer
        // cannot know and will send it again.
        fake.inject(&[
            Fault::WriteThenDrop,
            Fault::Code(ErrorCode::MESSAGE_TOO_LARGE),
        ]);
        let first = send_numbered(&p, 0, 5).await;
        tokio::time::timeout(Duration::from_secs(5), async {
            while fake.lock().produce_requests < 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the first request reached the broker");
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
            fake.values(0),
            numbered(0, 10),
            "partition 0 holds each record once"
        );
        assert_eq!(fake.lock().init_requests.len(), 2, "a first id and a bump");
    })
    .await;
}
