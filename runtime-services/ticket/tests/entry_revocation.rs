//! Issue 22: leaving the queue after admission must revoke the entry token,
//! or the freed slot admits the next user while the leaver keeps buying
//! (`maxActiveUsers` exceeded). The real queue service and the ticket
//! service against the same Redis.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{ENTRY_SECRET, Service, USER_SECRET, settings, start, unique_event, user_token};
use tower::ServiceExt;
use urr_queue::AppState;
use urr_queue::admitter::{Admitter, AdmitterSettings};
use urr_queue::policy::Policy;
use urr_queue::store::QueueStore;
use urr_queue::telemetry::QueueMetrics;
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::user::UserTokenVerifier;
use urr_service_common::tokens::vwr::VwrKey;

async fn queue(event: &str) -> AppState {
    AppState {
        store: QueueStore::connect(&support::env("URR_REDIS_URL"), event)
            .await
            .expect("Redis from the local stack"),
        event: event.to_owned(),
        room_name: event.to_owned(),
        room_id: format!("urr-test/{event}"),
        users: UserTokenVerifier::hs256(USER_SECRET, None, None),
        entry_key: EntryTokenKey::new(ENTRY_SECRET),
        pass_keys: urr_queue::pass::PassKeys::new(
            VwrKey::new("k1", b"test-vwr-signing-secret-012345678".to_vec()),
            None,
        ),
        vwr_token_ttl_seconds: 3600,
        cookie_secure: true,
        number_limit_per_ip: 0,
        join_limit_per_ip: 1_000_000,
        join_limit_per_user: 1_000_000,
        client_address: Default::default(),
        metrics: Arc::new(QueueMetrics::new()),
        drawn_members: Arc::default(),
        page: Arc::default(),
        snapshot: Arc::new(urr_queue::snapshot::SnapshotCache::new(
            std::time::Duration::from_secs(1),
        )),
    }
}

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = urr_queue::routers(state.clone())
        .public
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn request(method: &str, uri: &str, user: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", user_token(user)),
        )
        .body(Body::empty())
        .expect("request")
}

fn admitter(state: &AppState) -> Admitter {
    Admitter::new(
        state.store.clone(),
        AdmitterSettings {
            instance: "test".into(),
            inventory: None,
            tick_ms: 1000,
            lease_ms: 3000,
            heartbeat_timeout_ms: 3_600_000,
        },
        None,
    )
}

async fn admitted(state: &AppState, admitter: &mut Admitter, user: &str) -> String {
    let uri = format!("/v1/events/{}/queue", state.event);
    let (status, body) = send(state, request("POST", &uri, user)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    admitter
        .tick_at(urr_service_common::unix_now_ms())
        .await
        .expect("tick");
    let (status, body) = send(state, request("GET", &format!("{uri}/me"), user)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "admitted", "{body}");
    body["entryToken"].as_str().expect("entry token").to_owned()
}

async fn hold_with(
    service: &Service,
    user: &str,
    entry_token: &str,
    seat: &str,
) -> support::Answer {
    service
        .raw(
            service
                .http
                .post(format!(
                    "{}/v1/events/{}/holds",
                    service.base, service.event
                ))
                .bearer_auth(user_token(user))
                .header("urr-entry-token", entry_token)
                .json(&json!({"seats": [seat]})),
        )
        .await
}

#[sqlx::test(migrations = false)]
async fn leaving_the_queue_revokes_the_entry_token(pool: PgPool) {
    let service = start(pool, settings(&unique_event(), 4, 4)).await;
    let state = queue(&service.event).await;
    state
        .store
        .write_policy(&Policy {
            users_per_second: 10,
            max_active_users: 10,
            ..Policy::default()
        })
        .await
        .expect("policy");
    let mut admitter = admitter(&state);
    let token = admitted(&state, &mut admitter, "alice").await;
    let first = hold_with(&service, "alice", &token, "a:1:1").await;
    assert_eq!(
        first.status, 201,
        "the token works while admitted: {first:?}"
    );

    let uri = format!("/v1/events/{}/queue/me", state.event);
    let (status, body) = send(&state, request("DELETE", &uri, "alice")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let after = hold_with(&service, "alice", &token, "a:1:2").await;
    assert_eq!(after.status, 403, "{after:?}");
    assert!(after.problem_type().ends_with("/entry-token"), "{after:?}");
    assert_eq!(after.content_type, "application/problem+json");

    // Another user's token is not touched by alice leaving.
    let bobs = admitted(&state, &mut admitter, "bob").await;
    assert_eq!(hold_with(&service, "bob", &bobs, "a:1:3").await.status, 201);

    // Rejoining and being admitted again gives a token that works (issued
    // after the leave; a second later so `iat` is past it).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = admitted(&state, &mut admitter, "alice").await;
    let renewed = hold_with(&service, "alice", &again, "a:1:4").await;
    assert_eq!(renewed.status, 201, "{renewed:?}");
}
