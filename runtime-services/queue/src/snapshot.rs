//! What every request needs but only changes once per admitter tick: the
//! policy, the measured admission rate and the tier-1 serving parameters.
//! Reading them from Redis on every request cost three extra round trips per
//! join; instead each replica keeps a snapshot at most one tick old, so a
//! policy change still applies within one tick (DESIGN.md), and a request
//! costs one Redis round trip.
//!
//! Refresh is lazy and single-flight: the first request after expiry refreshes,
//! concurrent ones keep using the previous snapshot meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use urr_service_common::serving::ServingParams;
use urr_service_common::unix_now_ms;

use crate::admission::{self, AdmissionState};
use crate::eta::MeasuredRate;
use crate::policy::Policy;
use crate::store::{Inventory, QueueStore};

/// Window of the measured admission rate.
pub const RATE_WINDOW_MS: i64 = 30_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub policy: Policy,
    pub rate: MeasuredRate,
    pub serving: ServingParams,
    /// The ticket service's places left, as the admitter last read them.
    pub inventory: Option<Inventory>,
}

impl Snapshot {
    /// Whether the room lets anyone in now ([`crate::admission`]).
    pub fn admission(&self, now_ms: i64) -> AdmissionState {
        admission::state(&self.policy, self.inventory, now_ms)
    }
}

#[derive(Debug)]
pub struct SnapshotCache {
    max_age: Duration,
    current: RwLock<Option<(Instant, Arc<Snapshot>)>>,
    refreshing: AtomicBool,
}

impl SnapshotCache {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            current: RwLock::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    fn cached(&self) -> Option<(Instant, Arc<Snapshot>)> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A snapshot at most `max_age` old (or the previous one while another
    /// request refreshes it).
    pub async fn get(&self, store: &QueueStore) -> redis::RedisResult<Arc<Snapshot>> {
        let cached = self.cached();
        if let Some((taken, snapshot)) = &cached
            && taken.elapsed() < self.max_age
        {
            return Ok(snapshot.clone());
        }
        let leader = self
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !leader && let Some((_, snapshot)) = cached {
            return Ok(snapshot);
        }
        let result = Self::load(store).await;
        if leader {
            self.refreshing.store(false, Ordering::Release);
        }
        let snapshot = Arc::new(result?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }

    /// Forgets the snapshot (tests that change the policy mid-way).
    pub fn invalidate(&self) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn load(store: &QueueStore) -> redis::RedisResult<Snapshot> {
        let (policy, samples, serving, inventory) = tokio::try_join!(
            store.policy(),
            store.rate_samples(),
            store.serving_params(),
            store.inventory()
        )?;
        Ok(Snapshot {
            policy,
            rate: MeasuredRate::from_samples(&samples, unix_now_ms(), RATE_WINDOW_MS),
            serving,
            inventory,
        })
    }
}
