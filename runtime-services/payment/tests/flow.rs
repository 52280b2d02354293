//! The payment service against real PostgreSQL, Redis and the Kafka-protocol
//! broker, with the real ticket service in-process.

mod support;

use std::time::Duration;

use prometheus_client::registry::Registry;
use serde_json::json;
use sqlx::PgPool;
use support::{Platform, env, quick_client};
use urr_payment::reconciler::{self, ReconcilerSettings};

/// The W3C example `traceparent`, as a buyer's browser or gateway sends it.
const BUYER_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A relay of the payment service's outbox, its topics created first: run
/// alone on a fresh broker (no other test made them), a send to a missing
/// topic times out and the round publishes nothing.
async fn relay(pool: &PgPool) -> urr_outbox::Relay {
    urr_outbox::kafka::ensure_topics(&env("URR_KAFKA_BROKERS"), &["payment-events"], 3, 1)
        .await
        .expect("topics");
    urr_outbox::Relay::new(
        pool.clone(),
        urr_outbox::kafka::producer_config(&env("URR_KAFKA_BROKERS")).expect("kafka connection"),
        urr_outbox::RelaySettings::default(),
        &mut Registry::default(),
    )
    .expect("relay")
}

/// Runs the ticket service's Kafka consumers until `done` holds (≤ 30 s).
async fn ticket_consumes_until(platform: &Platform, sql: &str, want: i64) {
    urr_outbox::kafka::ensure_topics(
        &env("URR_KAFKA_BROKERS"),
        &["payment-events", "transfer-events"],
        3,
        1,
    )
    .await
    .expect("topics");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = urr_ticket::consumers::spawn(&env("URR_KAFKA_BROKERS"), &platform.desk, stopped)
        .expect("consumers");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while platform.ticket_count(sql).await < want && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).expect("stop");
    for task in tasks {
        task.await.expect("consumer");
    }
}

#[sqlx::test(migrations = false)]
async fn a_paid_hold_becomes_one_reservation_and_the_kafka_copy_changes_nothing(pool: PgPool) {
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let (hold, id) = platform
        .paid_traced("alice", &["a:1:1", "a:1:2"], Some(BUYER_TRACE))
        .await;
    let payment = platform
        .wait_for("alice", &id, |p| p["reservationId"].is_string())
        .await;
    assert_eq!(
        payment["amountMinor"], 100_000,
        "priced by the ticket service"
    );
    let reservation = payment["reservationId"]
        .as_str()
        .expect("reservation")
        .to_owned();
    let states: Vec<&str> = payment["transitions"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert_eq!(states, vec!["created", "authorized", "captured"]);
    // The buyer's trace reached the ticket service over the synchronous
    // confirm: the reservation event it wrote continues it.
    let buyer_trace = BUYER_TRACE[3..35].to_owned();
    assert_eq!(
        platform.outbox_trace_ids(true, "reservation-events").await,
        vec![buyer_trace.clone()]
    );
    assert_eq!(
        platform.outbox_trace_ids(false, "payment-events").await,
        vec![buyer_trace]
    );
    // The outbox message reaches the ticket service too: nothing new happens.
    assert_eq!(
        relay(&platform.payments.pool)
            .await
            .round()
            .await
            .expect("relay")
            .published,
        1
    );
    ticket_consumes_until(
        &platform,
        "SELECT count(*) FROM processed_events WHERE consumer = 'ticket/payment-events'",
        1,
    )
    .await;
    assert_eq!(
        platform
            .ticket_count(&format!(
                "SELECT count(*) FROM reservations WHERE hold_id = '{hold}'"
            ))
            .await,
        1
    );
    assert_eq!(
        platform
            .ticket_count(&format!("SELECT count(*) FROM reservations WHERE id = '{reservation}' AND confirmed_via = 'rest'"))
            .await,
        1
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn ticket_down_at_capture_then_the_relay_restarts_and_kafka_confirms_once(pool: PgPool) {
    let mut platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let hold = platform.hold("bob", &["a:2:1"]).await;
    let (status, created) = platform
        .post("bob", "/v1/payments", json!({"holdId": hold}), Some("k-1"))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["paymentId"].as_str().expect("id").to_owned();
    // The ticket service goes down before the capture, and no relay runs
    // (it "died" after the commit, before publishing).
    platform.stop_ticket().await;
    platform
        .post(
            "bob",
            &format!("/v1/payments/{id}/confirm"),
            json!({"paymentMethod": "pm_sandbox_ok"}),
            None,
        )
        .await;
    let payment = platform
        .wait_for("bob", &id, |p| p["status"] == "captured")
        .await;
    assert_eq!(
        payment["status"], "captured",
        "the payment completes without the ticket service"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(payment["reservationId"].is_null());
    assert_eq!(
        platform
            .payment_count("SELECT count(*) FROM outbox WHERE published_at IS NULL AND topic = 'payment-events'")
            .await,
        1,
        "committed with the capture, not yet published"
    );
    // The relay starts again and publishes; the ticket service comes back
    // and its consumer confirms from Kafka.
    assert_eq!(
        relay(&platform.payments.pool)
            .await
            .round()
            .await
            .expect("relay")
            .published,
        1
    );
    platform.start_ticket().await;
    ticket_consumes_until(&platform, "SELECT count(*) FROM reservations", 1).await;
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations WHERE confirmed_via = 'kafka'")
            .await,
        1
    );
    // The trace crossed Kafka too: the payment event's trace id is the one
    // the ticket service's reservation event carries.
    let payment_traces = platform.outbox_trace_ids(false, "payment-events").await;
    assert_eq!(payment_traces.len(), 1);
    assert_eq!(
        platform.outbox_trace_ids(true, "reservation-events").await,
        payment_traces
    );
    // The reconciler's retry of the synchronous call finds it done.
    tokio::time::sleep(Duration::from_millis(400)).await; // the breaker half-opens
    let settings = ReconcilerSettings {
        stuck_after: Duration::ZERO,
        ..ReconcilerSettings::default()
    };
    reconciler::pass(&platform.payments, &settings).await;
    let payment = platform.payment("bob", &id).await;
    assert!(payment["reservationId"].is_string(), "{payment}");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations")
            .await,
        1
    );
    assert_eq!(
        platform.ticket_count("SELECT count(*) FROM tickets").await,
        1
    );
    // The synchronous path failed and was counted.
    let metrics = platform
        .http
        .get(format!("{}/metrics", platform.payment_internal_base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("urr_payment_ticket_calls_total{outcome=\"unavailable\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("urr_payment_payments{state=\"captured\"} 1"),
        "{metrics}"
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn webhooks_duplicated_reordered_tampered_or_mismatched_do_no_harm(pool: PgPool) {
    // A latency long enough that the test's own webhooks arrive first.
    let platform = Platform::start(pool, quick_client(), Duration::from_secs(30)).await;
    let hold = platform.hold("carol", &["a:3:1"]).await;
    let (_, created) = platform
        .post("carol", "/v1/payments", json!({"holdId": hold}), None)
        .await;
    let id = created["paymentId"].as_str().expect("id").to_owned();
    let captured = json!({
        "id": "evt_capture_1", "kind": "payment_captured", "paymentId": id, "providerRef": "sbx_1",
        "amountMinor": 50_000, "currency": "KRW", "occurredAt": urr_service_common::unix_now()
    });
    // Tampered: signed for another body.
    let forged = platform.sign(b"{}");
    let (status, problem) = platform.webhook(&captured, Some(forged)).await;
    assert_eq!(status, 401, "{problem}");
    // Stale: signed ten minutes ago.
    let bytes = serde_json::to_vec(&captured).expect("json");
    let old = urr_payment::webhook::sign(
        support::WEBHOOK_SECRET,
        urr_service_common::unix_now() - 600,
        &bytes,
    );
    let (status, stale) = platform.webhook(&captured, Some(old)).await;
    assert_eq!(
        status, 400,
        "a timestamp out of the window is a bad request: {stale}"
    );
    assert_eq!(
        stale["type"], "https://urr.dev/problems/webhook-stale",
        "{stale}"
    );
    assert_eq!(stale["status"], 400, "{stale}");
    // Signed at the ends of time: the same stale problem, and the service
    // stays up (the age of the signature once overflowed).
    for t in [i64::MIN, i64::MAX] {
        let extreme = urr_payment::webhook::sign(support::WEBHOOK_SECRET, t, &bytes);
        let (status, problem) = platform.webhook(&captured, Some(extreme)).await;
        assert_eq!((status, &problem), (400, &stale), "t={t}");
    }
    // An unreadable header is a bad request too; a missing one is a 401.
    let (status, problem) = platform
        .webhook(&captured, Some("t=soon,v1=zz".into()))
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(
        problem["type"], "https://urr.dev/problems/webhook-malformed",
        "{problem}"
    );
    assert_eq!(
        platform.payment("carol", &id).await["status"],
        "created",
        "nothing changed"
    );
    // Amount mismatch: refused, and the event id is not used up.
    let mut cheap = captured.clone();
    cheap["amountMinor"] = 1.into();
    let (status, problem) = platform.webhook(&cheap, None).await;
    assert_eq!(status, 422);
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/amount-mismatch")
    );
    // The capture overtakes the authorization, and is delivered twice.
    assert_eq!(
        platform.webhook(&captured, None).await.1["outcome"],
        "applied"
    );
    assert_eq!(
        platform.webhook(&captured, None).await.1["outcome"],
        "duplicate"
    );
    let late_authorization = json!({
        "id": "evt_auth_1", "kind": "payment_authorized", "paymentId": id, "providerRef": "sbx_1",
        "amountMinor": 50_000, "currency": "KRW", "occurredAt": urr_service_common::unix_now()
    });
    assert_eq!(
        platform.webhook(&late_authorization, None).await.1["outcome"],
        "stale"
    );
    let payment = platform
        .wait_for("carol", &id, |p| p["reservationId"].is_string())
        .await;
    assert_eq!(payment["status"], "captured");
    let states: Vec<&str> = payment["transitions"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert_eq!(
        states,
        vec!["created", "authorized", "captured"],
        "one capture"
    );
    assert_eq!(
        platform
            .payment_count("SELECT count(*) FROM outbox WHERE topic = 'payment-events'")
            .await,
        1,
        "one payment event"
    );
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations")
            .await,
        1
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn intents_are_idempotent_priced_by_the_ticket_service_and_guarded(pool: PgPool) {
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let hold = platform.hold("dave", &["a:4:1"]).await;
    let body = json!({"holdId": hold});
    let (first_status, first) = platform
        .post("dave", "/v1/payments", body.clone(), Some("key-1"))
        .await;
    let (again_status, again) = platform
        .post("dave", "/v1/payments", body.clone(), Some("key-1"))
        .await;
    assert_eq!(
        (first_status, again_status),
        (201, 201),
        "the first answer, replayed"
    );
    assert_eq!(first, again);
    // The answer is built before the payment is written (one statement):
    // it must be what reading the payment gives, to the millisecond.
    let read = platform
        .payment("dave", first["paymentId"].as_str().expect("id"))
        .await;
    assert_eq!(first, read, "the create answer is the stored payment");
    assert_eq!(first["transitions"].as_array().map(Vec::len), Some(1));
    // A second live payment for the same hold is refused.
    let (status, problem) = platform
        .post("dave", "/v1/payments", body.clone(), Some("key-2"))
        .await;
    assert_eq!(status, 409, "{problem}");
    // Someone else's hold, an unknown hold, a malformed body.
    assert_eq!(
        platform
            .post("eve", "/v1/payments", body.clone(), None)
            .await
            .0,
        404
    );
    assert_eq!(
        platform
            .post(
                "dave",
                "/v1/payments",
                json!({"holdId": uuid::Uuid::new_v4().to_string()}),
                None
            )
            .await
            .0,
        404
    );
    let (status, problem) = platform
        .post(
            "dave",
            "/v1/payments",
            json!({"holdId": hold, "amountMinor": 1}),
            None,
        )
        .await;
    assert_eq!(status, 400, "the client never sets the amount: {problem}");
    // Refunding a payment that was never captured is not a valid transition.
    let id = first["paymentId"].as_str().expect("id");
    let (status, problem) = platform
        .post(
            "dave",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/invalid-transition")
    );
    // A declined card fails the payment.
    let (status, _) = platform
        .post(
            "dave",
            &format!("/v1/payments/{id}/confirm"),
            json!({"paymentMethod": "pm_sandbox_decline"}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let failed = platform
        .wait_for("dave", id, |p| p["status"] == "failed")
        .await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failureReason"], "card declined");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations")
            .await,
        0
    );
    // Not visible to others.
    let other = platform.payment("eve", id).await;
    assert!(
        other["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/unknown-payment")
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_refund_cancels_the_reservation_and_a_lapsed_hold_is_never_charged(pool: PgPool) {
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let (_, id) = platform.paid("frank", &["a:5:1"]).await;
    platform
        .wait_for("frank", &id, |p| p["reservationId"].is_string())
        .await;
    let (status, _) = platform
        .post(
            "frank",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let refunded = platform
        .wait_for("frank", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(refunded["status"], "refunded");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while platform
        .ticket_count("SELECT count(*) FROM reservations WHERE status = 'canceled'")
        .await
        < 1
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        0,
        "tickets void after the refund"
    );
    // A hold that lapsed before the buyer confirms: the quote is checked
    // again right before money moves, so nothing is charged at all.
    let hold = platform.hold("grace", &["a:6:1"]).await;
    let (_, created) = platform
        .post("grace", "/v1/payments", json!({"holdId": hold}), None)
        .await;
    let late = created["paymentId"].as_str().expect("id").to_owned();
    sqlx::query("UPDATE holds SET expires_at = now() - interval '1 second'")
        .execute(&platform.desk.pool)
        .await
        .expect("age the hold");
    let (status, problem) = platform
        .post(
            "grace",
            &format!("/v1/payments/{late}/confirm"),
            json!({"paymentMethod": "pm_sandbox_ok"}),
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/hold-not-active"),
        "{problem}"
    );
    let payment = platform.payment("grace", &late).await;
    assert_eq!(payment["status"], "canceled", "{payment}");
    let moves: Vec<&str> = payment["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert!(
        !moves.contains(&"authorized") && !moves.contains(&"captured"),
        "never charged: {moves:?}"
    );
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations WHERE status = 'confirmed'")
            .await,
        0
    );
    platform.finish().await;
}

/// Issue 22: a refund used to move the money first and void the tickets
/// after, so a reservation with a ticket transferred to someone else was
/// refunded while the ticket service refused to void it: the buyer kept
/// the money and the recipient the ticket. The tickets are asked first now.
#[sqlx::test(migrations = false)]
async fn a_refund_is_refused_while_a_ticket_of_it_belongs_to_someone_else(pool: PgPool) {
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    let (_, id) = platform.paid("ivan", &["a:7:1", "a:7:2"]).await;
    platform
        .wait_for("ivan", &id, |p| p["reservationId"].is_string())
        .await;
    let ticket: String = sqlx::query_scalar(
        "SELECT id::text FROM tickets WHERE owner_user_id = 'ivan' AND status = 'valid' ORDER BY id LIMIT 1",
    )
    .fetch_one(&platform.desk.pool)
    .await
    .expect("ivan's ticket");
    let transfer = platform
        .http
        .post(format!(
            "http://{}/v1/tickets/{ticket}/transfer",
            platform.ticket_public_addr
        ))
        .bearer_auth(support::user_token("ivan"))
        .json(&json!({"toUserId": "judy"}))
        .send()
        .await
        .expect("transfer");
    assert!(transfer.status().is_success(), "{}", transfer.status());

    let (status, problem) = platform
        .post(
            "ivan",
            &format!("/v1/payments/{id}/refund"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/refund-refused")),
        "{problem}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let payment = platform.payment("ivan", &id).await;
    assert_eq!(payment["status"], "captured", "the money stays: {payment}");
    assert_eq!(
        platform
            .ticket_count(
                "SELECT count(*) FROM tickets WHERE owner_user_id = 'judy' AND status = 'valid'"
            )
            .await,
        1,
        "the recipient's ticket stays valid"
    );
}

#[sqlx::test(migrations = false)]
async fn a_hold_that_expires_while_the_provider_charges_is_refunded(pool: PgPool) {
    // A slow provider: the hold is active when the buyer confirms and has
    // lapsed by the time the capture asks the ticket service to confirm it.
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(1500)).await;
    let hold = platform.hold("heidi", &["a:7:1"]).await;
    let (_, created) = platform
        .post("heidi", "/v1/payments", json!({"holdId": hold}), None)
        .await;
    let id = created["paymentId"].as_str().expect("id").to_owned();
    let (status, confirmed) = platform
        .post(
            "heidi",
            &format!("/v1/payments/{id}/confirm"),
            json!({"paymentMethod": "pm_sandbox_ok"}),
            None,
        )
        .await;
    assert!(status < 300, "{status} {confirmed}");
    sqlx::query("UPDATE holds SET expires_at = now() - interval '1 second'")
        .execute(&platform.desk.pool)
        .await
        .expect("age the hold");
    let payment = platform
        .wait_for("heidi", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations WHERE status = 'confirmed'")
            .await,
        0,
        "an expired hold is never confirmed"
    );
    platform.finish().await;
}

/// The count of one outcome of `urr_payment_ticket_calls_total`.
fn ticket_calls(platform: &Platform, outcome: &str) -> i64 {
    platform
        .payments
        .metrics
        .ticket_calls
        .get_or_create(&urr_payment::telemetry::OutcomeLabel {
            outcome: outcome.to_owned(),
        })
        .get() as i64
}

#[sqlx::test(migrations = false)]
async fn a_ticket_service_refusing_the_service_token_is_retried_never_refunded(pool: PgPool) {
    let mut platform = Platform::start(pool, quick_client(), Duration::from_millis(200)).await;
    let hold = platform.hold("ivan", &["a:8:1"]).await;
    let (status, created) = platform
        .post("ivan", "/v1/payments", json!({"holdId": hold}), None)
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["paymentId"].as_str().expect("id").to_owned();
    // The ticket service rotates its service token; the payment service
    // still sends the old one, and every internal call answers 401.
    platform
        .restart_ticket_with_token("rotated-service-token-0123456789")
        .await;
    let (status, confirmed) = platform
        .post(
            "ivan",
            &format!("/v1/payments/{id}/confirm"),
            json!({"paymentMethod": "pm_sandbox_ok"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{confirmed}");
    let payment = platform
        .wait_for("ivan", &id, |p| p["status"] == "captured")
        .await;
    assert_eq!(payment["status"], "captured", "{payment}");
    // Wait for the synchronous confirm's answer, whatever it was.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ticket_calls(&platform, "refused") + ticket_calls(&platform, "rejected") == 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Longer than a refund's webhook takes (the sandbox's latency).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let payment = platform.payment("ivan", &id).await;
    assert_eq!(
        payment["status"], "captured",
        "a 401 is no verdict on the hold: {payment}"
    );
    assert!(payment["reservationId"].is_null(), "{payment}");
    assert_eq!(ticket_calls(&platform, "refused"), 0);
    let deferred = platform
        .payments
        .metrics
        .confirm_deferred
        .get_or_create(&urr_payment::telemetry::ReasonLabel {
            reason: "auth".into(),
        })
        .get();
    assert_eq!(deferred, 1, "counted for the alert");
    // The token is fixed: the reconciler's retry confirms the same payment.
    platform
        .restart_ticket_with_token(support::SERVICE_TOKEN)
        .await;
    let settings = ReconcilerSettings {
        stuck_after: Duration::ZERO,
        ..ReconcilerSettings::default()
    };
    reconciler::pass(&platform.payments, &settings).await;
    let payment = platform
        .wait_for("ivan", &id, |p| p["reservationId"].is_string())
        .await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert!(payment["reservationId"].is_string(), "{payment}");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        1
    );
    let metrics = platform
        .http
        .get(format!("{}/metrics", platform.payment_internal_base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("urr_payment_confirm_deferred_total{reason=\"auth\"} 1"),
        "{metrics}"
    );
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn an_authorized_payment_cannot_be_canceled_and_its_capture_confirms(pool: PgPool) {
    // Slow enough that the payment sits authorized while the capture is on its way.
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(1500)).await;
    let (hold, id) = platform
        .confirmed("judy", &["a:9:1"], "pm_sandbox_ok")
        .await;
    let payment = platform
        .wait_for("judy", &id, |p| p["status"] == "authorized")
        .await;
    assert_eq!(payment["status"], "authorized", "{payment}");
    // A verdict is on its way: the page is told when to look again.
    assert_eq!(
        payment["pollAfterMs"],
        urr_payment::flow::POLL_AFTER_MS,
        "{payment}"
    );
    let (status, problem) = platform
        .post(
            "judy",
            &format!("/v1/payments/{id}/cancel"),
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/cancel-too-late"),
        "{problem}"
    );
    // The hold's one live payment is still this one.
    let (status, _) = platform
        .post("judy", "/v1/payments", json!({"holdId": hold}), None)
        .await;
    assert_eq!(status, 409);
    let payment = platform
        .wait_for("judy", &id, |p| p["reservationId"].is_string())
        .await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert!(payment["reservationId"].is_string(), "{payment}");
    // Captured and ticketed: nothing more happens by itself.
    assert!(payment.get("pollAfterMs").is_none(), "{payment}");
    platform.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_capture_that_reaches_a_canceled_payment_is_refunded(pool: PgPool) {
    // The buyer cancels while the provider is still answering the
    // authorization; a capture arrives anyway (a provider's race).
    let platform = Platform::start(pool, quick_client(), Duration::from_millis(1000)).await;
    let (hold, id) = platform
        .confirmed("kim", &["a:10:1"], "pm_sandbox_ok")
        .await;
    let (status, canceled) = platform
        .post("kim", &format!("/v1/payments/{id}/cancel"), json!({}), None)
        .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    // The hold's slot is free: the buyer starts a second payment.
    let (status, second) = platform
        .post("kim", "/v1/payments", json!({"holdId": hold}), None)
        .await;
    assert_eq!(status, 201, "{second}");
    let second = second["paymentId"].as_str().expect("id").to_owned();
    let provider_ref: String =
        sqlx::query_scalar("SELECT provider_ref FROM payments WHERE id = $1")
            .bind(uuid::Uuid::parse_str(&id).expect("uuid"))
            .fetch_one(&platform.payments.pool)
            .await
            .expect("provider ref");
    let capture = json!({
        "id": "evt_late_capture", "kind": "payment_captured", "paymentId": id,
        "providerRef": provider_ref, "amountMinor": 50_000, "currency": "KRW",
        "occurredAt": urr_service_common::unix_now()
    });
    let (status, answer) = platform.webhook(&capture, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "late-capture", "never dropped as stale");
    let owed = |stuck: Vec<(uuid::Uuid, urr_payment::state::PaymentStatus, bool)>| {
        stuck.iter().any(|(p, _, _)| p.to_string() == id)
    };
    assert!(
        owed(platform.payments.stuck(0.0).await.expect("stuck")),
        "the reconciler re-drives the refund until it comes back"
    );
    let payment = platform
        .wait_for("kim", &id, |p| p["status"] == "refunded")
        .await;
    assert_eq!(
        payment["status"], "refunded",
        "the money goes back: {payment}"
    );
    assert!(payment["reservationId"].is_null());
    assert!(!owed(platform.payments.stuck(0.0).await.expect("stuck")));
    // The refund touched neither the hold nor the second payment, which
    // goes on to confirm it.
    let (status, _) = platform
        .post(
            "kim",
            &format!("/v1/payments/{second}/confirm"),
            json!({"paymentMethod": "pm_sandbox_ok"}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let paid = platform
        .wait_for("kim", &second, |p| p["reservationId"].is_string())
        .await;
    assert_eq!(paid["status"], "captured", "{paid}");
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations WHERE status = 'confirmed'")
            .await,
        1
    );
    platform.finish().await;
}
