//! What the run measures: per-step latencies, progress counters, the
//! per-second timeline sampled from the services, and what buyers saw.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

/// Progress counters (monotonic).
#[derive(Debug, Default)]
pub struct Counters {
    pub arrived: AtomicU64,
    pub passed_edge: AtomicU64,
    pub joined: AtomicU64,
    pub admitted: AtomicU64,
    pub held: AtomicU64,
    pub paid: AtomicU64,
    pub declined: AtomicU64,
    pub abandoned: AtomicU64,
    pub sold_out: AtomicU64,
    /// Buyers the queue told in line that nothing was left (inventory awareness).
    pub sold_out_in_line: AtomicU64,
    pub errors: AtomicU64,
    /// Requests a buyer retried or rejoined after (a 503, a 429, a lost place).
    pub recovered: AtomicU64,
}

impl Counters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One second of the run, as the services reported it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub second: f64,
    pub depth: u64,
    pub active_users: u64,
    pub admitted_total: u64,
    pub admitted_in_second: u64,
    pub held: u64,
    pub sold: u64,
    /// Buyers failed so far (cumulative), and requests retried so far: what
    /// the fault drill charges to each fault.
    pub failed: u64,
    pub retried: u64,
}

/// A buyer's place in line: when they joined and when they were admitted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineRecord {
    /// The user id the queue knows them by (the JWT subject): the draw is
    /// keyed on it.
    pub user: String,
    pub joined_ms: i64,
    pub admitted_ms: i64,
    /// Joined before the open (their order is the published shuffle).
    pub pre_queue: bool,
    /// Lost their place (reaped) and joined again: their place is no longer
    /// the one they were drawn or joined at.
    pub rejoined: bool,
    /// The entry token's expiry (Unix seconds). The admitter stamps every
    /// member of one batch with the same expiry, so this orders admissions
    /// by the server's tick, not by when this buyer's poll happened to see it.
    pub entry_expires_at: i64,
}

#[derive(Debug, Default)]
pub struct Recorder {
    pub counters: Counters,
    steps: Mutex<BTreeMap<&'static str, Vec<f64>>>,
    pub samples: Mutex<Vec<Sample>>,
    pub lines: Mutex<Vec<LineRecord>>,
    /// Payment ids buyers saw captured.
    pub captured: Mutex<Vec<String>>,
    /// Problems buyers met that no buyer should meet (e.g. two different
    /// payments for one idempotency key).
    pub anomalies: Mutex<Vec<String>>,
    pub error_kinds: Mutex<BTreeMap<String, u64>>,
    /// What the edge gate decided for each buyer's first look at the page
    /// (`open: …`, `served`, `waited`), and refreshes of the edge entry.
    pub edge: Mutex<BTreeMap<String, u64>>,
    /// Places buyers let go (abandoned or declined holds they released):
    /// when (Unix ms) and how many.
    pub released: Mutex<Vec<(i64, u64)>>,
    /// Places left in holds by buyers who then failed or ran out of time
    /// (those holds lapse later, after the crowd is gone).
    pub stranded: AtomicU64,
    /// Buyers who found nothing left on the board, and when (Unix ms) the
    /// last of them looked.
    pub saw_sold_out: AtomicU64,
    pub last_sold_out_ms: AtomicI64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Recorder {
    pub fn step(&self, name: &'static str, millis: f64) {
        lock(&self.steps).entry(name).or_default().push(millis);
    }

    pub fn error(&self, kind: impl Into<String>) {
        Counters::bump(&self.counters.errors);
        *lock(&self.error_kinds).entry(kind.into()).or_default() += 1;
    }

    /// A problem a real client recovers from (retried or re-joined): noted,
    /// not counted as a failed buyer.
    pub fn recovered(&self, kind: impl Into<String>) {
        Counters::bump(&self.counters.recovered);
        *lock(&self.error_kinds)
            .entry(format!("recovered: {}", kind.into()))
            .or_default() += 1;
    }

    pub fn anomaly(&self, what: String) {
        lock(&self.anomalies).push(what);
    }

    pub fn line(&self, record: LineRecord) {
        lock(&self.lines).push(record);
    }

    pub fn captured(&self, payment: String) {
        lock(&self.captured).push(payment);
    }

    pub fn sample(&self, sample: Sample) {
        lock(&self.samples).push(sample);
    }

    /// `(step, count, p50, p99)` per step, in milliseconds.
    pub fn step_percentiles(&self) -> Vec<(String, usize, f64, f64)> {
        lock(&self.steps)
            .iter()
            .map(|(name, values)| {
                let mut sorted = values.clone();
                sorted.sort_by(f64::total_cmp);
                (
                    (*name).to_owned(),
                    sorted.len(),
                    percentile(&sorted, 0.5),
                    percentile(&sorted, 0.99),
                )
            })
            .collect()
    }

    pub fn edge(&self, what: impl Into<String>) {
        *lock(&self.edge).entry(what.into()).or_default() += 1;
    }

    pub fn released(&self, at_ms: i64, places: u64) {
        lock(&self.released).push((at_ms, places));
    }

    pub fn stranded(&self, places: u64) {
        self.stranded.fetch_add(places, Ordering::Relaxed);
    }

    pub fn sold_out_seen(&self, at_ms: i64) {
        Counters::bump(&self.saw_sold_out);
        self.last_sold_out_ms.fetch_max(at_ms, Ordering::Relaxed);
    }

    /// Places that may be unsold although buyers were told the sale was sold
    /// out: let go at or after `margin_ms` before the last such buyer looked
    /// (what they saw may have been that old), or stranded by failed buyers.
    pub fn unsold_allowance(&self, margin_ms: i64) -> u64 {
        let since = self.last_sold_out_ms.load(Ordering::Relaxed) - margin_ms;
        let late: u64 = lock(&self.released)
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, places)| places)
            .sum();
        late + self.stranded.load(Ordering::Relaxed)
    }

    pub fn snapshot<T: Clone>(mutex: &Mutex<T>) -> T {
        lock(mutex).clone()
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_let_go_before_the_last_sold_out_look_are_not_an_excuse() {
        let recorder = Recorder::default();
        recorder.released(1_000, 2);
        recorder.released(8_000, 1);
        recorder.sold_out_seen(9_000);
        recorder.sold_out_seen(5_000);
        recorder.released(9_500, 2);
        recorder.stranded(1);
        // 9,000 − 3,000: the release at 8,000 counts, the one at 1,000 not.
        assert_eq!(recorder.unsold_allowance(3_000), 1 + 2 + 1);
        assert_eq!(recorder.unsold_allowance(0), 2 + 1);
        assert_eq!(Counters::get(&recorder.saw_sold_out), 2);
    }

    #[test]
    fn percentiles_of_a_known_series() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 51.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
