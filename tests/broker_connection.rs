//! klamm's asynchronous connection against Apache Kafka (the single node):
//! version negotiation, topic creation and metadata, list offsets,
//! coordinator lookup and pipelined requests.

mod support;

use std::time::Duration;

use klamm::net::{Connection, ConnectionOptions};
use klamm::protocol::messages::create_topics_request::CreatableTopic;
use klamm::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use klamm::protocol::messages::metadata_request::MetadataRequestTopic;
use klamm::protocol::messages::*;

async fn connect() -> Option<Connection> {
    let addr = support::broker()?;
    let opts = ConnectionOptions {
        request_timeout: Duration::from_secs(10),
        max_in_flight: 64,
        ..Default::default()
    };
    Some(
        Connection::connect(&addr, opts)
            .await
            .expect("connect and negotiate with the test broker"),
    )
}

async fn create_topic(conn: &Connection, name: &str, partitions: i32) {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let resp = conn.send(&req).await.expect("CreateTopics");
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
    // KRaft: the broker learns of the topic, and its leaders, just after
    // CreateTopics answers. Wait until Metadata names every leader.
    for _ in 0..600 {
        let meta = conn
            .send(&MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some(name.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .await
            .expect("Metadata");
        let t = &meta.topics[0];
        if t.error_code == 0
            && t.partitions.len() == partitions as usize
            && t.partitions
                .iter()
                .all(|p| p.error_code == 0 && p.leader_id >= 0)
            && leaders_serve(conn, name, partitions).await
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name}: no serving leader for every partition within 30 s");
}

/// Whether every partition's leader answers ListOffsets (Metadata may name
/// a leader a moment before it serves).
async fn leaders_serve(conn: &Connection, name: &str, partitions: i32) -> bool {
    let resp = conn
        .send(&ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: name.into(),
                partitions: (0..partitions)
                    .map(|p| ListOffsetsPartition {
                        partition_index: p,
                        timestamp: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await;
    resp.is_ok_and(|r| r.topics[0].partitions.iter().all(|p| p.error_code == 0))
}

#[test]
fn negotiates_versions_with_the_broker() {
    support::run_within(60, async {
        let Some(conn) = connect().await else { return };
        let v = conn.api_versions();
        // Apache Kafka 4.4 offers Metadata up to v13 and Produce up to v13;
        // klamm uses Metadata v13 and Produce up to v11 (v12+ needs
        // transactions V2 and topic ids; see klamm::net::client_max).
        assert_eq!(
            v.version_for(ApiKey::Metadata, conn.broker())
                .expect("metadata"),
            13
        );
        assert!(
            v.version_for(ApiKey::Produce, conn.broker())
                .expect("produce")
                >= 9
        );
        assert!(v.broker_range(ApiKey::ApiVersions).is_some());
    });
}

#[test]
fn metadata_list_offsets_and_coordinator() {
    support::run_within(60, async {
        let Some(conn) = connect().await else { return };
        let topic = support::unique_topic("klamm-conn");
        create_topic(&conn, &topic, 4).await;
        let meta = conn
            .send(&MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some(topic.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .await
            .expect("Metadata");
        let t = meta
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(topic.as_str()))
            .expect("topic listed");
        assert_eq!(t.partitions.len(), 4);
        assert!(
            t.partitions
                .iter()
                .all(|p| p.leader_id >= 0 && !p.replica_nodes.is_empty())
        );

        let offsets = conn
            .send(&ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: topic.clone(),
                    partitions: (0..4)
                        .map(|p| ListOffsetsPartition {
                            partition_index: p,
                            timestamp: -2,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .expect("ListOffsets");
        let parts = &offsets.topics[0].partitions;
        assert_eq!(parts.len(), 4);
        assert!(
            parts.iter().all(|p| p.error_code == 0 && p.offset == 0),
            "{parts:?}"
        );

        let coord = conn
            .send(&FindCoordinatorRequest {
                key_type: 0,
                coordinator_keys: vec!["klamm-group".into()],
                key: "klamm-group".into(),
                ..Default::default()
            })
            .await;
        // The negotiated version decides whether Key or CoordinatorKeys is
        // used; klamm refuses to drop the one the version cannot carry.
        assert!(
            coord.is_err(),
            "both key forms set must be refused: {coord:?}"
        );
        let version = conn
            .api_versions()
            .version_for(ApiKey::FindCoordinator, conn.broker())
            .expect("version");
        let req = if version >= 4 {
            FindCoordinatorRequest {
                coordinator_keys: vec!["klamm-group".into()],
                ..Default::default()
            }
        } else {
            FindCoordinatorRequest {
                key: "klamm-group".into(),
                ..Default::default()
            }
        };
        let coord = conn.send(&req).await.expect("FindCoordinator");
        let (code, node) = if version >= 4 {
            (
                coord.coordinators[0].error_code,
                coord.coordinators[0].node_id,
            )
        } else {
            (coord.error_code, coord.node_id)
        };
        assert_eq!(code, 0);
        assert!(
            meta.brokers.iter().any(|b| b.node_id == node),
            "coordinator is a known broker"
        );
    });
}

#[test]
fn many_requests_in_flight_on_one_connection() {
    support::run_within(60, async {
        let Some(conn) = connect().await else { return };
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let conn = conn.clone();
            tasks.push(tokio::spawn(async move {
                conn.send(&MetadataRequest {
                    topics: Some(vec![]),
                    ..Default::default()
                })
                .await
            }));
        }
        for t in tasks {
            let resp = t.await.expect("task").expect("Metadata answered");
            assert!(!resp.brokers.is_empty());
        }
        assert!(!conn.is_closed());
        conn.close().await;
    });
}
