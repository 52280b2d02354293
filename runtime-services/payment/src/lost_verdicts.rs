//! Verdicts that never arrived. A provider's webhook can be lost (its
//! retries gave up, our endpoint was down for longer than they last); the
//! payment then sits authorizing or authorized. Before re-driving it, the
//! reconciler asks the provider what it knows ([`Provider::status`]) and
//! applies that as the webhook would have been applied, so money the
//! provider took or released is never lost track of.
//!
//! [`Provider::status`]: crate::provider::Provider::status

use crate::error::PaymentError;
use crate::flow::{Payments, Row_, WebhookOutcome};
use crate::webhook::{WebhookEvent, WebhookKind};

impl Payments {
    /// Asks the provider about `row` and applies its verdict; `Ok(None)`
    /// when it has none (still undecided, or it cannot say), so the caller
    /// re-drives the payment as before.
    pub(crate) async fn settle_from_provider(
        &self,
        row: &Row_,
    ) -> Result<Option<WebhookOutcome>, PaymentError> {
        let Some(provider) = self.providers.get(&row.provider) else {
            return Ok(None);
        };
        let payment = row.provider_payment();
        let Some(provider_ref) = payment.provider_ref.clone() else {
            return Ok(None);
        };
        let verdict = match provider.status(&payment).await {
            Ok(Some(verdict)) => verdict,
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::warn!(%error, payment = %row.id, "provider cannot say what became of the payment");
                return Ok(None);
            }
        };
        // One id per payment and verdict: asking twice applies it once.
        let event = WebhookEvent {
            id: format!("reconciled:{}:{}", row.id, kind_name(verdict.kind)),
            kind: verdict.kind,
            payment_id: row.id.to_string(),
            provider_ref,
            amount_minor: verdict.amount_minor,
            currency: payment.currency.clone(),
            reason: verdict.reason,
            occurred_at: urr_service_common::unix_now(),
        };
        let outcome = self.apply_webhook(&row.provider, &event).await?;
        tracing::info!(payment = %row.id, verdict = kind_name(verdict.kind), outcome = ?outcome, "verdict recovered from the provider");
        Ok(Some(outcome))
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
