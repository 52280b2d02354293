//! Re-drives payments stuck between states: an authorization whose capture
//! never came back, a capture without a recorded reservation (the
//! synchronous confirm failed: ask again; the ticket service answers
//! "already confirmed" if Kafka got there first), an authorization the
//! provider never answered, intents the buyer abandoned, and refunds of
//! some tickets still owed ([`crate::refund_parts`]).

use std::time::Duration;

use tokio::sync::watch;

use crate::flow::Payments;

#[derive(Debug, Clone)]
pub struct ReconcilerSettings {
    pub interval: Duration,
    /// A payment is stuck when its last change is older than this.
    pub stuck_after: Duration,
    /// An unconfirmed intent is abandoned after this.
    pub abandon_after: Duration,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            stuck_after: Duration::from_secs(30),
            abandon_after: Duration::from_secs(15 * 60),
        }
    }
}

/// One pass; returns how many payments were re-driven.
pub async fn pass(payments: &Payments, settings: &ReconcilerSettings) -> usize {
    let stuck = match payments.stuck(settings.stuck_after.as_secs_f64()).await {
        Ok(stuck) => stuck,
        Err(error) => {
            tracing::warn!(%error, "reconciler cannot list stuck payments");
            return 0;
        }
    };
    let mut redriven = match payments
        .finish_owed_parts(settings.stuck_after.as_secs_f64())
        .await
    {
        Ok(finished) => finished,
        Err(error) => {
            tracing::warn!(%error, "reconciler cannot list owed partial refunds");
            0
        }
    };
    for (id, status, _) in stuck {
        match payments
            .redrive(id, settings.abandon_after.as_secs_f64())
            .await
        {
            Ok(()) => redriven += 1,
            Err(error) => {
                tracing::warn!(%error, payment = %id, status = status.as_str(), "re-drive failed")
            }
        }
    }
    redriven
}

pub async fn run(
    payments: Payments,
    settings: ReconcilerSettings,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let redriven = pass(&payments, &settings).await;
        if redriven > 0 {
            tracing::info!(redriven, "re-drove stuck payments");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}
