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
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use urr_service_common::metrics as prom;
use urr_service_common::openapi;
use urr_service_common::problem::Problem;
use urr_service_common::server::Routers;
use urr_service_common::service;
use urr_service_common::tokens::service::{ServiceCaller, ServiceTokenState};
use urr_service_common::tokens::user::{SignedIn, UserTokenState, UserTokenVerifier};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::PaymentError;
use crate::flow::{CreateAnswer, PaymentView, Payments, WebhookOutcome};
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

/// The service's routers: the API on the public listener, with its OpenAPI
/// document at `/openapi.json`; `/metrics` and the organiser's refunds on
/// the internal one ([`urr_service_common::server::split`]).
pub fn routers(state: AppState) -> Routers {
    let requests = state.payments.metrics.requests.clone();
    let (public, api) = public_api().split_for_parts();
    let public = openapi::serve(public, &openapi::finish(api, &ABOUT));
    service::frame(
        state,
        readyz,
        metrics,
        public,
        Router::new().route("/internal/payments/{id}/refund", post(organiser_refund)),
        &requests,
    )
}

/// The OpenAPI document of the public API, as `/openapi.json` serves it
/// (and `docs/openapi/payment.json` holds it).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(public_api().split_for_parts().1, &ABOUT)
}

/// The public routes, each documented by its handler's `#[utoipa::path]`:
/// `routes!` registers a route and its documentation together.
fn public_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read))
        .routes(routes!(confirm))
        .routes(routes!(cancel))
        .routes(routes!(refund))
        .routes(routes!(webhook))
}

const ABOUT: openapi::About = openapi::About {
    title: "URR payment API",
    description: "Paying for a hold of the ticket API. The buyer creates a payment for the hold (`POST /v1/payments`, priced by the ticket service's quote, never by the client; send an `Idempotency-Key`), confirms it with a payment method (`POST /v1/payments/{id}/confirm`: 202, the provider answers later, by webhook), and reads it (`GET /v1/payments/{id}`) at the `pollAfterMs` it gives until it is `captured` (the tickets are issued) or `failed`. Refunds go back through the same payment. Providers post their verdicts to `/v1/webhooks/{provider}`, signed. Every 4xx and 5xx is `application/problem+json`.",
    schemes: &[openapi::Scheme::UserJwt, openapi::Scheme::WebhookSignature],
    problems: crate::error::PROBLEMS,
};

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
    urr_service_common::json_body::object(body)
        .map_err(|e| PaymentError::BadRequest(format!("body: {e}")))
}

/// Body of `POST /v1/payments`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    /// The hold to pay for (`holdId` of the ticket API's hold).
    hold_id: String,
}

/// Create a payment for a hold.
///
/// The amount is the ticket service's quote of the hold. One live payment
/// per hold; with an `Idempotency-Key` a retry replays the first answer.
#[utoipa::path(
    post,
    path = "/v1/payments",
    tag = "payments",
    operation_id = "createPayment",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII characters, one per intended payment; a malformed key is refused (400), never ignored.")),
    request_body(content = CreateBody, content_type = "application/json"),
    security(("userJwt" = [])),
    responses(
        (status = 201, description = "The payment, `created` (or, under a replayed key, the first answer).", body = PaymentView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer of an earlier request with the same key.")),
            links(
                ("GetPayment" = (operation_id = "getPayment", parameters(("id" = "$response.body#/paymentId")))),
                ("ConfirmPayment" = (operation_id = "confirmPayment", parameters(("id" = "$response.body#/paymentId")))),
                ("CancelPayment" = (operation_id = "cancelPayment", parameters(("id" = "$response.body#/paymentId")))),
            )),
        (status = 404, description = "`unknown-hold` (also someone else's).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`hold-not-active` or `payment-exists`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency-key-reused`.", body = Problem, content_type = "application/problem+json"),
    )
)]
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

/// A payment: status, amount, reservation, every transition.
///
/// While a verdict or the tickets are on their way, `pollAfterMs` says
/// when to read it again.
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    tag = "payments",
    operation_id = "getPayment",
    params(("id" = String, Path, description = "The payment's id.")),
    security(("userJwt" = [])),
    responses(
        (status = 200, description = "The payment.", body = PaymentView),
        (status = 404, description = "`unknown-payment` (also someone else's).", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn read(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PaymentError> {
    Ok(Json(state.payments.view(&user, &id).await?).into_response())
}

/// Body of `POST /v1/payments/{id}/confirm`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"paymentMethod": "pm_card_visa"}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfirmBody {
    /// A `pm_…` token (sandbox, Stripe; `pm_sandbox_decline` is always
    /// declined), or Toss's `paymentKey` from its widget.
    payment_method: String,
}

/// Confirm a payment with a payment method.
///
/// 202: the provider answers later, by webhook (Toss in its answer:
/// captured at once); read the payment at its `pollAfterMs`.
#[utoipa::path(
    post,
    path = "/v1/payments/{id}/confirm",
    tag = "payments",
    operation_id = "confirmPayment",
    params(("id" = String, Path, description = "The payment's id.")),
    request_body(content = ConfirmBody, content_type = "application/json"),
    security(("userJwt" = [])),
    responses(
        (status = 202, description = "Accepted; the verdict follows.", body = PaymentView),
        (status = 404, description = "`unknown-payment`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-transition` (not `created`), `hold-not-active` (the hold lapsed: nothing charged).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`provider-refused` or `amount-mismatch`.", body = Problem, content_type = "application/problem+json"),
    )
)]
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

/// Cancel a payment before the provider authorized it.
#[utoipa::path(
    post,
    path = "/v1/payments/{id}/cancel",
    tag = "payments",
    operation_id = "cancelPayment",
    params(("id" = String, Path, description = "The payment's id.")),
    security(("userJwt" = [])),
    responses(
        (status = 200, description = "The payment, `canceled`.", body = PaymentView),
        (status = 404, description = "`unknown-payment`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`cancel-too-late` (authorized: refund it once captured) or `invalid-transition`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PaymentError> {
    Ok(Json(state.payments.cancel(&user, &id).await?).into_response())
}

/// The buyer's refund body, optional: `{"ticketIds": [...]}` refunds those
/// tickets; no body (or no `ticketIds`) refunds every ticket.
#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefundBody {
    #[serde(default)]
    ticket_ids: Option<Vec<String>>,
}

/// Refund a captured payment: every ticket, or those named.
///
/// Within the Event's refund window. The tickets are voided and their
/// seats back on sale, the money (their share) goes back; one refund of a
/// payment at a time.
#[utoipa::path(
    post,
    path = "/v1/payments/{id}/refund",
    tag = "payments",
    operation_id = "refundPayment",
    params(("id" = String, Path, description = "The payment's id.")),
    request_body(content = Option<RefundBody>, description = "Optional: no body (or no `ticketIds`) refunds every ticket left.", content_type = "application/json"),
    security(("userJwt" = [])),
    responses(
        (status = 202, description = "The refund is under way (`refunds`, `refundedMinor`).", body = PaymentView),
        (status = 404, description = "`unknown-payment`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`refund-refused` (a ticket belongs to someone else or was refunded), `refund-in-progress`, `refund-window-closed`, `invalid-transition` (not captured).", body = Problem, content_type = "application/problem+json"),
    )
)]
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

/// What the service did with a webhook delivery.
#[derive(Serialize, ToSchema)]
struct WebhookAnswer {
    outcome: WebhookOutcome,
}

/// A provider's webhook delivery.
///
/// The sandbox signs with `Urr-Signature`, Stripe with `Stripe-Signature`
/// (5-minute replay window, constant-time check); Toss's unsigned notices
/// only name an order, which is then read from Toss's API.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{provider}",
    tag = "webhooks",
    operation_id = "providerWebhook",
    params(("provider" = String, Path, description = "`sandbox`, `stripe` or `toss`: the provider the service is configured with.")),
    request_body(content = serde_json::Value, description = "The provider's event, as it sends it.", content_type = "application/json"),
    security(("webhookSignature" = []), ()),
    responses(
        (status = 200, description = "Recorded (once: a duplicate is `duplicate`).", body = WebhookAnswer),
        (status = 400, description = "`webhook-stale` (timestamp outside the window), `webhook-malformed` (unreadable signature header) or `bad-request` (unreadable body).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: a missing or wrong signature.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-provider`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`amount-mismatch`: a verdict for another amount.", body = Problem, content_type = "application/problem+json"),
    )
)]
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
    Ok(Json(WebhookAnswer { outcome }).into_response())
}
