//! Hold expiry in the background: every second, holds whose time is up are
//! expired and their places put back on sale (reads already treat them as
//! expired; this makes it so in the tables and in Redis). The same round
//! notices when Redis has lost this event's keys (its restore marker is
//! gone) and loads them again from PostgreSQL, so sold seats are refused at
//! Redis again and live holds can still be confirmed.

use std::time::Duration;

use tokio::sync::watch;

use crate::holds::HoldDesk;
use crate::inventory::{self, StandingCounters};

/// Holds expired per round at most (the rest wait a round).
const BATCH: i64 = 500;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub expired: u64,
    /// Redis had lost the event's keys and they were loaded again.
    pub restored: bool,
}

/// One round: expire what is due, restore Redis if it forgot.
pub async fn round(desk: &HoldDesk) -> Round {
    let mut round = Round::default();
    match desk.expire_due(BATCH).await {
        Ok(expired) => round.expired = expired,
        Err(error) => tracing::warn!(%error, "hold expiry round failed"),
    }
    match desk.locks.is_restored().await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                "Redis lost this event's seat locks; loading them again from PostgreSQL"
            );
            match inventory::restore_locks(
                &desk.pool,
                &desk.locks,
                desk.catalog.event(),
                StandingCounters::FromDatabase,
            )
            .await
            {
                Ok(()) => round.restored = true,
                Err(error) => tracing::error!(%error, "cannot restore the seat locks"),
            }
        }
        Err(error) => tracing::warn!(%error, "cannot check the Redis restore marker"),
    }
    round
}

pub async fn run(desk: HoldDesk, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        let done = round(&desk).await;
        if done.expired > 0 {
            tracing::info!(expired = done.expired, "expired holds");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
