//! Honest waiting-time estimates and polite polling.
//!
//! The estimate comes from the *measured* admission rate (the admitter's last
//! ticks, kept in Redis), not from the configured one: when the threshold is
//! full, admission slows, and the estimate says so. It is a range: the low end
//! assumes the best recent rate, the high end the worst, so a buyer is not
//! promised a minute that turns into five.

use serde::Serialize;

/// Admitted users per tick over a recent window, newest first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasuredRate {
    /// Mean over the whole window (users/s).
    pub mean: f64,
    /// Mean over the most recent quarter of the window (users/s).
    pub recent: f64,
    /// Seconds the window covers; 0 when there are no samples.
    pub window_seconds: f64,
}

impl MeasuredRate {
    /// From `"<ms>:<admitted>"` samples, newest first, as the tick script keeps them.
    /// Samples older than `window_ms` before `now_ms` are ignored.
    pub fn from_samples(samples: &[String], now_ms: i64, window_ms: i64) -> Self {
        let parsed: Vec<(i64, u64)> = samples
            .iter()
            .filter_map(|s| {
                let (ms, n) = s.split_once(':')?;
                Some((ms.parse().ok()?, n.parse().ok()?))
            })
            .filter(|(ms, _)| now_ms - ms <= window_ms)
            .collect();
        let rate_over = |span_ms: i64| {
            let admitted: u64 = parsed
                .iter()
                .filter(|(ms, _)| now_ms - ms <= span_ms)
                .map(|(_, n)| n)
                .sum();
            admitted as f64 / (span_ms as f64 / 1000.0)
        };
        let Some(oldest) = parsed.last().map(|(ms, _)| *ms) else {
            return Self {
                mean: 0.0,
                recent: 0.0,
                window_seconds: 0.0,
            };
        };
        // The span actually covered, at least one tick (1 s) long.
        let covered = (now_ms - oldest).clamp(1000, window_ms);
        Self {
            mean: rate_over(covered),
            recent: rate_over((covered / 4).max(1000)),
            window_seconds: covered as f64 / 1000.0,
        }
    }
}

/// An estimate in whole seconds, with where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Eta {
    pub low: u64,
    pub high: u64,
    /// `measured` (from admissions), `configured` (no admissions measured
    /// yet, e.g. before the sale opens) or `schedule` (tier 1: the counter's
    /// published schedule, exact).
    #[schema(value_type = String)]
    pub basis: &'static str,
}

/// The wait of the user with `ahead` people in front of them.
pub fn estimate(ahead: u64, measured: MeasuredRate, configured_rate: u32) -> Eta {
    let ahead = ahead as f64;
    let fastest = measured.mean.max(measured.recent);
    let slowest = measured.mean.min(measured.recent);
    if fastest <= 0.0 {
        // Nothing admitted yet: use the configured rate, widened, and say so.
        let rate = f64::from(configured_rate.max(1));
        return Eta {
            low: (ahead / rate).floor() as u64,
            high: (ahead / rate * 2.0).ceil() as u64,
            basis: "configured",
        };
    }
    let high_rate = if slowest > 0.0 {
        slowest
    } else {
        fastest / 2.0
    };
    Eta {
        low: (ahead / fastest * 0.9).floor() as u64,
        high: (ahead / high_rate * 1.2).ceil() as u64,
        basis: "measured",
    }
}

/// The longest wait between polls a waiter is told: a third of the default
/// heartbeat timeout (`URR_HEARTBEAT_TIMEOUT_SECONDS`, 60 s), the waiting
/// page's own heartbeat interval. It was 30 s, half the timeout: in the
/// 50,000-buyer scaling curve (issue 24) answers slowed to tens of
/// seconds, a 30 s wait plus a slow answer crossed 60 s, and 44,562
/// waiters who did as told lost their places and joined again at the back.
pub const POLL_AT_MOST_MS: u64 = 20_000;

/// When to poll again: rarely when far back, often near the front, never
/// faster than once a second nor slower than [`POLL_AT_MOST_MS`].
pub fn poll_after_ms(eta: Eta) -> u64 {
    (eta.low * 1000 / 10).clamp(1_000, POLL_AT_MOST_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(now: i64, per_tick: &[u64]) -> Vec<String> {
        per_tick
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{}:{n}", now - 1000 * i as i64))
            .collect()
    }

    #[test]
    fn steady_rate_is_measured_as_such() {
        let now = 100_000;
        let rate = MeasuredRate::from_samples(&samples(now, &[50; 30]), now, 30_000);
        assert!((rate.mean - 50.0).abs() < 2.0, "{rate:?}");
        assert!((rate.recent - 50.0).abs() < 7.0, "{rate:?}");
    }

    #[test]
    fn a_stall_widens_the_range() {
        let now = 100_000;
        // Admitting 50/s until 8 s ago, nothing since (threshold full).
        let mut per_tick = vec![0; 8];
        per_tick.extend([50; 22]);
        let rate = MeasuredRate::from_samples(&samples(now, &per_tick), now, 30_000);
        let eta = estimate(1000, rate, 50);
        assert_eq!(eta.basis, "measured");
        assert!(eta.high > eta.low * 2, "{eta:?}");
    }

    #[test]
    fn no_samples_falls_back_to_the_configured_rate() {
        let eta = estimate(1000, MeasuredRate::from_samples(&[], 0, 30_000), 100);
        assert_eq!(
            eta,
            Eta {
                low: 10,
                high: 20,
                basis: "configured"
            }
        );
    }

    #[test]
    fn samples_outside_the_window_and_garbage_are_ignored() {
        let now = 100_000;
        let mut s = samples(now, &[10; 5]);
        s.push(format!("{}:100000", now - 120_000));
        s.push("garbage".to_owned());
        let rate = MeasuredRate::from_samples(&s, now, 30_000);
        assert!(rate.mean < 15.0, "{rate:?}");
    }

    #[test]
    fn polling_slows_down_far_back_and_speeds_up_near_the_front() {
        let far = poll_after_ms(Eta {
            low: 3_000,
            high: 4_000,
            basis: "measured",
        });
        let near = poll_after_ms(Eta {
            low: 2,
            high: 3,
            basis: "measured",
        });
        assert_eq!(far, 20_000);
        assert!(
            far * 3 <= 60_000,
            "a waiter who polls as told has three polls per default heartbeat timeout"
        );
        assert_eq!(near, 1_000);
        assert!(
            poll_after_ms(Eta {
                low: 100,
                high: 120,
                basis: "measured"
            }) == 10_000
        );
    }
}
