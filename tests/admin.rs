//! klamm's `Admin` against Apache Kafka 4.4 (the single node unless a
//! test says otherwise), each effect checked by the Java admin client
//! (kafka-clients 4.4.0) in both directions where that makes sense:
//! klamm changes, Java sees; Java changes, klamm describes. Every batched
//! call is also given one bad item, whose error must not hide the
//! others' outcomes.

mod support;

use std::collections::BTreeMap;
use std::ops::Not;
use std::time::Duration;

use klamm::admin::{
    Admin, AlterConfigOp, ClientQuotaAlteration, ClientQuotaEntity, ClientQuotaFilter,
    ConfigResource, ConfigSource, ElectionType, FeatureUpgrade, NewPartitions, NewTopic,
    ScramMechanism, ScramUpsertion,
};
use klamm::client::OffsetSpec;
use klamm::config::{SaslMechanism, SecurityProtocol};
use klamm::group::TopicPartition;
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Client, Error};
use serde_json::Value;
use support::java_admin::{JavaAdmin, klamm_admin};

/// The Kafka error code of an outcome.
fn code<T: std::fmt::Debug>(outcome: &Result<T, Error>) -> ErrorCode {
    match outcome {
        Ok(_) => ErrorCode::NONE,
        Err(e) => e
            .kafka_code()
            .unwrap_or_else(|| panic!("not a Kafka error: {e:?}")),
    }
}

fn partitions_of(java: &Value, topic: &str) -> usize {
    java[topic]["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions for {topic}: {java}"))
        .len()
}

#[test]
fn topics_created_listed_described_grown_and_deleted_each_on_its_own() {
    let Some((addr, java)) = support::java_admin::single_node() else {
        return;
    };
    support::run_within(240, async move {
        let admin = klamm_admin(&addr).await;
        let base = support::unique_topic("klamm-admin-topics");
        let (a, b, existing) = (
            format!("{base}-a"),
            format!("{base}-b"),
            format!("{base}-old"),
        );
        let first = admin.create_topics(&[NewTopic::new(&existing, 1, 1)]).await;
        assert_eq!(code(&first[&existing]), ErrorCode::NONE);

        // Three topics, one of which exists: two successes, one
        // TOPIC_ALREADY_EXISTS, each on its own.
        let created = admin
            .create_topics(&[
                NewTopic::new(&a, 3, 1).with_config("retention.ms", "7200000"),
                NewTopic::new(&b, 2, -1),
                NewTopic::new(&existing, 1, 1),
            ])
            .await;
        assert_eq!(created.len(), 3);
        let a_created = created[&a].as_ref().expect("a created");
        assert_eq!((a_created.partitions, a_created.replication_factor), (3, 1));
        assert!(
            a_created
                .configs
                .iter()
                .any(|c| c.name == "retention.ms" && c.value.as_deref() == Some("7200000")),
            "{a_created:?}"
        );
        assert_eq!(code(&created[&b]), ErrorCode::NONE);
        assert_eq!(code(&created[&existing]), ErrorCode::TOPIC_ALREADY_EXISTS);
        let message = created[&existing].as_ref().unwrap_err().to_string();
        assert!(message.contains(&existing), "{message}");

        // Validate-only creates nothing (the control: the same name,
        // created for real below, does appear).
        let dry = format!("{base}-dry");
        let validated = admin
            .create_topics_with(&[NewTopic::new(&dry, 4, 1)], true)
            .await;
        assert_eq!(code(&validated[&dry]), ErrorCode::NONE);
        let bad = admin
            .create_topics_with(&[NewTopic::new(format!("{base}-bad"), 1, 9)], true)
            .await;
        assert_eq!(
            code(&bad[&format!("{base}-bad")]),
            ErrorCode::INVALID_REPLICATION_FACTOR
        );

        // Java sees what klamm created, with the same ids.
        let seen = java.result(&format!("describe-topics {a} {b} {dry}")).await;
        assert_eq!(partitions_of(&seen, &a), 3);
        assert_eq!(partitions_of(&seen, &b), 2);
        assert_eq!(seen[&a]["id"], a_created.topic_id.to_kafka_string());
        assert_eq!(
            seen[&dry]["error"], "UNKNOWN_TOPIC_OR_PARTITION",
            "validate-only created nothing"
        );
        let java_configs = java.result(&format!("describe-configs topic {a}")).await;
        assert_eq!(java_configs["retention.ms"]["value"], "7200000");
        assert_eq!(
            java_configs["retention.ms"]["source"],
            "DYNAMIC_TOPIC_CONFIG"
        );

        // Java creates, klamm describes (by name and by id) and lists.
        let c = format!("{base}-c");
        java.result(&format!("create-topic {c} 4 1 cleanup.policy=compact"))
            .await;
        let java_id = java.result(&format!("describe-topics {c}")).await[&c]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let missing = format!("{base}-missing");
        let described = admin.describe_topics_with(&[&c, &missing], true).await;
        let d = described[&c].as_ref().expect("c described");
        assert_eq!(d.topic_id.to_kafka_string(), java_id);
        assert_eq!(d.partitions.len(), 4);
        assert!(!d.internal);
        for p in &d.partitions {
            assert_eq!(p.leader, Some(1));
            assert_eq!(
                (p.replicas.as_slice(), p.isr.as_slice()),
                (&[1][..], &[1][..])
            );
            assert!(p.offline_replicas.is_empty());
        }
        let ops = d
            .authorized_operations
            .as_ref()
            .expect("authorized operations asked for");
        assert!(ops.contains(&klamm::admin::AclOperation::Read), "{ops:?}");
        assert_eq!(
            code(&described[&missing]),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        );
        let by_id = admin
            .describe_topics_by_id(&[d.topic_id, klamm::protocol::primitives::Uuid::from_u128(7)])
            .await;
        assert_eq!(by_id[&d.topic_id].as_ref().expect("by id").name, c);
        assert_eq!(
            code(&by_id[&klamm::protocol::primitives::Uuid::from_u128(7)]),
            ErrorCode::UNKNOWN_TOPIC_ID
        );
        let listed = admin.list_topics(false).await.expect("list");
        let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
        for t in [&a, &b, &c, &existing] {
            assert!(names.contains(&t.as_str()), "{t} listed");
        }
        assert!(listed.iter().all(|t| !t.internal));
        assert!(!names.contains(&dry.as_str()));

        // Partitions: one topic grows, the other's change is invalid.
        let grown = admin
            .create_partitions(&[
                (&a, NewPartitions::increase_to(5)),
                (&b, NewPartitions::increase_to(1)),
            ])
            .await;
        assert_eq!(code(&grown[&a]), ErrorCode::NONE);
        assert_eq!(code(&grown[&b]), ErrorCode::INVALID_PARTITIONS);
        // Java grows c; both see the new counts.
        java.result(&format!("create-partitions {c} 6")).await;
        let seen = java.result(&format!("describe-topics {a} {b}")).await;
        assert_eq!((partitions_of(&seen, &a), partitions_of(&seen, &b)), (5, 2));
        support::wait_for("klamm sees c with 6 partitions", 30, async || {
            admin.describe_topics(&[&c]).await[&c]
                .as_ref()
                .is_ok_and(|d| d.partitions.len() == 6)
        })
        .await;

        // Deletes: by name (one unknown), and by id.
        let deleted = admin.delete_topics(&[&a, &missing]).await;
        assert_eq!(code(&deleted[&a]), ErrorCode::NONE);
        assert_eq!(
            code(&deleted[&missing]),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        );
        let b_id = admin.describe_topics(&[&b]).await[&b]
            .as_ref()
            .expect("b")
            .topic_id;
        let by_id = admin.delete_topics_by_id(&[b_id]).await;
        assert_eq!(by_id[&b_id].as_ref().expect("b deleted by id"), &b);
        // Java deletes c; then none of the three is listed by Java.
        java.result(&format!("delete-topic {c}")).await;
        support::wait_for("the deleted topics are gone for Java", 30, async || {
            let topics = java.result("list-topics").await;
            let topics = topics.as_array().expect("names").clone();
            [&a, &b, &c]
                .iter()
                .all(|t| !topics.iter().any(|n| n == t.as_str()))
                && topics.iter().any(|n| n == existing.as_str())
        })
        .await;
    });
}

#[test]
fn configs_of_every_resource_type_described_and_altered_both_ways() {
    let Some((addr, java)) = support::java_admin::single_node() else {
        return;
    };
    support::run_within(240, async move {
        let admin = klamm_admin(&addr).await;
        let topic = support::unique_topic("klamm-admin-configs");
        let missing = format!("{topic}-missing");
        assert!(admin.create_topics(&[NewTopic::new(&topic, 1, 1)]).await[&topic].is_ok());
        let t = ConfigResource::topic(&topic);

        // Incremental: set, append to a list, and a bad value on another
        // resource that fails alone.
        let altered = admin
            .incremental_alter_configs(&[
                (
                    t.clone(),
                    vec![
                        AlterConfigOp::set("retention.ms", "777777"),
                        AlterConfigOp::append("cleanup.policy", "compact"),
                    ],
                ),
                (
                    ConfigResource::topic(&missing),
                    vec![AlterConfigOp::set("retention.ms", "1")],
                ),
            ])
            .await;
        assert_eq!(code(&altered[&t]), ErrorCode::NONE);
        assert_eq!(
            code(&altered[&ConfigResource::topic(&missing)]),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        );
        let invalid = admin
            .incremental_alter_configs(&[(
                t.clone(),
                vec![AlterConfigOp::set("retention.ms", "soon")],
            )])
            .await;
        assert_eq!(code(&invalid[&t]), ErrorCode::INVALID_CONFIG);
        let seen = java
            .result(&format!("describe-configs topic {topic}"))
            .await;
        assert_eq!(seen["retention.ms"]["value"], "777777");
        assert_eq!(seen["retention.ms"]["source"], "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(seen["cleanup.policy"]["value"], "delete,compact");

        // A resource named twice in one call gets both changes.
        let twice = admin
            .incremental_alter_configs(&[
                (t.clone(), vec![AlterConfigOp::set("segment.ms", "3600000")]),
                (
                    t.clone(),
                    vec![AlterConfigOp::set("flush.messages", "1000")],
                ),
            ])
            .await;
        assert_eq!(code(&twice[&t]), ErrorCode::NONE);
        let seen = java
            .result(&format!("describe-configs topic {topic}"))
            .await;
        assert_eq!(seen["segment.ms"]["value"], "3600000");
        assert_eq!(seen["flush.messages"]["value"], "1000");

        // Java sets one; klamm describes it, with its source and synonyms.
        java.result(&format!("set-config topic {topic} max.message.bytes=20000"))
            .await;
        let described = admin
            .describe_configs_with(std::slice::from_ref(&t), &[], true, true)
            .await;
        let entries = described[&t].as_ref().expect("described");
        let get = |name: &str| {
            entries
                .iter()
                .find(|e| e.name == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(get("max.message.bytes").value.as_deref(), Some("20000"));
        assert_eq!(get("max.message.bytes").source, ConfigSource::DynamicTopic);
        assert_eq!(get("retention.ms").value.as_deref(), Some("777777"));
        assert_eq!(
            get("segment.bytes").source,
            ConfigSource::Default,
            "a config left at its default"
        );
        assert!(get("segment.bytes").is_default());
        assert_eq!(get("retention.ms").config_type, Some("LONG"));
        assert!(
            get("retention.ms")
                .documentation
                .as_deref()
                .is_some_and(|d| !d.is_empty())
        );
        assert!(
            get("retention.ms")
                .synonyms
                .iter()
                .any(|s| s.source == ConfigSource::DynamicTopic),
            "{:?}",
            get("retention.ms").synonyms
        );
        // Every config Java lists, klamm lists with the same value.
        let java_names: Vec<&String> = seen.as_object().expect("configs").keys().collect();
        assert_eq!(java_names.len(), entries.len());

        // Subtract and delete: back to the defaults.
        let back = admin
            .incremental_alter_configs(&[(
                t.clone(),
                vec![
                    AlterConfigOp::subtract("cleanup.policy", "compact"),
                    AlterConfigOp::delete("retention.ms"),
                ],
            )])
            .await;
        assert_eq!(code(&back[&t]), ErrorCode::NONE);
        let seen = java
            .result(&format!("describe-configs topic {topic}"))
            .await;
        assert_eq!(seen["cleanup.policy"]["value"], "delete");
        // The topic's own value is gone: what is left comes from the
        // broker (scripts/kafka sets log.retention.*).
        assert_ne!(seen["retention.ms"]["source"], "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(
            seen["max.message.bytes"]["value"], "20000",
            "untouched by the incremental alter"
        );

        // The legacy alter replaces the whole set: max.message.bytes goes.
        let replaced = admin
            .alter_configs(
                &[(
                    t.clone(),
                    BTreeMap::from([("retention.ms".to_string(), "3600000".to_string())]),
                )],
                false,
            )
            .await;
        assert_eq!(code(&replaced[&t]), ErrorCode::NONE);
        let seen = java
            .result(&format!("describe-configs topic {topic}"))
            .await;
        assert_eq!(seen["retention.ms"]["value"], "3600000");
        assert_eq!(seen["max.message.bytes"]["source"], "DEFAULT_CONFIG");

        // A broker's configs, asked of that broker; its loggers; and a
        // dynamic broker config set by klamm and seen by Java.
        let broker = ConfigResource::broker(1);
        let logger = ConfigResource::broker_logger(1);
        let described = admin
            .describe_configs(&[broker.clone(), logger.clone()])
            .await;
        let broker_entries = described[&broker].as_ref().expect("broker configs");
        let java_broker = java.result("describe-configs broker 1").await;
        for name in ["num.partitions", "log.dirs", "auto.create.topics.enable"] {
            let ours = broker_entries.iter().find(|e| e.name == name).expect(name);
            assert_eq!(
                Value::from(ours.value.clone()),
                java_broker[name]["value"],
                "{name}"
            );
            assert_eq!(ours.source.as_str(), java_broker[name]["source"], "{name}");
        }
        let loggers = described[&logger].as_ref().expect("logger configs");
        assert!(
            loggers.iter().any(|e| e.name == "root"),
            "the root logger is listed"
        );
        let set = admin
            .incremental_alter_configs(&[(
                broker.clone(),
                vec![AlterConfigOp::set("log.cleaner.threads", "2")],
            )])
            .await;
        assert_eq!(code(&set[&broker]), ErrorCode::NONE);
        let java_broker = java.result("describe-configs broker 1").await;
        assert_eq!(java_broker["log.cleaner.threads"]["value"], "2");
        assert_eq!(
            java_broker["log.cleaner.threads"]["source"],
            "DYNAMIC_BROKER_CONFIG"
        );
        let reset = admin
            .incremental_alter_configs(&[(
                broker.clone(),
                vec![AlterConfigOp::delete("log.cleaner.threads")],
            )])
            .await;
        assert_eq!(code(&reset[&broker]), ErrorCode::NONE);

        // A group's configs (KIP-848) and a client-metrics subscription
        // (KIP-714): klamm sets, Java reads.
        let group = ConfigResource::group(format!("{topic}-group"));
        let metrics = ConfigResource::client_metrics(format!("{topic}-metrics"));
        let set = admin
            .incremental_alter_configs(&[
                (
                    group.clone(),
                    vec![AlterConfigOp::set("consumer.session.timeout.ms", "50000")],
                ),
                (
                    metrics.clone(),
                    vec![AlterConfigOp::set("interval.ms", "60000")],
                ),
            ])
            .await;
        assert_eq!(code(&set[&group]), ErrorCode::NONE);
        assert_eq!(code(&set[&metrics]), ErrorCode::NONE);
        let java_group = java
            .result(&format!("describe-configs group {}", group.name))
            .await;
        assert_eq!(java_group["consumer.session.timeout.ms"]["value"], "50000");
        let java_metrics = java
            .result(&format!("describe-configs client-metrics {}", metrics.name))
            .await;
        assert_eq!(java_metrics["interval.ms"]["value"], "60000");
        let described = admin
            .describe_configs(&[group.clone(), metrics.clone()])
            .await;
        let g = described[&group].as_ref().expect("group configs");
        let session = g
            .iter()
            .find(|e| e.name == "consumer.session.timeout.ms")
            .expect("session");
        assert_eq!(
            (session.value.as_deref(), session.source),
            (Some("50000"), ConfigSource::DynamicGroup)
        );
        let m = described[&metrics]
            .as_ref()
            .expect("client-metrics configs");
        assert!(
            m.iter()
                .any(|e| e.name == "interval.ms" && e.value.as_deref() == Some("60000"))
        );
    });
}

/// Produces `count` records to each of `partitions`, record `i` with
/// timestamp `base + i * 1000`.
async fn produce_timed(client: &Client, topic: &str, partitions: i32, count: i64, base: i64) {
    let producer = AsyncProducer::new(client.clone()).await.expect("producer");
    let mut pending = Vec::new();
    for p in 0..partitions {
        for i in 0..count {
            let record = ProducerRecord::new(topic, format!("v{i}"))
                .with_partition(p)
                .with_timestamp(base + i * 1000);
            pending.push(producer.send(record).await.expect("send"));
        }
    }
    for d in pending {
        d.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

#[test]
fn offsets_of_many_partitions_and_deleted_records_agree_with_java() {
    let Some((addr, java)) = support::java_admin::single_node() else {
        return;
    };
    support::run_within(180, async move {
        let admin = klamm_admin(&addr).await;
        let topic = support::unique_topic("klamm-admin-offsets");
        support::topics::create_topic(admin.client(), &topic, 2).await;
        let base = 1_700_000_000_000;
        produce_timed(admin.client(), &topic, 2, 10, base).await;

        let tp = |p| TopicPartition::new(&topic, p);
        let asked = [
            (tp(0), OffsetSpec::Oldest),
            (tp(1), OffsetSpec::Newest),
            (
                TopicPartition::new(format!("{topic}-missing"), 0),
                OffsetSpec::Newest,
            ),
        ];
        let found = admin.list_offsets(&asked, false).await;
        assert_eq!(found[&tp(0)].as_ref().expect("p0").offset, Some(0));
        assert_eq!(found[&tp(1)].as_ref().expect("p1").offset, Some(10));
        assert_eq!(
            code(&found[&TopicPartition::new(format!("{topic}-missing"), 0)]),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        );
        let by_time = admin
            .list_offsets(
                &[
                    (tp(0), OffsetSpec::Timestamp(base + 4500)),
                    (tp(1), OffsetSpec::MaxTimestamp),
                ],
                true,
            )
            .await;
        let at = by_time[&tp(0)].as_ref().expect("by time");
        assert_eq!((at.offset, at.timestamp), (Some(5), Some(base + 5000)));
        let max = by_time[&tp(1)].as_ref().expect("max");
        assert_eq!((max.offset, max.timestamp), (Some(9), Some(base + 9000)));
        let lines = java
            .run(&[
                format!("list-offsets {topic} 0 {}", base + 4500),
                format!("list-offsets {topic} 1 max-timestamp"),
                format!("list-offsets {topic} 1 latest"),
            ])
            .await;
        assert_eq!(lines[0]["result"]["offset"], 5);
        assert_eq!(lines[1]["result"]["offset"], 9);
        assert_eq!(lines[2]["result"]["offset"], 10);

        // Delete below 4 on p0 and everything on p1; an offset past the
        // end fails alone.
        let deleted = admin.delete_records(&[(tp(0), 4), (tp(1), -1)]).await;
        assert_eq!(*deleted[&tp(0)].as_ref().expect("p0"), 4);
        assert_eq!(*deleted[&tp(1)].as_ref().expect("p1"), 10);
        let past = admin.delete_records(&[(tp(0), 99)]).await;
        assert_eq!(code(&past[&tp(0)]), ErrorCode::OFFSET_OUT_OF_RANGE);
        let lines = java
            .run(&[
                format!("list-offsets {topic} 0 earliest"),
                format!("list-offsets {topic} 1 earliest"),
            ])
            .await;
        assert_eq!(lines[0]["result"]["offset"], 4);
        assert_eq!(lines[1]["result"]["offset"], 10);
    });
}

#[test]
fn cluster_features_quorum_and_log_dirs_agree_with_java() {
    let Some((addr, java)) = support::java_admin::single_node() else {
        return;
    };
    support::run_within(180, async move {
        let admin = klamm_admin(&addr).await;
        let topic = support::unique_topic("klamm-admin-dirs");
        support::topics::create_topic(admin.client(), &topic, 2).await;
        produce_timed(admin.client(), &topic, 1, 5, 1_700_000_000_000).await;
        let lines = java
            .run(&[
                "describe-cluster".into(),
                "describe-features".into(),
                "describe-quorum".into(),
                "describe-log-dirs 1".into(),
            ])
            .await;
        let (cluster, features, quorum, dirs) = (
            &lines[0]["result"],
            &lines[1]["result"],
            &lines[2]["result"],
            &lines[3]["result"],
        );

        let ours = admin
            .describe_cluster_with(true, true)
            .await
            .expect("describe cluster");
        assert_eq!(ours.cluster_id, cluster["cluster_id"]);
        assert_eq!(Value::from(ours.controller), cluster["controller"]);
        let ids: Vec<i32> = ours.brokers.iter().map(|b| b.id).collect();
        assert_eq!(ids, vec![1]);
        assert_eq!(ours.brokers[0].addr(), addr);
        assert!(ours.fenced_brokers.is_empty());
        assert!(
            ours.authorized_operations
                .as_ref()
                .is_some_and(|o| !o.is_empty())
        );

        let ours = admin.describe_features().await.expect("features");
        let finalized: BTreeMap<String, i64> = ours
            .features
            .iter()
            .filter_map(|(k, v)| v.finalized.map(|l| (k.clone(), l as i64)))
            .collect();
        let java_finalized: BTreeMap<String, i64> = features
            .as_object()
            .expect("features")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().expect("level")))
            .collect();
        assert_eq!(finalized, java_finalized);
        assert!(finalized.contains_key("metadata.version"));
        assert!(ours.features["transaction.version"].supported.is_some());

        // Updating a feature to the level it has, validate-only: accepted;
        // to a level the controller does not support: refused. Kafka
        // refuses a whole request with one bad feature, and says so for
        // each feature.
        let level = finalized["transaction.version"] as i16;
        let same = admin
            .update_features(
                &[("transaction.version", level, FeatureUpgrade::Upgrade)],
                true,
            )
            .await;
        assert_eq!(
            code(&same["transaction.version"]),
            ErrorCode::NONE,
            "{same:?}"
        );
        let both = admin
            .update_features(
                &[
                    ("transaction.version", level, FeatureUpgrade::Upgrade),
                    ("group.version", 99, FeatureUpgrade::Upgrade),
                ],
                true,
            )
            .await;
        for feature in ["transaction.version", "group.version"] {
            assert_eq!(
                code(&both[feature]),
                ErrorCode::INVALID_UPDATE_VERSION,
                "{both:?}"
            );
            let message = both[feature].as_ref().unwrap_err().to_string();
            assert!(message.contains("group.version"), "{message}");
        }
        // A downgrade, checked only: the request reaches the controller
        // (at v1+ it says so with UpgradeType, not AllowDowngrade, which
        // klamm's codec would refuse to send), whose answer is its own.
        let down = admin
            .update_features(
                &[(
                    "transaction.version",
                    level - 1,
                    FeatureUpgrade::SafeDowngrade,
                )],
                true,
            )
            .await;
        let answer = &down["transaction.version"];
        assert!(
            answer.is_ok() || answer.as_ref().is_err_and(|e| e.kafka_code().is_some()),
            "the controller answered: {down:?}"
        );
        // A real update (not validate-only) to the level it has: done,
        // and Java still reads that level.
        let real = admin
            .update_features(
                &[("transaction.version", level, FeatureUpgrade::Upgrade)],
                false,
            )
            .await;
        assert_eq!(
            code(&real["transaction.version"]),
            ErrorCode::NONE,
            "{real:?}"
        );
        assert_eq!(
            java.result("describe-features").await["transaction.version"],
            level as i64
        );

        let ours = admin.describe_metadata_quorum().await.expect("quorum");
        assert_eq!(Value::from(ours.leader_id), quorum["leader"]);
        let voters: Vec<i32> = ours.voters.iter().map(|v| v.replica_id).collect();
        assert_eq!(Value::from(voters), quorum["voters"]);
        assert!(ours.high_watermark > 0);

        let ours = admin.describe_log_dirs(&[1, 42]).await;
        let ours_dirs = ours[&1].as_ref().expect("broker 1's dirs");
        let java_dirs = dirs.as_object().expect("dirs");
        assert_eq!(ours_dirs.len(), java_dirs.len());
        for d in ours_dirs {
            assert_eq!(d.error, ErrorCode::NONE);
            let theirs = &java_dirs[&d.path];
            for p in 0..2 {
                let key = format!("{topic}-{p}");
                let replica = d.replicas[&TopicPartition::new(&topic, p)];
                assert_eq!(Value::from(replica.size), theirs[&key], "{key}");
            }
            assert!(d.total_bytes > 0 && d.usable_bytes > 0);
        }
        assert_eq!(
            code(&ours[&42]),
            ErrorCode::BROKER_NOT_AVAILABLE,
            "an unknown broker fails alone"
        );

        // Moving a replica to a directory the broker does not have fails
        // for that replica.
        let moved = admin
            .alter_replica_log_dirs(&[(
                (1, TopicPartition::new(&topic, 0)),
                "/nonexistent/dir".into(),
            )])
            .await;
        assert_eq!(
            code(&moved[&(1, TopicPartition::new(&topic, 0))]),
            ErrorCode::LOG_DIR_NOT_FOUND
        );
    });
}

#[test]
fn quotas_and_scram_users_both_ways_and_a_new_user_logs_in() {
    let (Some((addr, java)), Some(sasl)) = (
        support::java_admin::single_node(),
        support::sasl_listeners(),
    ) else {
        return;
    };
    support::run_within(180, async move {
        let admin = klamm_admin(&addr).await;
        let user = support::unique_topic("klamm-user").replace('-', "_");

        // Quotas: klamm sets two on a user and one on the default client
        // id; Java sets one on a client id; each side sees all.
        let alice = ClientQuotaEntity::new([("user", Some(user.as_str()))]);
        let defaults = ClientQuotaEntity::new([("client-id", None::<&str>)]);
        let altered = admin
            .alter_client_quotas(
                &[
                    ClientQuotaAlteration {
                        entity: alice.clone(),
                        ops: vec![
                            ("producer_byte_rate".into(), Some(1048576.0)),
                            ("consumer_byte_rate".into(), Some(2097152.0)),
                        ],
                    },
                    ClientQuotaAlteration {
                        entity: defaults.clone(),
                        ops: vec![("request_percentage".into(), Some(50.0))],
                    },
                ],
                false,
            )
            .await;
        assert_eq!(code(&altered[&alice]), ErrorCode::NONE);
        assert_eq!(code(&altered[&defaults]), ErrorCode::NONE);
        let bad = ClientQuotaEntity::new([("user", Some("x")), ("ip", Some("1.2.3.4"))]);
        let refused = admin
            .alter_client_quotas(
                &[ClientQuotaAlteration {
                    entity: bad.clone(),
                    ops: vec![("producer_byte_rate".into(), Some(1.0))],
                }],
                true,
            )
            .await;
        assert_eq!(
            code(&refused[&bad]),
            ErrorCode::INVALID_REQUEST,
            "ip does not combine with user"
        );
        java.result(&format!(
            "set-quota client-id {user}-app producer_byte_rate 4096"
        ))
        .await;
        let seen = java.result("describe-quotas").await;
        assert_eq!(
            seen[&format!("user={user}")]["producer_byte_rate"],
            1048576.0
        );
        assert_eq!(
            seen[&format!("user={user}")]["consumer_byte_rate"],
            2097152.0
        );
        assert_eq!(seen["client-id=<default>"]["request_percentage"], 50.0);
        let ours = admin
            .describe_client_quotas(&ClientQuotaFilter::all())
            .await
            .expect("quotas");
        let app = ClientQuotaEntity::new([("client-id", Some(format!("{user}-app")))]);
        assert_eq!(ours[&app]["producer_byte_rate"], 4096.0);
        assert_eq!(ours[&alice]["consumer_byte_rate"], 2097152.0);
        let only_user = admin
            .describe_client_quotas(&ClientQuotaFilter::user(Some(&user)))
            .await
            .expect("one user's quotas");
        assert_eq!(only_user.keys().collect::<Vec<_>>(), vec![&alice]);
        // Removing them.
        let removed = admin
            .alter_client_quotas(
                &[
                    ClientQuotaAlteration {
                        entity: alice.clone(),
                        ops: vec![
                            ("producer_byte_rate".into(), None),
                            ("consumer_byte_rate".into(), None),
                        ],
                    },
                    ClientQuotaAlteration {
                        entity: defaults.clone(),
                        ops: vec![("request_percentage".into(), None)],
                    },
                    ClientQuotaAlteration {
                        entity: app.clone(),
                        ops: vec![("producer_byte_rate".into(), None)],
                    },
                ],
                false,
            )
            .await;
        assert!(removed.values().all(|o| o.is_ok()), "{removed:?}");
        let seen = java.result("describe-quotas").await;
        assert!(seen.get(format!("user={user}")).is_none(), "{seen}");

        // SCRAM: klamm sets a credential; Java sees it; the user logs in
        // with the password over SCRAM-SHA-512 (so the salted password
        // klamm computed is right); a wrong password is refused (the
        // control); deleting it ends it.
        let password = "s3cret-for-klamm";
        let set = admin
            .alter_user_scram_credentials(
                &[ScramUpsertion::new(&user, ScramMechanism::Sha512, password)],
                &[],
            )
            .await;
        assert_eq!(code(&set[&user]), ErrorCode::NONE);
        let seen = java.result("describe-scram").await;
        assert_eq!(seen[&user], serde_json::json!(["SCRAM-SHA-512:8192"]));
        let ours = admin
            .describe_user_scram_credentials(Some(&[&user, "nobody-at-all"]))
            .await
            .expect("describe");
        let creds = ours[&user].as_ref().expect("credentials");
        assert_eq!(
            (creds[0].mechanism, creds[0].iterations),
            (ScramMechanism::Sha512, 8192)
        );
        assert_eq!(code(&ours["nobody-at-all"]), ErrorCode::RESOURCE_NOT_FOUND);
        let login = |pw: &'static str| {
            let user: &'static str = Box::leak(user.clone().into_boxed_str());
            let (config, options) = support::auth::secure_config(
                &sasl.plaintext,
                SecurityProtocol::SaslPlaintext,
                None,
                false,
                Some(&support::auth::Login::Password(
                    SaslMechanism::ScramSha512,
                    user,
                    pw,
                )),
            );
            async move {
                Client::connect_with(config, options)
                    .await
                    .map(|c| c.metadata().brokers.len())
            }
        };
        let mut logged_in = None;
        for _ in 0..50 {
            match login(Box::leak(password.to_string().into_boxed_str())).await {
                Ok(n) => {
                    logged_in = Some(n);
                    break;
                }
                // The credential reaches the broker a moment after the
                // controller commits it.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        assert_eq!(
            logged_in,
            Some(1),
            "{user} logs in with the password klamm set"
        );
        let wrong = login("not-the-password").await;
        assert!(wrong.is_err(), "a wrong password is refused");
        let deleted = admin
            .alter_user_scram_credentials(&[], &[(&user, ScramMechanism::Sha512)])
            .await;
        assert_eq!(code(&deleted[&user]), ErrorCode::NONE);
        let seen = java.result("describe-scram").await;
        assert!(seen.get(&user).is_none(), "{seen}");
    });
}

#[test]
fn producers_and_transactions_described_listed_and_a_hanging_one_aborted() {
    let Some((addr, java)) = support::java_admin::single_node() else {
        return;
    };
    support::run_within(180, async move {
        let admin = klamm_admin(&addr).await;
        let topic = support::unique_topic("klamm-admin-txn");
        support::topics::create_topic(admin.client(), &topic, 1).await;
        let txn_id = format!("{topic}-writer");
        let mut config = support::read::config(&addr);
        config.producer.transactional_id = Some(txn_id.clone());
        let producer = AsyncProducer::new(Client::connect(config).await.expect("client"))
            .await
            .expect("producer");
        producer.init_transactions().await.expect("init");
        producer.begin_transaction().expect("begin");
        for i in 0..3 {
            producer
                .send(ProducerRecord::new(topic.as_str(), format!("open-{i}")).with_partition(0))
                .await
                .expect("send")
                .await
                .expect("written");
        }

        // The open transaction, from both sides.
        let tp = TopicPartition::new(&topic, 0);
        let producers = admin.describe_producers(std::slice::from_ref(&tp)).await;
        let states = producers[&tp].as_ref().expect("producers");
        assert_eq!(states.len(), 1);
        let state = states[0];
        assert_eq!(state.current_txn_start_offset, Some(0));
        let described = admin.describe_transactions(&[&txn_id, "no-such-txn"]).await;
        let d = described[&txn_id].as_ref().expect("described");
        assert_eq!(d.state, "Ongoing");
        assert_eq!(d.producer_id, state.producer_id);
        assert_eq!(d.partitions, vec![tp.clone()]);
        assert_eq!(
            code(&described["no-such-txn"]),
            ErrorCode::TRANSACTIONAL_ID_NOT_FOUND
        );
        let listed = admin
            .list_transactions(&["Ongoing"], &[], None)
            .await
            .expect("list");
        assert!(
            listed
                .iter()
                .any(|l| l.transactional_id == txn_id && l.producer_id == state.producer_id)
        );
        let none = admin
            .list_transactions(&["PrepareEpochFence"], &[], None)
            .await
            .expect("list");
        assert!(
            none.iter().all(|l| l.transactional_id != txn_id),
            "the state filter applies"
        );
        let lines = java
            .run(&[
                format!("describe-producers {topic} 0"),
                format!("describe-transactions {txn_id}"),
                "list-transactions".into(),
            ])
            .await;
        assert_eq!(lines[0]["result"][0]["producer_id"], state.producer_id);
        assert_eq!(lines[0]["result"][0]["txn_start"], 0);
        assert_eq!(lines[1]["result"]["state"], "Ongoing");
        assert_eq!(
            lines[1]["result"]["partitions"],
            serde_json::json!([format!("{topic}-0")])
        );
        assert_eq!(
            lines[2]["result"][&txn_id]["producer_id"],
            state.producer_id
        );

        // The last stable offset is held at 0 by the open transaction;
        // aborting it from the admin (as for a hanging one) releases it.
        let lso = |admin: Admin, tp: TopicPartition| async move {
            admin
                .list_offsets(&[(tp.clone(), OffsetSpec::Newest)], true)
                .await[&tp]
                .as_ref()
                .expect("lso")
                .offset
        };
        assert_eq!(lso(admin.clone(), tp.clone()).await, Some(0));
        admin.abort_transaction(&tp, &state).await.expect("abort");
        support::wait_for("the LSO passes the aborted records", 30, async || {
            lso(admin.clone(), tp.clone()).await == Some(4)
        })
        .await;
        // Java sees the producer with no open transaction left.
        let after = java.result(&format!("describe-producers {topic} 0")).await;
        assert_eq!(after[0]["producer_id"], state.producer_id, "{after}");
        assert_eq!(after[0]["txn_start"], -1, "{after}");
        drop(producer);
    });
}

#[test]
fn reassignments_and_leader_elections_on_the_cluster() {
    let Some(cluster) = support::cluster::cluster() else {
        return;
    };
    let java = JavaAdmin::new(&cluster.addrs()[0]);
    let Some(java) = java else { return };
    support::run_within(240, async move {
        let mut config = support::read::config(&cluster.addrs()[0]);
        config.net.bootstrap_servers = cluster.addrs();
        let admin = Admin::new(Client::connect(config).await.expect("client"));
        let topic = support::unique_topic("klamm-admin-move");
        let created = admin
            .create_topics(&[NewTopic::with_assignment(
                &topic,
                [(0, vec![1, 2]), (1, vec![2, 3])],
            )])
            .await;
        assert_eq!(code(&created[&topic]), ErrorCode::NONE);
        support::topics::wait_until_served(admin.client(), &topic, 2).await;
        let tp = |p| TopicPartition::new(&topic, p);

        // Move partition 0 from [1, 2] to [3, 1]; cancelling a move of
        // partition 1, which has none, fails alone.
        let moved = admin
            .alter_partition_reassignments(&[(tp(0), Some(vec![3, 1])), (tp(1), None)])
            .await;
        assert_eq!(code(&moved[&tp(0)]), ErrorCode::NONE);
        assert_eq!(code(&moved[&tp(1)]), ErrorCode::NO_REASSIGNMENT_IN_PROGRESS);
        support::wait_for("the move completes", 60, async || {
            admin
                .list_partition_reassignments(None)
                .await
                .expect("list")
                .contains_key(&tp(0))
                .not()
                && admin.describe_topics(&[&topic]).await[&topic]
                    .as_ref()
                    .is_ok_and(|d| d.partitions[0].replicas == vec![3, 1])
        })
        .await;
        let seen = java.result(&format!("describe-topics {topic}")).await;
        assert_eq!(
            seen[&topic]["partitions"][0]["replicas"],
            serde_json::json!([3, 1])
        );
        assert!(
            java.result("list-reassignments")
                .await
                .get(format!("{topic}-0"))
                .is_none()
        );

        // The preferred leader of partition 0 is now 3: electing it moves
        // the leader there (unless the controller already did), and a
        // second election is not needed.
        let elected = admin
            .elect_leaders(ElectionType::Preferred, Some(&[tp(0)]))
            .await
            .expect("elect");
        assert!(
            matches!(
                code(&elected[&tp(0)]),
                ErrorCode::NONE | ErrorCode::ELECTION_NOT_NEEDED
            ),
            "{elected:?}"
        );
        support::wait_for("3 leads partition 0", 30, async || {
            admin.describe_topics(&[&topic]).await[&topic]
                .as_ref()
                .is_ok_and(|d| d.partitions[0].leader == Some(3))
        })
        .await;
        let again = admin
            .elect_leaders(ElectionType::Preferred, Some(&[tp(0)]))
            .await
            .expect("elect");
        assert_eq!(code(&again[&tp(0)]), ErrorCode::ELECTION_NOT_NEEDED);
        let unclean = admin
            .elect_leaders(ElectionType::Unclean, Some(&[tp(1)]))
            .await
            .expect("elect");
        assert_eq!(
            code(&unclean[&tp(1)]),
            ErrorCode::ELECTION_NOT_NEEDED,
            "a partition with a leader needs none"
        );
        let seen = java.result(&format!("describe-topics {topic}")).await;
        assert_eq!(seen[&topic]["partitions"][0]["leader"], 3);

        // Each node has two log directories: broker 3's replica of
        // partition 0 moves to the other one, as Java then describes it.
        let key = format!("{topic}-0");
        let dirs = java.result("describe-log-dirs 3").await;
        let dirs = dirs.as_object().expect("dirs").clone();
        assert_eq!(dirs.len(), 2, "two log directories: {dirs:?}");
        let (from, to) = {
            let mut names: Vec<&String> = dirs.keys().collect();
            names.sort_by_key(|d| dirs[*d].get(&key).is_none());
            (names[0].clone(), names[1].clone())
        };
        assert!(
            dirs[&from].get(&key).is_some(),
            "{key} is in one of {dirs:?}"
        );
        let ours = admin.describe_log_dirs(&[3]).await;
        let in_from = ours[&3]
            .as_ref()
            .expect("broker 3's dirs")
            .iter()
            .any(|d| d.path == from && d.replicas.contains_key(&tp(0)));
        assert!(in_from, "klamm finds {key} in {from} too");
        let moved = admin
            .alter_replica_log_dirs(&[((3, tp(0)), to.clone())])
            .await;
        assert_eq!(code(&moved[&(3, tp(0))]), ErrorCode::NONE, "{moved:?}");
        support::wait_for(
            "Java sees the replica in the other directory",
            60,
            async || {
                let now = java.result("describe-log-dirs 3").await;
                now[&to].get(&key).is_some() && now[&from].get(&key).is_none()
            },
        )
        .await;
        admin.delete_topics(&[&topic]).await;
    });
}

#[test]
fn delegation_tokens_created_described_renewed_and_expired() {
    let (Some(sasl), Some(java)) = (
        support::sasl_listeners(),
        support::sasl_listeners().and_then(|s| JavaAdmin::new(&s.plaintext)),
    ) else {
        return;
    };
    let java = java.with_config(
        "security.protocol=SASL_PLAINTEXT\n\
         sasl.mechanism=SCRAM-SHA-256\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"alice\" password=\"alice-secret\";",
    );
    support::run_within(120, async move {
        // Tokens are only given to a caller who logged in (not on
        // PLAINTEXT, not with a token).
        let (config, options) = support::auth::secure_config(
            &sasl.plaintext,
            SecurityProtocol::SaslPlaintext,
            None,
            false,
            Some(&support::auth::Login::Password(
                SaslMechanism::ScramSha256,
                "alice",
                "alice-secret",
            )),
        );
        let admin = Admin::new(Client::connect_with(config, options).await.expect("alice"));
        let token = admin
            .create_delegation_token(&["User:mallory"], Some(Duration::from_secs(3600)), None)
            .await
            .expect("create");
        assert_eq!(token.owner, "User:alice");
        assert_eq!(token.renewers, vec!["User:mallory".to_string()]);
        assert!(!token.hmac.is_empty());
        assert!(token.max_ms <= token.issued_ms + 3_600_000 && token.expiry_ms <= token.max_ms);
        assert!(
            !format!("{token:?}").contains("hmac: b"),
            "the HMAC is not printed"
        );

        let seen = java.result("describe-tokens").await;
        let theirs = seen
            .as_array()
            .expect("tokens")
            .iter()
            .find(|t| t["token_id"] == token.token_id.as_str())
            .unwrap_or_else(|| panic!("Java lists the token: {seen}"));
        assert_eq!(theirs["owner"], "User:alice");
        assert_eq!(theirs["expiry"], token.expiry_ms);
        let ours = admin
            .describe_delegation_tokens(Some(&["User:alice"]))
            .await
            .expect("describe");
        let mine = ours
            .iter()
            .find(|t| t.token_id == token.token_id)
            .expect("ours lists it");
        assert_eq!(mine.hmac, token.hmac);
        assert!(
            admin
                .describe_delegation_tokens(Some(&["User:nobody"]))
                .await
                .expect("describe")
                .iter()
                .all(|t| t.token_id != token.token_id)
        );

        let renewed = admin
            .renew_delegation_token(&token.hmac, Some(Duration::from_secs(1800)))
            .await
            .expect("renew");
        assert!(renewed > token.issued_ms && renewed <= token.max_ms);
        // Expired now: both list it with an expiry in the past (the
        // broker removes expired tokens on its own schedule), and it can
        // no longer be renewed.
        let expired_at = admin
            .expire_delegation_token(&token.hmac, Some(Duration::ZERO))
            .await
            .expect("expire");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        assert!(
            expired_at <= now_ms && expired_at < renewed,
            "{expired_at} vs {renewed}"
        );
        support::wait_for("the token's new expiry is described", 30, async || {
            admin
                .describe_delegation_tokens(None)
                .await
                .expect("describe")
                .iter()
                .find(|t| t.token_id == token.token_id)
                .is_none_or(|t| t.expiry_ms == expired_at)
        })
        .await;
        let seen = java.result("describe-tokens").await;
        assert!(
            seen.as_array()
                .expect("tokens")
                .iter()
                .filter(|t| t["token_id"] == token.token_id.as_str())
                .all(|t| t["expiry"] == expired_at),
            "{seen}"
        );
        let gone = admin
            .renew_delegation_token(&token.hmac, None)
            .await
            .expect_err("expired");
        assert!(
            matches!(
                gone.kafka_code(),
                Some(ErrorCode::DELEGATION_TOKEN_EXPIRED | ErrorCode::DELEGATION_TOKEN_NOT_FOUND)
            ),
            "{gone}"
        );
    });
}
