//! Figures for the operator's scaling and status, and for Prometheus.

use super::*;

/// Figures for the operator's scaling and for people.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub event: String,
    pub depth: u64,
    pub active_users: u64,
    pub admitted_total: u64,
    pub admitted_per_second: f64,
    pub oldest_wait_seconds: u64,
    /// New joins and tier-1 numbers per second over the last 10 s.
    pub arrivals_per_second: f64,
    pub room_active: bool,
    pub max_active_users: u32,
    pub users_per_second: u32,
    /// `open`, `paused`, `draining`, `soldOut` or `closed` (`status.admission`).
    pub admission: AdmissionState,
    /// The ticket service's places left, when fresh.
    pub places_left: Option<u64>,
    /// The queueing method in force (`fifo`, `random`, `passthrough`, `reject`).
    pub method: &'static str,
}

async fn collect_stats(state: &AppState) -> Result<Stats, QueueError> {
    let now_ms = unix_now_ms();
    let figures = state.store.figures(now_ms).await?;
    let policy = state.store.policy().await?;
    let inventory = state.store.inventory().await?;
    let admission = admission::state(&policy, inventory, now_ms);
    let measured =
        MeasuredRate::from_samples(&state.store.rate_samples().await?, now_ms, RATE_WINDOW_MS);
    let stats = Stats {
        event: state.event.clone(),
        depth: figures.depth,
        active_users: figures.active,
        admitted_total: figures.admitted_total,
        admitted_per_second: (measured.mean * 10.0).round() / 10.0,
        oldest_wait_seconds: (figures.oldest_wait_ms / 1000) as u64,
        arrivals_per_second: state.store.arrivals_per_second(now_ms).await?,
        room_active: policy.active,
        max_active_users: policy.max_active_users,
        users_per_second: policy.users_per_second,
        admission,
        places_left: admission::fresh(inventory, now_ms).map(|i| i.places_left),
        method: policy.method.as_str(),
    };
    let m = &state.metrics;
    m.depth.set(stats.depth as i64);
    m.active_users.set(stats.active_users as i64);
    m.admitted_total.set(stats.admitted_total as i64);
    m.admitted_per_second.set(stats.admitted_per_second);
    m.oldest_wait_seconds.set(stats.oldest_wait_seconds as i64);
    m.numbers_skipped
        .set(i64::try_from(state.store.numbers_skipped()).unwrap_or(i64::MAX));
    m.set_admission(admission);
    Ok(stats)
}

pub(super) async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, QueueError> {
    Ok(Json(collect_stats(&state).await?))
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    if let Err(error) = collect_stats(&state).await {
        tracing::warn!(%error, "stats unavailable for /metrics");
    }
    prom::render(&state.metrics.registry)
}
