//! The consumer on librdkafka's mock cluster (`scripts/mock-cluster`):
//! consuming through a leader move.

mod support;

use std::time::Duration;

use bytes::Bytes;
use klamm::consumer::{Consumer, PartitionConsumer, StartOffset};
use klamm::protocol::records::{EncodeOptions, Record, RecordBatch};
use klamm::{Client, Config};

async fn produce(client: &Client, topic: &str, from: usize, n: usize) {
    let mut b = RecordBatch::new(0, 1_700_000_000_000);
    for i in 0..n {
        b.records.push(
            Record::new(None, Some(Bytes::from(format!("v{}", from + i))))
                .with_offset_delta(i as i32),
        );
    }
    let records = b.encode_to_vec(&EncodeOptions::default()).expect("encode");
    // The cached leader may be stale right after a move: refresh first.
    client
        .refresh_metadata(Some(&[topic.to_string()]))
        .await
        .expect("refresh");
    let p = support::produce::produce_raw(client, topic, 0, Bytes::from(records), None).await;
    assert_eq!(p.error_code, 0);
}

async fn expect_values(pc: &mut PartitionConsumer, range: std::ops::Range<usize>) {
    for i in range {
        let r = tokio::time::timeout(Duration::from_secs(10), pc.recv())
            .await
            .unwrap_or_else(|_| panic!("record {i} not read in 10 s"))
            .expect("open")
            .expect("record");
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(format!("v{i}").as_bytes()));
    }
}

#[test]
fn consuming_through_a_leader_move() {
    let Some(mock) = support::mock::mock() else {
        return;
    };
    let brokers = mock.addrs().len() as i32;
    assert!(brokers >= 2, "the mock needs at least 2 brokers");
    support::run_within(60, async {
        let topic = support::unique_topic("klamm-mock-consume");
        mock.create_topic(&topic, 1, brokers.min(3));
        let mut config = Config::default();
        config.net.bootstrap_servers = mock.addrs();
        config.net.request_timeout = Duration::from_secs(3);
        config.consumer.fetch_max_wait = Duration::from_millis(100);
        config.metadata.retry_backoff = Duration::from_millis(50);
        let client = Client::connect(config).await.expect("bootstrap");
        produce(&client, &topic, 0, 10).await;
        let consumer = Consumer::new(client.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, StartOffset::Oldest)
            .await
            .expect("consume");
        expect_values(&mut pc, 0..10).await;

        let old = client.leader(&topic, 0).await.expect("leader").id;
        let new = old % brokers + 1;
        mock.set_leader(&topic, 0, new);
        produce(&client, &topic, 10, 10).await;
        assert_eq!(client.leader(&topic, 0).await.expect("leader").id, new);
        // The fetcher on the old leader gets NOT_LEADER_OR_FOLLOWER; the
        // partition moves to the new leader's fetcher and goes on where it
        // was: every record once, in order.
        expect_values(&mut pc, 10..20).await;
        // And back again.
        mock.set_leader(&topic, 0, old);
        produce(&client, &topic, 20, 5).await;
        expect_values(&mut pc, 20..25).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(300), pc.recv())
                .await
                .is_err(),
            "no record twice"
        );
        assert_eq!(pc.high_water_mark(), 25);
        consumer.close().await;
        client.close().await;
    });
}
