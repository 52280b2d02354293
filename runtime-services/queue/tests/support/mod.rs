//! Shared set-up of the queue service's tests: a real Redis from the local
//! stack (`scripts/stack up`, then `eval "$(scripts/stack env)"`), and a fresh
//! event id per test so tests never see each other's keys.

#![allow(dead_code)]

pub mod http;
#[allow(unused_imports)] // not every test file sends requests
pub use http::*;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use urr_queue::AppState;
use urr_queue::admitter::{Admitter, AdmitterSettings};
use urr_queue::store::QueueStore;
use urr_queue::telemetry::QueueMetrics;
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::user::UserTokenVerifier;
use urr_service_common::tokens::vwr::VwrKey;

pub const USER_SECRET: &[u8] = b"test-user-jwt-secret-0123456789ab";
pub const ENTRY_SECRET: &[u8] = b"test-entry-token-secret-012345678";
pub const VWR_SECRET: &[u8] = b"test-vwr-signing-secret-012345678";

pub fn redis_url() -> String {
    std::env::var("URR_REDIS_URL").unwrap_or_else(|_| {
        panic!("URR_REDIS_URL is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"` (scripts/test does this)")
    })
}

/// A plain connection to the stack's Redis, for what a test writes or reads
/// beside the service (the operator's sets, the ticket service's signals).
pub async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis from the local stack")
}

pub fn unique_event() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

pub async fn store(event: &str) -> QueueStore {
    QueueStore::connect(&redis_url(), event)
        .await
        .expect("Redis from the local stack")
}

pub async fn state(event: &str) -> AppState {
    AppState {
        store: store(event).await,
        event: event.to_owned(),
        room_name: event.to_owned(),
        room_id: format!("urr-test/{event}"),
        users: UserTokenVerifier::hs256(USER_SECRET, None, None),
        entry_key: EntryTokenKey::new(ENTRY_SECRET),
        pass_keys: urr_queue::pass::PassKeys::new(VwrKey::new("k1", VWR_SECRET.to_vec()), None),
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

pub fn user_token(user: &str) -> String {
    user_token_signed(user, USER_SECRET, urr_service_common::unix_now() + 600)
}

pub fn user_token_signed(user: &str, secret: &[u8], exp: i64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": user, "exp": exp}),
        &EncodingKey::from_secret(secret),
    )
    .expect("encode")
}

pub fn admitter(store: &QueueStore, instance: &str, heartbeat_timeout_ms: u64) -> Admitter {
    Admitter::new(
        store.clone(),
        AdmitterSettings {
            instance: instance.to_owned(),
            inventory: None,
            tick_ms: 1000,
            lease_ms: 3000,
            heartbeat_timeout_ms,
        },
        None,
    )
}
