//! Hold expiry in the background: every second, holds whose time is up are
//! expired and their places put back on sale (reads already treat them as
//! expired; this makes it so in the tables and in Redis).

use std::time::Duration;

use tokio::sync::watch;

use crate::holds::HoldDesk;

/// Holds expired per round at most (the rest wait a round).
const BATCH: i64 = 500;

pub async fn run(desk: HoldDesk, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match desk.expire_due(BATCH).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired holds"),
            Err(error) => tracing::warn!(%error, "hold expiry round failed"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
