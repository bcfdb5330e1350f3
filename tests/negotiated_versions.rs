//! Which version of each API klamm's clients use with Apache Kafka 4.4
//! (the single node): the newest where klamm's code handles it, and the
//! documented cap (`klamm::net::client_max`) where the newer versions
//! change what a client must do (topic ids, transactions V2) and that
//! work is still to come.

mod support;

use klamm::Client;
use klamm::client::TrafficClass;
use klamm::net::client_max;
use klamm::protocol::messages::ApiKey;
use support::read::config;

#[test]
fn the_client_negotiates_the_newest_versions_it_implements() {
    support::run_within(60, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let broker = client.controller().await.expect("a broker");
        let conn = client
            .connection(&broker, TrafficClass::Other)
            .await
            .expect("connection");
        let v = |api| {
            conn.api_versions()
                .version_for(api, conn.broker())
                .expect("offered")
        };
        let broker_max = |api| conn.api_versions().broker_range(api).expect("offered").1;
        eprintln!(
            "ApiVersions: broker v{}, used v{}",
            broker_max(ApiKey::ApiVersions),
            v(ApiKey::ApiVersions)
        );
        // The newest Kafka 4.4 has, and klamm's codecs have.
        for (api, newest) in [
            (ApiKey::ApiVersions, 5),
            (ApiKey::Metadata, 13),
            (ApiKey::ListOffsets, 11),
            (ApiKey::FindCoordinator, 6),
            (ApiKey::DescribeGroups, 6),
            (ApiKey::DeleteGroups, 3),
            (ApiKey::ConsumerGroupDescribe, 1),
            (ApiKey::ShareFetch, 2),
            (ApiKey::ShareAcknowledge, 2),
            (ApiKey::ShareGroupHeartbeat, 1),
        ] {
            assert!(
                broker_max(api) >= newest,
                "{api:?}: the broker offers v{}",
                broker_max(api)
            );
            assert_eq!(v(api), broker_max(api).min(api.versions().1), "{api:?}");
            assert!(v(api) >= newest, "{api:?}");
        }
        // Capped below what the broker offers, until the client handles
        // the newer versions (topic ids; transactions V2).
        for (api, cap) in [
            // By hand (Connection::send) Produce and Fetch stay at the
            // versions with topic names; the producer and the fetcher use
            // v13 and v18 (the test below).
            (ApiKey::Produce, 11),
            (ApiKey::Fetch, 12),
            (ApiKey::ConsumerGroupHeartbeat, 0),
            (ApiKey::OffsetCommit, 9),
            (ApiKey::OffsetFetch, 9),
            (ApiKey::EndTxn, 4),
            (ApiKey::TxnOffsetCommit, 4),
        ] {
            assert_eq!(client_max(api), cap, "{api:?}");
            assert_eq!(v(api), cap, "{api:?}");
            assert!(broker_max(api) > cap, "{api:?}: Kafka 4.4 offers more");
        }
    });
}

/// The producer and the fetcher through a recording relay: a plain
/// producer sends Produce v13 (topics by id, the ids metadata gave) and
/// its records are written; the fetcher reads them at Fetch v18, by id; a
/// transactional producer stays at v11 (names), the transactions V1 set.
#[test]
fn producer_and_fetcher_name_topics_by_id_and_a_transactional_producer_stays_at_v11() {
    use klamm::producer::{AsyncProducer, ProducerRecord};
    use klamm::protocol::primitives::Uuid;
    use support::relay::Relay;
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let direct = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-produce-v13");
        support::topics::create_topic(&direct, &topic, 2).await;
        let id = direct.metadata().topics[&topic].id;
        assert_ne!(id, Uuid::ZERO);
        let relay = Relay::start(addr.clone(), vec![]).await;

        let client = Client::connect(config(&relay.addr)).await.expect("connect");
        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let mut pending = Vec::new();
        for i in 0..20 {
            let r = ProducerRecord::new(topic.clone(), format!("v13-{i}")).with_partition(i % 2);
            pending.push(producer.send(r).await.expect("send"));
        }
        for d in pending {
            d.await.expect("written");
        }
        producer.close().await.expect("close");
        let produced = relay.log.of(ApiKey::Produce);
        assert!(!produced.is_empty());
        for e in &produced {
            assert_eq!(e.version(), 13);
            let req = e.produce().expect("a Produce request");
            assert!(
                req.topic_data
                    .iter()
                    .all(|t| t.topic_id == id && t.name.is_empty())
            );
            let resp = e.produce_response().expect("answered");
            assert!(resp.responses.iter().all(|t| t.topic_id == id));
        }
        assert_eq!(
            direct
                .list_offsets(&topic, 0, klamm::client::OffsetSpec::Newest)
                .await
                .unwrap(),
            10
        );
        assert_eq!(
            direct
                .list_offsets(&topic, 1, klamm::client::OffsetSpec::Newest)
                .await
                .unwrap(),
            10
        );

        // The fetcher reads them back at Fetch v18, by topic id.
        let consumer = klamm::consumer::Consumer::new(client.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, klamm::consumer::StartOffset::Oldest)
            .await
            .expect("consume");
        for i in 0..10 {
            let r = tokio::time::timeout(std::time::Duration::from_secs(20), pc.recv())
                .await
                .expect("in time")
                .expect("open")
                .expect("record");
            assert_eq!(
                r.value.as_deref(),
                Some(format!("v13-{}", 2 * i).as_bytes())
            );
        }
        drop(pc);
        consumer.close().await;
        let fetched: Vec<_> = relay
            .log
            .of(ApiKey::Fetch)
            .into_iter()
            .filter(|e| e.fetch().is_some_and(|f| f.session_epoch >= 0))
            .collect();
        assert!(!fetched.is_empty());
        for e in &fetched {
            assert_eq!(e.version(), 18);
            let req = e.fetch().expect("a Fetch request");
            assert!(
                req.topics
                    .iter()
                    .all(|t| t.topic_id == id && t.topic.is_empty())
            );
        }
        assert!(fetched.iter().any(|e| {
            e.fetch_response()
                .is_some_and(|r| r.responses.iter().any(|t| t.topic_id == id))
        }));

        let mut txn = config(&relay.addr);
        txn.producer.idempotence = true;
        txn.producer.transactional_id = Some(support::unique_topic("klamm-v11-txn"));
        let producer = AsyncProducer::new(Client::connect(txn).await.expect("connect"))
            .await
            .expect("producer");
        producer.init_transactions().await.expect("init");
        producer.begin_transaction().expect("begin");
        let d = producer
            .send(ProducerRecord::new(topic.clone(), "txn").with_partition(0))
            .await
            .expect("send");
        producer.commit_transaction().await.expect("commit");
        d.await.expect("written");
        producer.close().await.expect("close");
        let txn_produce: Vec<_> = relay
            .log
            .of(ApiKey::Produce)
            .into_iter()
            .filter(|e| e.produce().is_some_and(|r| r.transactional_id.is_some()))
            .collect();
        assert!(!txn_produce.is_empty());
        for e in &txn_produce {
            assert_eq!(e.version(), 11);
            assert!(
                e.produce()
                    .unwrap()
                    .topic_data
                    .iter()
                    .all(|t| *t.name == *topic)
            );
        }
    });
}
