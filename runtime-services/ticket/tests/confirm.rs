//! Confirmation by REST and by Kafka, refunds, transfers and the
//! `transfer-events` consumer, against real PostgreSQL, Redis and the broker.

mod support;

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sqlx::PgPool;
use support::{Service, env, settings, start, unique_event};
use urr_service_common::contracts::{
    PAYMENT_EVENT_V1, PAYMENT_EVENTS, PaymentEvent, PaymentEventKind,
};

async fn held(service: &Service, user: &str, seats: &[&str]) -> (String, i64) {
    let answer = service.hold(user, json!({"seats": seats}), None).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    (
        answer.body["holdId"].as_str().expect("id").to_owned(),
        answer.body["amountMinor"].as_i64().expect("amount"),
    )
}

fn payment_event(
    service: &Service,
    hold: &str,
    payment: &str,
    amount: i64,
    kind: PaymentEventKind,
) -> PaymentEvent {
    PaymentEvent {
        schema: PAYMENT_EVENT_V1.into(),
        message_id: uuid::Uuid::new_v4().to_string(),
        kind,
        payment_id: payment.into(),
        hold_id: hold.into(),
        event: service.event.clone(),
        user_id: "alice".into(),
        amount_minor: amount,
        currency: "KRW".into(),
        occurred_at_ms: urr_service_common::unix_now_ms(),
        traceparent: None,
    }
}

async fn publish(messages: &[&PaymentEvent]) {
    let brokers = env("URR_KAFKA_BROKERS");
    urr_outbox::kafka::ensure_topics(&brokers, &[PAYMENT_EVENTS], 3, 1)
        .await
        .expect("topic");
    let producer: FutureProducer = urr_outbox::kafka::producer_config(&brokers)
        .expect("kafka connection")
        .create()
        .expect("producer");
    for message in messages {
        let payload = serde_json::to_string(message).expect("json");
        producer
            .send(
                FutureRecord::to(PAYMENT_EVENTS)
                    .key(&message.hold_id)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("published");
    }
}

/// Runs the service's consumers until `done` holds (or 30 s pass).
async fn consume_until(service: &Service, mut done: impl AsyncFnMut() -> bool) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = urr_ticket::consumers::spawn(&env("URR_KAFKA_BROKERS"), &service.desk, stopped)
        .expect("consumers");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done().await && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).expect("stop");
    for task in tasks {
        task.await.expect("consumer task");
    }
}

#[sqlx::test(migrations = false)]
async fn rest_and_kafka_and_a_redelivery_confirm_once(pool: PgPool) {
    let event = unique_event();
    let service = start(pool, settings(&event, 4, 4)).await;
    // REST first, then the same payment's event delivered twice.
    let (hold, amount) = held(&service, "alice", &["a:1:1", "a:1:2"]).await;
    let rest = service.confirm(&hold, "pay-1", amount).await;
    assert_eq!(rest.status, 200, "{rest:?}");
    assert_eq!(rest.body["alreadyConfirmed"], false);
    assert_eq!(rest.body["ticketIds"].as_array().map(Vec::len), Some(2));
    // The completed order tells the queue to end alice's session (issue 18
    // item 2: the slot goes to the next in line at once).
    let ended: Vec<String> = redis::cmd("SMEMBERS")
        .arg(urr_service_common::policy::session_end_key(&event))
        .query_async(&mut support::redis().await)
        .await
        .expect("smembers");
    assert_eq!(ended, vec!["alice".to_owned()]);
    let captured = payment_event(&service, &hold, "pay-1", amount, PaymentEventKind::Captured);
    // Kafka first for a second hold, then REST.
    let (hold2, amount2) = held(&service, "bob", &["a:2:1"]).await;
    let captured2 = payment_event(
        &service,
        &hold2,
        "pay-2",
        amount2,
        PaymentEventKind::Captured,
    );
    let redelivered = captured2.clone();
    publish(&[&captured, &captured, &captured2, &redelivered]).await;
    let pool = service.desk.pool.clone();
    consume_until(&service, async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM processed_events WHERE consumer = 'ticket/payment-events'",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or_default()
            >= 2
    })
    .await;
    // The consumer may stop before it reaches the broker's duplicate copies:
    // deliver both messages once more, straight to the handler, so a
    // redelivery is certainly applied (and must change nothing).
    let handler = urr_ticket::consumers::PaymentEventsHandler {
        desk: service.desk.clone(),
    };
    for message in [&captured, &captured2] {
        handler
            .apply(message)
            .await
            .expect("redelivery is harmless");
    }
    assert_eq!(service.count("SELECT count(*) FROM reservations").await, 2);
    assert_eq!(
        service
            .count("SELECT count(*) FROM reservations WHERE confirmed_via = 'kafka'")
            .await,
        1
    );
    let late_rest = service.confirm(&hold2, "pay-2", amount2).await;
    assert_eq!(late_rest.status, 200);
    assert_eq!(late_rest.body["alreadyConfirmed"], true);
    assert_eq!(service.count("SELECT count(*) FROM reservations").await, 2);
    assert_eq!(service.count("SELECT count(*) FROM tickets").await, 3);
    // Each confirmation produced one reservation event in the outbox.
    assert_eq!(
        service
            .count("SELECT count(*) FROM outbox WHERE topic = 'reservation-events'")
            .await,
        2
    );
    // A different payment for a confirmed hold is refused.
    let other = service.confirm(&hold, "pay-other", amount).await;
    assert_eq!(other.status, 409);
    assert!(other.problem_type().ends_with("/hold-confirmed-elsewhere"));
}

#[sqlx::test(migrations = false)]
async fn a_payment_for_an_expired_hold_is_recorded_not_applied(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let (hold, amount) = held(&service, "alice", &["a:3:3"]).await;
    sqlx::query("UPDATE holds SET expires_at = now() - interval '1 second'")
        .execute(&service.desk.pool)
        .await
        .expect("age");
    let poison = b"{not json";
    let event = payment_event(
        &service,
        &hold,
        "pay-late",
        amount,
        PaymentEventKind::Captured,
    );
    publish(&[&event]).await;
    // A malformed message on the topic does not block the partition.
    let producer: FutureProducer = urr_outbox::kafka::producer_config(&env("URR_KAFKA_BROKERS"))
        .expect("kafka connection")
        .create()
        .expect("producer");
    producer
        .send(
            FutureRecord::to(PAYMENT_EVENTS)
                .key(&hold)
                .payload(&poison[..]),
            Duration::from_secs(10),
        )
        .await
        .expect("published");
    let pool = service.desk.pool.clone();
    consume_until(&service, async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM unapplied_payments")
            .fetch_one(&pool)
            .await
            .unwrap_or_default()
            >= 1
    })
    .await;
    assert_eq!(service.count("SELECT count(*) FROM reservations").await, 0);
    assert_eq!(
        service
            .count("SELECT count(*) FROM unapplied_payments")
            .await,
        1
    );
}

#[sqlx::test(migrations = false)]
async fn a_refund_voids_the_tickets_and_puts_the_seats_back_on_sale(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let (hold, amount) = held(&service, "alice", &["a:4:1", "a:4:2"]).await;
    assert_eq!(service.confirm(&hold, "pay-1", amount).await.status, 200);
    assert_eq!(service.seat_key("a:4:1").await.as_deref(), Some("sold"));
    let mismatch = service.cancel(&hold, "pay-other").await;
    assert_eq!(mismatch.status, 409);
    let canceled = service.cancel(&hold, "pay-1").await;
    assert_eq!(canceled.status, 200, "{canceled:?}");
    assert_eq!(
        canceled.body["voidedTicketIds"].as_array().map(Vec::len),
        Some(2)
    );
    let again = service.cancel(&hold, "pay-1").await;
    assert_eq!(again.body["alreadyCanceled"], true);
    assert_eq!(
        service
            .count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        0
    );
    assert_eq!(service.seat_key("a:4:1").await, None);
    let resold = service
        .hold("bob", json!({"seats": ["a:4:1", "a:4:2"]}), None)
        .await;
    assert_eq!(resold.status, 201, "{resold:?}");
    // An amount that is not the hold's is refused.
    let id = resold.body["holdId"].as_str().expect("id");
    let wrong = service.confirm(id, "pay-2", 1).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.problem_type().ends_with("/amount-mismatch"));
    // The payment service's quote.
    let quote = service
        .raw(
            service
                .http
                .get(format!("{}/internal/holds/{id}", service.internal_base))
                .bearer_auth(support::SERVICE_TOKEN),
        )
        .await;
    assert_eq!(quote.body["amountMinor"], 240_000);
    assert_eq!(quote.body["userId"], "bob");
    assert_eq!(quote.body["status"], "active");
}

#[sqlx::test(migrations = false)]
async fn transfers_move_tickets_and_the_consumer_records_them(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let (hold, amount) = held(&service, "alice", &["a:6:1"]).await;
    let confirmed = service.confirm(&hold, "pay-1", amount).await;
    let ticket = confirmed.body["ticketIds"][0]
        .as_str()
        .expect("ticket")
        .to_owned();
    let mine = service.get("/v1/me/tickets", Some("alice")).await;
    assert_eq!(mine.body["tickets"][0]["ticketId"], ticket.as_str());
    let url = format!("{}/v1/tickets/{ticket}/transfer", service.base);
    let not_mine = service
        .raw(
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("mallory"))
                .json(&json!({"toUserId": "eve"})),
        )
        .await;
    assert_eq!(not_mine.status, 404);
    let moved = service
        .raw(
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("alice"))
                .json(&json!({"toUserId": "bob"})),
        )
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["ownerUserId"], "bob");
    assert_eq!(
        service.get("/v1/me/tickets", Some("alice")).await.body["tickets"],
        json!([])
    );
    // Relay the outbox (what the service's relay task does), then consume.
    let relay = urr_outbox::Relay::new(
        service.desk.pool.clone(),
        urr_outbox::kafka::producer_config(&env("URR_KAFKA_BROKERS")).expect("kafka connection"),
        urr_outbox::RelaySettings::default(),
        &mut prometheus_client::registry::Registry::default(),
    )
    .expect("relay");
    urr_outbox::kafka::ensure_topics(
        &env("URR_KAFKA_BROKERS"),
        &["transfer-events", "reservation-events"],
        3,
        1,
    )
    .await
    .expect("topics");
    assert!(relay.round().await.expect("relay round").published >= 2);
    let pool = service.desk.pool.clone();
    consume_until(&service, async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM ticket_ownership_log")
            .fetch_one(&pool)
            .await
            .unwrap_or_default()
            >= 1
    })
    .await;
    let history = service
        .get(&format!("/v1/tickets/{ticket}/history"), Some("bob"))
        .await;
    assert_eq!(history.body["changes"][0]["fromUserId"], "alice");
    assert_eq!(history.body["changes"][0]["toUserId"], "bob");
    let stranger = service
        .get(&format!("/v1/tickets/{ticket}/history"), Some("mallory"))
        .await;
    assert_eq!(stranger.status, 404);
}

#[sqlx::test(migrations = false)]
async fn redis_losing_its_data_mid_sale_is_noticed_and_restored(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let (sold, amount) = held(&service, "alice", &["a:1:1"]).await;
    assert_eq!(service.confirm(&sold, "pay-1", amount).await.status, 200);
    let (live, live_amount) = held(&service, "bob", &["a:1:2"]).await;
    assert!(
        !urr_ticket::reaper::round(&service.desk).await.restored,
        "nothing lost yet"
    );
    // Redis forgets this event (a restart without persistence, a failover
    // to an empty replica): every key under its hash tag is gone.
    let mut redis = support::redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("urr:{{{}}}:*", service.event))
        .query_async(&mut redis)
        .await
        .expect("keys");
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .expect("forget");
    // The next reaper round notices and loads everything again.
    assert!(urr_ticket::reaper::round(&service.desk).await.restored);
    assert_eq!(
        service.seat_key("a:1:1").await.as_deref(),
        Some("sold"),
        "the sold seat is refused at Redis again"
    );
    let again = service
        .hold("carol", json!({"seats": ["a:1:1"]}), None)
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    // The live hold's lock is back with its fencing token: it confirms.
    let confirmed = service.confirm(&live, "pay-2", live_amount).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    assert!(!urr_ticket::reaper::round(&service.desk).await.restored);
    // Refused at Redis, never at PostgreSQL.
    let text = service.metrics().await;
    assert!(!text.contains("layer=\"postgres\""), "{text}");
}

async fn transfer(service: &Service, from: &str, ticket: &str, to: &str) -> support::Answer {
    service
        .raw(
            service
                .http
                .post(format!("{}/v1/tickets/{ticket}/transfer", service.base))
                .bearer_auth(support::user_token(from))
                .json(&json!({"toUserId": to})),
        )
        .await
}

// Issue 22: a refund voided every ticket of the reservation, the transferred
// ones too, so the payer got the money back and the recipient lost the seat.
#[sqlx::test(migrations = false)]
async fn a_refund_is_refused_once_a_ticket_was_transferred(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let (hold, amount) = held(&service, "alice", &["a:8:1", "a:8:2"]).await;
    let confirmed = service.confirm(&hold, "pay-1", amount).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let ticket = confirmed.body["ticketIds"][0]
        .as_str()
        .expect("ticket")
        .to_owned();
    let moved = transfer(&service, "alice", &ticket, "bob").await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let refused = service.cancel(&hold, "pay-1").await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        refused
            .problem_type()
            .ends_with("/refund-tickets-transferred"),
        "{refused:?}"
    );
    let bobs = service.get("/v1/me/tickets", Some("bob")).await;
    assert_eq!(bobs.body["tickets"][0]["ticketId"], ticket.as_str());
    assert_eq!(bobs.body["tickets"][0]["status"], "valid");
    assert_eq!(
        service
            .count("SELECT count(*) FROM tickets WHERE status = 'valid'")
            .await,
        2,
        "nothing was voided"
    );
    assert_eq!(service.seat_key("a:8:1").await.as_deref(), Some("sold"));
    // Given back to the payer, the reservation is whole again and refundable.
    assert_eq!(
        transfer(&service, "bob", &ticket, "alice").await.status,
        200
    );
    let canceled = service.cancel(&hold, "pay-1").await;
    assert_eq!(canceled.status, 200, "{canceled:?}");
}

// Issue 21: a refund of some tickets voids only those the payer still
// holds and answers their share; the transferred one stays its recipient's,
// a retry of the refund answers the same, and another refund of a voided
// ticket is refused.
#[sqlx::test(migrations = false)]
async fn a_partial_refund_voids_the_payers_tickets_and_leaves_the_transferred_one(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let (hold, amount) = held(&service, "alice", &["a:9:1", "a:9:2", "a:9:3"]).await;
    let confirmed = service.confirm(&hold, "pay-3", amount).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let tickets: Vec<String> = confirmed.body["ticketIds"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        transfer(&service, "alice", &tickets[0], "bob").await.status,
        200
    );
    let part = |ids: &[&String], refund: &str| json!({"paymentId": "pay-3", "reason": "refund", "ticketIds": ids, "refundId": refund});
    let refused = service.cancel_with(&hold, part(&[&tickets[0]], "r1")).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        refused
            .problem_type()
            .ends_with("/refund-tickets-transferred")
    );

    let voided = service.cancel_with(&hold, part(&[&tickets[1]], "r1")).await;
    assert_eq!(voided.status, 200, "{voided:?}");
    assert_eq!(voided.body["voidedTicketIds"], json!([tickets[1]]));
    assert_eq!(voided.body["voidedAmountMinor"], amount / 3);
    assert_eq!(voided.body["alreadyCanceled"], false);
    let again = service.cancel_with(&hold, part(&[&tickets[1]], "r1")).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(
        again.body["voidedAmountMinor"],
        amount / 3,
        "a retry answers the same"
    );
    assert_eq!(again.body["alreadyCanceled"], true);
    let twice = service.cancel_with(&hold, part(&[&tickets[1]], "r2")).await;
    assert_eq!(twice.status, 409, "{twice:?}");
    assert!(twice.problem_type().ends_with("/ticket-void"), "{twice:?}");

    // The place of the refunded ticket is back on sale; the others are not.
    let seat_of = |ticket: &str| {
        let ticket = uuid::Uuid::parse_str(ticket).expect("uuid");
        let pool = service.desk.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT s.status FROM seats s JOIN tickets t ON t.seat_id = s.seat_id WHERE t.id = $1",
            )
            .bind(ticket)
            .fetch_one(&pool)
            .await
            .expect("seat")
        }
    };
    assert_eq!(seat_of(&tickets[1]).await, "available");
    assert_eq!(seat_of(&tickets[0]).await, "sold");
    assert_eq!(seat_of(&tickets[2]).await, "sold");
    assert_eq!(
        service
            .count("SELECT count(*) FROM reservations WHERE status = 'confirmed'")
            .await,
        1,
        "the reservation stands while it has valid tickets"
    );
}

// Issue 22: the per-user limit counted only tickets still owned, so a buyer
// could transfer tickets out and buy again, past `maxSeatsPerUser`.
#[sqlx::test(migrations = false)]
async fn transferring_out_does_not_make_room_under_the_per_user_limit(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 2, 2)).await;
    let (hold, amount) = held(&service, "alice", &["a:9:1", "a:9:2"]).await;
    let confirmed = service.confirm(&hold, "pay-1", amount).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let ticket = confirmed.body["ticketIds"][0]
        .as_str()
        .expect("ticket")
        .to_owned();
    assert_eq!(
        transfer(&service, "alice", &ticket, "bob").await.status,
        200
    );
    let again = service
        .hold("alice", json!({"seats": ["a:9:3"]}), None)
        .await;
    assert_eq!(again.status, 422, "{again:?}");
    assert!(
        again.problem_type().ends_with("/limit-exceeded"),
        "{again:?}"
    );
    // The receiver's limit counts the ticket received: one more fits, not two.
    let bob_one = service.hold("bob", json!({"seats": ["a:9:4"]}), None).await;
    assert_eq!(bob_one.status, 201, "{bob_one:?}");
    let bob_two = service.hold("bob", json!({"seats": ["a:9:5"]}), None).await;
    assert_eq!(bob_two.status, 422, "{bob_two:?}");
}
