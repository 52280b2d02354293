//! The payment service with the real ticket service in-process: each test
//! gets its own payment database (`#[sqlx::test]`) and its own ticket
//! database, the stack's Redis and Kafka broker, a fresh event id, the
//! sandbox provider posting real signed webhooks back over HTTP, and a
//! ticket HTTP server that can be stopped and started again on its port.
//! Both services serve a public and an internal listener, as in production;
//! the payment service's ticket client is given the ticket service's
//! internal one (`/internal/holds/*` is not on the public one).

#![allow(dead_code)]

pub mod toss_fake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use tokio::task::JoinHandle;
use urr_payment::flow::Payments;
use urr_payment::provider::sandbox::{Sandbox, SandboxSettings};
use urr_payment::provider::{Provider, Providers};
use urr_payment::refund_policy::BuyerRefunds;
use urr_payment::telemetry::PaymentMetrics;
use urr_payment::ticket_client::{ClientSettings, TicketClient};
use urr_service_common::server::{self, ServerSettings};
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::user::UserTokenVerifier;
use urr_ticket::holds::HoldDesk;

pub const USER_SECRET: &[u8] = b"test-user-jwt-secret-0123456789ab";
pub const ENTRY_SECRET: &[u8] = b"test-entry-token-secret-012345678";
pub const SERVICE_TOKEN: &str = "test-service-token-0123456789";
pub const WEBHOOK_SECRET: &[u8] = b"whsec-test-0123456789abcdef";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"` (scripts/test does this)")
    })
}

/// A ticket client that gives up fast: short timeouts and back-off, a
/// breaker that opens after three failures (tests of a failing ticket service).
pub fn quick_client() -> ClientSettings {
    ClientSettings {
        timeout: Duration::from_millis(500),
        retries: 1,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        breaker_failures: 3,
        breaker_open_for: Duration::from_millis(300),
    }
}

/// The reasons of a payment's transitions, oldest first.
pub fn reasons(payment: &Value) -> Vec<String> {
    payment["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["reason"].as_str().map(str::to_owned))
        .collect()
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

/// A throwaway database of its own for the ticket service (its migrations
/// and the payment service's must not share one `_sqlx_migrations`).
pub struct Database {
    pub pool: PgPool,
    name: String,
}

impl Database {
    pub async fn create() -> Self {
        let admin_url = env("DATABASE_URL");
        let name = format!("urr_ticket_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("admin");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        let url = format!("{}/{name}", admin_url.rsplit_once('/').expect("url").0);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .expect("ticket database");
        Self { pool, name }
    }

    pub async fn drop_now(self) {
        self.pool.close().await;
        let mut admin = sqlx::PgConnection::connect(&env("DATABASE_URL"))
            .await
            .expect("admin");
        let _ = sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await;
    }
}

pub struct Platform {
    pub event: String,
    pub ticket_db: Database,
    pub desk: HoldDesk,
    /// The ticket service's internal listener, the payment service's
    /// `URR_TICKET_URL`.
    pub ticket_addr: SocketAddr,
    /// The ticket service's public listener (what buyers reach).
    pub ticket_public_addr: SocketAddr,
    ticket_server: Option<JoinHandle<()>>,
    /// The service token the ticket service accepts.
    ticket_token: String,
    pub payments: Payments,
    pub payment_base: String,
    /// The payment service's internal listener (`/metrics`).
    pub payment_internal_base: String,
    pub http: reqwest::Client,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub fn ticket_settings(event: &str, rows: u32) -> Value {
    json!({
        "event": event, "displayName": "Test", "holdTimeoutSeconds": 600,
        "limits": {"maxSeatsPerOrder": 4, "maxSeatsPerUser": 8},
        "seatMap": {"sections": [
            {"id": "a", "name": "A", "rows": rows, "seatsPerRow": 10, "price": {"amountMinor": 50000, "currency": "KRW"}}
        ]}
    })
}

/// The sandbox gateway, its verdicts `latency` after each call, webhooks to
/// the payment service being started.
fn sandbox(latency: Duration) -> impl FnOnce(&str) -> (Arc<dyn Provider>, &'static str) {
    move |payment_base| {
        let sandbox = Sandbox::new(SandboxSettings {
            webhook_url: format!("{payment_base}/v1/webhooks/sandbox"),
            secret: WEBHOOK_SECRET.to_vec(),
            latency,
            failure_rate: 0.0,
            duplicate_rate: 0.0,
        });
        (Arc::new(sandbox), "sandbox")
    }
}

impl Platform {
    pub async fn start(payment_pool: PgPool, client: ClientSettings, latency: Duration) -> Self {
        Self::start_with(payment_pool, client, latency, 10).await
    }

    /// With `rows` rows of ten seats.
    pub async fn start_with(
        payment_pool: PgPool,
        client: ClientSettings,
        latency: Duration,
        rows: u32,
    ) -> Self {
        Self::start_with_provider(payment_pool, client, rows, sandbox(latency)).await
    }

    /// With the provider `provider` makes (given the payment service's base
    /// URL, where webhooks go) and `rows` rows of ten seats.
    pub async fn start_with_provider(
        payment_pool: PgPool,
        client: ClientSettings,
        rows: u32,
        provider: impl FnOnce(&str) -> (Arc<dyn Provider>, &'static str),
    ) -> Self {
        Self::start_configured(payment_pool, client, rows, provider, BuyerRefunds::Always).await
    }

    /// The sandbox with a fast verdict, and the Event's refund policy.
    pub async fn start_with_refund_policy(
        payment_pool: PgPool,
        buyer_refunds: BuyerRefunds,
    ) -> Self {
        Self::start_configured(
            payment_pool,
            ClientSettings::default(),
            10,
            sandbox(Duration::from_millis(20)),
            buyer_refunds,
        )
        .await
    }

    async fn start_configured(
        payment_pool: PgPool,
        client: ClientSettings,
        rows: u32,
        provider: impl FnOnce(&str) -> (Arc<dyn Provider>, &'static str),
        buyer_refunds: BuyerRefunds,
    ) -> Self {
        let event = format!("p{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        // Ticket service.
        let ticket_db = Database::create().await;
        let catalog = Arc::new(
            urr_ticket::settings::Catalog::from_json(
                &ticket_settings(&event, rows).to_string(),
                &event,
            )
            .expect("catalog"),
        );
        urr_ticket::prepare_database(&ticket_db.pool)
            .await
            .expect("ticket migrations");
        urr_ticket::inventory::import(&ticket_db.pool, &catalog)
            .await
            .expect("import");
        let redis = redis::Client::open(env("URR_REDIS_URL"))
            .expect("redis")
            .get_connection_manager()
            .await
            .expect("redis");
        let desk = HoldDesk {
            pool: ticket_db.pool.clone(),
            locks: urr_ticket::locks::SeatLocks::new(redis, &event),
            catalog,
            metrics: Arc::new(urr_ticket::telemetry::TicketMetrics::new()),
        };
        let ticket_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let ticket_addr = ticket_listener.local_addr().expect("addr");
        let ticket_public = server::bind(loopback()).await.expect("bind");
        let ticket_public_addr = ticket_public.local_addr().expect("addr");
        // Payment service.
        urr_payment::prepare_database(&payment_pool)
            .await
            .expect("payment migrations");
        let payment_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let payment_base = format!("http://{}", payment_listener.local_addr().expect("addr"));
        let payment_internal = server::bind(loopback()).await.expect("bind");
        let payment_internal_base =
            format!("http://{}", payment_internal.local_addr().expect("addr"));
        let (provider, provider_name) = provider(&payment_base);
        let providers = Providers::default().with(provider);
        let metrics = PaymentMetrics::new();
        let payments = Payments {
            pool: payment_pool,
            ticket: TicketClient::new(
                &format!("http://{ticket_addr}"),
                SERVICE_TOKEN,
                &client,
                metrics.circuit_state.clone(),
            )
            .expect("client"),
            providers,
            provider: provider_name,
            event: event.clone(),
            metrics: Arc::new(metrics),
            buyer_refunds,
        };
        let state = urr_payment::AppState {
            payments: payments.clone(),
            users: UserTokenVerifier::hs256(USER_SECRET, None, None),
            service_token: Arc::from(SERVICE_TOKEN),
        };
        tokio::spawn(async move {
            server::serve_split(
                payment_listener,
                payment_internal,
                urr_payment::routers(state),
                &ServerSettings::default(),
                std::future::pending(),
            )
            .await;
        });
        let mut platform = Self {
            event,
            ticket_db,
            desk,
            ticket_addr,
            ticket_public_addr,
            ticket_server: None,
            ticket_token: SERVICE_TOKEN.to_owned(),
            payments,
            payment_base,
            payment_internal_base,
            http: urr_service_common::http_client::builder()
                .build()
                .expect("client"),
        };
        platform
            .serve_ticket(Some((ticket_public, ticket_listener)))
            .await;
        platform
    }

    /// Serves the ticket service on `listeners` (public, internal), or on
    /// its two addresses again after [`Self::stop_ticket`].
    async fn serve_ticket(
        &mut self,
        listeners: Option<(tokio::net::TcpListener, tokio::net::TcpListener)>,
    ) {
        let (public, listener) = match listeners {
            Some(listeners) => listeners,
            None => (
                server::bind(self.ticket_public_addr)
                    .await
                    .expect("rebind the ticket's public port"),
                server::bind(self.ticket_addr)
                    .await
                    .expect("rebind the ticket's internal port"),
            ),
        };
        let state = urr_ticket::AppState::new(
            self.desk.clone(),
            UserTokenVerifier::hs256(USER_SECRET, None, None),
            EntryTokenKey::new(ENTRY_SECRET),
            &self.ticket_token,
        );
        self.ticket_server = Some(tokio::spawn(async move {
            server::serve_split(
                public,
                listener,
                urr_ticket::routers(state),
                &ServerSettings::default(),
                std::future::pending(),
            )
            .await;
        }));
    }

    /// The ticket service goes down (its port refuses connections).
    pub async fn stop_ticket(&mut self) {
        if let Some(server) = self.ticket_server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    pub async fn start_ticket(&mut self) {
        self.serve_ticket(None).await;
    }

    /// The ticket service restarts accepting another service token (a
    /// rotation the payment service has not caught up with).
    pub async fn restart_ticket_with_token(&mut self, token: &str) {
        self.stop_ticket().await;
        self.ticket_token = token.to_owned();
        self.serve_ticket(None).await;
    }

    /// A hold of `seats` for `user`, a payment for it, confirmed with
    /// `method` (202): the hold and the payment id.
    pub async fn confirmed(&self, user: &str, seats: &[&str], method: &str) -> (String, String) {
        let hold = self.hold(user, seats).await;
        let (_, created) = self
            .post(user, "/v1/payments", json!({"holdId": hold}), None)
            .await;
        let id = created["paymentId"].as_str().expect("id").to_owned();
        let (status, body) = self
            .post(
                user,
                &format!("/v1/payments/{id}/confirm"),
                json!({"paymentMethod": method}),
                None,
            )
            .await;
        assert_eq!(status, 202, "{body}");
        (hold, id)
    }

    pub async fn hold(&self, user: &str, seats: &[&str]) -> String {
        let now = urr_service_common::unix_now();
        let entry = EntryTokenKey::new(ENTRY_SECRET)
            .issue(user, &self.event, now, now + 600)
            .expect("entry");
        let answer: Value = self
            .http
            .post(format!(
                "http://{}/v1/events/{}/holds",
                self.ticket_public_addr, self.event
            ))
            .bearer_auth(user_token(user))
            .header("urr-entry-token", entry)
            .json(&json!({"seats": seats}))
            .send()
            .await
            .expect("hold")
            .json()
            .await
            .expect("json");
        answer["holdId"].as_str().expect("hold id").to_owned()
    }

    pub async fn post(
        &self,
        user: &str,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        self.post_traced(user, path, body, key, None).await
    }

    /// `post` with the caller's W3C `traceparent`.
    pub async fn post_traced(
        &self,
        user: &str,
        path: &str,
        body: Value,
        key: Option<&str>,
        traceparent: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.payment_base))
            .bearer_auth(user_token(user))
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn payment(&self, user: &str, id: &str) -> Value {
        self.http
            .get(format!("{}/v1/payments/{id}", self.payment_base))
            .bearer_auth(user_token(user))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    /// Polls until `check` holds on the payment, or 20 s pass.
    pub async fn wait_for(&self, user: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let payment = self.payment(user, id).await;
            if check(&payment) || tokio::time::Instant::now() > deadline {
                return payment;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn ticket_count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.desk.pool)
            .await
            .expect("ticket query")
    }

    /// The trace ids (32 hex) of the `traceparent`s in one outbox topic of
    /// the ticket (`ticket = true`) or payment database, oldest first.
    pub async fn outbox_trace_ids(&self, ticket: bool, topic: &str) -> Vec<String> {
        let pool = if ticket {
            &self.desk.pool
        } else {
            &self.payments.pool
        };
        let traceparents: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT payload->>'traceparent' FROM outbox WHERE topic = $1 ORDER BY id",
        )
        .bind(topic)
        .fetch_all(pool)
        .await
        .expect("outbox query");
        traceparents
            .into_iter()
            .map(|t| {
                let t = t.expect("a traceparent on every message");
                urr_service_common::trace::trace_id(&t)
                    .expect("a valid traceparent")
                    .to_owned()
            })
            .collect()
    }

    pub async fn payment_count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.payments.pool)
            .await
            .expect("payment query")
    }

    /// Pays for a fresh hold and waits for the capture.
    pub async fn paid(&self, user: &str, seats: &[&str]) -> (String, String) {
        self.paid_traced(user, seats, None).await
    }

    /// `paid`, the payment created under the caller's `traceparent`.
    pub async fn paid_traced(
        &self,
        user: &str,
        seats: &[&str],
        traceparent: Option<&str>,
    ) -> (String, String) {
        let hold = self.hold(user, seats).await;
        let (status, created) = self
            .post_traced(
                user,
                "/v1/payments",
                json!({"holdId": hold}),
                None,
                traceparent,
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["paymentId"].as_str().expect("id").to_owned();
        let (status, _) = self
            .post(
                user,
                &format!("/v1/payments/{id}/confirm"),
                json!({"paymentMethod": "pm_sandbox_ok"}),
                None,
            )
            .await;
        assert_eq!(status, 202);
        let payment = self
            .wait_for(user, &id, |p| p["status"] == "captured")
            .await;
        assert_eq!(payment["status"], "captured", "{payment}");
        (hold, id)
    }

    pub fn sign(&self, body: &[u8]) -> String {
        urr_payment::webhook::sign(WEBHOOK_SECRET, urr_service_common::unix_now(), body)
    }

    pub async fn webhook(&self, body: &Value, signature: Option<String>) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        let signature = signature.unwrap_or_else(|| self.sign(&bytes));
        self.deliver("sandbox", "urr-signature", &signature, bytes)
            .await
    }

    /// Posts a webhook delivery of `provider`, its signature in `header`.
    pub async fn deliver(
        &self,
        provider: &str,
        header: &str,
        signature: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/webhooks/{provider}", self.payment_base))
            .header(header, signature)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .expect("webhook");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn finish(mut self) {
        self.stop_ticket().await;
        self.ticket_db.drop_now().await;
    }
}
