//! The `stable` assignor against Apache Kafka 4.4 (the single node): two
//! members on six partitions; one is closed and a new client with the
//! same `group.stable.id` joins at once. It gets the partitions it had,
//! although the other member took them over meanwhile (the leader — the
//! member that stayed — remembers them by identity). Control: a new client
//! with another stable id gets a fair share, nothing more is asserted.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use klamm::group::{GroupConsumer, TopicPartition};
use klamm::{Client, Config};
use support::group::{Seen, drive, member_config};
use support::read::config;
use support::topics::create_topic;

const WAIT: Duration = Duration::from_secs(60);

fn stable_config(addr: &str, group: &str, stable_id: &str) -> Config {
    let mut c = member_config(addr, group, "stable");
    // The leader remembers a departed identity for its session timeout.
    c.consumer.session_timeout = Duration::from_secs(10);
    c.consumer.group_stable_id = Some(stable_id.to_string());
    c
}

async fn member(cfg: &Config, topic: &str) -> GroupConsumer {
    let client = Client::connect(cfg.clone()).await.expect("connect");
    GroupConsumer::new(client, [topic]).await.expect("member")
}

/// Starts the leader `a` alone, then `b`; returns both split 3/3.
async fn two_members(
    addr: &str,
    group: &str,
    topic: &str,
) -> (GroupConsumer, Seen, GroupConsumer, Seen) {
    let mut a = member(&stable_config(addr, group, "member-a"), topic).await;
    let mut seen_a = Seen::default();
    drive(&mut a, &mut seen_a, WAIT, |s| s.owned.len() == 6).await;
    assert_eq!(seen_a.owned.len(), 6, "{seen_a:?}");
    let mut b = member(&stable_config(addr, group, "member-b"), topic).await;
    let mut seen_b = Seen::default();
    tokio::join!(
        drive(&mut a, &mut seen_a, WAIT, |s| s.owned.len() == 3),
        drive(&mut b, &mut seen_b, WAIT, |s| s.owned.len() == 3),
    );
    assert_eq!(seen_a.owned.len(), 3, "{seen_a:?}");
    assert_eq!(seen_b.owned.len(), 3, "{seen_b:?}");
    assert!(seen_a.owned.is_disjoint(&seen_b.owned));
    (a, seen_a, b, seen_b)
}

/// Closes `b` and waits until `a` owns all six partitions.
async fn close_b(a: &mut GroupConsumer, seen_a: &mut Seen, b: GroupConsumer) {
    b.close().await.expect("close b");
    drive(a, seen_a, WAIT, |s| s.owned.len() == 6).await;
    assert_eq!(seen_a.owned.len(), 6, "a took b's partitions: {seen_a:?}");
}

#[test]
fn a_member_restarted_with_its_stable_id_gets_its_partitions_back() {
    support::run_within(240, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let admin = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-stable");
        create_topic(&admin, &topic, 6).await;
        let group = support::unique_topic("klamm-stable-group");
        let (mut a, mut seen_a, b, seen_b) = two_members(&addr, &group, &topic).await;
        let (a_had, b_had) = (seen_a.owned.clone(), seen_b.owned.clone());

        close_b(&mut a, &mut seen_a, b).await;
        // A new client, the same stable id, a new member id.
        let mut b2 = member(&stable_config(&addr, &group, "member-b"), &topic).await;
        let mut seen_b2 = Seen::default();
        tokio::join!(
            drive(&mut a, &mut seen_a, WAIT, |s| s.owned.len() == 3),
            drive(&mut b2, &mut seen_b2, WAIT, |s| s.owned.len() == 3),
        );
        assert_eq!(seen_b2.owned, b_had, "b is back on its partitions");
        assert_eq!(seen_a.owned, a_had, "a kept its own throughout");
        let revoked: BTreeSet<TopicPartition> = seen_a
            .revoked
            .last()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        assert_eq!(revoked, b_had, "a gave back exactly b's partitions");

        a.close().await.expect("close a");
        b2.close().await.expect("close b2");
        admin.close().await;
    });
}

#[test]
fn control_a_new_stable_id_gets_a_fair_share_only() {
    support::run_within(240, async {
        let Some(addr) = support::broker() else {
            return;
        };
        let admin = Client::connect(config(&addr)).await.expect("connect");
        let topic = support::unique_topic("klamm-stable-ctl");
        create_topic(&admin, &topic, 6).await;
        let group = support::unique_topic("klamm-stable-ctl-group");
        let (mut a, mut seen_a, b, _) = two_members(&addr, &group, &topic).await;

        close_b(&mut a, &mut seen_a, b).await;
        let mut c = member(&stable_config(&addr, &group, "member-c"), &topic).await;
        let mut seen_c = Seen::default();
        tokio::join!(
            drive(&mut a, &mut seen_a, WAIT, |s| s.owned.len() == 3),
            drive(&mut c, &mut seen_c, WAIT, |s| s.owned.len() == 3),
        );
        // Which three it gets depends on the assignor's tie-breaking, not
        // on who had them before: only the split is asserted.
        assert_eq!(seen_a.owned.len(), 3, "{seen_a:?}");
        assert_eq!(seen_c.owned.len(), 3, "{seen_c:?}");
        assert!(seen_a.owned.is_disjoint(&seen_c.owned));

        a.close().await.expect("close a");
        c.close().await.expect("close c");
        admin.close().await;
    });
}
