//! Issue 21, "bad input": a verdict that never arrives never loses track of
//! money. The provider here takes every call and sends no webhook at all (a
//! provider whose retries gave up); what it says when asked is what the
//! reconciler applies. Real PostgreSQL, Redis and ticket service.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use support::Platform;
use urr_payment::provider::{
    Provider, ProviderError, ProviderPayment, ProviderVerdict, WebhookParseError,
};
use urr_payment::reconciler::{self, ReconcilerSettings};
use urr_payment::ticket_client::ClientSettings;
use urr_payment::webhook::{WebhookEvent, WebhookKind};

/// Accepts everything, delivers nothing; `status` answers what the test set.
#[derive(Debug, Default)]
struct Silent {
    verdict: Mutex<Option<WebhookKind>>,
    captures: Mutex<u32>,
}

impl Silent {
    fn says(&self, kind: WebhookKind) {
        *self.verdict.lock().expect("lock") = Some(kind);
    }
}

#[async_trait::async_trait]
impl Provider for Silent {
    fn name(&self) -> &'static str {
        "silent"
    }
    async fn authorize(
        &self,
        payment: &ProviderPayment,
        _method: &str,
    ) -> Result<String, ProviderError> {
        Ok(format!("silent_{}", payment.payment_id))
    }
    async fn capture(&self, _: &ProviderPayment) -> Result<(), ProviderError> {
        *self.captures.lock().expect("lock") += 1;
        Ok(())
    }
    async fn refund(&self, _: &ProviderPayment) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn void(&self, _: &ProviderPayment) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn status(
        &self,
        payment: &ProviderPayment,
    ) -> Result<Option<ProviderVerdict>, ProviderError> {
        let verdict = *self.verdict.lock().expect("lock");
        Ok(verdict.map(|kind| ProviderVerdict {
            kind,
            amount_minor: payment.amount_minor,
            reason: None,
            provider_ref: None,
        }))
    }
    fn parse_webhook(
        &self,
        _: Option<&str>,
        _: &[u8],
        _: i64,
    ) -> Result<WebhookEvent, WebhookParseError> {
        Err(WebhookParseError::Body(
            "the silent provider sends nothing".into(),
        ))
    }
}

fn now_stuck() -> ReconcilerSettings {
    ReconcilerSettings {
        stuck_after: Duration::ZERO,
        ..ReconcilerSettings::default()
    }
}

#[sqlx::test(migrations = false)]
async fn the_reconciler_applies_what_the_provider_says_when_its_webhooks_are_lost(pool: PgPool) {
    let silent = Arc::new(Silent::default());
    let provider = silent.clone();
    let platform = Platform::start_with_provider(pool, ClientSettings::default(), 10, move |_| {
        (provider, "silent")
    })
    .await;
    let (_, id) = platform.confirmed("quiet", &["a:4:1"], "pm_any").await;

    // The provider has decided nothing yet: the payment waits, as before.
    reconciler::pass(&platform.payments, &now_stuck()).await;
    assert_eq!(platform.payment("quiet", &id).await["status"], "created");

    // It authorized, and the webhook was lost: asked, it says so; the
    // payment is authorized and its capture requested.
    silent.says(WebhookKind::PaymentAuthorized);
    reconciler::pass(&platform.payments, &now_stuck()).await;
    assert_eq!(platform.payment("quiet", &id).await["status"], "authorized");
    assert!(
        *silent.captures.lock().expect("lock") >= 1,
        "capture requested"
    );

    // It captured, and that webhook was lost too: the money is recorded and
    // the tickets issued.
    silent.says(WebhookKind::PaymentCaptured);
    reconciler::pass(&platform.payments, &now_stuck()).await;
    let payment = platform
        .wait_for("quiet", &id, |p| {
            p["status"] == "captured" && !p["reservationId"].is_null()
        })
        .await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        1
    );
    // Asking again applies nothing twice.
    reconciler::pass(&platform.payments, &now_stuck()).await;
    assert_eq!(
        platform
            .payment_count(&format!(
                "SELECT count(*) FROM payment_transitions WHERE payment_id = '{id}' AND to_status = 'captured'"
            ))
            .await,
        1
    );
    platform.finish().await;
}
