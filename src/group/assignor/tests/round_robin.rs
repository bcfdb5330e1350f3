//! `roundrobin`: the Java client's documented outputs.

use super::*;

#[test]
fn java_documented_example_with_equal_subscriptions() {
    // RoundRobinAssignor's documentation: C0 and C1 subscribed to t0 and
    // t1, three partitions each.
    let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
    let plan = RoundRobinAssignor
        .assign(&members, &layout(&[("t0", 3), ("t1", 3)]))
        .unwrap();
    let expected: BTreeMap<String, TopicPartitions> = [
        ("C0".to_string(), tp(&[("t0", &[0, 2]), ("t1", &[1])])),
        ("C1".to_string(), tp(&[("t0", &[1]), ("t1", &[0, 2])])),
    ]
    .into();
    assert_eq!(partitions(&plan), expected);
}

#[test]
fn java_documented_example_with_different_subscriptions() {
    // RoundRobinAssignor's documentation: C0 on t0; C1 on t0, t1; C2 on
    // t0, t1, t2; t0, t1, t2 with 1, 2, 3 partitions.
    let members = [
        member("C0", &["t0"]),
        member("C1", &["t0", "t1"]),
        member("C2", &["t0", "t1", "t2"]),
    ];
    let plan = RoundRobinAssignor
        .assign(&members, &layout(&[("t0", 1), ("t1", 2), ("t2", 3)]))
        .unwrap();
    let expected: BTreeMap<String, TopicPartitions> = [
        ("C0".to_string(), tp(&[("t0", &[0])])),
        ("C1".to_string(), tp(&[("t1", &[0])])),
        ("C2".to_string(), tp(&[("t1", &[1]), ("t2", &[0, 1, 2])])),
    ]
    .into();
    assert_eq!(partitions(&plan), expected);
}

#[test]
fn racks_are_ignored() {
    let mut a = member("a", &["t"]);
    a.subscription.rack = Some("r1".into());
    let members = [a, member("b", &["t"])];
    let mut l = ClusterLayout::new();
    l.add_partition("t", 0, ["r0"]);
    l.add_partition("t", 1, ["r1"]);
    let plan = RoundRobinAssignor.assign(&members, &l).unwrap();
    assert_eq!(plan.members["a"].partitions["t"], vec![0]);
    assert_eq!(plan.members["b"].partitions["t"], vec![1]);
}
