//! What a buyer sends and what it reads of the answers, one function per
//! request and per read, apart from the journey's retries and timing: so
//! tests/openapi_requests.rs can hold every one of them against the
//! services' OpenAPI documents (`docs/openapi/`, issue 17) without the edge
//! gate and the queue a whole journey needs.

use reqwest::Method;
use serde_json::{Value, json};
use urr_service_common::tokens::{entry, vwr};

use crate::board::Pick;

/// One request as the buyer sends it, before the service's base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// From `/v1/…`, with the path parameters filled in.
    pub path: String,
    /// Names lower-case, as HTTP/2 sends them.
    pub headers: Vec<(&'static str, String)>,
    /// Sent as `application/json` when present.
    pub body: Option<Value>,
}

impl ApiRequest {
    fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            headers: Vec::new(),
            body: None,
        }
    }

    fn bearer(self, user_token: &str) -> Self {
        self.header("authorization", format!("Bearer {user_token}"))
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The request on `http`, to the service at `base`.
    pub fn build(&self, http: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        let mut request = http.request(self.method.clone(), format!("{base}{}", self.path));
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        request
    }
}

/// Tier 1: a number of `room` (queue service).
pub fn take_number(room: &str) -> ApiRequest {
    ApiRequest::new(Method::POST, format!("/v1/rooms/{room}/numbers"))
}

/// The tier-1 pass in a `Set-Cookie` value of the number's answer.
pub fn pass_of(set_cookie: &str) -> Option<String> {
    set_cookie
        .split(';')
        .next()?
        .trim()
        .strip_prefix(&format!("{}=", vwr::COOKIE_NAME))
        .map(str::to_owned)
}

/// Tier 2: joins `event`'s queue, carrying the pass as the browser's cookie
/// would (queue service). No body: the buyer has no device label or code.
pub fn join(event: &str, user_token: &str, pass: &str) -> ApiRequest {
    ApiRequest::new(Method::POST, format!("/v1/events/{event}/queue"))
        .bearer(user_token)
        .header("cookie", format!("{}={pass}", vwr::COOKIE_NAME))
}

/// The buyer's place in `event`'s queue (queue service).
pub fn queue_status(event: &str, user_token: &str) -> ApiRequest {
    ApiRequest::new(Method::GET, format!("/v1/events/{event}/queue/me")).bearer(user_token)
}

/// Leaves `event`'s queue, giving the active slot back (queue service).
pub fn leave_queue(event: &str, user_token: &str) -> ApiRequest {
    ApiRequest::new(Method::DELETE, format!("/v1/events/{event}/queue/me")).bearer(user_token)
}

/// The hold body for `pick` and how many places it asks for; `None` when
/// the board found nothing to hold.
pub fn hold_body(pick: &Pick) -> Option<(Value, u64)> {
    match pick {
        Pick::Standing { section, quantity } => Some((
            json!({"section": section, "quantity": quantity}),
            u64::from(*quantity),
        )),
        Pick::Seats(seats) => Some((json!({"seats": seats}), seats.len() as u64)),
        Pick::SoldOut { .. } => None,
    }
}

/// Holds what `body` (from [`hold_body`]) asks for (ticket service).
pub fn create_hold(
    event: &str,
    user_token: &str,
    entry_token: &str,
    idempotency_key: &str,
    body: Value,
) -> ApiRequest {
    ApiRequest::new(Method::POST, format!("/v1/events/{event}/holds"))
        .bearer(user_token)
        .header(entry::HEADER_NAME, entry_token.to_owned())
        .header("idempotency-key", idempotency_key.to_owned())
        .json(body)
}

/// Lets hold `hold` go (ticket service).
pub fn release_hold(event: &str, hold: &str, user_token: &str) -> ApiRequest {
    ApiRequest::new(Method::DELETE, format!("/v1/events/{event}/holds/{hold}")).bearer(user_token)
}

/// A payment for `hold` (payment service).
pub fn create_payment(user_token: &str, idempotency_key: &str, hold: &str) -> ApiRequest {
    ApiRequest::new(Method::POST, "/v1/payments".to_owned())
        .bearer(user_token)
        .header("idempotency-key", idempotency_key.to_owned())
        .json(json!({"holdId": hold}))
}

/// Confirms payment `id` with `payment_method` (payment service).
pub fn confirm_payment(id: &str, user_token: &str, payment_method: &str) -> ApiRequest {
    ApiRequest::new(Method::POST, format!("/v1/payments/{id}/confirm"))
        .bearer(user_token)
        .json(json!({"paymentMethod": payment_method}))
}

/// Reads payment `id` (payment service).
pub fn read_payment(id: &str, user_token: &str) -> ApiRequest {
    ApiRequest::new(Method::GET, format!("/v1/payments/{id}")).bearer(user_token)
}

/// What the buyer reads of a place in the queue (a join's or a poll's
/// answer); a member missing or of another type reads as `None`, as the
/// journey treats it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub status: Option<String>,
    pub entry_token: Option<String>,
    pub entry_token_expires_at: Option<i64>,
    pub admission: Option<String>,
    pub places_left: Option<u64>,
    pub places_held: Option<u64>,
    pub poll_after_ms: Option<u64>,
}

impl Place {
    pub fn read(place: &Value) -> Self {
        let text = |name: &str| place[name].as_str().map(str::to_owned);
        Self {
            status: text("status"),
            entry_token: text("entryToken"),
            entry_token_expires_at: place["entryTokenExpiresAt"].as_i64(),
            admission: text("admission"),
            places_left: place["placesLeft"].as_u64(),
            places_held: place["placesHeld"].as_u64(),
            poll_after_ms: place["pollAfterMs"].as_u64(),
        }
    }

    pub fn admitted(&self) -> bool {
        self.status.as_deref() == Some("admitted")
    }

    /// Nothing left and nothing held that could come back: final, as the
    /// waiting page tells it.
    pub fn finally_sold_out(&self) -> bool {
        self.admission.as_deref() == Some("soldOut")
            && self.places_left == Some(0)
            && self.places_held == Some(0)
    }
}

/// The 403 problems of a join that mean "too early" (the queue is not
/// open, the pass is not served yet: the edge and the queue read the
/// counter a moment apart), which the buyer waits out; any other refusal
/// ends the journey.
pub const JOIN_WAITS: [&str; 2] = ["queue-not-open", "pass-not-served"];

/// The last segment of a problem's `type` (`queue-not-open`, …).
pub fn problem_kind(problem: &Value) -> String {
    let kind = problem["type"].as_str().unwrap_or_default();
    kind.rsplit('/').next().unwrap_or_default().to_owned()
}

/// The `holdId` of a created hold.
pub fn hold_id(hold: &Value) -> Option<&str> {
    hold["holdId"].as_str()
}

/// What the buyer reads of a payment: its id, its status, when to read it
/// again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentRead {
    pub id: Option<String>,
    pub status: Option<String>,
    pub poll_after_ms: Option<u64>,
}

impl PaymentRead {
    pub fn read(payment: &Value) -> Self {
        Self {
            id: payment["paymentId"].as_str().map(str::to_owned),
            status: payment["status"].as_str().map(str::to_owned),
            poll_after_ms: payment["pollAfterMs"].as_u64(),
        }
    }
}
