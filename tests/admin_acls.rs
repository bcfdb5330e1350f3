//! ACLs through klamm's `Admin` on Apache Kafka 4.4's StandardAuthorizer,
//! checked by the Java admin client: create, describe and delete by
//! filter (each item's outcome on its own), the declarative table applied
//! twice (the second time changes nothing), and its enforcement — a SASL
//! user made for the test reads only what the table grants and gets a
//! typed authorization error otherwise.
//!
//! `scripts/kafka` leaves resources without ACLs open
//! (`allow.everyone.if.no.acl.found=true`): a resource the table names is
//! closed to everything it does not grant.

mod support;

use std::time::Duration;

use klamm::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclTable, NewTopic, PatternType,
    ResourceType, ScramMechanism, ScramUpsertion,
};
use klamm::config::{SaslMechanism, SecurityProtocol};
use klamm::consumer::{Consumer, StartOffset};
use klamm::producer::{AsyncProducer, ProducerRecord};
use klamm::protocol::error_codes::ErrorCode;
use klamm::{Client, Error, ErrorKind};
use support::java_admin::{JavaAdmin, klamm_admin};

/// The ACLs Java lists for `principal`, as
/// `principal|permission|operation|type|name|pattern|host`.
async fn java_acls(java: &JavaAdmin, principal: &str) -> Vec<String> {
    let all = java.result("describe-acls").await;
    all.as_array()
        .expect("acls")
        .iter()
        .filter_map(|a| a.as_str())
        .filter(|a| a.starts_with(&format!("{principal}|")))
        .map(str::to_string)
        .collect()
}

fn java_form(a: &AclBinding) -> String {
    [
        a.principal.as_str(),
        a.permission.as_str(),
        a.operation.as_str(),
        a.resource_type.as_str(),
        &a.resource_name,
        a.pattern_type.as_str(),
        &a.host,
    ]
    .join("|")
}

#[test]
fn acls_created_described_and_deleted_by_filter_both_ways() {
    let Some((addr, java)) = support::java_admin::single_node() else {
        return;
    };
    support::run_within(180, async move {
        let admin = klamm_admin(&addr).await;
        let who = format!("User:{}", support::unique_topic("probe"));
        let topic = support::unique_topic("klamm-acl-admin");
        let read = AclBinding::allow_topic(&who, &topic, PatternType::Literal, AclOperation::Read);
        let prefixed = AclBinding {
            resource_type: ResourceType::Group,
            resource_name: "billing-".into(),
            pattern_type: PatternType::Prefixed,
            principal: who.clone(),
            host: "127.0.0.1".into(),
            operation: AclOperation::Describe,
            permission: AclPermission::Deny,
        };
        // MATCH is a filter's pattern type, not an ACL's: refused alone,
        // before it reaches the controller (which would fail the whole
        // request for it).
        let invalid = AclBinding {
            pattern_type: PatternType::Match,
            ..read.clone()
        };
        let created = admin
            .create_acls(&[read.clone(), prefixed.clone(), invalid.clone()])
            .await;
        assert!(created[&read].is_ok(), "{created:?}");
        assert!(created[&prefixed].is_ok(), "{created:?}");
        let refused = created[&invalid].as_ref().unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Config, "{refused:?}");
        assert!(refused.to_string().contains("pattern type"), "{refused}");

        // Java sees klamm's two; Java adds one; klamm sees three.
        let mut expected = vec![java_form(&read), java_form(&prefixed)];
        expected.sort();
        support::wait_for("Java sees the ACLs", 30, async || {
            java_acls(&java, &who).await == expected
        })
        .await;
        java.result(&format!(
            "create-acl {who} TOPIC {topic} LITERAL WRITE ALLOW"
        ))
        .await;
        let mine = AclBindingFilter {
            principal: Some(who.clone()),
            ..AclBindingFilter::any()
        };
        let write =
            AclBinding::allow_topic(&who, &topic, PatternType::Literal, AclOperation::Write);
        support::wait_for("klamm sees three", 30, async || {
            admin.describe_acls(&mine).await.expect("describe").len() == 3
        })
        .await;
        let described = admin.describe_acls(&mine).await.expect("describe");
        assert!(
            described.contains(&write)
                && described.contains(&read)
                && described.contains(&prefixed)
        );
        // A MATCH filter on a group name finds the prefixed ACL.
        let matching = admin
            .describe_acls(&AclBindingFilter {
                resource_type: ResourceType::Group,
                resource_name: Some("billing-eu".into()),
                pattern_type: PatternType::Match,
                ..mine.clone()
            })
            .await
            .expect("match");
        assert_eq!(matching, vec![prefixed.clone()]);

        // Delete: one filter for the topic's ACLs (two), one that matches
        // nothing; each reports what it deleted.
        let on_topic = AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some(topic.clone()),
            ..mine.clone()
        };
        let nothing = AclBindingFilter {
            operation: AclOperation::Alter,
            ..on_topic.clone()
        };
        let deleted = admin
            .delete_acls(&[on_topic.clone(), nothing.clone()])
            .await;
        let mut gone = deleted[&on_topic].as_ref().expect("deleted").clone();
        gone.sort();
        let mut want = vec![read.clone(), write.clone()];
        want.sort();
        assert_eq!(gone, want);
        assert!(deleted[&nothing].as_ref().expect("no match").is_empty());
        support::wait_for("Java sees only the group ACL", 30, async || {
            java_acls(&java, &who).await == vec![java_form(&prefixed)]
        })
        .await;
        let rest = admin.delete_acls(&[mine]).await;
        assert_eq!(
            rest.values().next().unwrap().as_ref().expect("rest").len(),
            1
        );
    });
}

/// A client logged in as `user` over SCRAM-SHA-256 on the SASL listener.
async fn client_as(sasl: &str, user: &str, password: &str) -> Result<Client, Error> {
    let user: &'static str = Box::leak(user.to_string().into_boxed_str());
    let password: &'static str = Box::leak(password.to_string().into_boxed_str());
    let (mut config, options) = support::auth::secure_config(
        sasl,
        SecurityProtocol::SaslPlaintext,
        None,
        false,
        Some(&support::auth::Login::Password(
            SaslMechanism::ScramSha256,
            user,
            password,
        )),
    );
    config.producer.idempotence = false;
    Client::connect_with(config, options).await
}

/// Reads the first record of `topic`/0 as the client: the error it gets,
/// or `None` once a record came.
async fn first_record(client: &Client, topic: &str) -> Option<Error> {
    let consumer = Consumer::new(client.clone());
    let mut pc = match consumer
        .consume_partition(topic, 0, StartOffset::Oldest)
        .await
    {
        Ok(pc) => pc,
        Err(e) => return Some(e),
    };
    let got = tokio::time::timeout(Duration::from_secs(5), pc.recv()).await;
    pc.close().await;
    match got {
        Ok(Some(Ok(_))) => None,
        Ok(Some(Err(e))) => Some(e),
        Ok(None) | Err(_) => Some(Error::State {
            reason: "no record within 5 s".into(),
        }),
    }
}

async fn write_one(client: &Client, topic: &str) -> Result<(), Error> {
    let producer = AsyncProducer::new(client.clone()).await?;
    let sent = async {
        producer
            .send(ProducerRecord::new(topic, "x").with_partition(0))
            .await?
            .await
            .map(|_| ())
    }
    .await;
    producer.close().await.ok();
    sent
}

#[test]
fn a_declarative_table_applies_once_and_is_enforced() {
    let (Some((addr, java)), Some(sasl)) = (
        support::java_admin::single_node(),
        support::sasl_listeners(),
    ) else {
        return;
    };
    support::run_within(240, async move {
        let admin = klamm_admin(&addr).await;
        let base = support::unique_topic("klamm-acl-table");
        let (granted, closed) = (format!("{base}-granted"), format!("{base}-closed"));
        for t in [&granted, &closed] {
            let created = admin.create_topics(&[NewTopic::new(t, 1, 1)]).await;
            assert!(created[t].is_ok(), "{created:?}");
            support::topics::wait_until_served(admin.client(), t, 1).await;
            write_one(admin.client(), t).await.expect("admin writes");
        }
        // A user of our own, so no other test's ACLs are touched.
        let user = base.replace('-', "_");
        let password = "table-secret";
        let set = admin
            .alter_user_scram_credentials(
                &[ScramUpsertion::new(&user, ScramMechanism::Sha256, password)],
                &[],
            )
            .await;
        assert!(set[&user].is_ok(), "{set:?}");
        let principal = format!("User:{user}");
        let other = format!("User:{user}_other");

        // A leftover the table does not want: deleted by the apply.
        let leftover = AclBinding::allow_topic(
            &principal,
            &closed,
            PatternType::Literal,
            AclOperation::Write,
        );
        assert!(admin.create_acls(std::slice::from_ref(&leftover)).await[&leftover].is_ok());

        let table: AclTable = format!(
            "{granted}  {principal}  read,describe\n\
             {closed}   {other}      read\n"
        )
        .parse()
        .expect("table");
        // The dry run plans, changes nothing.
        let plan = support::wait_for_value("the plan sees the leftover", 30, async || {
            let plan = admin.plan_acls(&table).await.expect("plan");
            plan.delete.contains(&leftover).then_some(plan)
        })
        .await;
        assert_eq!(plan.create, table.bindings());
        assert!(plan.outcomes.is_empty());
        let printed = plan.to_string();
        assert!(
            printed.contains(&format!("+ {principal} ALLOW READ on TOPIC '{granted}'")),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("- {principal} ALLOW WRITE on TOPIC '{closed}'")),
            "{printed}"
        );
        assert_eq!(
            java_acls(&java, &principal).await,
            vec![java_form(&leftover)],
            "a dry run changes nothing"
        );

        let applied = admin.apply_acls(&table).await.expect("apply");
        assert!(applied.succeeded(), "{applied}");
        assert_eq!(
            applied.outcomes.len(),
            4,
            "three creates and one delete:\n{applied}"
        );
        let mut want: Vec<String> = table
            .bindings()
            .iter()
            .filter(|a| a.principal == principal)
            .map(java_form)
            .collect();
        want.sort();
        support::wait_for("Java sees exactly the table", 30, async || {
            java_acls(&java, &principal).await == want
        })
        .await;
        // Applied again: nothing to do (the first apply, the control, had
        // four changes).
        let again = support::wait_for_value("the second plan is empty", 30, async || {
            let plan = admin.plan_acls(&table).await.expect("plan");
            plan.is_empty().then_some(plan)
        })
        .await;
        assert!(again.outcomes.is_empty());
        let again = admin.apply_acls(&table).await.expect("apply again");
        assert!(again.is_empty() && again.outcomes.is_empty(), "{again}");

        // Enforced: the user reads the granted topic, may not write it,
        // and may not read the closed one.
        let client = support::wait_for_value("the user logs in", 30, async || {
            client_as(&sasl.plaintext, &user, password).await.ok()
        })
        .await;
        support::wait_for("the user reads the granted topic", 30, async || {
            first_record(&client, &granted).await.is_none()
        })
        .await;
        let denied = write_one(&client, &granted)
            .await
            .expect_err("writing is not granted");
        assert_eq!(denied.kind(), ErrorKind::Broker, "{denied:?}");
        assert_eq!(
            denied.kafka_code(),
            Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
            "{denied}"
        );
        let denied = first_record(&client, &closed)
            .await
            .expect("reading the closed topic fails");
        assert_eq!(
            denied.kafka_code(),
            Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
            "{denied}"
        );
        assert!(!denied.is_retriable());

        // Emptied: the table without rows removes every ACL of both.
        let cleared = admin
            .apply_acls(&AclTable::new().manage(&principal).manage(&other))
            .await
            .expect("clear");
        assert_eq!(cleared.delete.len(), 3, "{cleared}");
        assert!(cleared.succeeded(), "{cleared}");
        support::wait_for("Java sees no ACL of the user", 30, async || {
            java_acls(&java, &principal).await.is_empty()
        })
        .await;
        client.close().await;
    });
}
