//! Exponential backoff with jitter, for reconnects and retries.

use std::time::Duration;

/// Exponential backoff: `initial`, doubling on every failure up to `max`,
/// each delay spread by ±20 % jitter (as the Java client's
/// `reconnect.backoff.ms` / `reconnect.backoff.max.ms` do) so that many
/// clients do not retry in lockstep.
///
/// ```
/// use std::time::Duration;
/// use klamm::net::Backoff;
///
/// let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
/// let first = b.next_delay();
/// assert!(first >= Duration::from_millis(40) && first <= Duration::from_millis(60));
/// for _ in 0..10 {
///     assert!(b.next_delay() <= Duration::from_millis(1200));
/// }
/// b.reset();
/// assert!(b.next_delay() <= Duration::from_millis(60));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    /// Each delay is spread by ±`jitter` of itself.
    jitter: f64,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        // From the clock, unless `determinism::repeatable` fixed it.
        let seed = crate::determinism::next_jitter_seed();
        Backoff {
            initial,
            max: max.max(initial),
            failures: 0,
            jitter: 0.2,
            rng: seed | 1,
        }
    }

    /// The same backoff with each delay spread by ±`jitter` of itself
    /// (clamped to 0..=1; `reconnect.backoff.jitter`); 0 gives the exact
    /// doubling delays.
    ///
    /// ```
    /// use std::time::Duration;
    /// use klamm::net::Backoff;
    ///
    /// let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(1)).with_jitter(0.0);
    /// assert_eq!(b.next_delay(), Duration::from_millis(50));
    /// assert_eq!(b.next_delay(), Duration::from_millis(100));
    /// ```
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.2
        };
        self
    }

    /// The delay before the next attempt; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let base = self
            .initial
            .saturating_mul(1u32 << exp.min(31))
            .min(self.max);
        // xorshift64: jitter only needs to decorrelate clients, not be secure.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        base.mul_f64(1.0 - self.jitter + 2.0 * self.jitter * unit)
    }

    /// Forgets past failures (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// How many failures have been counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        let bases = [100u64, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (d, base) in delays.iter().zip(bases) {
            let ms = d.as_secs_f64() * 1000.0;
            assert!(
                ms >= base as f64 * 0.8 - 0.001 && ms <= base as f64 * 1.2 + 0.001,
                "{ms} vs {base}"
            );
        }
        assert_eq!(b.failures(), 8);
        // Many failures never overflow.
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_millis(1200));
        }
    }

    #[test]
    fn the_jitter_is_the_configured_share() {
        let base = Duration::from_millis(1000);
        let draws = |jitter: f64| -> Vec<f64> {
            let mut b = Backoff::new(base, base).with_jitter(jitter);
            (0..400)
                .map(|_| b.next_delay().as_secs_f64() * 1000.0)
                .collect()
        };
        let wide = draws(0.5);
        assert!(wide.iter().all(|&ms| (500.0..=1500.0).contains(&ms)));
        // Beyond the default's ±20 %: the setting took effect (the control
        // for the bound above, which the default also meets).
        assert!(wide.iter().any(|&ms| !(800.0..=1200.0).contains(&ms)));
        assert!(draws(0.0).iter().all(|&ms| ms == 1000.0));
        assert!(draws(7.0).iter().all(|&ms| (0.0..=2000.0).contains(&ms)));
    }
}
