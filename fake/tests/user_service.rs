//! How a user tests their own service with the fake cluster: the service
//! below publishes order events with klamm; the test runs it against an
//! in-process cluster, checks what arrived in the log, then moves the
//! partition's leader and fails the next write, and checks the service
//! carried on without losing or repeating an event.

use std::time::Duration;

use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::protocol::messages::ApiKey;
use klamm::{Client, Config};
use klamm_fake::{FakeCluster, Fault};

/// The user's code: publishes each order as a keyed event.
struct OrderEvents {
    producer: AsyncProducer,
}

impl OrderEvents {
    async fn connect(brokers: Vec<String>) -> klamm::Result<Self> {
        let mut config = Config::default();
        config.net.bootstrap_servers = brokers;
        config.net.client_id = "order-service".into();
        config.producer.retry_backoff = Duration::from_millis(20);
        let producer = AsyncProducer::new(Client::connect(config).await?).await?;
        Ok(OrderEvents { producer })
    }

    /// Publishes and waits until the cluster has the event.
    async fn order_placed(&self, order: u32, amount_cents: u64) -> klamm::Result<i64> {
        let event = ProducerRecord::new("orders", format!("{{\"amount\":{amount_cents}}}"))
            .with_key(format!("order-{order}"))
            .with_header("type", "placed");
        Ok(self.producer.send(event).await?.await?.offset)
    }

    async fn close(self) -> klamm::Result<()> {
        self.producer.close().await
    }
}

#[tokio::test]
async fn order_events_survive_a_leader_move() {
    let cluster = FakeCluster::builder()
        .brokers(3)
        .topic("orders", 1)
        .start()
        .await
        .unwrap();
    let service = OrderEvents::connect(cluster.addresses()).await.unwrap();

    service.order_placed(1, 1999).await.unwrap();
    service.order_placed(2, 4500).await.unwrap();

    // What arrived: two events, keyed, with their header, in order.
    let log = cluster.records("orders", 0);
    let keys: Vec<_> = log.iter().map(|r| r.key.clone().unwrap()).collect();
    assert_eq!(keys, ["order-1", "order-2"]);
    assert_eq!(log[1].value.as_deref(), Some(&b"{\"amount\":4500}"[..]));
    assert_eq!(log[0].headers[0].0, "type");

    // The partition's leader moves to another broker, and the new leader
    // fails the service's next write once with a retriable error.
    let old = cluster.leader("orders", 0).unwrap();
    let new = cluster
        .broker_ids()
        .into_iter()
        .find(|&b| b != old)
        .unwrap();
    cluster.move_leader("orders", 0, new).unwrap();
    cluster
        .inject(
            ApiKey::Produce,
            Some(new),
            Fault::Error(ErrorCode::NOT_ENOUGH_REPLICAS),
            1,
        )
        .unwrap();

    let offset = service.order_placed(3, 250).await.unwrap();
    assert_eq!(offset, 2, "the third event follows the first two");
    let keys: Vec<_> = cluster
        .records("orders", 0)
        .iter()
        .map(|r| r.key.clone().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["order-1", "order-2", "order-3"],
        "nothing lost or repeated"
    );
    // The service found the new leader and retried there.
    assert_eq!(cluster.requests(Some(new), ApiKey::Produce), 2);
    service.close().await.unwrap();
}
