//! A fast, non-cryptographic hasher for the producer's per-record maps
//! (topic → partition view, (topic, partition) → queue).
//!
//! The keys are the application's own topic names, never bytes from the
//! network, so resistance to hash flooding (std's SipHash) buys nothing
//! here, and SipHash showed up as a fifth of the producer's per-record
//! instructions under callgrind. This is the multiply-rotate word hash
//! used by rustc ("FxHash"): one rotate, xor and multiply per 8 bytes.

use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` hasher builder for [`FastHasher`].
pub(crate) type FastHash = BuildHasherDefault<FastHasher>;

const K: u64 = 0x517c_c1b7_2722_0a95;

/// See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.add(u64::from(i as u32));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::hash::BuildHasher;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_differ() {
        let b = FastHash::default();
        let a: (Arc<str>, i32) = ("orders".into(), 3);
        let same: (Arc<str>, i32) = (String::from("orders").into(), 3);
        assert_eq!(b.hash_one(&a), b.hash_one(&same));
        let mut seen = std::collections::HashSet::new();
        for topic in ["orders", "orders2", "order", "sredro", "payments-eu-west-1"] {
            for p in 0..64 {
                assert!(seen.insert(b.hash_one((topic, p))), "{topic}/{p} collides");
            }
        }
    }

    #[test]
    fn works_as_a_map_hasher() {
        let mut m: HashMap<(Arc<str>, i32), usize, FastHash> = HashMap::default();
        for p in 0..1000 {
            m.insert(("t".into(), p), p as usize);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&("t".into(), 999)), Some(&999));
        assert_eq!(m.get(&("u".into(), 1)), None);
    }
}
