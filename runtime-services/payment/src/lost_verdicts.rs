//! Verdicts that never arrived, and verdicts that arrive another way. A
//! provider's webhook can be lost (its retries gave up, our endpoint was
//! down for longer than they last); the payment then sits authorizing or
//! authorized. Before re-driving it, the reconciler asks the provider what
//! it knows ([`Provider::status`]) and applies that as the webhook would
//! have been applied, so money the provider took or released is never lost
//! track of.
//!
//! The same path applies a verdict a provider gives in its answer (Toss's
//! confirm captures at once, its cancel refunds at once) and the verdict
//! behind an unsigned notice (Toss's card webhooks): the notice only names
//! the payment, and what the provider answers when asked is what counts.
//!
//! [`Provider::status`]: crate::provider::Provider::status

use crate::error::PaymentError;
use crate::flow::{Payments, Row_, WebhookOutcome, load, parse_id};
use crate::provider::ProviderVerdict;
use crate::webhook::{WebhookEvent, WebhookKind};

/// What asking the provider did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Its verdict moved the payment (or started a refund or a void).
    Moved(WebhookOutcome),
    /// Its verdict changed nothing (already applied, or out of order).
    Unchanged(WebhookOutcome),
    /// It has decided nothing yet.
    Undecided,
    /// It could not say (unreachable, an answer URR cannot read): the
    /// payment must wait for the next question, never be given up on.
    Unknown(String),
}

impl Payments {
    /// Asks the provider about `row` and applies its verdict.
    pub(crate) async fn settle_from_provider(&self, row: &Row_) -> Result<Settled, PaymentError> {
        let Some(provider) = self.providers.get(&row.provider) else {
            return Ok(Settled::Undecided);
        };
        let payment = row.provider_payment();
        let verdict = match provider.status(&payment).await {
            Ok(Some(verdict)) => verdict,
            Ok(None) => return Ok(Settled::Undecided),
            Err(error) => {
                tracing::warn!(%error, payment = %row.id, "provider cannot say what became of the payment");
                return Ok(Settled::Unknown(error.to_string()));
            }
        };
        let outcome = self
            .apply_verdict(row, payment.provider_ref.clone(), verdict)
            .await?;
        Ok(match outcome {
            None => Settled::Undecided,
            Some(
                outcome @ (WebhookOutcome::Applied
                | WebhookOutcome::LateCapture
                | WebhookOutcome::LateAuthorization),
            ) => Settled::Moved(outcome),
            Some(outcome) => Settled::Unchanged(outcome),
        })
    }

    /// Applies a provider's `verdict` on `row` as its webhook would be
    /// applied; `None` when no reference names the payment at the provider.
    pub(crate) async fn apply_verdict(
        &self,
        row: &Row_,
        reference: Option<String>,
        verdict: ProviderVerdict,
    ) -> Result<Option<WebhookOutcome>, PaymentError> {
        let Some(provider_ref) = verdict
            .provider_ref
            .clone()
            .or(reference)
            .or(row.provider_ref.clone())
        else {
            return Ok(None);
        };
        // One id per payment and verdict: asked twice, or answered and then
        // asked, it is applied once.
        let event = WebhookEvent {
            id: format!("reconciled:{}:{}", row.id, kind_name(verdict.kind)),
            kind: verdict.kind,
            payment_id: row.id.to_string(),
            provider_ref,
            amount_minor: verdict.amount_minor,
            currency: row.currency.clone(),
            reason: verdict.reason,
            occurred_at: urr_service_common::unix_now(),
            refund_id: None,
        };
        let outcome = self.apply_webhook(&row.provider, &event).await?;
        tracing::info!(payment = %row.id, verdict = kind_name(verdict.kind), outcome = ?outcome, "provider verdict applied");
        Ok(Some(outcome))
    }

    /// An unsigned notice named `payment_id`: the provider is asked, and its
    /// answer applied. A provider that cannot answer gets an error, so it
    /// delivers the notice again later.
    pub(crate) async fn settle_notice(
        &self,
        provider: &str,
        payment_id: &str,
    ) -> Result<WebhookOutcome, PaymentError> {
        let Ok(id) = parse_id(payment_id) else {
            return Ok(WebhookOutcome::UnknownPayment);
        };
        let Some(row) = load(&mut *self.pool.acquire().await?, id, false).await? else {
            return Ok(WebhookOutcome::UnknownPayment);
        };
        // Another provider's payment: a notice cannot make Toss speak for it.
        if row.provider != provider {
            return Ok(WebhookOutcome::UnknownPayment);
        }
        match self.settle_from_provider(&row).await? {
            Settled::Moved(outcome) | Settled::Unchanged(outcome) => Ok(outcome),
            Settled::Undecided => Ok(WebhookOutcome::Ignored),
            Settled::Unknown(reason) => Err(PaymentError::ProviderUnavailable(reason)),
        }
    }
}

fn kind_name(kind: WebhookKind) -> &'static str {
    match kind {
        WebhookKind::PaymentAuthorized => "authorized",
        WebhookKind::PaymentFailed => "failed",
        WebhookKind::PaymentCaptured => "captured",
        WebhookKind::PaymentRefunded => "refunded",
    }
}
