//! Stripe's side of a flash sale on stripe-mock.
//!
//! stripe-mock answers Stripe's API with valid objects, but it keeps no state
//! (every PaymentIntent it creates has the same fixture id, a read never
//! shows a capture) and sends no webhooks, while URR learns every verdict
//! from webhooks. The relay stands between the payment service
//! (`spec.services.payment.provider.apiBase`) and stripe-mock:
//!
//! * it forwards every request to stripe-mock and returns its answer, so the
//!   requests are checked against Stripe's OpenAPI by Stripe's own mock;
//! * it gives each new PaymentIntent an id of its own, answers a repeated
//!   `Idempotency-Key` with the first answer (as Stripe does), remembers each
//!   intent's amount, currency, URR payment id and status, and answers a read
//!   (`GET /v1/payment_intents/{id}`, the reconciler's question when a
//!   webhook was lost) with that status;
//! * after each call that changes an intent it sends the event Stripe sends
//!   (<https://docs.stripe.com/payments/paymentintents/lifecycle>), signed
//!   with the endpoint secret as Stripe signs it, retried while the payment
//!   service does not answer 2xx:
//!
//! | call | event |
//! |---|---|
//! | create with `confirm=true`, `payment_method=pm_card_chargeDeclined` | `payment_intent.payment_failed` (`card_declined`) |
//! | create with `confirm=true`, any other method | `payment_intent.amount_capturable_updated` (`requires_capture`) |
//! | `POST /v1/payment_intents/{id}/capture` | `payment_intent.succeeded` |
//! | `POST /v1/refunds` | `refund.updated` (`succeeded`) |
//! | `POST /v1/payment_intents/{id}/cancel` | none that URR acts on |
//!
//! What it cannot stand for: Stripe's own failures (3-D Secure, network
//! errors, disputes). The payment service's tests cover those with signed
//! fixtures; the relay makes the crowd's money move through the real
//! Stripe client, the real webhook verification and the real reconciler.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use urr_payment::provider::stripe::events::PAYMENT_ID_METADATA;
use urr_payment::provider::stripe::signature;

/// The test card Stripe documents as always declined.
pub const DECLINED_METHOD: &str = "pm_card_chargeDeclined";
/// A test card Stripe documents as always authorized.
pub const APPROVED_METHOD: &str = "pm_card_visa";

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// stripe-mock's base URL.
    pub upstream: String,
    /// Where Stripe posts events: the payment service's `/v1/webhooks/stripe`.
    pub webhook_url: String,
    /// The endpoint's signing secret (`whsec_…`).
    pub webhook_secret: Vec<u8>,
    /// How long Stripe takes before it sends an event.
    pub event_delay: Duration,
}

/// An intent as the relay remembers it.
#[derive(Debug, Clone)]
struct Intent {
    amount: i64,
    currency: String,
    payment_id: String,
    status: &'static str,
}

/// What the relay did, printed when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayFigures {
    pub requests: u64,
    pub idempotent_replays: u64,
    pub events_sent: u64,
    pub delivery_retries: u64,
    pub deliveries_abandoned: u64,
}

#[derive(Debug, Default)]
struct Memory {
    intents: HashMap<String, Intent>,
    /// Idempotency key → the first answer (status, body).
    answers: HashMap<String, (StatusCode, Bytes)>,
    figures: RelayFigures,
}

#[derive(Debug, Clone)]
pub struct Relay {
    settings: Arc<RelaySettings>,
    http: reqwest::Client,
    memory: Arc<Mutex<Memory>>,
}

/// An event to send once its call has been answered.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    kind: &'static str,
    object: Value,
}

impl Relay {
    pub fn new(settings: RelaySettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            settings: Arc::new(settings),
            http: urr_service_common::http_client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            memory: Arc::default(),
        })
    }

    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(forward)
            .with_state(self.clone())
    }

    pub fn figures(&self) -> RelayFigures {
        self.memory().figures
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends `pending` as Stripe would: after a delay, signed, retried with
    /// backoff while the endpoint does not take it (Stripe retries for days;
    /// the relay for about a minute).
    fn deliver(&self, pending: Pending) {
        let relay = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(relay.settings.event_delay).await;
            let now = urr_service_common::unix_now();
            let event = json!({
                "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
                "object": "event",
                "api_version": "2024-06-20",
                "created": now,
                "livemode": false,
                "type": pending.kind,
                "data": {"object": pending.object},
            });
            let Ok(body) = serde_json::to_vec(&event) else {
                return;
            };
            let mut backoff = Duration::from_millis(200);
            for attempt in 0..8 {
                if attempt > 0 {
                    relay.memory().figures.delivery_retries += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                let header = signature::sign(
                    &[&relay.settings.webhook_secret],
                    urr_service_common::unix_now(),
                    &body,
                );
                let sent = relay
                    .http
                    .post(&relay.settings.webhook_url)
                    .header(signature::HEADER, header)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    relay.memory().figures.events_sent += 1;
                    return;
                }
            }
            relay.memory().figures.deliveries_abandoned += 1;
            eprintln!(
                "urr-stripe-relay: {} for {} not taken after 8 attempts",
                pending.kind, pending.object["id"]
            );
        });
    }

    /// Records what a successful call did; the event it causes.
    fn record(
        &self,
        method: &Method,
        path: &str,
        form: &Form,
        answer: &mut Value,
    ) -> Option<Pending> {
        let mut memory = self.memory();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::POST, ["v1", "payment_intents"]) => {
                let id = format!("pi_relay{}", uuid::Uuid::new_v4().simple());
                let declined = form.get("payment_method") == Some(DECLINED_METHOD);
                let intent = Intent {
                    amount: form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0),
                    currency: form.get("currency").unwrap_or("krw").to_owned(),
                    payment_id: form
                        .get(&format!("metadata[{PAYMENT_ID_METADATA}]"))
                        .unwrap_or_default()
                        .to_owned(),
                    status: if declined {
                        "requires_payment_method"
                    } else {
                        "requires_capture"
                    },
                };
                answer["id"] = json!(id);
                let pending = (form.get("confirm") == Some("true")).then(|| Pending {
                    kind: if declined {
                        "payment_intent.payment_failed"
                    } else {
                        "payment_intent.amount_capturable_updated"
                    },
                    object: intent_object(&id, &intent, declined),
                });
                memory.intents.insert(id, intent);
                pending
            }
            (&Method::POST, ["v1", "payment_intents", id, "capture"]) => {
                let intent = memory.intents.get_mut(*id)?;
                intent.status = "succeeded";
                Some(Pending {
                    kind: "payment_intent.succeeded",
                    object: intent_object(id, intent, false),
                })
            }
            (&Method::POST, ["v1", "payment_intents", id, "cancel"]) => {
                memory.intents.get_mut(*id)?.status = "canceled";
                None
            }
            (&Method::POST, ["v1", "refunds"]) => {
                let intent_id = form.get("payment_intent")?;
                let intent = memory.intents.get(intent_id)?;
                let refund = format!("re_relay{}", uuid::Uuid::new_v4().simple());
                answer["id"] = json!(refund);
                Some(Pending {
                    kind: "refund.updated",
                    object: json!({
                        "id": refund,
                        "object": "refund",
                        "amount": form.get("amount").and_then(|a| a.parse::<i64>().ok()).unwrap_or(intent.amount),
                        "currency": intent.currency,
                        "status": "succeeded",
                        "payment_intent": intent_id,
                        "metadata": {PAYMENT_ID_METADATA: intent.payment_id},
                    }),
                })
            }
            (&Method::GET, ["v1", "payment_intents", id]) => {
                if let Some(intent) = memory.intents.get(*id) {
                    *answer = intent_object(id, intent, intent.status == "requires_payment_method");
                }
                None
            }
            _ => None,
        }
    }
}

/// A PaymentIntent as Stripe shows it in events and reads.
fn intent_object(id: &str, intent: &Intent, declined: bool) -> Value {
    let mut object = json!({
        "id": id,
        "object": "payment_intent",
        "amount": intent.amount,
        "amount_capturable": if intent.status == "requires_capture" { intent.amount } else { 0 },
        "amount_received": if intent.status == "succeeded" { intent.amount } else { 0 },
        "currency": intent.currency,
        "capture_method": "manual",
        "status": intent.status,
        "metadata": {PAYMENT_ID_METADATA: intent.payment_id},
    });
    if declined {
        object["last_payment_error"] = json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
        });
    }
    object
}

/// A form body's fields (the last value of a repeated name wins).
struct Form(HashMap<String, String>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

async fn forward(
    State(relay): State<Relay>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    relay.memory().figures.requests += 1;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key) = &key {
        let replay = relay.memory().answers.get(key).cloned();
        if let Some((status, body)) = replay {
            relay.memory().figures.idempotent_replays += 1;
            return (
                status,
                [
                    ("content-type", "application/json"),
                    ("idempotent-replayed", "true"),
                ],
                body,
            )
                .into_response();
        }
    }
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!(
        "{}{path_and_query}",
        relay.settings.upstream.trim_end_matches('/')
    );
    let mut request = relay.http.request(method.clone(), url).body(body.clone());
    for name in [
        "authorization",
        "content-type",
        "idempotency-key",
        "stripe-version",
    ] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("stripe-mock unreachable: {error}"),
            )
                .into_response();
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let Ok(bytes) = answer.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "stripe-mock answer cut short").into_response();
    };
    if !status.is_success() {
        return (
            status,
            [("content-type", "application/json")],
            Body::from(bytes),
        )
            .into_response();
    }
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let pending = relay.record(&method, uri.path(), &Form::parse(&body), &mut value);
    let body = Bytes::from(serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec()));
    if let Some(key) = key {
        relay.memory().answers.insert(key, (status, body.clone()));
    }
    if let Some(pending) = pending {
        relay.deliver(pending);
    }
    (status, [("content-type", "application/json")], body).into_response()
}
