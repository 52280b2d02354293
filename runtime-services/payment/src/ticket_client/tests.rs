use super::*;

#[test]
fn only_the_ticket_services_hold_refusals_are_final() {
    let base = urr_service_common::problem::PROBLEM_BASE;
    for (status, slug) in FINAL_REFUSALS {
        assert!(is_final_refusal(status, &format!("{base}{slug}")), "{slug}");
    }
    // Auth, routing, overload and unknown problems say nothing about the hold.
    for (status, problem_type) in [
        (401, format!("{base}unauthorized")),
        (403, format!("{base}forbidden")),
        (404, format!("{base}unknown-hold")),
        (404, format!("{base}not-found")),
        (400, format!("{base}bad-request")),
        (429, format!("{base}too-many-requests")),
        (409, format!("{base}conflict")),
        (409, format!("{base}idempotency-in-flight")),
        // The right slug with another status, or under another base.
        (404, format!("{base}hold-expired")),
        (409, "https://example.com/problems/hold-expired".to_owned()),
        (409, "hold-expired".to_owned()),
        (409, String::new()),
    ] {
        assert!(
            !is_final_refusal(status, &problem_type),
            "{status} {problem_type}"
        );
    }
}

/// A stand-in ticket service answering every confirm with `status` and
/// a problem of type `slug`.
async fn answering(status: u16, slug: &'static str) -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move || async move {
        let status = axum::http::StatusCode::from_u16(status).expect("status");
        urr_service_common::problem::Problem::new(status, slug, "Stub", "stub answer")
            .into_response()
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn confirm() -> TicketRequest {
    TicketRequest::Confirm {
        hold: "h1".into(),
        body: ConfirmRequest {
            payment_id: "p1".into(),
            amount_minor: 1,
            currency: "KRW".into(),
        },
        traceparent: None,
    }
}

#[tokio::test]
async fn auth_routing_and_overload_answers_are_not_refusals() {
    let settings = ClientSettings {
        timeout: Duration::from_millis(500),
        retries: 0,
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(2),
        breaker_failures: 100,
        breaker_open_for: Duration::from_millis(10),
    };
    let call = |status, slug| {
        let settings = settings.clone();
        async move {
            let base = answering(status, slug).await;
            TicketClient::new(&base, "token", &settings, Gauge::default())
                .expect("client")
                .call(confirm())
                .await
        }
    };
    for (status, slug) in [
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "unknown-hold"),
        (400, "bad-request"),
        (409, "conflict"),
    ] {
        let answer = call(status, slug).await;
        assert!(
            matches!(&answer, Ok(TicketAnswer::Rejected { status: s, .. }) if *s == status),
            "{status} {slug}: {answer:?}"
        );
    }
    for status in [429, 500, 503] {
        let answer = call(status, "unavailable").await;
        assert!(
            matches!(answer, Err(TicketCallError::Unavailable(_))),
            "{status}: {answer:?}"
        );
    }
    for (status, slug) in FINAL_REFUSALS {
        let answer = call(status, slug).await;
        assert!(
            matches!(&answer, Ok(TicketAnswer::Refused { problem, .. }) if problem == slug),
            "{status} {slug}: {answer:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_service_token_is_retried_with_backoff() {
    use axum::response::IntoResponse;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    // Two replicas out of date with the token, then one that accepts it.
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                urr_service_common::problem::Problem::unauthorized("stale token").into_response()
            } else {
                axum::Json(serde_json::json!({
                    "reservationId": "r1", "holdId": "h1", "paymentId": "p1",
                    "ticketIds": ["t1"], "alreadyConfirmed": false
                }))
                .into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let settings = ClientSettings {
        timeout: Duration::from_millis(500),
        retries: 2,
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        // One counted failure would open it: a 401 must not count.
        breaker_failures: 1,
        breaker_open_for: Duration::from_secs(60),
    };
    let client = TicketClient::new(&base, "token", &settings, Gauge::default()).expect("client");
    let answer = client.call(confirm()).await;
    assert!(
        matches!(&answer, Ok(TicketAnswer::Confirmed(c)) if c.reservation_id == "r1"),
        "{answer:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(client.circuit_state(), CircuitState::Closed);
    // Retries run out: still an answer that is no refusal.
    calls.store(0, Ordering::SeqCst);
    let settings = ClientSettings {
        retries: 1,
        ..settings
    };
    let client = TicketClient::new(&base, "token", &settings, Gauge::default()).expect("client");
    let answer = client.call(confirm()).await;
    assert!(
        matches!(&answer, Ok(a) if a.is_auth_refusal()),
        "{answer:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
