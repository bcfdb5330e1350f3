//! goka's default partitioning of keys: FNV-1a (32 bit) over the key's
//! bytes, as Sarama's custom hash partitioner uses it.

/// FNV-1a, 32 bits.
///
/// ```
/// assert_eq!(klamm_goka::fnv1a32(b""), 2_166_136_261);
/// assert_eq!(klamm_goka::fnv1a32(b"a"), 3_826_002_220);
/// ```
pub fn fnv1a32(key: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The partition goka (through Sarama) writes `key` to among `partitions`:
/// the hash read as a signed 32-bit number, its remainder by the count
/// (sign of the hash), made positive. `partitions` must be positive; 0
/// gives 0.
///
/// ```
/// use klamm_goka::goka_partition;
/// assert_eq!(goka_partition(b"user-0", 8), 1);
/// assert_eq!(goka_partition(b"key1", 2), 1);
/// ```
pub fn goka_partition(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    let signed = fnv1a32(key) as i32;
    (signed % partitions).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goka_placements() {
        // Hashes and placements worked out by hand from the FNV-1a
        // definition (offset basis 2166136261, prime 16777619).
        assert_eq!(fnv1a32(b"a") as i32, -468_965_076);
        assert_eq!(goka_partition(b"", 10), 5);
        assert_eq!(goka_partition(b"a", 10), 6);
        assert_eq!(fnv1a32(b"key1"), 927_623_783);
        assert_eq!(goka_partition(b"key2", 2), 0);
        assert_eq!(goka_partition(b"user-1", 8), 4);
        assert_eq!(goka_partition(b"some-key", 8), 3);
        assert_eq!(goka_partition(b"x", 0), 0);
        // The one hash whose absolute value overflows stays in range.
        let p = (i32::MIN % 7).abs();
        assert!((0..7).contains(&p));
    }
}
