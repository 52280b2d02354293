//! The Event's refund policy (issue 21 item 4): a buyer refunds within the
//! window and not after it; the organiser refunds at any time, with a
//! reason, on the internal listener only; the reason is the transition's.

mod support;

use chrono::{Duration as Span, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{Platform, SERVICE_TOKEN, reasons};
use urr_payment::refund_policy::BuyerRefunds;

async fn refund(platform: &Platform, user: &str, id: &str) -> (u16, Value) {
    platform
        .post(user, &format!("/v1/payments/{id}/refund"), json!({}), None)
        .await
}

async fn organiser_refund(
    platform: &Platform,
    base: &str,
    id: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = platform
        .http
        .post(format!("{base}/internal/payments/{id}/refund"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[sqlx::test(migrations = false)]
async fn a_buyer_refunds_within_the_window(pool: PgPool) {
    let until = Utc::now() + Span::hours(1);
    let platform = Platform::start_with_refund_policy(pool, BuyerRefunds::Until(until)).await;
    let (_, id) = platform.paid("ines", &["a:1:1"]).await;
    let (status, body) = refund(&platform, "ines", &id).await;
    assert_eq!(status, 202, "{body}");
    let payment = platform
        .wait_for("ines", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    assert!(
        reasons(&payment)
            .iter()
            .any(|r| r.starts_with("refund requested by the buyer (within the window")),
        "{payment}"
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn after_the_window_the_buyer_is_refused_and_keeps_the_tickets(pool: PgPool) {
    let until = Utc::now() - Span::seconds(1);
    let platform = Platform::start_with_refund_policy(pool, BuyerRefunds::Until(until)).await;
    let (_, id) = platform.paid("jonas", &["a:1:2"]).await;
    // Captured comes before the tickets (the confirm follows the capture).
    let payment = platform
        .wait_for("jonas", &id, |p| p["reservationId"].is_string())
        .await;
    assert!(payment["reservationId"].is_string(), "{payment}");
    let (status, body) = refund(&platform, "jonas", &id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["type"],
        "https://urr.dev/problems/refund-window-closed"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ask the organiser"),
        "{body}"
    );
    let payment = platform.payment("jonas", &id).await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        1,
        "a refused refund voids nothing"
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn the_organiser_refunds_any_time_with_a_reason_on_the_internal_port(pool: PgPool) {
    let platform = Platform::start_with_refund_policy(pool, BuyerRefunds::Never).await;
    let (_, id) = platform.paid("kira", &["a:1:3"]).await;
    let (status, body) = refund(&platform, "kira", &id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["type"],
        "https://urr.dev/problems/refund-window-closed"
    );

    let internal = platform.payment_internal_base.clone();
    let reason = json!({"reason": "show canceled"});
    // Not on the public listener, not without the token, not without a reason.
    let (status, _) = organiser_refund(
        &platform,
        &platform.payment_base,
        &id,
        Some(SERVICE_TOKEN),
        reason.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = organiser_refund(&platform, &internal, &id, None, reason.clone()).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) =
        organiser_refund(&platform, &internal, &id, Some("wrong"), reason.clone()).await;
    assert_eq!(status, 401, "{body}");
    for bad in [
        json!({"reason": "  "}),
        json!({"reason": "a\nb"}),
        json!({}),
    ] {
        let (status, body) =
            organiser_refund(&platform, &internal, &id, Some(SERVICE_TOKEN), bad).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["type"], "https://urr.dev/problems/bad-request",
            "{body}"
        );
    }
    assert_eq!(platform.payment("kira", &id).await["status"], "captured");

    let (status, body) =
        organiser_refund(&platform, &internal, &id, Some(SERVICE_TOKEN), reason).await;
    assert_eq!(status, 202, "{body}");
    let payment = platform
        .wait_for("kira", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    assert!(
        reasons(&payment).contains(&"refund by the organiser: show canceled".to_owned()),
        "{payment}"
    );
    // An unknown payment is a documented 404.
    let (status, body) = organiser_refund(
        &platform,
        &internal,
        &uuid::Uuid::new_v4().to_string(),
        Some(SERVICE_TOKEN),
        json!({"reason": "show canceled"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    platform.finish().await;
}
