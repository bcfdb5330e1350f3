//! Unit tests of the admin's pure parts: the ACL table and its plan, the
//! enums' wire values and names, the authorized-operations bit field.

use super::*;

fn acl(principal: &str, topic: &str, op: AclOperation) -> AclBinding {
    AclBinding::allow_topic(principal, topic, PatternType::Literal, op)
}

#[test]
fn the_plan_creates_what_is_missing_and_deletes_what_is_not_wanted() {
    let table = AclTable::new().allow_topic(
        "orders",
        "User:billing",
        [AclOperation::Read, AclOperation::Describe],
    );
    let existing = [
        acl("User:billing", "orders", AclOperation::Read),
        acl("User:billing", "orders", AclOperation::Write), // not in the table
        acl("User:other", "orders", AclOperation::Write),   // not managed
    ];
    let plan = table.plan(&existing);
    assert_eq!(
        plan.create.iter().cloned().collect::<Vec<_>>(),
        vec![acl("User:billing", "orders", AclOperation::Describe)]
    );
    assert_eq!(
        plan.delete.iter().cloned().collect::<Vec<_>>(),
        vec![acl("User:billing", "orders", AclOperation::Write)]
    );
    // Once applied, the same table plans nothing.
    let after = [
        acl("User:billing", "orders", AclOperation::Read),
        acl("User:billing", "orders", AclOperation::Describe),
        acl("User:other", "orders", AclOperation::Write),
    ];
    assert!(table.plan(&after).is_empty());
    assert!(table.plan(&after).to_string().contains("nothing to change"));
}

#[test]
fn a_managed_principal_without_rows_loses_its_acls() {
    let table = AclTable::new().manage("User:gone");
    let plan = table.plan(&[acl("User:gone", "t", AclOperation::Read)]);
    assert_eq!(plan.delete.len(), 1);
    assert!(plan.create.is_empty());
    assert!(
        plan.to_string()
            .starts_with("- User:gone ALLOW READ on TOPIC 't'")
    );
}

#[test]
fn the_text_form_reads_every_resource_kind() {
    let table: AclTable = "
        orders  User:a  read,describe   # a topic
        topic-prefix:audit-  User:a  READ
        group:g  User:b  read
        transactional-id-prefix:tx-  User:b  write
        cluster  User:b  idempotent_write
    "
    .parse()
    .unwrap();
    let kinds: Vec<(ResourceType, PatternType, &str)> = table
        .entries()
        .iter()
        .map(|e| (e.resource_type, e.pattern_type, e.resource_name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ResourceType::Topic, PatternType::Literal, "orders"),
            (ResourceType::Topic, PatternType::Prefixed, "audit-"),
            (ResourceType::Group, PatternType::Literal, "g"),
            (ResourceType::TransactionalId, PatternType::Prefixed, "tx-"),
            (ResourceType::Cluster, PatternType::Literal, "kafka-cluster"),
        ]
    );
    assert_eq!(table.bindings().len(), 6);
    assert_eq!(table.principals().len(), 2);
}

#[test]
fn bad_table_lines_name_the_line() {
    for (text, needle) in [
        ("orders User:a", "expected"),
        ("orders alice read", "User:name"),
        ("orders User:a fly", "unknown value 'fly'"),
        ("queue:x User:a read", "unknown resource kind"),
        ("orders User:a any", "not ANY"),
    ] {
        let e = text.parse::<AclTable>().unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains(needle), "{text}: {e}");
    }
}

#[test]
fn enum_codes_are_kafkas() {
    assert_eq!(ResourceType::Topic.code(), 2);
    assert_eq!(ResourceType::TransactionalId.code(), 5);
    assert_eq!(PatternType::Prefixed.code(), 4);
    assert_eq!(AclOperation::IdempotentWrite.code(), 12);
    assert_eq!(AclPermission::Allow.code(), 3);
    for op in AclOperation::ALL_VALUES {
        assert_eq!(AclOperation::from_code(op.code()), Some(*op));
        assert_eq!(op.as_str().parse::<AclOperation>().unwrap(), *op);
    }
    assert_eq!(AclOperation::from_code(0), None);
    assert_eq!(
        "describe-configs".parse::<AclOperation>().unwrap(),
        AclOperation::DescribeConfigs
    );
}

#[test]
fn authorized_operations_bits() {
    // READ (3), WRITE (4), DESCRIBE (8).
    let bits = (1 << 3) | (1 << 4) | (1 << 8);
    let ops = AclOperation::from_bits(bits).unwrap();
    assert_eq!(
        ops.into_iter().collect::<Vec<_>>(),
        vec![
            AclOperation::Read,
            AclOperation::Write,
            AclOperation::Describe
        ]
    );
    assert_eq!(AclOperation::from_bits(i32::MIN), None);
}

#[test]
fn config_resources_route_to_their_broker() {
    assert_eq!(ConfigResource::broker(2).name, "2");
    assert_eq!(ConfigResource::cluster_defaults().name, "");
    assert_eq!(
        ConfigResourceType::from_code(32),
        Some(ConfigResourceType::Group)
    );
    assert_eq!(ConfigResourceType::from_code(3), None);
}

#[test]
fn scram_upsertions_hide_the_password() {
    let u = ScramUpsertion::new("alice", ScramMechanism::Sha256, "hunter2");
    assert!(!format!("{u:?}").contains("hunter2"));
}
