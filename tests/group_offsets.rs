//! The offset manager against Apache Kafka (the single node): what is
//! committed is what was marked, with its metadata and leader epoch, and
//! nothing that was not marked; commit errors that mean "rejoin" say so
//! and keep the marks.

mod support;

use std::collections::BTreeMap;

use klamm::group::{Generation, OffsetAndMetadata, OffsetManager, TopicPartition};
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Client, Error};
use support::read::config;
use support::topics::create_topic;

fn group(prefix: &str) -> String {
    support::unique_topic(prefix)
}

#[test]
fn committed_offsets_read_back_with_metadata_and_epoch() {
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-offsets");
        create_topic(&client, &topic, 3).await;
        let g = group("klamm-offsets-group");
        let om = OffsetManager::new(client.clone(), &g);
        let (p0, p1, p2) = (
            TopicPartition::new(&topic, 0),
            TopicPartition::new(&topic, 1),
            TopicPartition::new(&topic, 2),
        );
        // Nothing committed yet: nothing comes back.
        let none = om.fetch(&[p0.clone(), p1.clone()]).await.expect("fetch");
        assert!(none.is_empty(), "{none:?}");

        om.mark(&p0, 42, Some("worker 7"));
        om.mark_with_epoch(&p1, 7, Some(0), None);
        assert!(om.has_pending());
        let sent = om.commit().await.expect("commit");
        assert_eq!(sent.len(), 2, "only the marked partitions: {sent:?}");
        assert!(!om.has_pending());
        // A commit with nothing new marked sends nothing.
        assert!(om.commit().await.expect("empty commit").is_empty());

        // A second manager (another process) reads what the first wrote.
        let other = OffsetManager::new(client.clone(), &g);
        let got = other
            .fetch(&[p0.clone(), p1.clone(), p2.clone()])
            .await
            .expect("fetch");
        assert_eq!(
            got.get(&p0),
            Some(&OffsetAndMetadata {
                offset: 42,
                leader_epoch: None,
                metadata: Some("worker 7".into())
            })
        );
        assert_eq!(
            got.get(&p1).map(|o| (o.offset, o.leader_epoch)),
            Some((7, Some(0)))
        );
        assert!(
            !got.contains_key(&p2),
            "p2 was never marked, so never committed"
        );

        // Moving a mark backwards (to read again) is committed too.
        om.mark(&p0, 40, None);
        om.commit().await.expect("commit");
        let got = other.fetch(std::slice::from_ref(&p0)).await.expect("fetch");
        assert_eq!(got[&p0].offset, 40);

        // Explicit offsets, whatever was marked; and async commits land
        // in the order they were started.
        let mut explicit = BTreeMap::new();
        explicit.insert(p2.clone(), OffsetAndMetadata::new(3));
        om.commit_offsets(explicit).await.expect("commit offsets");
        om.mark(&p2, 10, None);
        let first = om.commit_async();
        om.mark(&p2, 11, None);
        let second = om.commit_async();
        assert_eq!(first.await.expect("join").expect("commit")[&p2].offset, 10);
        assert_eq!(second.await.expect("join").expect("commit")[&p2].offset, 11);
        let got = other.fetch(std::slice::from_ref(&p2)).await.expect("fetch");
        assert_eq!(got[&p2].offset, 11);
        client.close().await;
    });
}

/// A commit under a generation the coordinator does not know (a member
/// that was removed) fails with the broker's code, says the member must
/// rejoin, and keeps the marks for after the rejoin. Control: the same
/// mark commits outside any generation.
#[test]
fn a_commit_from_an_unknown_member_says_rejoin_and_keeps_the_marks() {
    support::run_within(90, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let client = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-group-stale");
        create_topic(&client, &topic, 1).await;
        let g = group("klamm-stale-group");
        let om = OffsetManager::new(client.clone(), &g);
        let tp = TopicPartition::new(&topic, 0);
        om.set_generation(Generation {
            id: 3,
            member_id: "klamm-gone-member".into(),
            instance_id: None,
        });
        om.mark(&tp, 5, None);
        let err = om.commit().await.expect_err("no such member");
        let Error::Broker { code, context, .. } = &err else {
            panic!("not a broker error: {err}");
        };
        assert!(
            [
                ErrorCode::UNKNOWN_MEMBER_ID,
                ErrorCode::ILLEGAL_GENERATION,
                // Kafka 4.4's answer when the group has no state at all.
                ErrorCode::GROUP_ID_NOT_FOUND
            ]
            .contains(code),
            "{err}"
        );
        assert!(!code.is_retriable());
        let context = context.clone().unwrap_or_default();
        assert!(
            context.contains("must rejoin") && context.contains(&tp.to_string()),
            "{context}"
        );
        assert!(om.has_pending(), "the mark is kept");
        assert!(
            om.fetch(std::slice::from_ref(&tp))
                .await
                .expect("fetch")
                .is_empty()
        );

        om.set_generation(Generation::NONE);
        om.commit().await.expect("commit outside a generation");
        let got = om.fetch(std::slice::from_ref(&tp)).await.expect("fetch");
        assert_eq!(got[&tp].offset, 5);
        client.close().await;
    });
}
