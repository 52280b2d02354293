//! The HTTP surface, driven in-process through `routers(state)` against a real Redis.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use support::*;
use tower::ServiceExt;
use urr_queue::client_address::ClientAddressSource;
use urr_queue::policy::Policy;
use urr_queue::routers;
use urr_service_common::serving::ServingParams;
use urr_service_common::tokens::entry::{EntryTokenError, EntryTokenKey};

#[tokio::test]
async fn join_poll_and_get_admitted_with_a_bound_entry_token() {
    let event = unique_event();
    let state = state(&event).await;
    state
        .store
        .write_policy(&Policy {
            users_per_second: 1,
            max_active_users: 10,
            ..Policy::default()
        })
        .await
        .expect("policy");
    let alice = user_token("alice");
    let bob = user_token("bob");
    let uri = format!("/v1/events/{event}/queue");
    let (status, _, body) = send(&state, post(&uri, Some(&alice), "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "waiting");
    assert_eq!(body["position"], 1);
    let (_, _, body) = send(&state, post(&uri, Some(&bob), r#"{"device":"phone"}"#)).await;
    assert_eq!(body["position"], 2);
    assert!(
        body["pollAfterMs"]
            .as_u64()
            .is_some_and(|ms| (1_000..=30_000).contains(&ms))
    );
    assert!(body["etaSeconds"]["low"].as_u64() <= body["etaSeconds"]["high"].as_u64());

    let mut leader = admitter(&state.store, "leader", 3_600_000);
    leader
        .tick_at(urr_service_common::unix_now_ms())
        .await
        .expect("tick");

    let (status, _, body) = send(&state, get(&format!("{uri}/me"), Some(&alice))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "admitted", "{body}");
    let token = body["entryToken"].as_str().expect("entry token");
    let key = EntryTokenKey::new(ENTRY_SECRET);
    key.verify(token, "alice", &event)
        .expect("bound to alice and this event");
    assert_eq!(
        key.verify(token, "bob", &event),
        Err(EntryTokenError::WrongBinding)
    );
    assert_eq!(
        key.verify(token, "alice", "another-event"),
        Err(EntryTokenError::WrongBinding)
    );
    // Bob is now first.
    let (_, _, body) = send(&state, get(&format!("{uri}/me"), Some(&bob))).await;
    assert_eq!(body["position"], 1);
}

#[tokio::test]
async fn tampered_expired_and_foreign_user_tokens_are_refused() {
    let event = unique_event();
    let state = state(&event).await;
    let uri = format!("/v1/events/{event}/queue");
    let mut tampered = user_token("mallory");
    tampered.replace_range(tampered.len() - 3.., "AAA");
    let expired = user_token_signed(
        "mallory",
        USER_SECRET,
        urr_service_common::unix_now() - 3600,
    );
    let foreign = user_token_signed(
        "mallory",
        b"someone else's secret",
        urr_service_common::unix_now() + 600,
    );
    for (token, name) in [
        (Some(tampered.as_str()), "tampered"),
        (Some(&expired), "expired"),
        (Some(&foreign), "foreign"),
        (None, "missing"),
    ] {
        let (status, headers, body) = send(&state, post(&uri, token, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_problem(&headers, &body, "unauthorized");
    }
    assert_eq!(
        state.store.status("mallory", 0).await.expect("status"),
        urr_queue::store::Place::Absent,
        "nothing was joined"
    );
}

#[tokio::test]
async fn unknown_room_and_event_are_404_and_a_malformed_body_is_400() {
    let event = unique_event();
    let state = state(&event).await;
    let (status, headers, body) = send(&state, get("/v1/rooms/nope/serving", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&headers, &body, "unknown-room");
    let (status, headers, body) = send(
        &state,
        post("/v1/events/nope/queue", Some(&user_token("a")), ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&headers, &body, "unknown-event");
    // An array is not a join body, even one serde would read field by
    // field (`[null, null]`, `[]`: schemathesis found them joining, issue 17).
    for bad in [
        "{",
        "[1,2]",
        "[null, null]",
        "[]",
        r#"{"device": 7}"#,
        r#"{"colour":"red"}"#,
    ] {
        let (status, headers, body) = send(
            &state,
            post(
                &format!("/v1/events/{event}/queue"),
                Some(&user_token("a")),
                bad,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_problem(&headers, &body, "bad-request");
    }
    let (status, headers, body) = send(
        &state,
        get(
            &format!("/v1/events/{event}/queue/me"),
            Some(&user_token("ghost")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&headers, &body, "not-in-queue");
}

#[tokio::test]
async fn joins_are_rate_limited_per_user_with_retry_after() {
    let event = unique_event();
    let mut state = state(&event).await;
    state.join_limit_per_user = 2;
    let uri = format!("/v1/events/{event}/queue");
    let token = user_token("eager");
    for _ in 0..2 {
        assert_eq!(
            send(&state, post(&uri, Some(&token), "")).await.0,
            StatusCode::OK
        );
    }
    let (status, headers, body) = send(&state, post(&uri, Some(&token), "")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_problem(&headers, &body, "rate-limited");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
}

#[tokio::test]
async fn joins_are_rate_limited_per_address_from_the_proxy_header() {
    let event = unique_event();
    let mut state = state(&event).await;
    state.join_limit_per_ip = 3;
    // One ingress in front: it appends the address it saw. The entries
    // before it are the client's own writing, different on every request,
    // and must not open a new limit each time.
    state.client_address = ClientAddressSource {
        header: Some(header::HeaderName::from_static("x-forwarded-for")),
        trusted_hops: 1,
    };
    let uri = format!("/v1/events/{event}/queue");
    let from = |ip: &str, user: &str| {
        Request::post(&uri)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", user_token(user)),
            )
            .header(
                "x-forwarded-for",
                format!(
                    "10.9.{}.1, {ip}",
                    user.bytes().map(u32::from).sum::<u32>() % 250
                ),
            )
            .body(Body::empty())
            .expect("request")
    };
    for i in 0..3 {
        assert_eq!(
            send(&state, from("203.0.113.7", &format!("u{i}"))).await.0,
            StatusCode::OK
        );
    }
    let (status, headers, body) = send(&state, from("203.0.113.7", "u9")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_problem(&headers, &body, "rate-limited");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("address"))
    );
    // Another address is not affected.
    assert_eq!(
        send(&state, from("198.51.100.2", "u9")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tier_one_number_is_kept_with_the_cookie_and_served_by_the_counter() {
    let event = unique_event();
    let state = state(&event).await;
    let now = urr_service_common::unix_now();
    state
        .store
        .write_serving_params(&ServingParams {
            start: 0,
            per_interval: 1,
            interval_seconds: 3600,
            epoch: now,
            paused_at: None,
        })
        .await
        .expect("params");
    let uri = format!("/v1/rooms/{event}/numbers");
    let (status, headers, first) = send(&state, post(&uri, None, "")).await;
    assert_eq!(status, StatusCode::CREATED);
    let cookie = headers[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pass = cookie.split(';').next().expect("pair").to_owned();
    assert_eq!(first["number"], 1);
    assert_eq!(first["aheadOfYou"], 1);
    // The same visitor again: same number, no new cookie.
    let again = Request::post(&uri)
        .header(header::COOKIE, &pass)
        .body(Body::empty())
        .expect("request");
    let (_, headers, body) = send(&state, again).await;
    assert_eq!(body["number"], 1);
    assert!(headers.get(header::SET_COOKIE).is_none());
    // A tampered pass buys a fresh number instead.
    let forged = Request::post(&uri)
        .header(header::COOKIE, format!("{pass}x"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&state, forged).await.2["number"], 2);
    let (status, headers, serving) =
        send(&state, get(&format!("/v1/rooms/{event}/serving"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serving["serving"], 0);
    assert_eq!(serving["perInterval"], 1);
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=0, s-maxage=5"
    );
}

#[tokio::test]
async fn internal_routes_are_only_on_the_internal_router() {
    let event = unique_event();
    let state = state(&event).await;
    for path in ["/internal/stats", "/metrics"] {
        let (status, headers, body) = send(&state, get(path, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "public {path}: {body}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/problem+json",
            "public {path}"
        );
        assert_eq!(body["type"], "https://urr.dev/problems/not-found", "{path}");
        assert_eq!(
            send_internal(&state, get(path, None)).await.0,
            StatusCode::OK,
            "internal {path}"
        );
    }
    // The API is not on the internal router, the probes are on both.
    let (status, _, _) =
        send_internal(&state, get(&format!("/v1/rooms/{event}/serving"), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            send(&state, get(path, None)).await.0,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            send_internal(&state, get(path, None)).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn stats_and_metrics_report_the_same_figures() {
    let event = unique_event();
    let state = state(&event).await;
    for user in ["a", "b", "c"] {
        send(
            &state,
            post(
                &format!("/v1/events/{event}/queue"),
                Some(&user_token(user)),
                "",
            ),
        )
        .await;
    }
    let (status, _, stats) = send_internal(&state, get("/internal/stats", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["depth"], 3);
    assert_eq!(stats["activeUsers"], 0);
    let response = routers(state.clone())
        .internal
        .oneshot(get("/metrics", None))
        .await
        .expect("metrics");
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf8");
    assert!(text.contains("urr_queue_depth 3"), "{text}");
    assert!(text.contains("urr_queue_joins_total 3"), "{text}");
}

#[tokio::test]
async fn leaving_frees_the_place_and_heartbeat_needs_a_place() {
    let event = unique_event();
    let state = state(&event).await;
    let token = user_token("leaver");
    let queue = format!("/v1/events/{event}/queue");
    send(&state, post(&queue, Some(&token), "")).await;
    assert_eq!(
        send(
            &state,
            post(&format!("{queue}/heartbeat"), Some(&token), "")
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let delete = Request::delete(format!("{queue}/me"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&state, delete).await.0, StatusCode::NO_CONTENT);
    let (status, _, body) = send(
        &state,
        post(&format!("{queue}/heartbeat"), Some(&token), ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn the_waiting_page_is_served_with_security_headers() {
    let event = unique_event();
    let state = state(&event).await;
    let response = routers(state.clone())
        .public
        .oneshot(get(&format!("/waiting/{event}"), None))
        .await
        .expect("page");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(
        response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY)
    );
    let (status, headers, body) = send(&state, get("/waiting/assets/../../etc/passwd", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let _ = headers;
}
