//! The tier-1 serving counter (DESIGN.md, "Edge config in KVS").
//!
//! CloudFront Functions can read the KeyValueStore but not write anything, so
//! the counter is *computed* from four published parameters instead of being
//! advanced by a writer (the seed's "counter advancer" Lambda):
//!
//! ```text
//! serving(now) = start                                                   if now < epoch
//!              = start + perInterval * floor((now - epoch) / intervalSeconds)   otherwise
//! ```
//!
//! While the organiser pauses admission (`spec.control.paused`), the
//! operator publishes `pausedAt`, and the counter stops there:
//! `serving(now) = serving(min(now, pausedAt))`. On resume it publishes the
//! frozen value as the new `start` and the resume time as the new `epoch`,
//! so no edge ever sees the counter go back.
//!
//! Visitor number `n` may pass once `n <= serving(now)`. The edge function in
//! `edge-functions/` implements the same formula; both read the shared test
//! vectors in `runtime-services/common/testdata/vwr-token-vectors.json`.

use serde::{Deserialize, Serialize};

/// The published parameters of one room's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingParams {
    /// Numbers up to `start` are served from `epoch` on.
    pub start: u64,
    pub per_interval: u64,
    pub interval_seconds: u64,
    /// Unix seconds.
    pub epoch: i64,
    /// Unix seconds from which the counter stands still (admission paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<i64>,
}

impl ServingParams {
    /// The highest number being served at `now` (Unix seconds).
    pub fn serving_at(&self, now: i64) -> u64 {
        let now = self.paused_at.map_or(now, |paused| now.min(paused));
        if now < self.epoch || self.interval_seconds == 0 {
            return self.start;
        }
        let intervals = (now - self.epoch) as u64 / self.interval_seconds;
        self.start
            .saturating_add(self.per_interval.saturating_mul(intervals))
    }

    /// Seconds from `now` until `number` is served (0 when it already is);
    /// while paused, counted as if admission resumed now.
    pub fn seconds_until_served(&self, number: u64, now: i64) -> u64 {
        let now = self.paused_at.map_or(now, |paused| now.min(paused));
        if number <= self.serving_at(now) || self.per_interval == 0 {
            return 0;
        }
        let intervals_needed = (number - self.start).div_ceil(self.per_interval);
        let served_at = self
            .epoch
            .saturating_add((intervals_needed * self.interval_seconds) as i64);
        served_at.saturating_sub(now).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: ServingParams = ServingParams {
        start: 100,
        per_interval: 500,
        interval_seconds: 10,
        epoch: 1_000,
        paused_at: None,
    };

    #[test]
    fn counter_steps_once_per_interval() {
        assert_eq!(PARAMS.serving_at(0), 100, "before the epoch");
        assert_eq!(PARAMS.serving_at(1_000), 100, "at the epoch");
        assert_eq!(PARAMS.serving_at(1_009), 100);
        assert_eq!(PARAMS.serving_at(1_010), 600, "exactly one interval");
        assert_eq!(PARAMS.serving_at(1_105), 5_100);
    }

    #[test]
    fn wait_is_the_time_to_the_interval_that_serves_the_number() {
        assert_eq!(PARAMS.seconds_until_served(100, 1_000), 0);
        assert_eq!(PARAMS.seconds_until_served(101, 1_000), 10);
        assert_eq!(PARAMS.seconds_until_served(600, 1_003), 7);
        assert_eq!(PARAMS.seconds_until_served(601, 1_003), 17);
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        let params = ServingParams {
            start: u64::MAX - 1,
            per_interval: u64::MAX,
            interval_seconds: 1,
            epoch: 0,
            paused_at: None,
        };
        assert_eq!(params.serving_at(i64::MAX), u64::MAX);
    }

    #[test]
    fn a_paused_counter_stands_still_from_paused_at() {
        let paused = ServingParams {
            paused_at: Some(1_015),
            ..PARAMS
        };
        assert_eq!(paused.serving_at(1_014), 600);
        assert_eq!(paused.serving_at(1_015), 600);
        assert_eq!(paused.serving_at(5_000), 600, "frozen");
        assert_eq!(PARAMS.serving_at(5_000), 200_100);
    }
}
