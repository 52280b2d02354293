//! Chained tiers (issue 16, item 1): while the edge gates, joining tier 2
//! needs a served pass of this room, and tier-1 numbers are limited per
//! address for callers without one. Driven through the public router against a
//! real Redis.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use support::*;
use urr_queue::pass::PassKeys;
use urr_queue::policy::Policy;
use urr_service_common::serving::ServingParams;
use urr_service_common::tokens::vwr::{self, VwrKey};
use urr_service_common::unix_now;

const PREVIOUS_SECRET: &[u8] = b"test-vwr-previous-secret-01234567";

/// A room whose edge gates from a minute ago and serves numbers up to 5.
async fn gated(event: &str) -> urr_queue::AppState {
    let mut state = state(event).await;
    state.pass_keys = PassKeys::new(
        VwrKey::new("k2", VWR_SECRET.to_vec()),
        Some(VwrKey::new("k1", PREVIOUS_SECRET.to_vec())),
    );
    let now = unix_now();
    state
        .store
        .write_policy(&Policy {
            pass_required_from: now - 60,
            ..Policy::default()
        })
        .await
        .expect("policy");
    state
        .store
        .write_serving_params(&ServingParams {
            start: 5,
            per_interval: 1,
            interval_seconds: 3600,
            epoch: now - 60,
            paused_at: None,
        })
        .await
        .expect("serving");
    state
}

fn join_with_pass(event: &str, user: &str, pass: Option<&str>) -> Request<Body> {
    let mut request = Request::post(format!("/v1/events/{event}/queue")).header(
        header::AUTHORIZATION,
        format!("Bearer {}", user_token(user)),
    );
    if let Some(pass) = pass {
        request = request.header(header::COOKIE, format!("{}={pass}", vwr::COOKIE_NAME));
    }
    request.body(Body::empty()).expect("request")
}

fn pass_signed(state: &urr_queue::AppState, id: &str, secret: &[u8], number: u64) -> String {
    vwr::sign(
        &VwrKey::new(id, secret.to_vec()),
        &state.room_id,
        number,
        unix_now() + 600,
    )
}

#[tokio::test]
async fn a_join_without_a_pass_is_told_where_to_take_a_number() {
    let event = unique_event();
    let state = gated(&event).await;
    let (status, headers, body) = send(&state, join_with_pass(&event, "api-client", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "pass-required");
    assert_eq!(body["numbersUrl"], format!("/v1/rooms/{event}/numbers"));
    assert_eq!(body["waitingPage"], format!("/waiting/{event}"));
    // Nothing was queued.
    assert_eq!(state.store.figures(0).await.expect("figures").depth, 0);
}

#[tokio::test]
async fn forged_foreign_and_unserved_passes_do_not_join() {
    let event = unique_event();
    let state = gated(&event).await;
    let forged = pass_signed(&state, "k2", b"not-the-room-key-0123456789abcdef", 1);
    let foreign = vwr::sign(
        &VwrKey::new("k2", VWR_SECRET.to_vec()),
        "other-namespace/other-room",
        1,
        unix_now() + 600,
    );
    for pass in [forged, foreign] {
        let (status, headers, body) =
            send(&state, join_with_pass(&event, "mallory", Some(&pass))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_problem(&headers, &body, "pass-required");
    }
    let ahead = pass_signed(&state, "k2", VWR_SECRET, 6);
    let (status, headers, body) = send(&state, join_with_pass(&event, "early", Some(&ahead))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "pass-not-served");
    assert_eq!(body["number"], 6);
    assert_eq!(body["serving"], 5);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(state.store.figures(0).await.expect("figures").depth, 0);
}

#[tokio::test]
async fn served_passes_of_the_current_and_previous_key_join() {
    let event = unique_event();
    let state = gated(&event).await;
    for (user, pass) in [
        ("current", pass_signed(&state, "k2", VWR_SECRET, 5)),
        ("rotated", pass_signed(&state, "k1", PREVIOUS_SECRET, 2)),
    ] {
        let (status, _, body) = send(&state, join_with_pass(&event, user, Some(&pass))).await;
        assert_eq!(status, StatusCode::OK, "{user}: {body}");
        assert_eq!(body["status"], "waiting");
    }
}

#[tokio::test]
async fn before_the_gate_enforces_no_pass_is_needed() {
    let event = unique_event();
    let state = gated(&event).await;
    state
        .store
        .write_policy(&Policy {
            pass_required_from: unix_now() + 3600,
            ..Policy::default()
        })
        .await
        .expect("policy");
    // The snapshot cache holds a policy for up to a tick.
    state.snapshot.invalidate();
    let (status, _, body) = send(&state, join_with_pass(&event, "early-bird", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn take_number_from(event: &str, address: &str, pass: Option<&str>) -> Request<Body> {
    let mut request = Request::post(format!("/v1/rooms/{event}/numbers"))
        .header("x-forwarded-for", format!("203.0.113.99, {address}"));
    if let Some(pass) = pass {
        request = request.header(header::COOKIE, pass);
    }
    request.body(Body::empty()).expect("request")
}

#[tokio::test]
async fn a_cookieless_loop_cannot_push_the_line_back() {
    let event = unique_event();
    let mut state = gated(&event).await;
    state.number_limit_per_ip = 3;
    state.client_address = urr_queue::client_address::ClientAddressSource {
        header: Some(header::HeaderName::from_static("x-forwarded-for")),
        trusted_hops: 1,
    };
    let mut first_pass = None;
    for n in 1..=3 {
        let (status, headers, body) =
            send(&state, take_number_from(&event, "198.51.100.7", None)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["number"], n);
        first_pass.get_or_insert_with(|| {
            headers[header::SET_COOKIE]
                .to_str()
                .expect("cookie")
                .split(';')
                .next()
                .expect("pair")
                .to_owned()
        });
    }
    let (status, headers, body) =
        send(&state, take_number_from(&event, "198.51.100.7", None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_problem(&headers, &body, "rate-limited");
    assert!(headers.contains_key(header::RETRY_AFTER));
    // The holder of a pass keeps their number, limit or not.
    let (status, _, body) = send(
        &state,
        take_number_from(&event, "198.51.100.7", first_pass.as_deref()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["number"], 1);
    // The refused requests used up no numbers: the next visitor is 4th.
    let (_, _, body) = send(&state, take_number_from(&event, "192.0.2.1", None)).await;
    assert_eq!(body["number"], 4);
}

/// An Event whose WaitingRoom has no edge gives the queue no pass key
/// (`URR_VWR_SIGNING_KEY` unset): the service still serves tier 2, and
/// asking for a tier-1 number is a documented 404, not a signature with an
/// empty key.
#[tokio::test]
async fn a_room_without_an_edge_has_no_tier_one() {
    let event = unique_event();
    let mut state = state(&event).await;
    state.pass_keys = PassKeys::none();
    let (status, headers, body) = send(&state, take_number_from(&event, "192.0.2.9", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_problem(&headers, &body, "no-tier-one");
    let (status, _, body) = send(&state, join_with_pass(&event, "no-edge-buyer", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
