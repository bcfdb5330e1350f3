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
            (ApiKey::ConsumerGroupHeartbeat, 1),
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
            (ApiKey::Produce, 11),
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
