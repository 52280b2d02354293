//! Shared set-up of the ticket service's tests: a throwaway PostgreSQL
//! database per test (`#[sqlx::test]`, from the local stack's DATABASE_URL),
//! the stack's Redis and Kafka broker, a fresh event id per test, and the
//! service on two loopback ports (public and internal, as in production)
//! driven over HTTP.

#![allow(dead_code)]

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::PgPool;
use urr_service_common::server::{self, ServerSettings};
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::user::UserTokenVerifier;
use urr_ticket::holds::HoldDesk;
use urr_ticket::locks::SeatLocks;
use urr_ticket::settings::Catalog;
use urr_ticket::telemetry::TicketMetrics;
use urr_ticket::{AppState, inventory, routers};

pub const USER_SECRET: &[u8] = b"test-user-jwt-secret-0123456789ab";
pub const ENTRY_SECRET: &[u8] = b"test-entry-token-secret-012345678";
pub const SERVICE_TOKEN: &str = "test-service-token-0123456789";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"` (scripts/test does this)")
    })
}

pub fn unique_event() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

/// Seat map: standing `floor` (50), seated `a` (100 rows × 100 = 10,000).
pub fn settings(event: &str, per_order: u32, per_user: u32) -> Value {
    json!({
        "event": event,
        "displayName": "Test concert",
        "salesOpenAt": "2020-01-01T00:00:00Z",
        "salesCloseAt": "2099-01-01T00:00:00Z",
        "holdTimeoutSeconds": 600,
        "limits": {"maxSeatsPerOrder": per_order, "maxSeatsPerUser": per_user},
        "seatMap": {"sections": [
            {"id": "floor", "name": "Floor", "capacity": 50, "price": {"amountMinor": 50000, "currency": "KRW"}},
            {"id": "a", "name": "Block A", "rows": 100, "seatsPerRow": 100, "price": {"amountMinor": 120000, "currency": "KRW"}}
        ]}
    })
}

pub struct Service {
    pub event: String,
    /// The public listener.
    pub base: String,
    /// The internal listener (`/internal/*`, `/metrics`).
    pub internal_base: String,
    pub desk: HoldDesk,
    pub http: reqwest::Client,
    pub entry_key: EntryTokenKey,
}

pub async fn redis() -> redis::aio::ConnectionManager {
    redis::Client::open(env("URR_REDIS_URL"))
        .expect("redis url")
        .get_connection_manager()
        .await
        .expect("Redis from the local stack")
}

pub async fn desk(pool: PgPool, settings: Value) -> HoldDesk {
    let event = settings["event"].as_str().expect("event").to_owned();
    let catalog = Arc::new(Catalog::from_json(&settings.to_string(), &event).expect("catalog"));
    urr_ticket::prepare_database(&pool)
        .await
        .expect("migrations");
    inventory::import(&pool, &catalog).await.expect("import");
    let locks = SeatLocks::new(redis().await, &event);
    inventory::restore_locks(
        &pool,
        &locks,
        &event,
        inventory::StandingCounters::KeepExisting,
    )
    .await
    .expect("restore");
    HoldDesk {
        pool,
        locks,
        catalog,
        metrics: Arc::new(TicketMetrics::new()),
    }
}

/// The public router as the server serves it (origin check and limits
/// around it), for requests sent in-process, where the client side of an
/// exchange cannot get in the way (a 3 MB upload answered early).
pub async fn public_app(pool: PgPool, settings: Value) -> (axum::Router, Service) {
    let service = start(pool.clone(), settings.clone()).await;
    let state = AppState::new(
        service.desk.clone(),
        UserTokenVerifier::hs256(USER_SECRET, None, None),
        EntryTokenKey::new(ENTRY_SECRET),
        SERVICE_TOKEN,
    );
    (
        server::guard(routers(state).public, &ServerSettings::default()),
        service,
    )
}

pub async fn start(pool: PgPool, settings: Value) -> Service {
    let desk = desk(pool, settings).await;
    let state = AppState::new(
        desk.clone(),
        UserTokenVerifier::hs256(USER_SECRET, None, None),
        EntryTokenKey::new(ENTRY_SECRET),
        SERVICE_TOKEN,
    );
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = server::bind(loopback).await.expect("bind");
    let internal = server::bind(loopback).await.expect("bind internal");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let internal_base = format!("http://{}", internal.local_addr().expect("addr"));
    tokio::spawn(async move {
        server::serve_split(
            listener,
            internal,
            routers(state),
            &ServerSettings::default(),
            std::future::pending(),
        )
        .await;
    });
    Service {
        event: desk.catalog.event().to_owned(),
        base,
        internal_base,
        desk,
        http: urr_service_common::http_client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client"),
        entry_key: EntryTokenKey::new(ENTRY_SECRET),
    }
}

pub fn user_token(user: &str) -> String {
    let now = urr_service_common::unix_now();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": user, "iat": now, "exp": now + 3600}),
        &EncodingKey::from_secret(USER_SECRET),
    )
    .expect("sign")
}

/// An HTTP answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl Answer {
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        content_type,
    }
}

impl Service {
    pub fn entry_token(&self, user: &str) -> String {
        let now = urr_service_common::unix_now();
        self.entry_key
            .issue(user, &self.event, now, now + 600)
            .expect("entry token")
    }

    pub async fn hold(&self, user: &str, body: Value, key: Option<&str>) -> Answer {
        let mut request = self
            .http
            .post(format!("{}/v1/events/{}/holds", self.base, self.event))
            .bearer_auth(user_token(user))
            .header("urr-entry-token", self.entry_token(user))
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        answer(request.send().await.expect("request")).await
    }

    pub async fn raw(&self, request: reqwest::RequestBuilder) -> Answer {
        answer(request.send().await.expect("request")).await
    }

    pub async fn confirm(&self, hold: &str, payment: &str, amount: i64) -> Answer {
        let request = self
            .http
            .post(format!(
                "{}/internal/holds/{hold}/confirm",
                self.internal_base
            ))
            .bearer_auth(SERVICE_TOKEN)
            .json(&json!({"paymentId": payment, "amountMinor": amount, "currency": "KRW"}));
        answer(request.send().await.expect("request")).await
    }

    pub async fn cancel(&self, hold: &str, payment: &str) -> Answer {
        self.cancel_with(hold, json!({"paymentId": payment, "reason": "refund"}))
            .await
    }

    /// `POST /internal/holds/{hold}/cancel` with `body` (a partial refund
    /// names `ticketIds` and its `refundId`).
    pub async fn cancel_with(&self, hold: &str, body: serde_json::Value) -> Answer {
        let request = self
            .http
            .post(format!(
                "{}/internal/holds/{hold}/cancel",
                self.internal_base
            ))
            .bearer_auth(SERVICE_TOKEN)
            .json(&body);
        answer(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, user: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(user) = user {
            request = request.bearer_auth(user_token(user));
        }
        answer(request.send().await.expect("request")).await
    }

    /// `GET path` on the internal listener.
    pub async fn get_internal(&self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.internal_base));
        answer(request.send().await.expect("request")).await
    }

    /// The service's Prometheus text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.internal_base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.desk.pool)
            .await
            .expect("count query")
    }

    pub async fn seat_key(&self, seat: &str) -> Option<String> {
        let mut redis = redis().await;
        redis::cmd("GET")
            .arg(self.desk.locks.seat_key(seat))
            .query_async(&mut redis)
            .await
            .expect("redis get")
    }
}
