//! Invite and presale codes (issue 18, item 6) on a real Redis, through the
//! public router: a skip code admits at once, a priority code joins ahead of
//! everyone without one (and of the pre-queue draw), each code once, and a
//! code this room cannot take is refused with its reason. A code also
//! stands in for the served tier-1 pass, and its holder gets one the edge
//! lets through.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use support::*;
use urr_queue::policy::{Policy, QueueingMethod};
use urr_service_common::serving::ServingParams;
use urr_service_common::tokens::invite::{self, InviteMode};
use urr_service_common::tokens::vwr::{self, VwrKey};
use urr_service_common::unix_now;

fn key() -> VwrKey {
    VwrKey::new("k1", VWR_SECRET.to_vec())
}

/// A room that holds everyone (FIFO, nobody admitted between the calls)
/// and takes codes for the next hour.
async fn room(event: &str, method: QueueingMethod) -> urr_queue::AppState {
    let state = state(event).await;
    state
        .store
        .write_policy(&Policy {
            method,
            invites_until: unix_now() + 3_600,
            ..Policy::default()
        })
        .await
        .expect("policy");
    state
}

fn code(state: &urr_queue::AppState, id: &str, mode: InviteMode) -> String {
    invite::sign(&key(), &state.room_id, id, mode, unix_now() + 600).expect("a code")
}

fn join(event: &str, user: &str, invite_code: Option<&str>) -> Request<Body> {
    let body = match invite_code {
        Some(code) => json!({"inviteCode": code}).to_string(),
        None => String::new(),
    };
    Request::post(format!("/v1/events/{event}/queue"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", user_token(user)),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request")
}

/// One sample of the service's Prometheus text (0 when absent).
async fn metric(state: &urr_queue::AppState, line: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry).expect("metrics");
    text.lines()
        .find(|l| l.starts_with(line))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_skip_code_admits_at_once_and_only_once() {
    let event = unique_event();
    let state = room(&event, QueueingMethod::Fifo).await;
    for fan in ["fan-1", "fan-2"] {
        let (status, _, body) = send(&state, join(&event, fan, None)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "waiting", "{body}");
    }
    let vip = code(&state, "vip-0001", InviteMode::Skip);
    let (status, _, body) = send(&state, join(&event, "vip", Some(&vip))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "admitted", "{body}");
    assert!(body["entryToken"].is_string());
    // The holder again (a retry) keeps it; anyone else is refused.
    let (status, _, body) = send(&state, join(&event, "vip", Some(&vip))).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("admitted"))
    );
    let (status, headers, body) = send(&state, join(&event, "friend", Some(&vip))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&headers, &body, "invite-used");
    // The friend was not queued by the refused attempt.
    assert_eq!(state.store.figures(0).await.expect("figures").depth, 2);
    assert_eq!(
        metric(&state, "urr_queue_invites_redeemed_total{mode=\"skip\"}").await,
        1.0
    );
}

#[tokio::test]
async fn a_priority_code_joins_ahead_of_the_line_and_of_the_draw() {
    let event = unique_event();
    let state = room(&event, QueueingMethod::Fifo).await;
    for fan in ["fan-1", "fan-2", "fan-3"] {
        send(&state, join(&event, fan, None)).await;
    }
    let early = code(&state, "presale-1", InviteMode::Priority);
    let (status, _, body) = send(&state, join(&event, "presale-a", Some(&early))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["status"].clone(), body["position"].clone()),
        (json!("waiting"), json!(1)),
        "{body}"
    );
    // A second code holder queues behind the first, both ahead of the rest;
    // one already in line moves up when they present a code.
    let late = code(&state, "presale-2", InviteMode::Priority);
    let (_, _, body) = send(&state, join(&event, "fan-3", Some(&late))).await;
    assert_eq!(body["position"], 2, "{body}");
    let (_, _, body) = send(&state, join(&event, "fan-1", None)).await;
    assert_eq!(body["position"], 3, "{body}");
    // The pre-queue draw orders those without a code only.
    let drawn = state.store.waiting_members().await.expect("members");
    assert_eq!(drawn, vec!["fan-1".to_owned(), "fan-2".to_owned()]);
    // A retry by the holder does not move them back behind later codes.
    let (_, _, body) = send(&state, join(&event, "presale-a", Some(&early))).await;
    assert_eq!(body["position"], 1, "{body}");
    assert_eq!(
        metric(
            &state,
            "urr_queue_invites_redeemed_total{mode=\"priority\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn a_skip_code_lets_its_holder_into_a_closed_presale_room_and_nobody_else() {
    let event = unique_event();
    let state = room(&event, QueueingMethod::Reject).await;
    let (status, headers, body) = send(&state, join(&event, "public", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "sale-closed");
    let vip = code(&state, "member-7", InviteMode::Skip);
    let (status, _, body) = send(&state, join(&event, "member", Some(&vip))).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("admitted")),
        "{body}"
    );
}

#[tokio::test]
async fn a_code_the_room_cannot_take_is_refused_with_its_reason_and_queues_nobody() {
    let event = unique_event();
    let state = room(&event, QueueingMethod::Fifo).await;
    let other_room = invite::sign(
        &key(),
        "urr-test/another-room",
        "c1",
        InviteMode::Skip,
        unix_now() + 600,
    )
    .expect("code");
    let forged = invite::sign(
        &VwrKey::new("k1", b"not-the-room-key-but-32-bytes-ok".to_vec()),
        &state.room_id,
        "c2",
        InviteMode::Skip,
        unix_now() + 600,
    )
    .expect("code");
    let expired = invite::sign(
        &key(),
        &state.room_id,
        "c3",
        InviteMode::Skip,
        unix_now() - 1,
    )
    .expect("code");
    let pass = vwr::sign(&key(), &state.room_id, 1, unix_now() + 600);
    for (bad, reason) in [
        (other_room.as_str(), "wrong-room"),
        (forged.as_str(), "bad-signature"),
        (expired.as_str(), "expired"),
        (pass.as_str(), "malformed"),
        ("garbage", "malformed"),
    ] {
        let (status, headers, body) = send(&state, join(&event, "someone", Some(bad))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{reason}");
        assert_problem(&headers, &body, "invite-invalid");
        assert_eq!(body["reason"], reason);
    }
    assert_eq!(state.store.figures(0).await.expect("figures").depth, 0);
    assert_eq!(
        metric(&state, "urr_queue_refused_total{reason=\"invite-invalid\"}").await,
        5.0
    );
    // A room without `spec.invites` takes none, however well signed.
    state
        .store
        .write_policy(&Policy::default())
        .await
        .expect("policy");
    // A fresh service: the policy snapshot of the first is cached for 1 s.
    let state = support::state(&event).await;
    let good = code(&state, "c4", InviteMode::Skip);
    let (status, _, body) = send(&state, join(&event, "someone", Some(&good))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "this room takes no invite codes");
    assert_eq!(
        metric(&state, "urr_queue_refused_total{reason=\"invite-invalid\"}").await,
        1.0
    );
}

#[tokio::test]
async fn a_code_stands_in_for_the_tier_one_pass_and_comes_with_a_served_one() {
    let event = unique_event();
    let state = room(&event, QueueingMethod::Fifo).await;
    let now = unix_now();
    let mut policy = state.store.policy().await.expect("policy");
    policy.pass_required_from = now - 60;
    state.store.write_policy(&policy).await.expect("policy");
    let serving = ServingParams {
        start: 5,
        per_interval: 1,
        interval_seconds: 3600,
        epoch: now - 60,
        paused_at: None,
    };
    state
        .store
        .write_serving_params(&serving)
        .await
        .expect("serving");
    let (status, headers, body) = send(&state, join(&event, "plain", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "pass-required");
    let vip = code(&state, "vip-9", InviteMode::Skip);
    let (status, headers, body) = send(&state, join(&event, "vip", Some(&vip))).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("admitted")),
        "{body}"
    );
    let cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a pass cookie");
    let token = cookie
        .strip_prefix(&format!("{}=", vwr::COOKIE_NAME))
        .and_then(|rest| rest.split(';').next())
        .expect("the pass");
    let claims = vwr::verify(&[key()], token, &state.room_id, now).expect("a pass of this room");
    assert!(
        claims.number <= serving.serving_at(now),
        "the edge lets it through now"
    );
}
