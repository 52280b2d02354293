//! Tier-1 numbers handed out from blocks leased to each queue replica.
//!
//! Every tier-1 number used to be an `INCR` of one counter: one Redis key,
//! so one Redis core (about 80k commands a second here) bounded how fast a
//! crowd could be numbered however many replicas ran, and each number cost
//! a round trip (docs/capacity.md, point 2). Here a replica leases a block
//! of consecutive numbers with one `INCRBY` and hands them out from memory;
//! the counter sees a few commands a second per replica instead of one per
//! visitor.
//!
//! **Fairness kept.** A block is used for at most `max_age` after it was
//! leased, and blocks are leased in counter order. So if visitor A got a
//! smaller number than B although A arrived after B, A's block was leased
//! before B's, i.e. before B arrived, and A arrived within `max_age` of
//! that lease: A and B arrived less than `max_age` apart. Two visitors who
//! arrive `max_age` (default 1 s) or more apart are numbered in arrival
//! order, whichever replicas they reach (`tests/numbers.rs` checks it
//! against a real Redis). Within a replica numbers follow arrival order
//! exactly.
//!
//! **What it costs.** Numbers left in a block when it ages out are never
//! handed out: the serving counter passes over them, so the admission slots
//! they stood for go unused and `aheadOfYou` counts them. A block is sized
//! from the replica's own rate (half a `max_age` of numbers, at least 1), so
//! at a trickle every lease is one number and nothing is skipped, and under
//! a crowd a block lasts about half its life; the skipped numbers are
//! counted (`urr_queue_numbers_skipped_total`).
//!
//! The per-address limit stays in Redis (a visitor's requests reach any
//! replica) but on a key of the address's own hash slot, so in a Redis
//! Cluster the limit counters spread over the shards instead of all
//! landing on the event's; arrivals (what `Auto` activation and the
//! operator's scaling watch) are tallied in memory and added to the shared
//! per-second counters about once a second ([`QueueStore::flush_arrivals`]).
//!
//! `URR_NUMBER_BLOCK=1` turns leasing off: each number is then one atomic
//! script (limit, arrival and `INCR` together) as before.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;

use super::{LIMIT_WINDOW_SECONDS, NUMBER, NumberTaken, QueueStore, Result};

static NUMBER_LIMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/number_limit.lua")));

/// How long an arrivals counter is kept (it is read over the last ten seconds).
const ARRIVALS_TTL_SECONDS: i64 = 120;

/// How blocks of tier-1 numbers are leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberBlocks {
    /// The most numbers one lease takes; 1 turns leasing off.
    pub max_size: u64,
    /// How long after its lease a block may still hand out numbers: the
    /// bound on how far apart two visitors numbered out of arrival order
    /// can have arrived.
    pub max_age: Duration,
}

impl Default for NumberBlocks {
    fn default() -> Self {
        Self {
            max_size: 1000,
            max_age: Duration::from_secs(1),
        }
    }
}

impl NumberBlocks {
    fn leasing(&self) -> bool {
        self.max_size > 1
    }

    fn max_age_ms(&self) -> i64 {
        i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX)
    }

    /// The size of the next lease for a replica that handed out `recent`
    /// numbers in about the last second: half a `max_age` of them, so a
    /// block is used up well before it ages out, at least one and at most
    /// `max_size`.
    pub fn lease_size(&self, recent: u64) -> u64 {
        let half_life = recent.saturating_mul(self.max_age_ms().max(0) as u64) / 2_000;
        half_life.clamp(1, self.max_size.max(1))
    }
}

/// The numbers this replica holds: `next..end`, leased at `leased_at_ms`
/// (none at first).
#[derive(Debug, Default)]
struct Lease {
    next: u64,
    end: u64,
    leased_at_ms: i64,
    /// Numbers handed out in `second` and in the one before: the rate the
    /// next lease is sized from.
    second: i64,
    this_second: u64,
    previous_second: u64,
}

impl Lease {
    fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.next)
    }

    fn take(&mut self, now_ms: i64, max_age_ms: i64) -> Option<u64> {
        if self.remaining() == 0 || now_ms - self.leased_at_ms >= max_age_ms {
            return None;
        }
        let number = self.next;
        self.next += 1;
        Some(number)
    }

    /// Replaces the block with `first..first + size`, leased at `now_ms`,
    /// and hands out its first number; returns what the old block still
    /// held (skipped: never handed out).
    fn renew(&mut self, first: u64, size: u64, now_ms: i64) -> (u64, u64) {
        let skipped = self.remaining();
        self.next = first + 1;
        self.end = first + size;
        self.leased_at_ms = now_ms;
        (first, skipped)
    }

    fn count(&mut self, now_ms: i64) {
        let second = now_ms.div_euclid(1000);
        if second != self.second {
            self.previous_second = if second == self.second + 1 {
                self.this_second
            } else {
                0
            };
            self.second = second;
            self.this_second = 0;
        }
        self.this_second += 1;
    }

    fn recent(&self) -> u64 {
        self.this_second.max(self.previous_second)
    }
}

/// The replica's side of tier-1 numbering: its current block and the
/// arrivals not yet added to the shared counters.
#[derive(Debug, Default)]
pub(super) struct NumberDesk {
    blocks: NumberBlocks,
    lease: tokio::sync::Mutex<Lease>,
    /// Arrivals per Unix second not yet added to Redis.
    pending_arrivals: std::sync::Mutex<BTreeMap<i64, u64>>,
    skipped: AtomicU64,
}

impl NumberDesk {
    pub(super) fn new(blocks: NumberBlocks) -> Self {
        Self {
            blocks,
            ..Self::default()
        }
    }

    /// The untallied arrivals; a panic elsewhere while holding the lock
    /// leaves counts that are still right, so a poisoned lock is used as is.
    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, u64>> {
        self.pending_arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tally_arrival(&self, now_ms: i64) {
        *self.pending().entry(now_ms.div_euclid(1000)).or_default() += 1;
    }

    fn take_pending(&self) -> BTreeMap<i64, u64> {
        std::mem::take(&mut *self.pending())
    }

    /// Puts back arrivals a failed flush could not add, so none is lost.
    fn restore_pending(&self, counts: BTreeMap<i64, u64>) {
        let mut pending = self.pending();
        for (second, count) in counts {
            *pending.entry(second).or_default() += count;
        }
    }
}

impl QueueStore {
    /// How this store leases tier-1 numbers (the default: blocks of up to
    /// 1,000 numbers, each used for at most a second).
    pub fn with_number_blocks(mut self, blocks: NumberBlocks) -> Self {
        self.numbers = std::sync::Arc::new(NumberDesk::new(blocks));
        self
    }

    /// Numbers this replica leased and let age out unused, since it started.
    pub fn numbers_skipped(&self) -> u64 {
        self.numbers.skipped.load(Ordering::Relaxed)
    }

    /// The next tier-1 number, counted against `per_address` numbers a
    /// minute for `address` (0 = unlimited); when the limit is hit no
    /// number is used up.
    pub async fn take_number(
        &self,
        address: &str,
        per_address: u32,
        now_ms: i64,
    ) -> Result<NumberTaken> {
        let window = now_ms.div_euclid(1000) / LIMIT_WINDOW_SECONDS;
        let mut conn = self.conn.clone();
        if !self.numbers.blocks.leasing() {
            // One script, so its keys share the event's hash slot.
            let (kind, value): (String, i64) = NUMBER
                .key(self.keys.tier1_next())
                .key(self.keys.rate_limit("num", address, window))
                .key(self.keys.arrivals(now_ms.div_euclid(1000)))
                .arg(per_address)
                .arg(LIMIT_WINDOW_SECONDS)
                .invoke_async(&mut conn)
                .await?;
            return Ok(taken(&kind, value));
        }
        if per_address > 0 {
            let (kind, value): (String, i64) = NUMBER_LIMIT
                .key(self.keys.number_limit(address, window))
                .arg(per_address)
                .arg(LIMIT_WINDOW_SECONDS)
                .invoke_async(&mut conn)
                .await?;
            if kind != "ok" {
                return Ok(taken(&kind, value));
            }
        }
        let number = self.leased_number(now_ms).await?;
        self.numbers.tally_arrival(now_ms);
        Ok(NumberTaken::Number(number))
    }

    /// The next number of this replica's block, leasing a new block when
    /// the current one is used up or too old. The lock is held across the
    /// lease so that one `INCRBY` serves every request waiting for it.
    async fn leased_number(&self, now_ms: i64) -> Result<u64> {
        let blocks = self.numbers.blocks;
        let mut lease = self.numbers.lease.lock().await;
        lease.count(now_ms);
        if let Some(number) = lease.take(now_ms, blocks.max_age_ms()) {
            return Ok(number);
        }
        let size = blocks.lease_size(lease.recent());
        let mut conn = self.conn.clone();
        let last: u64 = redis::cmd("INCRBY")
            .arg(self.keys.tier1_next())
            .arg(size)
            .query_async(&mut conn)
            .await?;
        let (number, skipped) = lease.renew(last + 1 - size, size, now_ms);
        self.numbers.skipped.fetch_add(skipped, Ordering::Relaxed);
        Ok(number)
    }

    /// Adds the arrivals this replica tallied to the shared per-second
    /// counters (one pipeline); on failure they are kept for the next try.
    pub async fn flush_arrivals(&self) -> Result<()> {
        let counts = self.numbers.take_pending();
        if counts.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (second, count) in &counts {
            let key = self.keys.arrivals(*second);
            pipe.cmd("INCRBY").arg(&key).arg(*count).ignore();
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(ARRIVALS_TTL_SECONDS)
                .ignore();
        }
        let mut conn = self.conn.clone();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => Ok(()),
            Err(error) => {
                self.numbers.restore_pending(counts);
                Err(error)
            }
        }
    }
}

fn taken(kind: &str, value: i64) -> NumberTaken {
    if kind == "number" {
        NumberTaken::Number(value.max(0) as u64)
    } else {
        NumberTaken::Limited {
            retry_after: value.max(1) as u64,
        }
    }
}

/// Flushes the tallied arrivals every `every` until the service stops, and
/// once more on the way out.
pub async fn flush_arrivals_until_stopped(
    store: QueueStore,
    every: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.wait_for(|stopped| *stopped) => break,
        }
        if let Err(error) = store.flush_arrivals().await {
            tracing::warn!(%error, "cannot add tier-1 arrivals to Redis; kept for the next try");
        }
    }
    if let Err(error) = store.flush_arrivals().await {
        tracing::warn!(%error, "cannot add the last tier-1 arrivals to Redis");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_half_a_max_age_of_the_recent_rate() {
        let blocks = NumberBlocks::default();
        assert_eq!(blocks.lease_size(0), 1, "a trickle leases one at a time");
        assert_eq!(blocks.lease_size(3), 1);
        assert_eq!(blocks.lease_size(400), 200);
        assert_eq!(blocks.lease_size(1_000_000), 1000, "capped at max_size");
        let off = NumberBlocks {
            max_size: 1,
            ..blocks
        };
        assert_eq!(off.lease_size(10_000), 1);
        assert!(!off.leasing());
    }

    #[test]
    fn a_lease_hands_out_its_numbers_in_order_until_it_ages_out() {
        let mut lease = Lease {
            next: 11,
            end: 14,
            leased_at_ms: 5_000,
            ..Lease::default()
        };
        assert_eq!(lease.take(5_001, 1000), Some(11));
        assert_eq!(lease.take(5_999, 1000), Some(12));
        assert_eq!(lease.take(6_000, 1000), None, "aged out");
        assert_eq!(lease.remaining(), 1, "13 is skipped");
        lease.leased_at_ms = 6_000;
        assert_eq!(lease.take(6_000, 1000), Some(13));
        assert_eq!(lease.take(6_001, 1000), None, "used up");
        assert_eq!(Lease::default().remaining(), 0, "nothing leased yet");
    }

    #[test]
    fn a_renewed_lease_hands_out_its_first_number_and_counts_what_the_old_held() {
        let mut lease = Lease {
            next: 12,
            end: 14,
            leased_at_ms: 5_000,
            ..Lease::default()
        };
        assert_eq!(lease.renew(20, 3, 6_000), (20, 2), "12 and 13 skipped");
        assert_eq!(lease.take(6_001, 1000), Some(21));
        assert_eq!(lease.take(6_002, 1000), Some(22));
        assert_eq!(lease.take(6_003, 1000), None, "used up");
    }

    #[test]
    fn the_recent_rate_is_this_or_the_previous_second() {
        let mut lease = Lease::default();
        for ms in [10_000, 10_100, 10_900] {
            lease.count(ms);
        }
        assert_eq!(lease.recent(), 3);
        lease.count(11_000);
        assert_eq!(lease.recent(), 3, "the second before still counts");
        lease.count(13_500);
        assert_eq!(lease.recent(), 1, "a gap forgets the old rate");
    }
}
