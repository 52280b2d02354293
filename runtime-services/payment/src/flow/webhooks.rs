//! The provider's signed verdicts: each delivery recorded once, applied to
//! the payment in one transaction with its outbox message, and what must
//! follow the commit (capture, confirm, cancel, a late refund or void)
//! started after it.

use chrono::Utc;
use serde::Serialize;
use urr_service_common::contracts::PaymentEventKind;

use super::{Payments, load};
use crate::error::PaymentError;
use crate::provider::WebhookParseError;
use crate::state::{PaymentStatus, TransitionError};
use crate::webhook::{WebhookEvent, WebhookKind};

/// What a webhook delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookOutcome {
    Applied,
    Duplicate,
    /// Arrived after the payment had moved on (out of order): harmless.
    Stale,
    /// A capture for a payment that had failed or was canceled: the money
    /// is refunded, never kept without a ticket.
    LateCapture,
    /// An authorization for a payment the buyer canceled meanwhile: voided
    /// at the provider, never captured.
    LateAuthorization,
    UnknownPayment,
    /// A genuine delivery of nothing URR acts on (another event type).
    Ignored,
}

impl WebhookOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Stale => "stale",
            WebhookOutcome::LateCapture => "late-capture",
            WebhookOutcome::LateAuthorization => "late-authorization",
            WebhookOutcome::UnknownPayment => "unknown-payment",
            WebhookOutcome::Ignored => "ignored",
        }
    }
}

impl Payments {
    /// `POST /v1/webhooks/{provider}`: a signed verdict from the provider.
    pub async fn webhook(
        &self,
        provider_name: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookOutcome, PaymentError> {
        let provider = self
            .providers
            .get(provider_name)
            .ok_or_else(|| PaymentError::UnknownProvider(provider_name.to_owned()))?;
        let event = match provider.parse_webhook(signature, body, urr_service_common::unix_now()) {
            Ok(event) => event,
            Err(WebhookParseError::Signature(error)) => {
                self.metrics.webhook("bad-signature");
                return Err(PaymentError::WebhookSignature(error));
            }
            Err(WebhookParseError::Body(error)) => return Err(PaymentError::BadRequest(error)),
            Err(WebhookParseError::Ignored(why)) => {
                tracing::debug!(provider = provider_name, %why, "webhook acknowledged, nothing to apply");
                self.metrics.webhook(WebhookOutcome::Ignored.as_str());
                return Ok(WebhookOutcome::Ignored);
            }
            Err(WebhookParseError::AskProvider { payment_id }) => {
                let outcome = self.settle_notice(provider_name, &payment_id).await?;
                self.metrics.webhook(outcome.as_str());
                return Ok(outcome);
            }
        };
        let outcome = self.apply_webhook(provider_name, &event).await?;
        self.metrics.webhook(outcome.as_str());
        Ok(outcome)
    }

    /// Boxed, not `async fn`: what it starts after its commit (a capture's
    /// confirmation, a late capture's refund) can apply a provider's answer
    /// through it again, and that recursion must be a known `Send` future.
    pub(crate) fn apply_webhook<'a>(
        &'a self,
        provider: &'a str,
        event: &'a WebhookEvent,
    ) -> futures::future::BoxFuture<'a, Result<WebhookOutcome, PaymentError>> {
        Box::pin(async move {
            let Ok(id) = uuid::Uuid::parse_str(&event.payment_id) else {
                return Ok(WebhookOutcome::UnknownPayment);
            };
            let mut tx = self.pool.begin().await?;
            let fresh = sqlx::query(
            "INSERT INTO webhook_events (provider, provider_event_id, payment_id, kind, outcome)
             VALUES ($1, $2, $3, $4, 'received') ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(&event.id)
        .bind(id)
        .bind(format!("{:?}", event.kind))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
            if !fresh {
                return Ok(WebhookOutcome::Duplicate);
            }
            let Some(row) = load(&mut tx, id, true).await? else {
                tx.commit().await?;
                return Ok(WebhookOutcome::UnknownPayment);
            };
            // A refund of less than the payment confirms a part of it
            // ([`crate::refund_parts`]), never the whole.
            if event.kind == WebhookKind::PaymentRefunded
                && row.status == PaymentStatus::Captured
                && event.currency == row.currency
                && (0..row.amount).contains(&event.amount_minor)
            {
                let outcome = if self.settle_part_by_webhook(&mut tx, &row, event).await? {
                    WebhookOutcome::Applied
                } else {
                    WebhookOutcome::Stale
                };
                record_outcome(&mut tx, provider, &event.id, outcome).await?;
                tx.commit().await?;
                return Ok(outcome);
            }
            if event.amount_minor != row.amount || event.currency != row.currency {
                // Not recorded: a forged or corrupted verdict must not even
                // consume the event id.
                return Err(PaymentError::AmountMismatch(format!(
                    "the provider reports {} {}, the payment is {} {}",
                    event.amount_minor, event.currency, row.amount, row.currency
                )));
            }
            // A verdict for a payment whose authorization answer was lost (a
            // timeout after the provider took it) carries the reference the
            // refund will need.
            if row.provider_ref.is_none() && !event.provider_ref.is_empty() {
                sqlx::query(
                    "UPDATE payments SET provider_ref = $2 WHERE id = $1 AND provider_ref IS NULL",
                )
                .bind(id)
                .bind(&event.provider_ref)
                .execute(&mut *tx)
                .await?;
            }
            let mut after_commit = AfterCommit::Nothing;
            let applied = match event.kind {
                // The buyer canceled while the provider was answering: the
                // authorization must not be left holding the buyer's funds.
                WebhookKind::PaymentAuthorized if row.status == PaymentStatus::Canceled => {
                    self.record_late_authorization(&mut tx, &row, event).await?;
                    after_commit = AfterCommit::VoidLateAuthorization;
                    Ok(row.status)
                }
                WebhookKind::PaymentAuthorized => {
                    if let Some(started) = row.confirm_started_at {
                        let seconds = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
                        self.metrics
                            .provider_latency_seconds
                            .observe(seconds.max(0.0));
                    }
                    let moved = self
                        .move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Authorized,
                            "authorized by the provider",
                        )
                        .await;
                    if moved.is_ok() {
                        after_commit = AfterCommit::Capture;
                    }
                    moved
                }
                WebhookKind::PaymentFailed => {
                    sqlx::query("UPDATE payments SET failure_reason = $2 WHERE id = $1")
                        .bind(id)
                        .bind(event.reason.as_deref().unwrap_or("declined"))
                        .execute(&mut *tx)
                        .await?;
                    let reason = format!(
                        "provider: {}",
                        event.reason.as_deref().unwrap_or("declined")
                    );
                    self.move_to(&mut tx, id, PaymentStatus::Failed, &reason)
                        .await
                }
                // Only the first such capture: a second one is the same money.
                WebhookKind::PaymentCaptured
                    if matches!(row.status, PaymentStatus::Canceled | PaymentStatus::Failed)
                        && row.captured_at.is_none() =>
                {
                    self.record_late_capture(&mut tx, &row, event).await?;
                    tracing::error!(payment = %id, status = row.status.as_str(), "a capture reached an ended payment; refunding it");
                    after_commit = AfterCommit::RefundLateCapture;
                    Ok(row.status)
                }
                WebhookKind::PaymentCaptured => {
                    if row.status == PaymentStatus::Created {
                        // The capture overtook its authorization: the capture implies it.
                        self.move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Authorized,
                            "implied by the capture",
                        )
                        .await?;
                    }
                    let moved = self
                        .move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Captured,
                            "captured by the provider",
                        )
                        .await;
                    if moved.is_ok() {
                        self.enqueue(&mut tx, &row, PaymentEventKind::Captured)
                            .await?;
                        after_commit = AfterCommit::Confirm;
                    }
                    moved
                }
                WebhookKind::PaymentRefunded
                    if matches!(row.status, PaymentStatus::Canceled | PaymentStatus::Failed)
                        && row.captured_at.is_none() =>
                {
                    // Nothing was taken from this payment, so nothing was given back.
                    Err(TransitionError::Invalid(crate::state::InvalidTransition {
                        from: row.status.as_str().to_owned(),
                        to: PaymentStatus::Refunded.as_str(),
                    }))
                }
                WebhookKind::PaymentRefunded => {
                    let moved = self
                        .move_to(
                            &mut tx,
                            id,
                            PaymentStatus::Refunded,
                            "refunded by the provider",
                        )
                        .await;
                    // A late capture's refund: that payment never confirmed the
                    // hold, which may be another payment's now; nothing to cancel.
                    if moved
                        .as_ref()
                        .is_ok_and(|from| *from == PaymentStatus::Captured)
                    {
                        self.enqueue(&mut tx, &row, PaymentEventKind::Refunded)
                            .await?;
                        after_commit = AfterCommit::Cancel;
                    }
                    moved
                }
            };
            let outcome = match applied {
                Ok(_) if matches!(after_commit, AfterCommit::RefundLateCapture) => {
                    WebhookOutcome::LateCapture
                }
                Ok(_) if matches!(after_commit, AfterCommit::VoidLateAuthorization) => {
                    WebhookOutcome::LateAuthorization
                }
                Ok(_) => WebhookOutcome::Applied,
                Err(TransitionError::Invalid(_)) => WebhookOutcome::Stale,
                Err(error) => return Err(error.into()),
            };
            record_outcome(&mut tx, provider, &event.id, outcome).await?;
            tx.commit().await?;
            let this = self.clone();
            match after_commit {
                AfterCommit::Nothing => {}
                AfterCommit::Capture => {
                    let provider = self.providers.get(&row.provider).cloned();
                    let mut payment = row.provider_payment();
                    payment.provider_ref = Some(event.provider_ref.clone());
                    tokio::spawn(async move {
                        if let Some(provider) = provider
                            && let Err(error) = provider.capture(&payment).await
                        {
                            tracing::warn!(%error, payment = %payment.payment_id, "capture request failed; the reconciler retries");
                        }
                    });
                }
                AfterCommit::Confirm => {
                    tokio::spawn(async move { this.confirm_reservation(id).await });
                }
                AfterCommit::Cancel => {
                    tokio::spawn(async move { this.cancel_reservation(id).await });
                }
                AfterCommit::VoidLateAuthorization => {
                    let mut row = row;
                    row.provider_ref = row.provider_ref.or(Some(event.provider_ref.clone()));
                    tokio::spawn(async move { this.void_late_authorization(&row).await });
                }
                AfterCommit::RefundLateCapture => {
                    let mut row = row;
                    row.provider_ref = row.provider_ref.or(Some(event.provider_ref.clone()));
                    tokio::spawn(async move {
                        if let Err(error) = this.request_refund(&row).await {
                            tracing::warn!(%error, payment = %row.id, "refund of a late capture failed; the reconciler retries");
                        }
                    });
                }
            }
            Ok(outcome)
        })
    }
}

/// What must start once the webhook's transaction has committed.
enum AfterCommit {
    Nothing,
    Capture,
    Confirm,
    Cancel,
    RefundLateCapture,
    VoidLateAuthorization,
}

/// The outcome of a delivery, on its `webhook_events` row (the provider's
/// retries of it find it there).
async fn record_outcome(
    conn: &mut sqlx::PgConnection,
    provider: &str,
    event_id: &str,
    outcome: WebhookOutcome,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_events SET outcome = $3 WHERE provider = $1 AND provider_event_id = $2",
    )
    .bind(provider)
    .bind(event_id)
    .bind(outcome.as_str())
    .execute(conn)
    .await?;
    Ok(())
}
