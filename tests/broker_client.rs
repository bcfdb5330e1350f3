//! The Client against Apache Kafka (the single node): bootstrap with dead
//! seeds first, metadata of a topic the test creates, leaders, offsets,
//! coordinators, the controller.

mod support;

use klamm::client::OffsetSpec;
use klamm::{Client, Config};

#[test]
fn client_against_the_broker() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let mut config = Config::default();
        // The first seed refuses connections; the client moves on.
        config.net.bootstrap_servers = vec!["127.0.0.1:1".into(), addr.clone()];
        config.net.client_id = "klamm-client-test".into();
        let client = Client::connect(config).await.expect("bootstrap");

        // Created (and waited for) through another client, so this one's
        // cache has never heard of it.
        let topic = support::unique_topic("klamm-client");
        let admin = Client::connect(support::read::config(&addr))
            .await
            .expect("admin client");
        support::topics::create_topic(&admin, &topic, 3).await;
        admin.close().await;
        assert!(!client.topics().contains(&topic));

        // Unknown to the cache until asked for: fetched on demand.
        assert_eq!(
            client.partitions(&topic).await.expect("partitions"),
            [0, 1, 2]
        );
        assert_eq!(
            client.writable_partitions(&topic).await.expect("writable"),
            [0, 1, 2]
        );
        assert!(client.topics().contains(&topic));
        let leader = client.leader(&topic, 1).await.expect("leader");
        assert!(
            client
                .replicas(&topic, 1)
                .await
                .expect("replicas")
                .contains(&leader.id)
        );
        assert!(
            client
                .in_sync_replicas(&topic, 1)
                .await
                .expect("isr")
                .contains(&leader.id)
        );
        assert!(
            client
                .offline_replicas(&topic, 1)
                .await
                .expect("offline")
                .is_empty()
        );
        assert_eq!(
            client
                .list_offsets(&topic, 1, OffsetSpec::Oldest)
                .await
                .expect("oldest"),
            0
        );

        let coordinator = client
            .coordinator("klamm-test-group")
            .await
            .expect("group coordinator");
        assert!(
            client.broker(coordinator.id).is_some(),
            "the coordinator is a known broker"
        );
        client
            .refresh_coordinator("klamm-test-group")
            .await
            .expect("refreshed");
        client
            .transaction_coordinator("klamm-test-txn")
            .await
            .expect("transaction coordinator");

        let before = client.metadata_requests();
        client.refresh_metadata(None).await.expect("refresh");
        assert_eq!(client.metadata_requests(), before + 1);
        client.close().await;
    });
}
