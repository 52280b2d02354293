//! A payment through the whole flow with the Stripe provider: the payment
//! service authorizes, captures and refunds at stripe-mock (Stripe's own
//! mock server, `URR_STRIPE_MOCK_URL`), and Stripe's verdicts arrive at
//! `/v1/webhooks/stripe` signed the way Stripe signs them (stripe-mock
//! sends none, so the test plays Stripe's webhook sender), with a real
//! ticket service, PostgreSQL and Redis.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::Platform;
use urr_payment::provider::stripe::{self, Stripe, StripeSettings};
use urr_payment::ticket_client::ClientSettings;

const WHSEC: &[u8] = b"whsec_urr_flow_test_0123456789";

async fn platform(pool: PgPool) -> Platform {
    let api_base = std::env::var("URR_STRIPE_MOCK_URL").unwrap_or_else(|_| {
        panic!("URR_STRIPE_MOCK_URL is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"`")
    });
    Platform::start_with_provider(pool, ClientSettings::default(), 10, move |_| {
        let provider = Stripe::new(StripeSettings {
            api_base,
            secret_key: "sk_test_urr".to_owned(),
            webhook_secrets: vec![WHSEC.to_vec()],
            tolerance_seconds: 300,
            timeout: Duration::from_secs(5),
        });
        (Arc::new(provider), stripe::NAME)
    })
    .await
}

/// A Stripe event delivery for the payment intent `intent` of URR payment `id`.
fn event(kind: &str, intent: &str, id: &str, status: &str) -> Value {
    event_of(kind, intent, id, status, 50_000)
}

/// [`event`] for a payment of `amount` won.
fn event_of(kind: &str, intent: &str, id: &str, status: &str, amount: i64) -> Value {
    json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event", "type": kind, "api_version": "2024-06-20",
        "created": urr_service_common::unix_now(), "livemode": false,
        "data": {"object": {
            "id": intent, "object": "payment_intent", "amount": amount, "currency": "krw",
            "status": status, "capture_method": "manual",
            "metadata": {"urr_payment_id": id}
        }}
    })
}

async fn deliver(platform: &Platform, body: &Value, signature: Option<String>) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let signature = signature.unwrap_or_else(|| {
        stripe::signature::sign(&[WHSEC], urr_service_common::unix_now(), &bytes)
    });
    platform
        .deliver(stripe::NAME, stripe::signature::HEADER, &signature, bytes)
        .await
}

async fn provider_ref(platform: &Platform, id: &str) -> String {
    sqlx::query_scalar::<_, Option<String>>("SELECT provider_ref FROM payments WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&platform.payments.pool)
        .await
        .expect("payment row")
        .expect("the intent's id is recorded at authorization")
}

#[sqlx::test(migrations = false)]
async fn a_stripe_payment_is_captured_and_ticketed_then_refunded(pool: PgPool) {
    let platform = platform(pool).await;
    let (_, id) = platform
        .confirmed("stripe-buyer", &["a:1:1"], "pm_card_visa")
        .await;
    let intent = provider_ref(&platform, &id).await;
    assert!(intent.starts_with("pi_"), "{intent}");

    // Stripe: the card is authorized; URR captures at Stripe.
    let (status, body) = deliver(
        &platform,
        &event(
            "payment_intent.amount_capturable_updated",
            &intent,
            &id,
            "requires_capture",
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    // Stripe: the capture succeeded; URR confirms the reservation.
    let (status, body) = deliver(
        &platform,
        &event("payment_intent.succeeded", &intent, &id, "succeeded"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let payment = platform
        .wait_for("stripe-buyer", &id, |p| {
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

    // The buyer refunds: URR asks Stripe, Stripe's refund event settles it.
    let (status, body) = platform
        .post(
            "stripe-buyer",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let refund = json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event", "type": "refund.updated", "created": urr_service_common::unix_now(),
        "data": {"object": {"id": "re_1", "object": "refund", "amount": 50_000, "currency": "krw",
                            "status": "succeeded", "payment_intent": intent,
                            "metadata": {"urr_payment_id": id}}}
    });
    let (status, body) = deliver(&platform, &refund, None).await;
    assert_eq!(status, 200, "{body}");
    let payment = platform
        .wait_for("stripe-buyer", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn forged_stale_and_foreign_stripe_deliveries_change_nothing(pool: PgPool) {
    let platform = platform(pool).await;
    let (_, id) = platform
        .confirmed("wary-buyer", &["a:2:1"], "pm_card_visa")
        .await;
    let intent = provider_ref(&platform, &id).await;
    let authorized = event(
        "payment_intent.amount_capturable_updated",
        &intent,
        &id,
        "requires_capture",
    );
    let bytes = serde_json::to_vec(&authorized).expect("json");
    let now = urr_service_common::unix_now();

    let forged = stripe::signature::sign(&[b"whsec_not_ours_0123456789"], now, &bytes);
    let (status, body) = deliver(&platform, &authorized, Some(forged)).await;
    assert_eq!(status, 401, "{body}");
    let stale = stripe::signature::sign(&[WHSEC], now - 3_600, &bytes);
    let (status, body) = deliver(&platform, &authorized, Some(stale)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/webhook-stale")),
        "{body}"
    );
    // Genuine, but nothing URR acts on: acknowledged so Stripe stops retrying.
    let customer = json!({"id": "evt_c", "object": "event", "type": "customer.created", "created": now,
                          "data": {"object": {"id": "cus_1", "object": "customer", "amount": 0, "currency": "usd"}}});
    let (status, body) = deliver(&platform, &customer, None).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );

    let payment = platform.payment("wary-buyer", &id).await;
    assert_ne!(payment["status"], "authorized", "{payment}");
    assert_ne!(payment["status"], "captured", "{payment}");
    platform.finish().await;
}

// Issue 21 item 4: a refund of one ticket of two asks Stripe for that
// ticket's share (one Refund per part, its id in the idempotency key);
// stripe-mock answers the Refund `succeeded`, which settles the part, and
// Stripe's `refund.updated` for it that follows changes nothing more.
#[sqlx::test(migrations = false)]
async fn one_ticket_of_two_is_refunded_at_stripe_by_its_share(pool: PgPool) {
    let platform = platform(pool).await;
    let (_, id) = platform
        .confirmed("stripe-pair", &["a:3:1", "a:3:2"], "pm_card_visa")
        .await;
    let intent = provider_ref(&platform, &id).await;
    for (kind, status) in [
        (
            "payment_intent.amount_capturable_updated",
            "requires_capture",
        ),
        ("payment_intent.succeeded", "succeeded"),
    ] {
        let (got, body) = deliver(
            &platform,
            &event_of(kind, &intent, &id, status, 100_000),
            None,
        )
        .await;
        assert_eq!(got, 200, "{body}");
    }
    platform
        .wait_for("stripe-pair", &id, |p| p["reservationId"].is_string())
        .await;
    let ticket: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tickets WHERE seat_id = 'a:3:1'")
        .fetch_one(&platform.desk.pool)
        .await
        .expect("ticket");
    let (status, body) = platform
        .post(
            "stripe-pair",
            &format!("/v1/payments/{id}/refund"),
            json!({"ticketIds": [ticket.to_string()]}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["refundedMinor"], 50_000,
        "settled by Stripe's answer: {body}"
    );
    assert_eq!(body["refunds"][0]["status"], "refunded", "{body}");
    assert_eq!(body["status"], "captured", "{body}");

    let refund = json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event", "type": "refund.updated", "created": urr_service_common::unix_now(),
        "data": {"object": {"id": "re_part", "object": "refund", "amount": 50_000, "currency": "krw",
                            "status": "succeeded", "payment_intent": intent,
                            "metadata": {"urr_payment_id": id}}}
    });
    let (status, body) = deliver(&platform, &refund, None).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("stale")),
        "{body}"
    );
    let payment = platform.payment("stripe-pair", &id).await;
    assert_eq!(payment["refundedMinor"], 50_000, "{payment}");
    assert_eq!(payment["status"], "captured", "{payment}");
    platform.finish().await;
}
