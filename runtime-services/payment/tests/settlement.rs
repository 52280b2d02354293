//! Money owed back or held, against real PostgreSQL, Redis and the broker
//! with the real ticket service in-process. Refunds: the tickets are voided
//! first, so a provider or ticket service failing half-way must leave a
//! refund the reconciler finishes, never voided tickets with the money kept.
//! Late verdicts: an authorization reaching a canceled payment is voided at
//! the provider, never left holding the buyer's funds.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use support::{Platform, quick_client, reasons};
use urr_payment::error::PaymentError;
use urr_payment::provider::sandbox::{Sandbox, SandboxSettings};
use urr_payment::provider::{
    Provider, ProviderError, ProviderPayment, Providers, WebhookParseError,
};
use urr_payment::reconciler::{self, ReconcilerSettings};
use urr_payment::webhook::WebhookEvent;

/// The sandbox, except that its refund endpoint is down.
#[derive(Debug)]
struct RefundsDown(Sandbox);

/// The sandbox, remembering the references it was asked to void.
#[derive(Debug, Default)]
struct Voids(Mutex<Vec<String>>);

#[derive(Debug)]
struct CountingVoids(Sandbox, Arc<Voids>);

#[async_trait::async_trait]
impl Provider for CountingVoids {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn authorize(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<String, ProviderError> {
        self.0.authorize(payment, method).await
    }
    async fn capture(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        self.0.capture(payment).await
    }
    async fn refund(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        self.0.refund(payment).await
    }
    async fn void(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        self.1
            .0
            .lock()
            .expect("voids")
            .push(payment.provider_ref.clone().unwrap_or_default());
        self.0.void(payment).await
    }
    fn parse_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookParseError> {
        self.0.parse_webhook(signature, body, now)
    }
}

fn sandbox(platform: &Platform) -> Sandbox {
    Sandbox::new(SandboxSettings {
        webhook_url: format!("{}/v1/webhooks/sandbox", platform.payment_base),
        secret: support::WEBHOOK_SECRET.to_vec(),
        latency: Duration::from_millis(20),
        failure_rate: 0.0,
        duplicate_rate: 0.0,
    })
}

#[async_trait::async_trait]
impl Provider for RefundsDown {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn authorize(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<String, ProviderError> {
        self.0.authorize(payment, method).await
    }
    async fn capture(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        self.0.capture(payment).await
    }
    async fn refund(&self, _: &ProviderPayment) -> Result<(), ProviderError> {
        Err(ProviderError::Unavailable("502 from the gateway".into()))
    }
    async fn void(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        self.0.void(payment).await
    }
    fn parse_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookParseError> {
        self.0.parse_webhook(signature, body, now)
    }
}

fn owed(stuck: &[(uuid::Uuid, urr_payment::state::PaymentStatus, bool)], id: &str) -> bool {
    stuck.iter().any(|(p, _, _)| p.to_string() == id)
}

fn now_stuck() -> ReconcilerSettings {
    ReconcilerSettings {
        stuck_after: Duration::ZERO,
        ..ReconcilerSettings::default()
    }
}

#[sqlx::test(migrations = false)]
async fn a_refund_whose_provider_fails_after_the_void_is_finished_by_the_reconciler(pool: PgPool) {
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let (_, id) = platform.paid("lena", &["a:1:1", "a:1:2"]).await;
    platform
        .wait_for("lena", &id, |p| p["reservationId"].is_string())
        .await;
    // The same payment service, its provider's refund endpoint down.
    let mut down = platform.payments.clone();
    down.providers = Providers::default().with(Arc::new(RefundsDown(sandbox(&platform))));
    let answer = down.refund("lena", &id, None).await;
    assert!(
        matches!(answer, Err(PaymentError::ProviderUnavailable(_))),
        "{answer:?}"
    );
    // The ticket service went first: the tickets are void, the money is
    // still taken, and the payment says it owes the refund.
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        0
    );
    let payment = platform.payment("lena", &id).await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert!(
        reasons(&payment).contains(&"refund requested by the buyer".to_owned()),
        "{payment}"
    );
    assert!(
        owed(&platform.payments.stuck(0.0).await.expect("stuck"), &id),
        "the reconciler must see the owed refund"
    );
    // The provider is back: the reconciler finishes the refund.
    reconciler::pass(&platform.payments, &now_stuck()).await;
    let payment = platform
        .wait_for("lena", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    assert!(!owed(
        &platform.payments.stuck(0.0).await.expect("stuck"),
        &id
    ));
    platform.finish().await;
}

// Issue 21: a refund of one ticket whose provider call fails after the
// ticket service voided it stays owed, and the reconciler gives exactly
// that ticket's share back once the provider answers, not more.
#[sqlx::test(migrations = false)]
async fn a_partial_refund_whose_provider_fails_after_the_void_is_finished_by_the_reconciler(
    pool: PgPool,
) {
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let (_, id) = platform.paid("nils", &["a:3:1", "a:3:2"]).await;
    platform
        .wait_for("nils", &id, |p| p["reservationId"].is_string())
        .await;
    let ticket: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tickets WHERE seat_id = 'a:3:2'")
        .fetch_one(&platform.desk.pool)
        .await
        .expect("ticket");
    let mut down = platform.payments.clone();
    down.providers = Providers::default().with(Arc::new(RefundsDown(sandbox(&platform))));
    let answer = down
        .refund("nils", &id, Some(vec![ticket.to_string()]))
        .await;
    assert!(
        matches!(answer, Err(PaymentError::ProviderRefused(_))),
        "{answer:?}"
    );
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        1,
        "the ticket service went first"
    );
    let payment = platform.payment("nils", &id).await;
    assert_eq!(payment["refunds"][0]["status"], "owed", "{payment}");
    assert_eq!(payment["refunds"][0]["amountMinor"], 50_000, "{payment}");
    assert_eq!(payment["refundedMinor"], 0, "{payment}");

    reconciler::pass(&platform.payments, &now_stuck()).await;
    let payment = platform
        .wait_for("nils", &id, |p| p["refunds"][0]["status"] == "refunded")
        .await;
    assert_eq!(payment["refunds"][0]["status"], "refunded", "{payment}");
    assert_eq!(payment["refundedMinor"], 50_000, "{payment}");
    assert_eq!(payment["status"], "captured", "{payment}");
    // Driven again, a settled part moves nothing.
    reconciler::pass(&platform.payments, &now_stuck()).await;
    assert_eq!(platform.payment("nils", &id).await["refundedMinor"], 50_000);
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_refund_asked_while_the_ticket_service_is_down_is_finished_later(pool: PgPool) {
    let mut platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let (_, id) = platform.paid("mona", &["a:2:1"]).await;
    platform
        .wait_for("mona", &id, |p| p["reservationId"].is_string())
        .await;
    platform.stop_ticket().await;
    let (status, problem) = platform
        .post(
            "mona",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        platform.payment("mona", &id).await["status"],
        "captured",
        "nothing moved yet"
    );
    platform.start_ticket().await;
    // Past the breaker's open time, so the reconciler's call goes through.
    tokio::time::sleep(Duration::from_millis(400)).await;
    reconciler::pass(&platform.payments, &now_stuck()).await;
    let payment = platform
        .wait_for("mona", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(
        payment["status"], "refunded",
        "the buyer's refund is owed until done: {payment}"
    );
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        0
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_refund_cancel_the_ticket_service_rejects_for_its_token_is_no_refusal(pool: PgPool) {
    let mut platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let (_, id) = platform.paid("olga", &["a:4:1"]).await;
    platform
        .wait_for("olga", &id, |p| p["reservationId"].is_string())
        .await;
    // The ticket service rotated its service token; the payment service
    // has the old one.
    platform
        .restart_ticket_with_token("rotated-service-token-0123456789")
        .await;
    let (status, problem) = platform
        .post(
            "olga",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 503, "a 401 is no verdict on the tickets: {problem}");
    assert!(owed(
        &platform.payments.stuck(0.0).await.expect("stuck"),
        &id
    ));
    platform
        .restart_ticket_with_token(support::SERVICE_TOKEN)
        .await;
    reconciler::pass(&platform.payments, &now_stuck()).await;
    let payment = platform
        .wait_for("olga", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn an_authorization_reaching_a_canceled_payment_is_voided_never_captured(pool: PgPool) {
    // The sandbox's own verdicts come after the test is over.
    let platform = Platform::start(pool, quick_client(), Duration::from_secs(60)).await;
    let (_, id) = platform
        .confirmed("nora", &["a:3:1"], "pm_sandbox_ok")
        .await;
    // The buyer cancels while the provider is still answering.
    let (status, canceled) = platform
        .post(
            "nora",
            &format!("/v1/payments/{id}/cancel"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{canceled}");
    let provider_ref: String =
        sqlx::query_scalar("SELECT provider_ref FROM payments WHERE id = $1")
            .bind(uuid::Uuid::parse_str(&id).expect("uuid"))
            .fetch_one(&platform.payments.pool)
            .await
            .expect("provider ref");
    // The provider's authorization arrives (through a provider that
    // remembers what it is asked to void).
    let voids = Arc::new(Voids::default());
    let mut payments = platform.payments.clone();
    payments.providers =
        Providers::default().with(Arc::new(CountingVoids(sandbox(&platform), voids.clone())));
    let authorized = json!({
        "id": "evt_late_authorization", "kind": "payment_authorized", "paymentId": id,
        "providerRef": provider_ref, "amountMinor": 50_000, "currency": "KRW",
        "occurredAt": urr_service_common::unix_now()
    });
    let body = serde_json::to_vec(&authorized).expect("json");
    let signature = platform.sign(&body);
    let outcome = payments
        .webhook("sandbox", Some(&signature), &body)
        .await
        .expect("webhook");
    assert_eq!(
        outcome,
        urr_payment::flow::WebhookOutcome::LateAuthorization,
        "never dropped as stale"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while voids.0.lock().expect("voids").is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*voids.0.lock().expect("voids"), vec![provider_ref]);
    let payment = platform.payment("nora", &id).await;
    assert_eq!(payment["status"], "canceled", "{payment}");
    assert!(
        reasons(&payment).contains(
            &"authorized by the provider after the payment was canceled; voiding the authorization"
                .to_owned()
        ),
        "{payment}"
    );
    assert_eq!(
        platform
            .payment_count("SELECT count(*) FROM payments WHERE captured_at IS NOT NULL")
            .await,
        0,
        "nothing captured"
    );
    platform.finish().await;
}

/// An intent the buyer never confirmed is abandoned once `abandon_after`
/// has passed since it was made, however often the reconciler looked at it
/// meanwhile (each pass moves `updated_at`, which the age used to be
/// measured from, so a reconciler faster than `abandon_after` never
/// abandoned anything and the hold's one live payment slot stayed taken).
#[sqlx::test(migrations = false)]
async fn an_unconfirmed_intent_is_abandoned_though_the_reconciler_looks_often(pool: PgPool) {
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let hold = platform.hold("otto", &["a:4:1"]).await;
    let (status, created) = platform
        .post("otto", "/v1/payments", json!({"holdId": hold}), None)
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["paymentId"].as_str().expect("id").to_owned();
    let settings = ReconcilerSettings {
        stuck_after: Duration::ZERO,
        abandon_after: Duration::from_millis(1200),
        ..ReconcilerSettings::default()
    };
    for _ in 0..8 {
        reconciler::pass(&platform.payments, &settings).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let payment = platform.payment("otto", &id).await;
    assert_eq!(payment["status"], "canceled", "{payment}");
    assert!(
        reasons(&payment).contains(&"abandoned".to_owned()),
        "{payment}"
    );
    platform.finish().await;
}
