//! HTTP routes: `routers(state)`, public and internal, so tests drive the
//! service in-process.
//!
//! | Method and path | Who | Answer |
//! |---|---|---|
//! | `POST /v1/payments` | buyer (user JWT); `{"holdId"}`; `Idempotency-Key` | 201 the payment (200 on a replay); the amount is the ticket service's quote |
//! | `GET /v1/payments/{id}` | its buyer | status, amount, reservation, every transition |
//! | `POST /v1/payments/{id}/confirm` | its buyer; `{"paymentMethod"}` (a `pm_…` token, or Toss's `paymentKey`) | 202; the provider's verdict comes by webhook (Toss's in the answer: captured at once) |
//! | `POST /v1/payments/{id}/cancel` | its buyer | before authorization; 409 `cancel-too-late` once authorized (refund after the capture) |
//! | `POST /v1/payments/{id}/refund` | its buyer; optional `{"ticketIds": [...]}` | 202, captured payments only, within the Event's refund window (409 `refund-window-closed` after it); every ticket, or those named (their share of the amount; 409 `refund-in-progress` while another refund of it runs) |
//! | `POST /internal/payments/{id}/refund` (internal listener only) | the organiser (service token); `{"reason", "ticketIds"?}` | 202, any captured payment, window or not; the reason is recorded |
//! | `POST /v1/webhooks/{provider}` | the provider (signed; Toss's unsigned notices are checked against its API, 503 while it cannot answer) | 200 `{"outcome"}`; 401 on a missing or wrong signature, 400 (`webhook-stale`, `webhook-malformed`) on a timestamp out of the window or an unreadable header |
//! | `/healthz`, `/readyz` | kubelet, load balancer (both listeners) | |
//! | `/metrics` (internal listener only) | Prometheus | |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use urr_service_common::metrics as prom;
use urr_service_common::server::Routers;
use urr_service_common::service;
use urr_service_common::tokens::service::{ServiceCaller, ServiceTokenState};
use urr_service_common::tokens::user::{SignedIn, UserTokenState, UserTokenVerifier};

use crate::error::PaymentError;
use crate::flow::{CreateAnswer, Payments};
use crate::webhook::SIGNATURE_HEADER;

#[derive(Debug, Clone)]
pub struct AppState {
    pub payments: Payments,
    pub users: UserTokenVerifier,
    /// The bearer token of `/internal/*` (the organiser's refunds).
    pub service_token: std::sync::Arc<str>,
}

impl ServiceTokenState for AppState {
    fn service_token(&self) -> &str {
        &self.service_token
    }
}

/// The service's routers: the API on the public listener, `/metrics` on the
/// internal one ([`urr_service_common::server::split`]).
pub fn routers(state: AppState) -> Routers {
    let requests = state.payments.metrics.requests.clone();
    service::frame(
        state,
        readyz,
        metrics,
        Router::new()
            .route("/v1/payments", post(create))
            .route("/v1/payments/{id}", get(read))
            .route("/v1/payments/{id}/confirm", post(confirm))
            .route("/v1/payments/{id}/cancel", post(cancel))
            .route("/v1/payments/{id}/refund", post(refund))
            .route("/v1/webhooks/{provider}", post(webhook)),
        Router::new().route("/internal/payments/{id}/refund", post(organiser_refund)),
        &requests,
    )
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, PaymentError> {
    sqlx::query("SELECT 1")
        .execute(&state.payments.pool)
        .await?;
    Ok("ready")
}

async fn metrics(State(state): State<AppState>) -> Response {
    if let Err(error) = state.payments.refresh_gauges().await {
        tracing::warn!(%error, "cannot refresh payment gauges");
    }
    prom::render(&state.payments.metrics.registry)
}

impl UserTokenState for AppState {
    type Rejection = PaymentError;

    fn users(&self) -> &UserTokenVerifier {
        &self.users
    }
}

/// The caller's W3C trace context, or a new one: it follows the payment to
/// the ticket service (header) and into `payment-events`.
fn traceparent(headers: &HeaderMap) -> String {
    urr_service_common::trace::from_header(headers.get("traceparent").and_then(|v| v.to_str().ok()))
}

/// The `Idempotency-Key` header, if sent; a malformed one is refused rather
/// than ignored (ignoring it would turn a retry into a second payment).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, PaymentError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PaymentError::BadRequest(
            "Idempotency-Key must be 1 to 128 visible ASCII characters".into(),
        ));
    }
    Ok(Some(key))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, PaymentError> {
    serde_json::from_slice(body).map_err(|e| PaymentError::BadRequest(format!("body: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    hold_id: String,
}

async fn create(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PaymentError> {
    let request: CreateBody = parse(&body)?;
    let key = idempotency_key(&headers)?;
    // The fingerprint of the request, not of its bytes: the same hold sent
    // with other whitespace or field order is the same request.
    let fingerprint = format!("{:x}", Sha256::digest(request.hold_id.as_bytes()));
    let answer = state
        .payments
        .create(
            &user,
            &request.hold_id,
            key.map(|k| (k, fingerprint.as_str())),
            &traceparent(&headers),
        )
        .await?;
    Ok(match answer {
        CreateAnswer::Created(view) => (StatusCode::CREATED, Json(view)).into_response(),
        CreateAnswer::Replayed { status, body } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
            [("idempotent-replayed", "true")],
            Json(body),
        )
            .into_response(),
    })
}

async fn read(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PaymentError> {
    Ok(Json(state.payments.view(&user, &id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfirmBody {
    payment_method: String,
}

async fn confirm(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PaymentError> {
    let request: ConfirmBody = parse(&body)?;
    let view = state
        .payments
        .confirm(&user, &id, &request.payment_method)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PaymentError> {
    Ok(Json(state.payments.cancel(&user, &id).await?).into_response())
}

/// The buyer's refund body, optional: `{"ticketIds": [...]}` refunds those
/// tickets; no body (or no `ticketIds`) refunds every ticket.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefundBody {
    #[serde(default)]
    ticket_ids: Option<Vec<String>>,
}

async fn refund(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PaymentError> {
    let request: RefundBody = if body.iter().all(u8::is_ascii_whitespace) {
        RefundBody::default()
    } else {
        parse(&body)?
    };
    let view = state
        .payments
        .refund(&user, &id, request.ticket_ids)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrganiserRefundBody {
    reason: String,
    #[serde(default)]
    ticket_ids: Option<Vec<String>>,
}

async fn organiser_refund(
    State(state): State<AppState>,
    _: ServiceCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PaymentError> {
    let request: OrganiserRefundBody = parse(&body)?;
    let view = state
        .payments
        .refund_by_organiser(&id, &request.reason, request.ticket_ids)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

async fn webhook(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PaymentError> {
    // Each provider signs in its own header (`Stripe-Signature`, `Urr-Signature`).
    let header = state
        .payments
        .providers
        .get(&provider)
        .map_or(SIGNATURE_HEADER, |p| p.signature_header());
    let signature = headers.get(header).and_then(|v| v.to_str().ok());
    let outcome = state.payments.webhook(&provider, signature, &body).await?;
    Ok(Json(json!({"outcome": outcome})).into_response())
}
