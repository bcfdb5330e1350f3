//! Which version of each API klamm's clients use with Apache Kafka 4.4
//! (the single node): the newest everywhere klamm's own clients send
//! them, and the documented by-hand default (`klamm::net::client_max`)
//! where a newer version changes what a request means (topic ids instead
//! of names, transactions V2).

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
            (ApiKey::ConsumerGroupHeartbeat, 1),
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
        // By hand (Connection::send, version_for) capped below what the
        // broker offers: versions that change what a request means (names
        // left out for ids; transactions V2). klamm's own clients ask for
        // them where they fill them in, as the tests below show.
        for (api, cap) in [
            // By hand (Connection::send) Produce and Fetch stay at the
            // versions with topic names; the producer and the fetcher use
            // v13 and v18 (the test below).
            (ApiKey::Produce, 11),
            (ApiKey::Fetch, 12),
            // By hand at the versions with names; klamm's offset requests
            // use v10 by id (offsets_are_committed_and_fetched_by_topic_id_at_v10).
            (ApiKey::OffsetCommit, 9),
            (ApiKey::OffsetFetch, 9),
            // The transactions V1 set; the TransactionManager uses EndTxn
            // v5 and TxnOffsetCommit v5/v6 (a_transactional_producer_runs_transactions_v2).
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
/// transactional producer runs transactions V2 on Kafka 4.4 (the test
/// below).
#[test]
fn producer_and_fetcher_name_topics_by_id() {
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
    });
}

/// Transactions V2 (KIP-890) on Kafka 4.4, whose cluster finalizes
/// `transaction.version` 2, through a recording relay: no
/// AddPartitionsToTxn (the Produce, v13 by topic id, adds the partition)
/// and no AddOffsetsToTxn (TxnOffsetCommit v6, by topic id, adds the
/// offsets); each
/// EndTxn v5 bumps the epoch and answers with it, and the next
/// transaction's batches carry that epoch with sequences from 0. Both
/// transactions' records are committed and read back read_committed.
#[test]
fn a_transactional_producer_runs_transactions_v2() {
    use klamm::producer::transaction::ConsumerGroupMetadata;
    use klamm::producer::{AsyncProducer, ProducerRecord};
    use klamm::protocol::messages::{RequestBody, ResponseBody};
    use klamm::protocol::records::{DecodeOptions, RecordBatch};
    use support::relay::Relay;
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let direct = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-tv2");
        support::topics::create_topic(&direct, &topic, 1).await;
        let id = direct.metadata().topic_id(&topic).expect("an id");
        let relay = Relay::start(addr.clone(), vec![]).await;
        let mut txn = config(&relay.addr);
        txn.producer.idempotence = true;
        txn.producer.transactional_id = Some(support::unique_topic("klamm-tv2-txn"));
        let producer = AsyncProducer::new(Client::connect(txn).await.expect("connect"))
            .await
            .expect("producer");
        producer.init_transactions().await.expect("init");
        for round in 0..2 {
            producer.begin_transaction().expect("begin");
            let mut pending = Vec::new();
            for i in 0..3 {
                let r = ProducerRecord::new(topic.clone(), format!("tv2-{round}-{i}"))
                    .with_partition(0);
                pending.push(producer.send(r).await.expect("send"));
            }
            producer
                .send_offsets_to_transaction(
                    &[(topic.as_str(), 0, 3 * (round + 1), None)],
                    &ConsumerGroupMetadata::new(support::unique_topic("klamm-tv2-group")),
                )
                .await
                .expect("offsets");
            producer.commit_transaction().await.expect("commit");
            for d in pending {
                d.await.expect("written");
            }
        }
        producer.close().await.expect("close");

        assert!(relay.log.of(ApiKey::AddPartitionsToTxn).is_empty());
        assert!(relay.log.of(ApiKey::AddOffsetsToTxn).is_empty());
        // TxnOffsetCommit v6: v5's implicit add, topics by id.
        let offsets = relay.log.of(ApiKey::TxnOffsetCommit);
        assert!(!offsets.is_empty());
        for e in &offsets {
            assert_eq!(e.version(), 6);
            let RequestBody::TxnOffsetCommit(req) = &e.request else {
                panic!("a TxnOffsetCommit request");
            };
            assert!(
                req.topics
                    .iter()
                    .all(|t| t.topic_id == id && t.name.is_empty())
            );
            let Some(ResponseBody::TxnOffsetCommit(resp)) = &e.response else {
                panic!("a TxnOffsetCommit answer");
            };
            assert!(resp.topics.iter().all(|t| t.topic_id == id));
        }
        // Each transaction's offsets accepted in the end (a coordinator
        // still loading a new group's offsets partition may refuse one
        // attempt first, and it is retried).
        let accepted = offsets
            .iter()
            .filter(|e| match &e.response {
                Some(ResponseBody::TxnOffsetCommit(r)) => r
                    .topics
                    .iter()
                    .all(|t| t.partitions.iter().all(|p| p.error_code == 0)),
                _ => false,
            })
            .count();
        assert_eq!(accepted, 2, "{offsets:?}");
        // Each EndTxn at v5, answered with the epoch the next one uses.
        let ends: Vec<(i16, i16)> = relay
            .log
            .of(ApiKey::EndTxn)
            .iter()
            .map(|e| {
                assert_eq!(e.version(), 5);
                let RequestBody::EndTxn(req) = &e.request else {
                    panic!("an EndTxn request");
                };
                let Some(ResponseBody::EndTxn(resp)) = &e.response else {
                    panic!("an EndTxn answer");
                };
                assert_eq!(resp.error_code, 0);
                assert_eq!(resp.producer_id, req.producer_id);
                (req.producer_epoch, resp.producer_epoch)
            })
            .collect();
        assert_eq!(ends.len(), 2, "{ends:?}");
        assert_eq!(ends[0].1, ends[0].0 + 1, "the first EndTxn bumps the epoch");
        assert_eq!(ends[1].0, ends[0].1, "the second transaction uses it");
        assert_eq!(ends[1].1, ends[1].0 + 1);
        // The batches: v13 by id, each transaction at its epoch, and the
        // second one's sequences start at 0 again.
        let mut batches: Vec<(i16, i32)> = Vec::new();
        for e in relay.log.of(ApiKey::Produce) {
            assert_eq!(e.version(), 13);
            let req = e.produce().expect("a Produce request");
            assert!(req.transactional_id.is_some());
            for t in &req.topic_data {
                assert!(t.topic_id == id && t.name.is_empty());
                for p in &t.partition_data {
                    let mut bytes = p.records.clone().expect("records");
                    let b = RecordBatch::decode(&mut bytes, &DecodeOptions::default())
                        .expect("a batch");
                    batches.push((b.producer_epoch, b.base_sequence));
                }
            }
        }
        assert_eq!(
            batches.first().copied(),
            Some((ends[0].0, 0)),
            "{batches:?}"
        );
        assert!(batches.contains(&(ends[1].0, 0)), "{batches:?}");
        assert!(
            batches
                .iter()
                .all(|(e, _)| *e == ends[0].0 || *e == ends[1].0)
        );

        // Stored: the six records, transactional, each transaction at its
        // epoch, and a commit marker after each.
        // The coordinator writes the markers after it answers EndTxn: the
        // last one may come a moment later.
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let stored = loop {
            let stored = support::read::stored_batches(&direct, &topic, 0).await;
            let markers = stored.iter().filter(|b| b.is_control).count();
            if markers >= 2 || tokio::time::Instant::now() >= until {
                break stored;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let markers = stored.iter().filter(|b| b.is_control).count();
        assert_eq!(markers, 2, "one commit marker per transaction");
        let records = support::read::records_of(&stored);
        let seen: Vec<(String, i16)> = records
            .iter()
            .map(|r| {
                assert!(r.transactional);
                let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
                (v.into_owned(), r.producer_epoch)
            })
            .collect();
        let want: Vec<(String, i16)> = (0..2)
            .flat_map(|r| {
                let epoch = ends[r].0;
                (0..3).map(move |i| (format!("tv2-{r}-{i}"), epoch))
            })
            .collect();
        assert_eq!(seen, want);
    });
}

/// OffsetCommit and OffsetFetch at v10, by topic id, through a recording
/// relay: named partitions whose ids the client knows go by id, "every
/// partition" goes by name (v9); and a stale id (the topic deleted and
/// made again since the client's metadata was read) is refused with
/// UNKNOWN_TOPIC_ID, after which the same commit goes by name and lands.
#[test]
fn offsets_are_committed_and_fetched_by_topic_id_at_v10() {
    use std::collections::BTreeMap;

    use klamm::group::{GroupAdmin, OffsetAndMetadata};
    use klamm::protocol::error_codes::ErrorCode;
    use klamm::protocol::messages::{RequestBody, ResponseBody};
    use support::relay::Relay;

    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let mut cfg = config(&addr);
        cfg.metadata.allow_auto_topic_creation = false;
        let direct = Client::connect(cfg.clone()).await.expect("connect");
        let topic = support::unique_topic("klamm-offsets-v10");
        let group = support::unique_topic("klamm-offsets-v10-group");
        support::topics::create_topic(&direct, &topic, 2).await;
        let relay = Relay::start(addr.clone(), vec![]).await;
        let mut via = cfg.clone();
        via.net.bootstrap_servers = vec![relay.addr.clone()];
        let client = Client::connect(via).await.expect("connect");
        client
            .refresh_metadata(Some(std::slice::from_ref(&topic)))
            .await
            .expect("metadata");
        let id = client.metadata().topic_id(&topic).expect("an id");
        let admin = GroupAdmin::new(client.clone());
        let tp = |p| klamm::group::TopicPartition::new(topic.clone(), p);
        let offsets: BTreeMap<_, _> = [
            (tp(0), OffsetAndMetadata::new(5)),
            (tp(1), OffsetAndMetadata::new(6)),
        ]
        .into_iter()
        .collect();
        let results = admin.alter_offsets(&group, &offsets).await.expect("alter");
        assert!(results.values().all(|r| r.is_ok()), "{results:?}");
        let committed = admin
            .committed_offsets(&group, Some(&[tp(0), tp(1)]))
            .await
            .expect("committed");
        assert_eq!(committed[&tp(0)].offset, 5);
        assert_eq!(committed[&tp(1)].offset, 6);
        let all = admin.committed_offsets(&group, None).await.expect("all");
        assert_eq!(all[&tp(1)].offset, 6);

        // Every commit by id at v10 (the first may meet a coordinator
        // still loading, and be retried), the last one accepted.
        let commits = relay.log.of(ApiKey::OffsetCommit);
        assert!(!commits.is_empty());
        for e in &commits {
            assert_eq!(e.version(), 10);
            let RequestBody::OffsetCommit(req) = &e.request else {
                panic!("an OffsetCommit request");
            };
            assert!(
                req.topics
                    .iter()
                    .all(|t| t.topic_id == id && t.name.is_empty())
            );
        }
        let Some(ResponseBody::OffsetCommit(resp)) = &commits[commits.len() - 1].response else {
            panic!("an OffsetCommit answer");
        };
        assert!(
            resp.topics
                .iter()
                .all(|t| t.topic_id == id && t.partitions.iter().all(|p| p.error_code == 0))
        );
        // Named partitions by id at v10; every partition by name at v9.
        let fetches = relay.log.of(ApiKey::OffsetFetch);
        let named = |e: &support::relay::Exchange| match &e.request {
            RequestBody::OffsetFetch(r) => r.groups[0].topics.clone(),
            _ => panic!("an OffsetFetch request"),
        };
        let (by_id, all): (Vec<_>, Vec<_>) = fetches.iter().partition(|e| named(e).is_some());
        assert!(!by_id.is_empty() && !all.is_empty(), "{fetches:?}");
        for e in &by_id {
            assert_eq!(e.version(), 10);
            let topics = named(e).expect("named topics");
            assert!(topics.iter().all(|t| t.topic_id == id && t.name.is_empty()));
        }
        assert!(all.iter().all(|e| e.version() == 9));
        let before = commits.len();

        // The topic deleted and made again: the client still holds the old id.
        support::topics::delete(&direct, &topic).await;
        support::topics::create_topic(&direct, &topic, 2).await;
        direct
            .refresh_metadata(Some(std::slice::from_ref(&topic)))
            .await
            .expect("metadata");
        let new_id = direct.metadata().topic_id(&topic).expect("an id");
        assert_ne!(new_id, id);
        assert_eq!(client.metadata().topic_id(&topic), Some(id), "still stale");
        let again: BTreeMap<_, _> = [(tp(0), OffsetAndMetadata::new(7))].into_iter().collect();
        let results = admin.alter_offsets(&group, &again).await.expect("alter");
        assert!(results.values().all(|r| r.is_ok()), "{results:?}");
        let commits = relay.log.of(ApiKey::OffsetCommit).split_off(before);
        let refused_at = commits
            .iter()
            .position(|e| match &e.response {
                Some(ResponseBody::OffsetCommit(r)) => {
                    r.topics.iter().flat_map(|t| &t.partitions).any(|p| {
                        let code = ErrorCode(p.error_code);
                        code == ErrorCode::UNKNOWN_TOPIC_ID
                            || code == ErrorCode::INCONSISTENT_TOPIC_ID
                    })
                }
                _ => false,
            })
            .unwrap_or_else(|| panic!("no commit refused the stale id: {commits:?}"));
        assert_eq!(commits[refused_at].version(), 10);
        let RequestBody::OffsetCommit(stale) = &commits[refused_at].request else {
            panic!("an OffsetCommit request");
        };
        assert!(stale.topics.iter().all(|t| t.topic_id == id));
        let next = commits
            .get(refused_at + 1)
            .expect("the commit again, by name");
        assert_eq!(next.version(), 9);
        let RequestBody::OffsetCommit(by_name) = &next.request else {
            panic!("an OffsetCommit request");
        };
        assert!(by_name.topics.iter().all(|t| *t.name == *topic));
        let Some(ResponseBody::OffsetCommit(ok)) = &next.response else {
            panic!("an OffsetCommit answer");
        };
        assert!(
            ok.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.error_code == 0)
        );
        let committed = GroupAdmin::new(direct.clone())
            .committed_offsets(&group, Some(&[tp(0)]))
            .await
            .expect("committed");
        assert_eq!(committed[&tp(0)].offset, 7);
    });
}

/// Produce v13 and Fetch v18 with a stale topic id (the topic deleted and
/// made again after the client read its metadata): the broker answers
/// UNKNOWN_TOPIC_ID, the client refreshes its metadata, as Java's does,
/// and goes on with the new id; the records land in the new topic and are
/// read back. The relay's log shows the refused request before the one
/// that succeeded.
#[test]
fn a_stale_topic_id_is_refused_and_the_client_goes_on_with_the_new_one() {
    use klamm::producer::{AsyncProducer, ProducerRecord};
    use klamm::protocol::error_codes::ErrorCode;
    use support::relay::Relay;
    support::run_within(120, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let mut cfg = config(&addr);
        cfg.metadata.allow_auto_topic_creation = false;
        let direct = Client::connect(cfg.clone()).await.expect("connect");
        let topic = support::unique_topic("klamm-stale-id");
        support::topics::create_topic(&direct, &topic, 1).await;
        let relay = Relay::start(addr.clone(), vec![]).await;
        let mut via = cfg.clone();
        via.net.bootstrap_servers = vec![relay.addr.clone()];
        let client = Client::connect(via).await.expect("connect");
        client
            .refresh_metadata(Some(std::slice::from_ref(&topic)))
            .await
            .expect("metadata");
        let old_id = client.metadata().topic_id(&topic).expect("an id");
        // A second client through the relay, to read with the stale id.
        let mut reader_cfg = cfg.clone();
        reader_cfg.net.bootstrap_servers = vec![relay.addr.clone()];
        let reader = Client::connect(reader_cfg).await.expect("connect");
        reader
            .refresh_metadata(Some(std::slice::from_ref(&topic)))
            .await
            .expect("metadata");
        assert_eq!(reader.metadata().topic_id(&topic), Some(old_id));
        support::topics::delete(&direct, &topic).await;
        support::topics::create_topic(&direct, &topic, 1).await;
        direct
            .refresh_metadata(Some(std::slice::from_ref(&topic)))
            .await
            .expect("metadata");
        let new_id = direct.metadata().topic_id(&topic).expect("an id");
        assert_ne!(new_id, old_id);
        assert_eq!(client.metadata().topic_id(&topic), Some(old_id));

        let producer = AsyncProducer::new(client.clone()).await.expect("producer");
        let d = producer
            .send(ProducerRecord::new(topic.clone(), "after").with_partition(0))
            .await
            .expect("send");
        d.await.expect("written");
        producer.close().await.expect("close");
        let produced = relay.log.of(ApiKey::Produce);
        let ids: Vec<_> = produced
            .iter()
            .map(|e| {
                let req = e.produce().expect("a Produce request");
                let code = e
                    .produce_response()
                    .map(|r| r.responses[0].partition_responses[0].error_code)
                    .map(ErrorCode);
                (req.topic_data[0].topic_id, code)
            })
            .collect();
        assert!(
            ids.iter()
                .any(|(id, code)| *id == old_id && *code == Some(ErrorCode::UNKNOWN_TOPIC_ID)),
            "a Produce names the stale id and is refused: {ids:?}"
        );
        assert!(
            ids.iter()
                .all(|(id, code)| *id != old_id || *code != Some(ErrorCode::NONE)),
            "nothing lands under the stale id: {ids:?}"
        );
        assert!(
            ids.last()
                .is_some_and(|(id, code)| *id == new_id && *code == Some(ErrorCode::NONE)),
            "the last names the new id and lands: {ids:?}"
        );
        assert_eq!(
            direct
                .list_offsets(&topic, 0, klamm::client::OffsetSpec::Newest)
                .await
                .expect("offsets"),
            1
        );
        assert_eq!(client.metadata().topic_id(&topic), Some(new_id));

        // The reader still holds the old id.
        assert_eq!(reader.metadata().topic_id(&topic), Some(old_id));
        let consumer = klamm::consumer::Consumer::new(reader.clone());
        let mut pc = consumer
            .consume_partition(&topic, 0, klamm::consumer::StartOffset::Oldest)
            .await
            .expect("consume");
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), pc.recv())
            .await
            .expect("a record in time: the fetcher left the stale id behind")
            .expect("open")
            .expect("record");
        assert_eq!(r.value.as_deref(), Some(&b"after"[..]));
        drop(pc);
        consumer.close().await;
        let fetched: Vec<_> = relay
            .log
            .of(ApiKey::Fetch)
            .into_iter()
            .filter(|e| e.connection != produced[0].connection)
            .filter_map(|e| {
                let req = e.fetch()?;
                let t = req.topics.first()?;
                let code = e.fetch_response().and_then(|r| {
                    r.responses
                        .first()
                        .and_then(|t| t.partitions.first())
                        .map(|p| ErrorCode(p.error_code))
                });
                Some((t.topic_id, code))
            })
            .collect();
        assert!(
            fetched
                .iter()
                .any(|(id, code)| *id == old_id && *code == Some(ErrorCode::UNKNOWN_TOPIC_ID)),
            "a Fetch names the stale id and is refused: {fetched:?}"
        );
        assert!(
            fetched
                .iter()
                .any(|(id, code)| *id == new_id && *code == Some(ErrorCode::NONE)),
            "then one names the new id: {fetched:?}"
        );
        assert_eq!(reader.metadata().topic_id(&topic), Some(new_id));
    });
}
