//! Payments through the whole flow with the Toss provider, against the
//! contract fake of Toss's API (`support/toss_fake.rs`), with a real ticket
//! service, PostgreSQL and Redis: the widget flow confirmed and captured at
//! once, a declined card, a refund and a partial cancel, every failure class
//! left for the reconciler (which asks Toss and never gives up on money that
//! may have moved), and unsigned webhooks trusted only through the API.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::Platform;
use support::toss_fake::{SECRET_KEY, Script, TossFake};
use urr_payment::provider::toss::{self, Toss, TossSettings};
use urr_payment::provider::{ProviderError, ProviderPayment};
use urr_payment::reconciler::{self, ReconcilerSettings};
use urr_payment::ticket_client::ClientSettings;

const PRICE: i64 = 50_000;

fn toss_client(fake: &TossFake, key: &str) -> Toss {
    Toss::new(TossSettings {
        api_base: fake.base.clone(),
        secret_key: key.to_owned(),
        // Short, so the fake's hang is a timeout.
        timeout: Duration::from_millis(800),
    })
}

async fn platform_with_key(pool: PgPool, key: &str) -> (Platform, TossFake) {
    let fake = TossFake::start().await;
    let provider = toss_client(&fake, key);
    let platform = Platform::start_with_provider(pool, ClientSettings::default(), 10, move |_| {
        (Arc::new(provider), toss::NAME)
    })
    .await;
    (platform, fake)
}

async fn platform(pool: PgPool) -> (Platform, TossFake) {
    platform_with_key(pool, SECRET_KEY).await
}

/// A hold and a payment for it: the payment id is the `orderId` the
/// widget is opened with.
async fn intent(platform: &Platform, user: &str, seat: &str) -> String {
    intent_for(platform, user, &[seat]).await
}

/// [`intent`] for a hold of `seats`.
async fn intent_for(platform: &Platform, user: &str, seats: &[&str]) -> String {
    let hold = platform.hold(user, seats).await;
    let (status, created) = platform
        .post(user, "/v1/payments", json!({"holdId": hold}), None)
        .await;
    assert_eq!(status, 201, "{created}");
    created["paymentId"].as_str().expect("id").to_owned()
}

async fn confirm(platform: &Platform, user: &str, id: &str, key: &str) -> (u16, Value) {
    platform
        .post(
            user,
            &format!("/v1/payments/{id}/confirm"),
            json!({"paymentMethod": key}),
            None,
        )
        .await
}

fn stuck_now(abandon_after: Duration) -> ReconcilerSettings {
    ReconcilerSettings {
        stuck_after: Duration::ZERO,
        abandon_after,
        ..ReconcilerSettings::default()
    }
}

async fn valid_tickets(platform: &Platform) -> i64 {
    platform
        .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
        .await
}

#[sqlx::test(migrations = false)]
async fn a_toss_payment_is_confirmed_captured_and_ticketed_then_refunded(pool: PgPool) {
    let (platform, fake) = platform(pool).await;
    let id = intent(&platform, "toss-buyer", "a:1:1").await;
    let key = fake.authorise(&id, PRICE);

    let (status, body) = confirm(&platform, "toss-buyer", &id, &key).await;
    assert_eq!(status, 202, "{body}");
    let payment = platform
        .wait_for("toss-buyer", &id, |p| {
            p["status"] == "captured" && !p["reservationId"].is_null()
        })
        .await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert_eq!(valid_tickets(&platform).await, 1);
    // The contract: Basic auth with the secret key, URR's own amount and id.
    let confirms = fake.seen("POST", "/v1/payments/confirm");
    assert_eq!(confirms.len(), 1);
    assert!(confirms[0].authorized);
    assert_eq!(
        confirms[0].body,
        json!({"paymentKey": key, "orderId": id, "amount": PRICE})
    );
    assert_eq!(fake.payment(&key).status, "DONE");

    let (status, body) = platform
        .post(
            "toss-buyer",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let payment = platform
        .wait_for("toss-buyer", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    assert_eq!(fake.payment(&key).status, "CANCELED");
    assert_eq!(fake.payment(&key).balance, 0);
    let cancels = fake.seen("POST", &format!("/v1/payments/{key}/cancel"));
    assert_eq!(cancels.len(), 1);
    assert_eq!(
        cancels[0].idempotency_key.as_deref(),
        Some(format!("urr-{id}-refund").as_str())
    );
    assert!(cancels[0].body["cancelReason"].is_string());
    assert!(
        cancels[0].body.get("cancelAmount").is_none(),
        "a full cancel"
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_refund_whose_answer_is_lost_is_settled_by_asking_toss(pool: PgPool) {
    let (platform, fake) = platform(pool).await;
    let id = intent(&platform, "refunder", "a:7:1").await;
    let key = fake.authorise(&id, PRICE);
    let (status, _) = confirm(&platform, "refunder", &id, &key).await;
    assert_eq!(status, 202);
    platform
        .wait_for("refunder", &id, |p| !p["reservationId"].is_null())
        .await;
    // Toss cancels, and the answer never arrives.
    fake.state().cancel_script = Some(Script::HangAfter(Duration::from_secs(2)));
    let (status, body) = platform
        .post(
            "refunder",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        platform.payment("refunder", &id).await["status"],
        "captured"
    );
    assert_eq!(fake.payment(&key).status, "CANCELED");
    // The refund is owed; asked, Toss says it is done.
    reconciler::pass(&platform.payments, &stuck_now(Duration::from_secs(600))).await;
    let payment = platform
        .wait_for("refunder", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    // Toss cancelled once.
    assert_eq!(fake.payment(&key).cancels.len(), 1);
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_declined_card_fails_the_payment_with_tosss_code(pool: PgPool) {
    let (platform, fake) = platform(pool).await;
    let id = intent(&platform, "declined", "a:2:1").await;
    let key = fake.authorise_declining(&id, PRICE, "REJECT_CARD_PAYMENT");
    let (status, body) = confirm(&platform, "declined", &id, &key).await;
    assert_eq!(status, 422, "{body}");
    let payment = platform.payment("declined", &id).await;
    assert_eq!(payment["status"], "failed", "{payment}");
    assert!(
        payment["failureReason"]
            .as_str()
            .is_some_and(|r| r.contains("REJECT_CARD_PAYMENT")),
        "{payment}"
    );
    // A key that is not a paymentKey never reaches Toss.
    let other = intent(&platform, "declined", "a:2:2").await;
    let (status, body) = confirm(&platform, "declined", &other, "4242424242424242").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fake.seen("POST", "/v1/payments/confirm").len(), 1);
    platform.finish().await;
}

/// The failure classes of a confirm: Toss refused with a temporary code
/// (nothing moved), Toss took the money and then answered an error, the
/// answer timed out, the answer was garbage, the answer's status is one URR
/// does not know, and URR's key is wrong. Each leaves the payment created
/// (503 to the buyer), and the reconciler settles it by asking Toss.
#[sqlx::test(migrations = false)]
async fn every_confirm_failure_is_settled_by_asking_toss(pool: PgPool) {
    let (platform, fake) = platform(pool).await;
    let settings = stuck_now(Duration::from_secs(600));
    for (n, script) in [
        Script::Refuse(400, "PROVIDER_ERROR"),
        Script::Refuse(500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING"),
        Script::FailAfter(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
        Script::HangAfter(Duration::from_secs(2)),
        Script::GarbageAfter,
        Script::StatusAfter("SOMETHING_TOSS_ADDS_LATER"),
    ]
    .into_iter()
    .enumerate()
    {
        let user = format!("unlucky-{n}");
        let id = intent(&platform, &user, &format!("a:3:{}", n + 1)).await;
        let key = fake.authorise(&id, PRICE);
        fake.state().confirm_script = Some(script.clone());
        let (status, body) = confirm(&platform, &user, &id, &key).await;
        assert_eq!(status, 503, "{script:?}: {body}");
        assert_eq!(
            platform.payment(&user, &id).await["status"],
            "created",
            "{script:?}"
        );
        reconciler::pass(&platform.payments, &settings).await;
        let payment = platform
            .wait_for(&user, &id, |p| {
                p["status"] == "captured" && !p["reservationId"].is_null()
            })
            .await;
        assert_eq!(payment["status"], "captured", "{script:?}: {payment}");
        assert_eq!(fake.payment(&key).status, "DONE", "{script:?}");
    }
    assert_eq!(valid_tickets(&platform).await, 6);
    // Whatever the path, Toss confirmed each payment once.
    let confirms = fake.seen("POST", "/v1/payments/confirm");
    assert!(confirms.iter().all(|c| c.authorized));
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_payment_toss_cannot_answer_for_is_never_abandoned(pool: PgPool) {
    let (platform, fake) = platform(pool).await;
    let id = intent(&platform, "patient", "a:4:1").await;
    let key = fake.authorise(&id, PRICE);
    // Toss took the money; its answer was lost; now its queries fail, then
    // answer a status URR does not know.
    fake.state().confirm_script = Some(Script::FailAfter(500, "COMMON_ERROR"));
    let (status, _) = confirm(&platform, "patient", &id, &key).await;
    assert_eq!(status, 503);
    let give_up_at_once = stuck_now(Duration::ZERO);
    fake.state().queries_down = true;
    reconciler::pass(&platform.payments, &give_up_at_once).await;
    assert_eq!(platform.payment("patient", &id).await["status"], "created");
    {
        let mut state = fake.state();
        state.queries_down = false;
        state.query_status = Some("SOMETHING_TOSS_ADDS_LATER");
    }
    reconciler::pass(&platform.payments, &give_up_at_once).await;
    assert_eq!(platform.payment("patient", &id).await["status"], "created");
    // Toss answers again: the money is recorded and the ticket issued.
    fake.state().query_status = None;
    reconciler::pass(&platform.payments, &give_up_at_once).await;
    let payment = platform
        .wait_for("patient", &id, |p| {
            p["status"] == "captured" && !p["reservationId"].is_null()
        })
        .await;
    assert_eq!(payment["status"], "captured", "{payment}");

    // A buyer who authenticated and never came back is given up on: Toss
    // says the payment was never confirmed.
    let walked = intent(&platform, "walked-away", "a:4:2").await;
    let key = fake.authorise(&walked, PRICE);
    fake.state().confirm_script = Some(Script::Refuse(400, "PROVIDER_ERROR"));
    let (status, _) = confirm(&platform, "walked-away", &walked, &key).await;
    assert_eq!(status, 503);
    reconciler::pass(&platform.payments, &give_up_at_once).await;
    assert_eq!(
        platform.payment("walked-away", &walked).await["status"],
        "canceled"
    );
    assert_eq!(fake.payment(&key).status, "IN_PROGRESS", "never confirmed");
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_wrong_secret_key_moves_nothing_and_fails_nothing(pool: PgPool) {
    let (platform, fake) = platform_with_key(pool, "test_sk_not_the_merchants_key").await;
    let id = intent(&platform, "keyless", "a:5:1").await;
    let key = fake.authorise(&id, PRICE);
    let (status, body) = confirm(&platform, "keyless", &id, &key).await;
    assert_eq!(status, 503, "{body}");
    let confirms = fake.seen("POST", "/v1/payments/confirm");
    assert_eq!(confirms.len(), 1);
    assert!(!confirms[0].authorized);
    assert_eq!(platform.payment("keyless", &id).await["status"], "created");
    assert_eq!(fake.payment(&key).status, "IN_PROGRESS");
    platform.finish().await;
}

async fn notify(platform: &Platform, body: &Value) -> (u16, Value) {
    platform
        .deliver(
            toss::NAME,
            "urr-signature",
            "",
            serde_json::to_vec(body).expect("json"),
        )
        .await
}

#[sqlx::test(migrations = false)]
async fn webhooks_are_believed_only_through_tosss_api(pool: PgPool) {
    let (platform, fake) = platform(pool).await;
    let id = intent(&platform, "hooked", "a:6:1").await;
    let key = fake.authorise(&id, PRICE);
    // A forged delivery claims the payment is done; Toss says it is not.
    let mut forged = fake.payment(&key).object();
    forged["status"] = json!("DONE");
    let delivery = json!({"eventType": "PAYMENT_STATUS_CHANGED",
                          "createdAt": "2026-12-03T10:16:59.000000", "data": forged});
    let (status, body) = notify(&platform, &delivery).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );
    assert_eq!(platform.payment("hooked", &id).await["status"], "created");

    // Toss confirmed (the answer to URR was lost), then notified: asked,
    // Toss says done, and that is applied.
    fake.state().confirm_script = Some(Script::FailAfter(500, "UNKNOWN_PAYMENT_ERROR"));
    let (status, _) = confirm(&platform, "hooked", &id, &key).await;
    assert_eq!(status, 503);
    let (status, body) = notify(&platform, &delivery).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    let payment = platform
        .wait_for("hooked", &id, |p| {
            p["status"] == "captured" && !p["reservationId"].is_null()
        })
        .await;
    assert_eq!(payment["status"], "captured", "{payment}");
    // Delivered again: nothing applied twice.
    let (status, body) = notify(&platform, &delivery).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );

    // Refunded by the merchant in Toss's dashboard: the notice says so,
    // Toss confirms it when asked, and the tickets are voided.
    {
        let mut state = fake.state();
        let payment = state.payments.get_mut(&key).expect("payment");
        payment.status = "CANCELED".into();
        payment.balance = 0;
    }
    let refunded = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "x",
                          "data": fake.payment(&key).object()});
    let (status, body) = notify(&platform, &refunded).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    let payment = platform
        .wait_for("hooked", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while valid_tickets(&platform).await > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(valid_tickets(&platform).await, 0, "the tickets are voided");

    // While Toss cannot answer, the delivery is refused so Toss sends it again.
    fake.state().queries_down = true;
    let (status, _) = notify(&platform, &delivery).await;
    assert_eq!(status, 503);
    fake.state().queries_down = false;

    // Garbage, and events URR does not act on.
    let (status, _) = platform
        .deliver(toss::NAME, "urr-signature", "", b"{not json".to_vec())
        .await;
    assert_eq!(status, 400);
    let payout = json!({"eventType": "PAYOUT_STATUS_CHANGED", "createdAt": "x", "data": {}});
    let (status, body) = notify(&platform, &payout).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );
    let stranger = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "x",
                          "data": {"orderId": "not-a-urr-payment", "status": "DONE"}});
    let (status, body) = notify(&platform, &stranger).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("unknown-payment")),
        "{body}"
    );
    platform.finish().await;
}

#[tokio::test]
async fn partial_cancels_are_done_once_per_idempotency_key() {
    let fake = TossFake::start().await;
    let toss = toss_client(&fake, SECRET_KEY);
    let order = uuid::Uuid::new_v4().to_string();
    let key = fake.authorise(&order, PRICE);
    {
        let mut state = fake.state();
        let payment = state.payments.get_mut(&key).expect("payment");
        payment.status = "DONE".into();
        payment.approved = true;
    }
    let payment = ProviderPayment {
        payment_id: order.clone(),
        amount_minor: PRICE,
        currency: "KRW".into(),
        provider_ref: Some(key.clone()),
    };
    let left = toss
        .cancel_part(&payment, 20_000, "one ticket of two", "urr-part-1")
        .await
        .expect("partial cancel");
    assert_eq!(left, 30_000);
    // Retried after a lost answer: answered, not done again.
    let again = toss
        .cancel_part(&payment, 20_000, "one ticket of two", "urr-part-1")
        .await
        .expect("replayed");
    assert_eq!(again, 30_000);
    assert_eq!(fake.payment(&key).balance, 30_000);
    assert_eq!(fake.payment(&key).status, "PARTIAL_CANCELED");
    let cancel = &fake.seen("POST", "/cancel")[0];
    assert_eq!(
        cancel.body,
        json!({"cancelReason": "one ticket of two", "cancelAmount": 20_000})
    );
    // More than is left: Toss's documented refusal.
    let refused = toss
        .cancel_part(&payment, 40_000, "too much", "urr-part-2")
        .await;
    assert!(
        matches!(&refused, Err(ProviderError::Refused(d)) if d.contains("NOT_CANCELABLE_AMOUNT")),
        "{refused:?}"
    );
    // Found by its order id when the key was never recorded.
    let unrecorded = ProviderPayment {
        provider_ref: None,
        ..payment
    };
    let left = toss
        .cancel_part(&unrecorded, 30_000, "the rest", "urr-part-3")
        .await
        .expect("the rest");
    assert_eq!(left, 0);
    assert_eq!(fake.payment(&key).status, "CANCELED");
}

// Issue 21 item 4: a refund of one ticket of two is a partial cancel at
// Toss (`cancelAmount` = that ticket's share, one idempotency key per
// part), settled by Toss's answer; the rest is a second partial cancel that
// leaves nothing, and the payment is refunded.
#[sqlx::test(migrations = false)]
async fn one_ticket_of_two_is_a_partial_cancel_at_toss(pool: PgPool) {
    let (platform, fake) = platform(pool).await;
    let id = intent_for(&platform, "toss-pair", &["a:8:1", "a:8:2"]).await;
    let key = fake.authorise(&id, 2 * PRICE);
    let (status, body) = confirm(&platform, "toss-pair", &id, &key).await;
    assert_eq!(status, 202, "{body}");
    platform
        .wait_for("toss-pair", &id, |p| p["reservationId"].is_string())
        .await;
    let ticket: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tickets WHERE seat_id = 'a:8:2'")
        .fetch_one(&platform.desk.pool)
        .await
        .expect("ticket");
    let (status, body) = platform
        .post(
            "toss-pair",
            &format!("/v1/payments/{id}/refund"),
            json!({"ticketIds": [ticket.to_string()]}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["refundedMinor"], PRICE, "{body}");
    assert_eq!(body["status"], "captured", "{body}");
    let part = body["refunds"][0]["refundId"]
        .as_str()
        .expect("refund id")
        .to_owned();
    assert_eq!(fake.payment(&key).status, "PARTIAL_CANCELED");
    assert_eq!(fake.payment(&key).balance, PRICE);
    let cancels = fake.seen("POST", &format!("/v1/payments/{key}/cancel"));
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].body["cancelAmount"], PRICE);
    assert_eq!(
        cancels[0].idempotency_key.as_deref(),
        Some(format!("urr-{id}-refund-{part}").as_str())
    );
    assert_eq!(valid_tickets(&platform).await, 1);

    let (status, body) = platform
        .post(
            "toss-pair",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "refunded", "{body}");
    assert_eq!(body["refundedMinor"], 2 * PRICE, "{body}");
    assert_eq!(fake.payment(&key).status, "CANCELED");
    assert_eq!(fake.payment(&key).balance, 0);
    assert_eq!(valid_tickets(&platform).await, 0);
    platform.finish().await;
}
