//! Holds against real Redis and PostgreSQL, over HTTP.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use support::{Service, settings, start, unique_event};

#[sqlx::test(migrations = false)]
async fn two_hundred_buyers_race_for_one_seat_and_exactly_one_wins(pool: PgPool) {
    let service = Arc::new(start(pool, settings(&unique_event(), 4, 4)).await);
    let mut tasks = Vec::new();
    for buyer in 0..200 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            // Half of them send an Idempotency-Key, as careful clients do:
            // a loser with a key must not reach PostgreSQL either.
            let key = format!("key-{buyer}");
            let key = (buyer % 2 == 0).then_some(key.as_str());
            // Spelled differently, it is the same seat (and the same lock).
            let seat = if buyer % 3 == 0 { "a:01:1" } else { "a:1:1" };
            service
                .hold(&format!("buyer-{buyer}"), json!({"seats": [seat]}), key)
                .await
        }));
    }
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        let answer = task.await.expect("task");
        match answer.status {
            201 => winners.push(answer),
            409 => {
                assert!(answer.problem_type().ends_with("/seat-taken"), "{answer:?}");
                losers += 1;
            }
            other => panic!("unexpected {other}: {answer:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one hold");
    assert_eq!(losers, 199);
    let hold = winners[0].body["holdId"].as_str().expect("hold id");
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 1);
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE status = 'held' AND seat_id = 'a:1:1'")
            .await,
        1
    );
    let lock = service.seat_key("a:1:1").await.expect("seat locked");
    assert!(
        lock.starts_with(hold),
        "lock {lock} belongs to the winner {hold}"
    );
    // Every loser was turned away at Redis: none reached PostgreSQL.
    let text = service.metrics().await;
    // Asked at Redis, or told by the attempt on the same seat that was at
    // Redis in that instant (the single flight): 199 between them.
    assert_eq!(
        counter(&text, "urr_ticket_conflicts_total{layer=\"redis\"}")
            + counter(&text, "urr_ticket_conflicts_total{layer=\"coalesced\"}"),
        199,
        "{text}"
    );
    assert!(!text.contains("layer=\"postgres\""), "{text}");
    // Nothing of the losers was written, with a key or without.
    assert!(service.count("SELECT count(*) FROM idempotency_keys").await <= 1);
    assert!(
        service.desk.locks.flights.is_empty(),
        "no flight left behind"
    );
}

/// A counter's value in Prometheus text (0 when absent).
fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[sqlx::test(migrations = false)]
async fn ten_thousand_seats_under_random_contention_never_oversell(pool: PgPool) {
    let service = Arc::new(start(pool, settings(&unique_event(), 4, 1000)).await);
    let mut tasks = Vec::new();
    for buyer in 0..500 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("buyer-{buyer}");
            let mut confirmed = Vec::new();
            for attempt in 0..8 {
                let seats: Vec<String> = {
                    let mut rng = rand::rng();
                    let count = rng.random_range(1..=4);
                    // A hot block of 400 seats plus the rest of the house.
                    let mut chosen = HashSet::new();
                    while chosen.len() < count {
                        let index = if rng.random_bool(0.7) {
                            rng.random_range(0..400)
                        } else {
                            rng.random_range(0..10_000)
                        };
                        chosen.insert(format!("a:{}:{}", index / 100 + 1, index % 100 + 1));
                    }
                    chosen.into_iter().collect()
                };
                let answer = service.hold(&user, json!({"seats": seats}), None).await;
                match answer.status {
                    201 => {
                        let hold = answer.body["holdId"].as_str().expect("id").to_owned();
                        let amount = answer.body["amountMinor"].as_i64().expect("amount");
                        if attempt % 3 == 2 {
                            // Some buyers let go instead of paying.
                            let released = service
                                .raw(
                                    service
                                        .http
                                        .delete(format!(
                                            "{}/v1/events/{}/holds/{hold}",
                                            service.base, service.event
                                        ))
                                        .bearer_auth(support::user_token(&user)),
                                )
                                .await;
                            assert_eq!(released.status, 204);
                            continue;
                        }
                        let confirmation =
                            service.confirm(&hold, &format!("pay-{hold}"), amount).await;
                        assert_eq!(confirmation.status, 200, "{confirmation:?}");
                        confirmed.extend(seats);
                    }
                    409 => {}
                    other => panic!("unexpected {other}: {answer:?}"),
                }
            }
            confirmed
        }));
    }
    let mut sold_by_buyers = Vec::new();
    for task in tasks {
        sold_by_buyers.extend(task.await.expect("task"));
    }
    let unique: HashSet<&String> = sold_by_buyers.iter().collect();
    assert_eq!(
        unique.len(),
        sold_by_buyers.len(),
        "no seat confirmed twice"
    );
    let tickets = service
        .count("SELECT count(*) FROM tickets WHERE status = 'valid'")
        .await;
    let distinct = service
        .count("SELECT count(DISTINCT seat_id) FROM tickets WHERE status = 'valid'")
        .await;
    let sold_seats = service
        .count("SELECT count(*) FROM seats WHERE status = 'sold'")
        .await;
    assert_eq!(tickets, unique.len() as i64);
    assert_eq!(distinct, tickets, "zero oversell");
    assert_eq!(sold_seats, tickets, "sold = unique seats");
    assert!(tickets > 100, "the run sold something ({tickets})");
    let stats = service.get_internal("/internal/stats").await;
    assert_eq!(stats.body["total"], 10_050);
}

#[sqlx::test(migrations = false)]
async fn an_expired_hold_is_never_confirmed_even_after_its_seat_was_taken(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let first = service
        .hold("alice", json!({"seats": ["a:5:5"]}), None)
        .await;
    assert_eq!(first.status, 201);
    let first_hold = first.body["holdId"].as_str().expect("id").to_owned();
    // Time passes: the hold is due and its Redis lock lapsed.
    sqlx::query("UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&first_hold)
        .execute(&service.desk.pool)
        .await
        .expect("age the hold");
    let mut redis = support::redis().await;
    let _: () = redis::cmd("DEL")
        .arg(service.desk.locks.seat_key("a:5:5"))
        .query_async(&mut redis)
        .await
        .expect("lapse the lock");
    // Before the reaper runs, someone else takes the seat.
    let second = service.hold("bob", json!({"seats": ["a:5:5"]}), None).await;
    assert_eq!(second.status, 201, "{second:?}");
    let late = service.confirm(&first_hold, "pay-late", 120_000).await;
    assert_eq!(late.status, 409);
    assert!(late.problem_type().ends_with("/hold-expired"), "{late:?}");
    let second_hold = second.body["holdId"].as_str().expect("id");
    let ok = service.confirm(second_hold, "pay-bob", 120_000).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(
        service
            .count("SELECT count(*) FROM tickets WHERE seat_id = 'a:5:5'")
            .await,
        1
    );
    // The reaper then expires the old hold without touching bob's seat.
    assert_eq!(service.desk.expire_due(100).await.expect("reap"), 1);
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE seat_id = 'a:5:5' AND status = 'sold'")
            .await,
        1
    );
    assert_eq!(service.seat_key("a:5:5").await.as_deref(), Some("sold"));
}

#[sqlx::test(migrations = false)]
async fn an_expired_hold_is_refused_at_confirm_and_the_reaper_frees_its_seats(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let hold = service
        .hold("alice", json!({"seats": ["a:1:1", "a:1:2"]}), None)
        .await;
    let id = hold.body["holdId"].as_str().expect("id").to_owned();
    let standing = service
        .hold("carol", json!({"section": "floor", "quantity": 2}), None)
        .await;
    assert_eq!(standing.status, 201, "{standing:?}");
    sqlx::query("UPDATE holds SET expires_at = now() - interval '1 second'")
        .execute(&service.desk.pool)
        .await
        .expect("age the holds");
    let read = service
        .get(
            &format!("/v1/events/{}/holds/{id}", service.event),
            Some("alice"),
        )
        .await;
    assert_eq!(read.body["status"], "expired", "the check at read");
    let refused = service.confirm(&id, "pay-1", 240_000).await;
    assert!(
        refused.problem_type().ends_with("/hold-expired"),
        "{refused:?}"
    );
    assert_eq!(service.desk.expire_due(100).await.expect("reap"), 2);
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE status <> 'available'")
            .await,
        0
    );
    assert_eq!(service.seat_key("a:1:1").await, None, "lock dropped");
    assert_eq!(
        service
            .count("SELECT held::bigint FROM standing_inventory")
            .await,
        0
    );
    // The places are on sale again, in Redis too.
    let again = service
        .hold("dave", json!({"section": "floor", "quantity": 4}), None)
        .await;
    assert_eq!(again.status, 201);
}

#[sqlx::test(migrations = false)]
async fn the_same_idempotency_key_gets_the_first_answer_and_one_hold(pool: PgPool) {
    let service = Arc::new(start(pool, settings(&unique_event(), 4, 4)).await);
    let body = json!({"seats": ["a:2:1", "a:2:2"]});
    let first = service.hold("alice", body.clone(), Some("key-1")).await;
    assert_eq!(first.status, 201);
    let again = service.hold("alice", body.clone(), Some("key-1")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "same answer");
    // Ten concurrent retries of a new key: one hold between them.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service
                .hold("bob", json!({"seats": ["a:3:1"]}), Some("key-2"))
                .await
        }));
    }
    let mut bodies = HashSet::new();
    for task in tasks {
        let answer = task.await.expect("task");
        match answer.status {
            201 => {
                bodies.insert(answer.body.to_string());
            }
            409 => assert!(
                answer.problem_type().ends_with("/idempotency-in-flight"),
                "{answer:?}"
            ),
            other => panic!("unexpected {other}: {answer:?}"),
        }
    }
    assert_eq!(bodies.len(), 1, "every success is the same hold");
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 2);
    // A different request under a used key is refused, nothing written.
    let reused = service
        .hold("alice", json!({"seats": ["a:9:9"]}), Some("key-1"))
        .await;
    assert_eq!(reused.status, 422);
    assert!(reused.problem_type().ends_with("/idempotency-key-reused"));
    // A refusal changed nothing and is not stored: the retry is asked
    // again and refused for the same reason, and the key stays unwritten.
    let taken = service
        .hold("carol", json!({"seats": ["a:2:1"]}), Some("key-3"))
        .await;
    assert_eq!(taken.status, 409);
    assert!(taken.problem_type().ends_with("/seat-taken"), "{taken:?}");
    let taken_again = service
        .hold("carol", json!({"seats": ["a:2:1"]}), Some("key-3"))
        .await;
    assert_eq!(taken_again.status, 409);
    assert_eq!(taken_again.body, taken.body);
    assert_eq!(
        service
            .count("SELECT count(*) FROM idempotency_keys WHERE key = 'key-3'")
            .await,
        0
    );
    // After the first hold's locks are gone from Redis (they lapsed, or
    // Redis restarted), PostgreSQL's row still stops a second hold.
    let key = urr_ticket::idempotency::IdempotencyKey::new(
        "alice",
        "key-1",
        "POST",
        &format!("/v1/events/{}/holds", service.event),
        body.to_string().as_bytes(),
    )
    .expect("key");
    let mut redis = support::redis().await;
    let _: () = redis::cmd("DEL")
        .arg(key.redis_key(&service.event))
        .arg(service.desk.locks.seat_key("a:2:1"))
        .arg(service.desk.locks.seat_key("a:2:2"))
        .query_async(&mut redis)
        .await
        .expect("forget");
    let after_loss = service.hold("alice", body.clone(), Some("key-1")).await;
    assert_eq!(after_loss.status, 201, "{after_loss:?}");
    assert_eq!(
        after_loss.body, first.body,
        "the first answer, from PostgreSQL"
    );
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 2);
}

#[sqlx::test(migrations = false)]
async fn per_order_and_per_user_limits_hold_under_concurrency(pool: PgPool) {
    let service = Arc::new(start(pool, settings(&unique_event(), 2, 4)).await);
    let too_many = service
        .hold("alice", json!({"seats": ["a:1:1", "a:1:2", "a:1:3"]}), None)
        .await;
    assert_eq!(too_many.status, 422);
    assert!(too_many.problem_type().ends_with("/limit-exceeded"));
    // Eight parallel single-seat holds by one buyer with a limit of four.
    let mut tasks = Vec::new();
    for seat in 1..=8 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service
                .hold("bob", json!({"seats": [format!("a:7:{seat}")]}), None)
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        4,
        "{statuses:?}"
    );
    // Refused holds left no lock behind.
    let mut locked = 0;
    for seat in 1..=8 {
        if service.seat_key(&format!("a:7:{seat}")).await.is_some() {
            locked += 1;
        }
    }
    assert_eq!(locked, 4);
}

#[sqlx::test(migrations = false)]
async fn bad_input_gets_a_problem_and_writes_nothing(pool: PgPool) {
    let service: Service = start(pool, settings(&unique_event(), 4, 4)).await;
    let url = format!("{}/v1/events/{}/holds", service.base, service.event);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "unknown seat",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("u"))
                .json(&json!({"seats": ["a:101:1"]})),
            422,
            "unknown-seat",
        ),
        (
            "standing section by seat",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("u"))
                .json(&json!({"seats": ["floor:1:1"]})),
            422,
            "unknown-seat",
        ),
        (
            "malformed body",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("u"))
                .body("{\"seats\": "),
            400,
            "bad-request",
        ),
        (
            "both forms",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("u"))
                .json(&json!({"seats": ["a:1:1"], "section": "floor", "quantity": 1})),
            400,
            "bad-request",
        ),
        (
            "unknown field",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("u"))
                .json(&json!({"seats": ["a:1:1"], "price": 1})),
            400,
            "bad-request",
        ),
        (
            "entry token of another user",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("someone-else"))
                .json(&json!({"seats": ["a:1:1"]})),
            403,
            "entry-token",
        ),
        (
            "entry token of another event",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header(
                    "urr-entry-token",
                    service
                        .entry_key
                        .issue(
                            "u",
                            "other-event",
                            urr_service_common::unix_now(),
                            urr_service_common::unix_now() + 60,
                        )
                        .expect("token"),
                )
                .json(&json!({"seats": ["a:1:1"]})),
            403,
            "entry-token",
        ),
        (
            "no entry token",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .json(&json!({"seats": ["a:1:1"]})),
            403,
            "entry-token",
        ),
        (
            "no sign-in",
            service
                .http
                .post(&url)
                .header("urr-entry-token", service.entry_token("u"))
                .json(&json!({"seats": ["a:1:1"]})),
            401,
            "unauthorized",
        ),
        (
            "zero quantity",
            service
                .http
                .post(&url)
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("u"))
                .json(&json!({"section": "floor", "quantity": 0})),
            400,
            "bad-request",
        ),
        (
            "wrong event in the path",
            service
                .http
                .post(format!("{}/v1/events/nope/holds", service.base))
                .bearer_auth(support::user_token("u"))
                .header("urr-entry-token", service.entry_token("u"))
                .json(&json!({"seats": ["a:1:1"]})),
            404,
            "unknown-event",
        ),
        (
            "internal API without the service token",
            service
                .http
                .post(format!(
                    "{}/internal/holds/{}/confirm",
                    service.internal_base,
                    uuid::Uuid::new_v4()
                ))
                .bearer_auth("wrong")
                .json(&json!({"paymentId": "p", "amountMinor": 1, "currency": "KRW"})),
            401,
            "unauthorized",
        ),
    ];
    for (name, request, status, slug) in cases {
        let answer = service.raw(request).await;
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        assert_eq!(answer.content_type, "application/problem+json", "{name}");
        assert!(
            answer.problem_type().ends_with(&format!("/{slug}")),
            "{name}: {answer:?}"
        );
        assert!(
            !answer.body["detail"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
    }
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 0);
    assert_eq!(
        service.count("SELECT count(*) FROM idempotency_keys").await,
        0
    );
    assert_eq!(
        service
            .count("SELECT count(*) FROM seats WHERE status <> 'available'")
            .await,
        0
    );
    assert_eq!(service.seat_key("a:1:1").await, None);
}

#[sqlx::test(migrations = false)]
async fn standing_sections_are_counted_and_never_oversold(pool: PgPool) {
    let service = Arc::new(start(pool, settings(&unique_event(), 4, 4)).await);
    let mut tasks = Vec::new();
    for buyer in 0..40 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service
                .hold(
                    &format!("b{buyer}"),
                    json!({"section": "floor", "quantity": 2}),
                    None,
                )
                .await
                .status
        }));
    }
    let mut held = 0;
    for task in tasks {
        match task.await.expect("task") {
            201 => held += 1,
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(held, 25, "50 places, 2 each");
    let availability = service
        .get(&format!("/v1/events/{}/availability", service.event), None)
        .await;
    let floor = &availability.body["sections"][0];
    assert_eq!(floor["held"], 50);
    assert_eq!(floor["available"], 0);
}

#[sqlx::test(migrations = false)]
async fn holds_are_refused_outside_the_sale_window(pool: PgPool) {
    let mut later = settings(&unique_event(), 4, 4);
    later["salesOpenAt"] = "2099-01-01T00:00:00Z".into();
    later["salesCloseAt"] = "2099-02-01T00:00:00Z".into();
    let service = start(pool, later).await;
    let early = service
        .hold("alice", json!({"seats": ["a:1:1"]}), None)
        .await;
    assert_eq!(early.status, 403);
    assert!(early.problem_type().ends_with("/sales-closed"), "{early:?}");
    assert_eq!(service.seat_key("a:1:1").await, None, "nothing locked");
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 0);
}

#[sqlx::test(migrations = false)]
async fn keyed_holds_never_need_two_connections_at_once(pool: PgPool) {
    // A hold's transaction must do all its work on its own connection: one
    // that asks the pool for a second while holding the first starves a
    // small pool under a crowd (each writer holds one and waits for another).
    let small = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("small pool");
    let service = Arc::new(start(small, settings(&unique_event(), 4, 4)).await);
    let mut tasks = Vec::new();
    for buyer in 0..12 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let seat = format!("a:{}:{}", buyer / 4 + 1, buyer % 4 + 1);
            service
                .hold(
                    &format!("buyer-{buyer}"),
                    json!({"seats": [seat]}),
                    Some(&format!("key-{buyer}")),
                )
                .await
        }));
    }
    for task in tasks {
        let answer = task.await.expect("task");
        assert_eq!(answer.status, 201, "{answer:?}");
    }
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 12);
}

/// Issue 17's findings: a key that is not text is refused, not ignored (a
/// retry with it would be a second hold), and a path segment that is not
/// UTF-8 is a problem, not a text/plain 400.
#[sqlx::test(migrations = false)]
async fn unreadable_keys_and_paths_are_problems_and_hold_nothing(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let key = reqwest::header::HeaderValue::from_bytes(b"key-\xff").expect("opaque header");
    let answer = service
        .raw(
            service
                .http
                .post(format!(
                    "{}/v1/events/{}/holds",
                    service.base, service.event
                ))
                .bearer_auth(support::user_token("dora"))
                .header("urr-entry-token", service.entry_token("dora"))
                .header("idempotency-key", key)
                .json(&json!({"seats": ["a:1:1"]})),
        )
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 0);

    let answer = service
        .raw(service.http.get(format!("{}/v1/events/%FF", service.base)))
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(
        answer.problem_type(),
        "https://urr.dev/problems/bad-request"
    );
}

/// Issue 17's finding: a body over 2 MB (axum's own default limit, which
/// answered 413 in text/plain) is a 413 `body-too-large` problem on the
/// hold route, whether its size is declared or only found while reading,
/// and holds nothing.
#[sqlx::test(migrations = false)]
async fn a_body_over_two_megabytes_is_a_problem_and_holds_nothing(pool: PgPool) {
    use axum::body::{Body, Bytes};
    use axum::http::{Request, header};
    use tower::ServiceExt;

    let (app, service) = support::public_app(pool, settings(&unique_event(), 4, 4)).await;
    let huge = format!(
        r#"{{"seats": ["a:1:1"], "pad": "{}"}}"#,
        "x".repeat(3 << 20)
    );
    let request = |body: Body, declared: bool| {
        let mut request = Request::post(format!("/v1/events/{}/holds", service.event))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", support::user_token("erin")),
            )
            .header("urr-entry-token", service.entry_token("erin"))
            .header(header::CONTENT_TYPE, "application/json");
        if declared {
            request = request.header(header::CONTENT_LENGTH, huge.len());
        }
        request.body(body).expect("request")
    };
    let chunks: Vec<Result<Bytes, std::io::Error>> = huge
        .as_bytes()
        .chunks(64 << 10)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    for (name, request) in [
        ("declared", request(Body::from(huge.clone()), true)),
        (
            "streamed",
            request(Body::from_stream(futures::stream::iter(chunks)), false),
        ),
    ] {
        let response = app.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), 413, "{name}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json",
            "{name}"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
        assert_eq!(
            problem["type"], "https://urr.dev/problems/body-too-large",
            "{name}"
        );
    }
    assert_eq!(service.count("SELECT count(*) FROM holds").await, 0);
}
