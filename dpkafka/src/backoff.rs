//! dp-kafka's retry pause, shared by the consumer's and the producer's
//! background initialisation and by the consumer's session retries.
//!
//! Attempt `n` (from 1) waits `2^(n-1) × min`, with a jitter of −25 % to
//! +24 % **of `min`** (not of the doubled pause), at most `max`. The
//! exponent wraps: once doubling would pass `max`, the next attempt
//! starts again from `min` (after 200 ms, 0.4, …, 25.6 s with the
//! defaults comes 0.2 s again), so a service whose dependency comes back
//! finds it within a short pause instead of waiting the cap every time.

use std::time::Duration;

/// The pause before attempt `attempt` (1-based; 0 counts as 1), with a
/// random jitter.
///
/// ```
/// use std::time::Duration;
/// use klamm_dpkafka::retry_time;
///
/// let (min, max) = (Duration::from_millis(200), Duration::from_secs(32));
/// let third = retry_time(3, min, max);
/// // 4 × 200 ms, give or take a quarter of 200 ms.
/// assert!(third >= Duration::from_millis(750) && third <= Duration::from_millis(850));
/// // 2^8 × 200 ms would pass 32 s: attempt 9 starts over.
/// assert!(retry_time(9, min, max) <= Duration::from_millis(250));
/// ```
pub fn retry_time(attempt: u32, min: Duration, max: Duration) -> Duration {
    let mut byte = [0u8; 1];
    // Without randomness (never expected) the pause has no jitter.
    let draw = getrandom::fill(&mut byte).map_or(25, |()| u32::from(byte[0]) % 50);
    retry_time_with(attempt, min, max, draw)
}

/// dp-kafka's background initialisation, for the consumer and the
/// producer alike: runs `attempt` until it succeeds, pausing
/// [`retry_time`] between failures, and gives up (`None`) once `stop()`
/// says so (checked before each attempt; a pause ends early when
/// `stopping` takes the value `stop_when`). `first` is signalled after a failed first attempt (a successful
/// one is left to the caller, which has state to set first).
pub(crate) async fn initialise_until<T, F, Fut>(
    (min, max): (Duration, Duration),
    what: &'static str,
    first: &mut Option<tokio::sync::oneshot::Sender<()>>,
    mut stop: impl FnMut() -> bool,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    stop_when: bool,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, klamm::Error>>,
{
    let mut n = 1;
    loop {
        if stop() {
            return None;
        }
        match attempt().await {
            Ok(v) => return Some(v),
            Err(e) => {
                if let Some(f) = first.take() {
                    let _ = f.send(());
                }
                let pause = retry_time(n, min, max);
                tracing::warn!(error = %e, attempt = n, ?pause, "{what} cannot reach the cluster yet; retrying");
                n += 1;
                let _ = tokio::time::timeout(pause, stopping.wait_for(|s| *s == stop_when)).await;
            }
        }
    }
}

/// [`retry_time`] with the jitter drawn by the caller: `draw` in 0..50
/// (values above 49 count as 49) adds `(draw − 25) %` of `min`.
pub(crate) fn retry_time_with(attempt: u32, min: Duration, max: Duration, draw: u32) -> Duration {
    if min.is_zero() {
        return Duration::ZERO;
    }
    let steps = doublings(min, max);
    let n = (attempt.max(1) - 1) % (steps + 1);
    let base = min.saturating_mul(1u32 << n.min(31));
    let min_ms = i64::try_from(min.as_millis()).unwrap_or(i64::MAX);
    let jitter_ms = (i64::from(draw.min(49)) - 25).saturating_mul(min_ms) / 100;
    let pause = if jitter_ms < 0 {
        base.saturating_sub(Duration::from_millis(jitter_ms.unsigned_abs()))
    } else {
        base.saturating_add(Duration::from_millis(jitter_ms.unsigned_abs()))
    };
    pause.min(max)
}

/// How many times `min` doubles before passing `max`: ⌊log2(max / min)⌋
/// with the quotient in whole multiples, as dp-kafka computes it.
fn doublings(min: Duration, max: Duration) -> u32 {
    let ratio = max.as_nanos() / min.as_nanos().max(1);
    if ratio == 0 { 0 } else { ratio.ilog2() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_exponent_caps_where_dp_kafka_caps_it() {
        let s = Duration::from_secs(1);
        assert_eq!(doublings(s, 32 * s), 5);
        assert_eq!(doublings(s, 31 * s), 4);
        assert_eq!(doublings(200 * MS, 32 * s), 7);
        assert_eq!(doublings(s, s), 0);
        assert_eq!(doublings(2 * s, s), 0);
    }

    #[test]
    fn pauses_double_then_start_over_and_jitter_is_a_quarter_of_the_minimum() {
        let (min, max) = (200 * MS, Duration::from_secs(32));
        let centre: Vec<u64> = (1..=10)
            .map(|a| retry_time_with(a, min, max, 25).as_millis() as u64)
            .collect();
        assert_eq!(
            centre,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 200, 400]
        );
        // The jitter is of the minimum, at every attempt.
        assert_eq!(retry_time_with(8, min, max, 0), 25600 * MS - 50 * MS);
        assert_eq!(retry_time_with(8, min, max, 49), 25600 * MS + 48 * MS);
        assert_eq!(retry_time_with(8, min, max, 200), 25600 * MS + 48 * MS);
        assert_eq!(retry_time_with(0, min, max, 25), min);
    }

    #[test]
    fn pauses_never_pass_the_maximum() {
        let (min, max) = (200 * MS, 25_601 * MS);
        for attempt in 1..=100 {
            for draw in [0, 25, 49] {
                assert!(retry_time_with(attempt, min, max, draw) <= max);
            }
            let random = retry_time(attempt, min, max);
            let n = (attempt - 1) % 8;
            let base = 200 * (1u64 << n);
            let got = random.as_millis() as u64;
            assert!(
                got + 50 >= base && got <= (base + 48).min(25_601),
                "{attempt}: {got}"
            );
        }
        // A maximum below the minimum wins.
        assert_eq!(retry_time_with(3, 200 * MS, 100 * MS, 25), 100 * MS);
    }
}
