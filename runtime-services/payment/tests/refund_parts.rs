//! Refunds of some tickets (issue 21 item 4, "partial refunds per ticket"),
//! against the real ticket service and PostgreSQL with the sandbox gateway:
//! a buyer refunds one ticket of two and gets its share back, the place goes
//! back on sale, a retry moves nothing more, a ticket is never refunded twice,
//! and refunding the rest ends the payment as `refunded` with every minor
//! unit back.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{Platform, reasons};
use urr_payment::refund_policy::BuyerRefunds;

const PRICE: i64 = 50_000;

async fn refund(platform: &Platform, user: &str, id: &str, body: Value) -> (u16, Value) {
    platform
        .post(user, &format!("/v1/payments/{id}/refund"), body, None)
        .await
}

async fn tickets_of(platform: &Platform, seat: &str) -> String {
    sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM tickets WHERE seat_id = $1")
        .bind(seat)
        .fetch_one(&platform.desk.pool)
        .await
        .expect("ticket")
        .to_string()
}

async fn seat_status(platform: &Platform, seat: &str) -> String {
    sqlx::query_scalar("SELECT status FROM seats WHERE seat_id = $1")
        .bind(seat)
        .fetch_one(&platform.desk.pool)
        .await
        .expect("seat")
}

#[sqlx::test(migrations = false)]
async fn one_ticket_of_two_is_refunded_by_its_share_then_the_rest(pool: PgPool) {
    let platform = Platform::start_with_refund_policy(pool, BuyerRefunds::Always).await;
    let (_, id) = platform.paid("pia", &["a:1:1", "a:1:2"]).await;
    let payment = platform
        .wait_for("pia", &id, |p| p["reservationId"].is_string())
        .await;
    assert_eq!(payment["amountMinor"], 2 * PRICE, "{payment}");
    assert_eq!(payment["refundedMinor"], 0, "{payment}");
    let first = tickets_of(&platform, "a:1:1").await;
    let second = tickets_of(&platform, "a:1:2").await;

    let (status, body) = refund(&platform, "pia", &id, json!({"ticketIds": [first]})).await;
    assert_eq!(status, 202, "{body}");
    let payment = platform
        .wait_for("pia", &id, |p| p["refunds"][0]["status"] == "refunded")
        .await;
    assert_eq!(payment["refunds"][0]["status"], "refunded", "{payment}");
    assert_eq!(payment["refunds"][0]["amountMinor"], PRICE, "{payment}");
    assert_eq!(payment["refundedMinor"], PRICE, "{payment}");
    assert_eq!(payment["status"], "captured", "half of it is still paid");
    assert_eq!(seat_status(&platform, "a:1:1").await, "available");
    assert_eq!(seat_status(&platform, "a:1:2").await, "sold");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        1
    );

    // The same request again (a retry after a lost answer) moves nothing.
    let (status, body) = refund(&platform, "pia", &id, json!({"ticketIds": [first]})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["refundedMinor"], PRICE, "{body}");
    assert_eq!(body["refunds"].as_array().map(Vec::len), Some(1), "{body}");

    // A refund naming a refunded ticket beside a valid one is refused whole.
    let (status, body) = refund(
        &platform,
        "pia",
        &id,
        json!({"ticketIds": [first.clone(), second.clone()]}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "https://urr.dev/problems/refund-refused");
    assert_eq!(seat_status(&platform, "a:1:2").await, "sold");
    let payment = platform.payment("pia", &id).await;
    assert_eq!(payment["refunds"][1]["status"], "refused", "{payment}");
    assert_eq!(payment["refundedMinor"], PRICE, "{payment}");

    // No body: every ticket left, which is the second one.
    let (status, body) = refund(&platform, "pia", &id, json!({})).await;
    assert_eq!(status, 202, "{body}");
    let payment = platform
        .wait_for("pia", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    assert_eq!(payment["refundedMinor"], 2 * PRICE, "{payment}");
    assert_eq!(seat_status(&platform, "a:1:2").await, "available");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations WHERE status = 'canceled'")
            .await,
        1,
        "the last ticket refunded ends the reservation"
    );
    let reasons = reasons(&payment);
    for expected in [
        "refund of 1 ticket(s) owed",
        "refunded 50000 KRW for 1 ticket(s) by the provider",
        "refund of 2 ticket(s) refused",
        "refund of the tickets left owed",
        "refunded in parts",
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(expected)),
            "{expected:?} missing from {reasons:?}"
        );
    }
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn bad_ticket_lists_are_refused_before_anything_moves(pool: PgPool) {
    let platform = Platform::start_with_refund_policy(pool, BuyerRefunds::Always).await;
    let (_, id) = platform.paid("quinn", &["a:2:1", "a:2:2"]).await;
    platform
        .wait_for("quinn", &id, |p| p["reservationId"].is_string())
        .await;
    for (body, status, problem) in [
        (json!({"ticketIds": []}), 400, "bad-request"),
        (json!({"ticketIds": ["has space"]}), 400, "bad-request"),
        (json!({"ticketIds": "one"}), 400, "bad-request"),
        (json!({"tickets": ["x"]}), 400, "bad-request"),
        // Not a ticket of this payment: the ticket service's verdict.
        (
            json!({"ticketIds": [uuid::Uuid::new_v4().to_string()]}),
            409,
            "refund-refused",
        ),
    ] {
        let (got, answer) = refund(&platform, "quinn", &id, body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(
            answer["type"],
            format!("https://urr.dev/problems/{problem}"),
            "{body} → {answer}"
        );
    }
    let payment = platform.payment("quinn", &id).await;
    assert_eq!(payment["refundedMinor"], 0, "{payment}");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        2
    );
    platform.finish().await;
}
