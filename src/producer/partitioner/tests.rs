use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

const ALL6: &[i32] = &[0, 1, 2, 3, 4, 5];

/// Key -> (partition with 6 partitions, with 13) under librdkafka's
/// `partitioner=murmur2_random` (its Java-compatible murmur2).
///
/// Obtained with `scripts/partitioner-vectors.py`: confluent-kafka 2.16.1
/// (librdkafka 2.16.0) produced every key three times to topics of 6 and 13
/// partitions on the test broker (`scripts/test-broker`, tansu 0.6.0), and
/// the partition of each delivery report was recorded (the three agreed).
const MURMUR2_VECTORS: &[(&[u8], i32, i32)] = &[
    (b"", 3, 11),
    (b"a", 4, 5),
    (b"b", 2, 10),
    (b"ab", 2, 10),
    (b"abc", 3, 12),
    (b"abcd", 2, 11),
    (b"abcde", 1, 12),
    (b"hello", 3, 8),
    (b"kafka", 4, 12),
    (b"klamm", 1, 5),
    (b"key-0", 1, 3),
    (b"key-1", 0, 8),
    (b"key-2", 2, 11),
    (b"key-17", 0, 3),
    (b"user:42", 1, 2),
    (b"order/2024-01-01/0001", 2, 12),
    (b"The quick brown fox jumps over the lazy dog", 0, 11),
    (b"Gr\xc3\xbc\xc3\x9fe", 3, 10),
    (b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 4, 0),
    (b"\xf0\x9f\xa6\x80", 1, 6),
    (b"\x00", 2, 1),
    (b"\xff", 3, 2),
    (b"\x80\x81\xfe\xff", 5, 4),
    (
        b"\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4",
        2,
        9,
    ),
    (b"\xde\xad\xbe\xef\x00\x01\x02", 1, 8),
];

/// Key -> (partition with 6 partitions, with 13) under librdkafka's
/// `partitioner=consistent` (CRC-32 of the key); `None` is a null key.
///
/// Obtained the same way as [`MURMUR2_VECTORS`], by
/// `scripts/partitioner-vectors.py` against confluent-kafka 2.16.1
/// (librdkafka 2.16.0), the null key included.
const CONSISTENT_VECTORS: &[(Option<&[u8]>, i32, i32)] = &[
    (Some(b""), 0, 0),
    (Some(b"a"), 3, 10),
    (Some(b"b"), 5, 2),
    (Some(b"ab"), 5, 8),
    (Some(b"abc"), 0, 4),
    (Some(b"abcd"), 1, 6),
    (Some(b"abcde"), 3, 9),
    (Some(b"hello"), 4, 1),
    (Some(b"kafka"), 5, 2),
    (Some(b"klamm"), 0, 6),
    (Some(b"key-0"), 0, 9),
    (Some(b"key-1"), 2, 2),
    (Some(b"key-2"), 0, 0),
    (Some(b"key-17"), 3, 6),
    (Some(b"user:42"), 4, 8),
    (Some(b"order/2024-01-01/0001"), 4, 12),
    (Some(b"The quick brown fox jumps over the lazy dog"), 1, 6),
    (Some(b"Gr\xc3\xbc\xc3\x9fe"), 3, 3),
    (Some(b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), 1, 11),
    (Some(b"\xf0\x9f\xa6\x80"), 3, 6),
    (Some(b"\x00"), 1, 12),
    (Some(b"\xff"), 0, 8),
    (Some(b"\x80\x81\xfe\xff"), 0, 9),
    (
        Some(b"\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4"),
        3,
        2,
    ),
    (Some(b"\xde\xad\xbe\xef\x00\x01\x02"), 4, 0),
    (None, 0, 0),
];

/// Key -> (FNV-1a hash, partition with 6 partitions, with 13) under
/// Sarama's `NewHashPartitioner`.
///
/// Obtained from the independent Python implementation in
/// `scripts/partitioner-vectors.py` (`fnv1a32` written from the FNV-1a
/// definition, `sarama_fnv1a_partition` from Sarama's conversion: signed
/// int32, Go's truncated `%`, negated if negative); run it with
/// `--no-broker` to print just these.
const FNV1A_VECTORS: &[(&[u8], u32, i32, i32)] = &[
    (b"", 0x811c9dc5, 3, 6),
    (b"a", 0xe40c292c, 0, 8),
    (b"b", 0xe70c2de5, 3, 5),
    (b"ab", 0x4d2505ca, 0, 6),
    (b"abc", 0x1a47e90b, 5, 7),
    (b"abcd", 0xce3479bd, 3, 7),
    (b"abcde", 0x749bcf08, 0, 8),
    (b"hello", 0x4f9f2cab, 3, 5),
    (b"kafka", 0x0d33c4e1, 5, 10),
    (b"klamm", 0xe629a2f3, 3, 9),
    (b"key-0", 0x58e035d9, 3, 11),
    (b"key-1", 0x57e03446, 4, 10),
    (b"key-2", 0x56e032b3, 5, 9),
    (b"key-17", 0xc6f28de3, 3, 7),
    (b"user:42", 0x2f6b7b82, 2, 6),
    (b"order/2024-01-01/0001", 0xa24d33b6, 0, 2),
    (
        b"The quick brown fox jumps over the lazy dog",
        0x048fff90,
        0,
        12,
    ),
    (b"Gr\xc3\xbc\xc3\x9fe", 0xb8226e38, 4, 3),
    (b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 0x805f5ce7, 1, 6),
    (b"\xf0\x9f\xa6\x80", 0x081301e6, 0, 5),
    (b"\x00", 0x050c5d1f, 3, 12),
    (b"\xff", 0x7a0b824e, 2, 12),
    (b"\x80\x81\xfe\xff", 0xe78be909, 1, 11),
    (
        b"\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4",
        0x09d14c27,
        3,
        7,
    ),
    (b"\xde\xad\xbe\xef\x00\x01\x02", 0xbc12df2e, 0, 2),
];

fn all_partitioners() -> Vec<Arc<dyn Partitioner>> {
    config::Partitioner::ALL.iter().map(from_config).collect()
}

#[test]
fn murmur2_matches_librdkafka() {
    let p = Murmur2Partitioner::new();
    let all13: Vec<i32> = (0..13).collect();
    for &(key, p6, p13) in MURMUR2_VECTORS {
        let v6 = PartitionView::new(6, ALL6);
        let v13 = PartitionView::new(13, &all13);
        assert_eq!(p.partition("t", Some(key), &v6), Some(p6), "{key:?} / 6");
        assert_eq!(p.partition("t", Some(key), &v13), Some(p13), "{key:?} / 13");
        assert_eq!(to_positive(murmur2(key)) % 6, p6);
    }
    assert!(MURMUR2_VECTORS.len() >= 20);
}

#[test]
fn keyed_murmur2_ignores_availability() {
    // A key keeps its partition while that partition is unavailable.
    let p = Murmur2Partitioner::new();
    let view = PartitionView::new(6, &[0, 1]);
    assert_eq!(p.partition("t", Some(b"hello"), &view), Some(3));
    assert!(p.requires_consistency(Some(b"hello")));
    assert!(!p.requires_consistency(None));
}

#[test]
fn to_positive_clears_the_sign_bit() {
    assert_eq!(to_positive(-1), i32::MAX);
    assert_eq!(to_positive(i32::MIN), 0);
    assert_eq!(to_positive(5), 5);
}

#[test]
fn fnv1a_matches_independent_implementation() {
    let p = Fnv1aPartitioner::new();
    let all13: Vec<i32> = (0..13).collect();
    for &(key, hash, p6, p13) in FNV1A_VECTORS {
        assert_eq!(fnv1a32(key), hash, "{key:?}");
        let v6 = PartitionView::new(6, ALL6);
        let v13 = PartitionView::new(13, &all13);
        assert_eq!(p.partition("t", Some(key), &v6), Some(p6), "{key:?} / 6");
        assert_eq!(p.partition("t", Some(key), &v13), Some(p13), "{key:?} / 13");
    }
}

#[test]
fn fnv1a_negates_negative_remainders_unlike_to_positive() {
    // 0xe40c292c ("a") is negative as an int32: -468965076. Sarama:
    // -468965076 % 13 = -8, negated: 8. The Java conversion would give
    // 0x640c292c % 13 = 1678518572 % 13 = 3.
    assert_eq!(fnv1a32(b"a") as i32, -468_965_076);
    let view = PartitionView::new(13, &[]);
    assert_eq!(
        Fnv1aPartitioner::new().partition("t", Some(b"a"), &view),
        Some(8)
    );
    assert_eq!(to_positive(fnv1a32(b"a") as i32) % 13, 3);
}

#[test]
fn fnv1a_keyless_is_random_among_available() {
    let p = Fnv1aPartitioner::new();
    let view = PartitionView::new(6, &[2, 4]);
    for _ in 0..200 {
        let got = p.partition("t", None, &view).unwrap();
        assert!(got == 2 || got == 4);
    }
}

#[test]
fn consistent_crc32_matches_librdkafka() {
    let p = ConsistentCrc32Partitioner;
    let all13: Vec<i32> = (0..13).collect();
    for &(key, p6, p13) in CONSISTENT_VECTORS {
        let v6 = PartitionView::new(6, ALL6);
        let v13 = PartitionView::new(13, &all13);
        assert_eq!(p.partition("t", key, &v6), Some(p6), "{key:?} / 6");
        assert_eq!(p.partition("t", key, &v13), Some(p13), "{key:?} / 13");
    }
    assert!(CONSISTENT_VECTORS.len() >= 20);
}

#[test]
fn sticky_keyless_stays_until_new_batch() {
    let p = Murmur2Partitioner::new();
    let view = PartitionView::new(6, ALL6);
    let first = p.partition("t", None, &view).unwrap();
    for _ in 0..100 {
        assert_eq!(p.partition("t", None, &view), Some(first));
    }
    // Keyed records in between do not move the sticky partition.
    p.partition("t", Some(b"hello"), &view);
    assert_eq!(p.partition("t", None, &view), Some(first));

    let mut prev = first;
    for _ in 0..50 {
        p.on_new_batch("t", &view, prev);
        let next = p.partition("t", None, &view).unwrap();
        assert_ne!(next, prev, "a new batch moves to another partition");
        assert_eq!(p.partition("t", None, &view), Some(next));
        prev = next;
    }
}

#[test]
fn sticky_new_batch_on_other_partition_changes_nothing() {
    let p = Murmur2Partitioner::new();
    let view = PartitionView::new(6, ALL6);
    let sticky = p.partition("t", None, &view).unwrap();
    let other = (sticky + 1) % 6;
    p.on_new_batch("t", &view, other);
    assert_eq!(p.partition("t", None, &view), Some(sticky));
}

#[test]
fn sticky_is_per_topic_and_spreads() {
    let p = Murmur2Partitioner::new();
    let view = PartitionView::new(6, ALL6);
    let mut seen = HashSet::new();
    let mut prev = p.partition("a", None, &view).unwrap();
    seen.insert(prev);
    for _ in 0..200 {
        p.on_new_batch("a", &view, prev);
        prev = p.partition("a", None, &view).unwrap();
        seen.insert(prev);
    }
    assert_eq!(seen.len(), 6, "every partition gets batches eventually");
    // Another topic has its own sticky partition, unaffected by "a".
    let b = p.partition("b", None, &view).unwrap();
    p.on_new_batch("a", &view, prev);
    assert_eq!(p.partition("b", None, &view), Some(b));
}

#[test]
fn sticky_only_picks_available_partitions() {
    let p = Murmur2Partitioner::new();
    let available = [1, 4];
    let view = PartitionView::new(6, &available);
    let mut prev = p.partition("t", None, &view).unwrap();
    assert!(available.contains(&prev));
    for _ in 0..50 {
        p.on_new_batch("t", &view, prev);
        let next = p.partition("t", None, &view).unwrap();
        assert!(available.contains(&next));
        assert_ne!(next, prev);
        prev = next;
    }
    // The sticky partition becomes unavailable: the next keyless record
    // moves to an available one.
    let only = if prev == 1 { 4 } else { 1 };
    let shrunk = [only];
    let view = PartitionView::new(6, &shrunk);
    assert_eq!(p.partition("t", None, &view), Some(only));
}

#[test]
fn sticky_single_partition() {
    let p = Murmur2Partitioner::new();
    let view = PartitionView::new(1, &[0]);
    assert_eq!(p.partition("t", None, &view), Some(0));
    p.on_new_batch("t", &view, 0);
    assert_eq!(p.partition("t", None, &view), Some(0));
    // One available among several: it stays there across batches.
    let view = PartitionView::new(6, &[3]);
    for _ in 0..10 {
        assert_eq!(p.partition("u", None, &view), Some(3));
        p.on_new_batch("u", &view, 3);
    }
}

#[test]
fn sticky_without_available_partitions_uses_any() {
    let p = Murmur2Partitioner::new();
    let view = PartitionView::new(6, &[]);
    let mut seen = HashSet::new();
    let mut prev = p.partition("t", None, &view).unwrap();
    for _ in 0..200 {
        assert!((0..6).contains(&prev));
        seen.insert(prev);
        p.on_new_batch("t", &view, prev);
        let next = p.partition("t", None, &view).unwrap();
        assert_ne!(next, prev);
        prev = next;
    }
    assert_eq!(seen.len(), 6);
    // Available ids out of range count as none available.
    let view = PartitionView::new(2, &[7, -1]);
    assert!((0..2).contains(&p.partition("v", None, &view).unwrap()));
}

#[test]
fn round_robin_cycles_through_available() {
    let p = RoundRobinPartitioner::new();
    let view = PartitionView::new(4, &[0, 1, 2, 3]);
    let got: Vec<i32> = (0..8)
        .map(|_| p.partition("t", Some(b"k"), &view).unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2, 3, 0, 1, 2, 3]);

    let view = PartitionView::new(6, &[1, 5]);
    let got: Vec<i32> = (0..4)
        .map(|_| p.partition("u", None, &view).unwrap())
        .collect();
    assert_eq!(got, [1, 5, 1, 5]);

    // No available partition: all of them, in turn.
    let view = PartitionView::new(3, &[]);
    let got: Vec<i32> = (0..6)
        .map(|_| p.partition("w", None, &view).unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn random_stays_in_range_and_covers() {
    let p = RandomPartitioner::new();
    let view = PartitionView::new(5, &[]);
    let mut seen = HashSet::new();
    for _ in 0..500 {
        let got = p.partition("t", Some(b"k"), &view).unwrap();
        assert!((0..5).contains(&got));
        seen.insert(got);
    }
    assert_eq!(seen.len(), 5);
    let view = PartitionView::new(5, &[3]);
    for _ in 0..50 {
        assert_eq!(p.partition("t", None, &view), Some(3));
    }
}

#[test]
fn manual_never_chooses() {
    let p = ManualPartitioner;
    let view = PartitionView::new(6, ALL6);
    assert_eq!(p.partition("t", Some(b"k"), &view), None);
    assert_eq!(p.partition("t", None, &view), None);
    assert!(p.requires_consistency(None));
}

#[test]
fn no_partitions_no_choice() {
    let view = PartitionView::new(0, &[]);
    for p in all_partitioners() {
        assert_eq!(p.partition("t", Some(b"k"), &view), None, "{p:?}");
        assert_eq!(p.partition("t", None, &view), None, "{p:?}");
        p.on_new_batch("t", &view, 0);
    }
    assert_eq!(PartitionView::new(-3, &[]).count(), 0);
}

#[test]
fn from_config_builds_each() {
    let view = PartitionView::new(13, &[]);
    let key: Option<&[u8]> = Some(b"kafka");
    assert_eq!(
        from_config(&config::Partitioner::Murmur2).partition("t", key, &view),
        Some(12)
    );
    assert_eq!(
        from_config(&config::Partitioner::Fnv1a).partition("t", key, &view),
        Some(10)
    );
    assert_eq!(
        from_config(&config::Partitioner::ConsistentCrc32).partition("t", key, &view),
        Some(2)
    );
    assert_eq!(
        from_config(&config::Partitioner::Manual).partition("t", key, &view),
        None
    );
    assert_eq!(
        from_config(&config::Partitioner::RoundRobin).partition("t", key, &view),
        Some(0)
    );
    assert!(
        from_config(&config::Partitioner::Random)
            .partition("t", key, &view)
            .is_some()
    );
    assert_eq!(
        from_config(&config::ProducerConfig::default().partitioner).partition("t", key, &view),
        Some(12),
        "murmur2 is the default"
    );
}

#[test]
fn shared_across_threads() {
    let p: Arc<dyn Partitioner> = from_config(&config::Partitioner::RoundRobin);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let view = PartitionView::new(4, &[0, 1, 2, 3]);
                (0..100)
                    .map(|_| p.partition("t", None, &view).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counts = [0; 4];
    for h in handles {
        for p in h.join().unwrap() {
            counts[p as usize] += 1;
        }
    }
    assert_eq!(counts, [100; 4], "400 records spread evenly");
}

proptest! {
    #[test]
    fn never_out_of_range(
        count in 1i32..64,
        available in proptest::collection::vec(-4i32..70, 0..8),
        key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        batches in 0usize..4,
    ) {
        let view = PartitionView::new(count, &available);
        let usable: Vec<i32> = available.iter().copied().filter(|p| (0..count).contains(p)).collect();
        for p in all_partitioners() {
            for _ in 0..3 {
                if let Some(got) = p.partition("t", key.as_deref(), &view) {
                    prop_assert!((0..count).contains(&got), "{p:?} gave {got} of {count}");
                    if !p.requires_consistency(key.as_deref()) && !usable.is_empty() {
                        prop_assert!(usable.contains(&got), "{p:?} gave unavailable {got}");
                    }
                    for _ in 0..batches {
                        p.on_new_batch("t", &view, got);
                    }
                }
            }
        }
    }
}
