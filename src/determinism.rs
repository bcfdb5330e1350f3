//! Making klamm's own choices repeatable, for deterministic simulation.
//!
//! A client decides a few things that are not given by what it is asked to
//! do or by what the brokers answer: the jitter of its retry and reconnect
//! pauses, and the order in which it walks its internal maps (of brokers,
//! partitions, pending requests) when it builds requests. By default both
//! come from per-process randomness, as they should in production: jitter
//! keeps clients from retrying in lockstep, and random hash keys keep a
//! hostile broker from choosing topic names that collide.
//!
//! [`repeatable`] fixes both from a seed, so that a program driving clients
//! on one thread, on tokio's paused clock, with the same inputs, does the
//! same thing every time (klamm-fake's simulation replays a run from its
//! seed this way).
//!
//! ```
//! use std::time::Duration;
//! use klamm::determinism::repeatable;
//! use klamm::net::Backoff;
//!
//! let pauses = || {
//!     repeatable(7);
//!     let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
//!     (b.next_delay(), b.next_delay())
//! };
//! assert_eq!(pauses(), pauses());
//! ```

use std::cell::Cell;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hasher};
thread_local! {
    /// The hash key of the maps klamm makes on this thread, once
    /// [`repeatable`] fixed it; unset, every map has random keys.
    static HASH_KEY: Cell<Option<u64>> = const { Cell::new(None) };

    /// This thread's jitter seeds: a SplitMix64 state, from the clock
    /// until [`repeatable`] sets it.
    static JITTER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// From now on, on this thread, makes klamm's own choices repeatable: the
/// maps klamm makes walk their entries in an order fixed by `seed`, and the
/// backoffs draw their jitter from `seed` in turn. Other threads keep their
/// own (random) choices, so simulations on parallel threads do not disturb
/// each other; a client driven from a multi-threaded runtime makes its
/// maps and backoffs on several threads and is not made repeatable by it.
///
/// Meant for simulations and tests; production code should not call it
/// (fixed hash keys let someone who knows them, and controls keys such as
/// topic names, make a map slow).
pub fn repeatable(seed: u64) {
    HASH_KEY.with(|k| k.set(Some(mix(seed ^ 0x6b6c_616d_6d5f_6b65))));
    JITTER.with(|j| j.set(Some(seed)));
}

/// The seed of the next backoff's jitter on this thread.
pub(crate) fn next_jitter_seed() -> u64 {
    JITTER.with(|j| {
        let state = j.get().unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15)
        });
        let state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        j.set(Some(state));
        mix(state)
    })
}

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The hash keys of klamm's internal maps: std's random ones, or the one
/// [`repeatable`] fixed on the thread that made the map.
#[derive(Debug, Clone)]
pub(crate) enum Keys {
    Random(RandomState),
    Fixed(u64),
}

impl Default for Keys {
    fn default() -> Self {
        match HASH_KEY.with(Cell::get) {
            Some(key) => Keys::Fixed(key),
            None => Keys::Random(RandomState::new()),
        }
    }
}

impl BuildHasher for Keys {
    type Hasher = DefaultHasher;

    fn build_hasher(&self) -> DefaultHasher {
        match self {
            Keys::Random(r) => r.build_hasher(),
            Keys::Fixed(key) => {
                let mut h = DefaultHasher::new();
                h.write_u64(*key);
                h
            }
        }
    }
}

/// klamm's internal hash map: std's, with [`Keys`] (or another hasher that
/// is deterministic already, such as the producer's `FastHash`).
pub(crate) type HashMap<K, V, S = Keys> = std::collections::HashMap<K, V, S>;
/// klamm's internal hash set: std's, with [`Keys`].
pub(crate) type HashSet<K> = std::collections::HashSet<K, Keys>;

#[cfg(test)]
mod tests {
    use super::*;

    fn order(keys: Keys) -> Vec<u32> {
        let mut m = std::collections::HashMap::with_hasher(keys);
        for i in 0..64u32 {
            m.insert(i, ());
        }
        m.into_keys().collect()
    }

    #[test]
    fn fixed_keys_give_one_order_and_random_ones_do_not() {
        assert_eq!(order(Keys::Fixed(5)), order(Keys::Fixed(5)));
        // The control: maps with random keys walk 64 entries in different
        // orders (all 8 alike has a chance of about 64!^-7).
        let first = order(Keys::Random(RandomState::new()));
        let differ = (0..8).any(|_| order(Keys::Random(RandomState::new())) != first);
        assert!(differ, "random keys gave one order every time");
        repeatable(3);
        assert!(matches!(Keys::default(), Keys::Fixed(_)));
    }

    #[test]
    fn a_seed_gives_one_jitter_sequence() {
        let seeds = || {
            repeatable(9);
            (next_jitter_seed(), next_jitter_seed())
        };
        let (x, y) = seeds();
        assert_ne!(x, y, "each backoff gets its own seed");
        assert_eq!(seeds(), (x, y));
        repeatable(10);
        assert_ne!(next_jitter_seed(), x, "another seed, other jitter");
    }
}
