//! The 1 s batch admitter. Every replica runs the loop; the one holding the
//! Redis lease admits. Each tick is one Lua call (`lua/tick.lua`) that reaps
//! dead waiters, expires entries and admits `min(rate × tick, threshold −
//! active)` users in queue order, checking the exact lease token inside the
//! script so a replica that lost the lease can never admit.

use std::sync::Arc;

use tokio::sync::watch;
use urr_service_common::unix_now_ms;

use crate::fairness;
use crate::inventory::TicketInventory;
use crate::policy::Policy;
use crate::store::{QueueStore, TickOutcome};
use crate::telemetry::QueueMetrics;

/// Settings of one admitter.
#[derive(Debug, Clone)]
pub struct AdmitterSettings {
    pub instance: String,
    /// Where the places left are read (`URR_TICKET_URL`); `None`: the room
    /// does not know its inventory.
    pub inventory: Option<TicketInventory>,
    pub tick_ms: u64,
    pub lease_ms: u64,
    pub heartbeat_timeout_ms: u64,
}

/// One admitter: lease state plus the store.
#[derive(Debug)]
pub struct Admitter {
    store: QueueStore,
    settings: AdmitterSettings,
    token: Option<String>,
    metrics: Option<Arc<QueueMetrics>>,
}

impl Admitter {
    pub fn new(
        store: QueueStore,
        settings: AdmitterSettings,
        metrics: Option<Arc<QueueMetrics>>,
    ) -> Self {
        Self {
            store,
            settings,
            token: None,
            metrics,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.token.is_some()
    }

    /// One tick at `now_ms`: renew or take the lease, then (as leader) run the
    /// pre-queue draw if due and admit. `None` when not leading.
    pub async fn tick_at(&mut self, now_ms: i64) -> redis::RedisResult<Option<TickOutcome>> {
        let settings = &self.settings;
        self.token = self
            .store
            .acquire_lease(&settings.instance, settings.lease_ms, self.token.as_deref())
            .await?;
        let Some(token) = self.token.clone() else {
            return Ok(None);
        };
        let policy = self.store.policy().await?;
        self.pre_queue_draw(&token, &policy, now_ms).await?;
        self.controls(&policy, now_ms).await?;
        let started = std::time::Instant::now();
        let outcome = self
            .store
            .tick(
                &token,
                now_ms,
                settings.tick_ms,
                settings.heartbeat_timeout_ms,
                settings.lease_ms,
                &Policy::default(),
            )
            .await?;
        if outcome.is_none() {
            self.token = None; // fenced out between renew and tick
        }
        if let (Some(metrics), Some(outcome)) = (&self.metrics, outcome) {
            metrics.record_tick(&outcome, started.elapsed());
        }
        Ok(outcome)
    }

    /// What the operator and the ticket service ask of the leader before
    /// it admits: end the sessions of buyers whose order completed, kick
    /// who `spec.control` names, and read the places left
    /// (only when the room acts on them, so a room without `minPlaces`
    /// costs the ticket service nothing).
    async fn controls(&self, policy: &Policy, now_ms: i64) -> redis::RedisResult<()> {
        let ended = self
            .store
            .end_ordered_sessions(policy.end_session_on_order, now_ms)
            .await?;
        if let (Some(metrics), false) = (&self.metrics, ended.is_empty()) {
            metrics.sessions_ended.inc_by(ended.len() as u64);
        }
        let kicked = self.store.kick_requested(now_ms).await?;
        if !kicked.is_empty() {
            tracing::info!(users = kicked.len(), "kicked from the room");
            if let Some(metrics) = &self.metrics {
                metrics.kicked.inc_by(kicked.len() as u64);
            }
        }
        if let (Some(inventory), true) = (&self.settings.inventory, policy.min_places > 0) {
            match inventory.places().await {
                Ok(places) => self.store.record_inventory(places, now_ms).await?,
                // Logged, not fatal: the read goes stale and admission goes on.
                Err(error) => tracing::warn!(%error, "places left unknown"),
            }
        }
        Ok(())
    }

    /// Draws the seed when the pre-queue opens (publishing only its
    /// commitment) and applies the shuffle once the sale opens.
    async fn pre_queue_draw(
        &self,
        token: &str,
        policy: &Policy,
        now_ms: i64,
    ) -> redis::RedisResult<()> {
        if !policy.randomize_at_open || policy.sales_open_at <= 0 {
            return Ok(());
        }
        let now_s = now_ms / 1000;
        let state = self.store.shuffle_state().await?;
        if state.contains_key("shuffledAt") {
            return Ok(());
        }
        let fresh = fairness::new_seed();
        let seed = match state.get("seed") {
            Some(seed) => seed.clone(),
            None => {
                self.store
                    .ensure_seed(&fresh, &fairness::commitment(&fresh))
                    .await?
            }
        };
        if policy.in_pre_queue(now_s) {
            return Ok(());
        }
        let members = self.store.waiting_members().await?;
        let order = fairness::shuffled(&seed, members.iter().map(String::as_str));
        let count = order.len() as i64;
        // Negative scores put the drawn members ahead of every later join.
        let scored: Vec<(i64, String)> = order
            .iter()
            .enumerate()
            .map(|(i, m)| (i as i64 - count, (*m).to_owned()))
            .collect();
        let moved = self
            .store
            .apply_shuffle(token, now_ms, &seed, &scored)
            .await?;
        if moved >= 0 {
            tracing::info!(participants = count, "pre-queue drawn at open");
        }
        Ok(())
    }

    /// Gives the lease up so another replica takes over at once.
    pub async fn release(&mut self) {
        if let Some(token) = self.token.take()
            && let Err(error) = self.store.release_lease(&token).await
        {
            tracing::warn!(%error, "could not release the admitter lease");
        }
    }
}

/// Runs ticks every `tick_ms` until `shutdown` turns true. Redis errors are
/// logged and the loop goes on: the next tick retries.
pub async fn run(mut admitter: Admitter, mut shutdown: watch::Receiver<bool>) {
    let mut interval =
        tokio::time::interval(std::time::Duration::from_millis(admitter.settings.tick_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        if let Err(error) = admitter.tick_at(unix_now_ms()).await {
            tracing::warn!(%error, "admitter tick failed");
        }
    }
    admitter.release().await;
}
