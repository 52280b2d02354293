//! HTTP routes: `routers(state)`, public and internal, so tests drive the
//! service in-process.
//!
//! Public (`Authorization: Bearer <user JWT>`; holds also need the
//! `urr-entry-token` the queue issued to the same user for this event):
//!
//! | Method and path | Answer |
//! |---|---|
//! | `GET /v1/events/{event}` | event, limits, sections with prices (no auth) |
//! | `GET /v1/events/{event}/availability` | per section capacity/available/held/sold, ≤ 1 s old (no auth) |
//! | `GET /v1/events/{event}/sections/{section}/seats` | seat statuses, ≤ 1 s old (no auth) |
//! | `POST /v1/events/{event}/holds` | 201 hold; `Idempotency-Key` replays the first answer |
//! | `GET /v1/events/{event}/holds/{hold}` | the buyer's hold |
//! | `DELETE /v1/events/{event}/holds/{hold}` | 204, places back on sale |
//! | `GET /v1/me/tickets` | the buyer's valid tickets |
//! | `POST /v1/tickets/{ticket}/transfer` | `{"toUserId": ...}` → the ticket, new owner |
//! | `GET /v1/tickets/{ticket}/history` | ownership changes (from `transfer-events`) |
//!
//! Internal, on the internal listener only (`Authorization: Bearer <service
//! token>`): see [`urr_service_common::contracts`]; plus `/internal/stats`
//! (unauthenticated, figures only) for the operator, and `/metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use sqlx::{PgPool, Row};
use tokio::sync::Mutex;
use urr_service_common::contracts::{CancelRequest, ConfirmRequest, TicketStats};
use urr_service_common::metrics as prom;
use urr_service_common::openapi;
use urr_service_common::problem::Problem;
use urr_service_common::server::Routers;
use urr_service_common::service;
use urr_service_common::tokens::entry::{self, EntryTokenKey};
use urr_service_common::tokens::service::{ServiceCaller, ServiceTokenState};
use urr_service_common::tokens::user::{SignedIn, UserTokenState, UserTokenVerifier};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::confirm::ConfirmPath;
use crate::error::TicketError;
use crate::holds::{HoldAnswer, HoldBody, HoldDesk, HoldView};
use crate::idempotency::{IdempotencyKey, Replay};
use crate::inventory::{Availability, AvailabilityCache};
use crate::tickets::TicketView;
use crate::views::{
    self, EventInfo, MyTickets, SeatListing, SeatState, TicketHistory, TransferBody,
};

/// Everything a request handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub desk: HoldDesk,
    pub users: UserTokenVerifier,
    pub entry_key: EntryTokenKey,
    pub service_token: Arc<str>,
    pub availability: Arc<AvailabilityCache>,
    pub seat_cache: Arc<SeatListCache>,
}

impl ServiceTokenState for AppState {
    fn service_token(&self) -> &str {
        &self.service_token
    }
}

impl AppState {
    pub fn new(
        desk: HoldDesk,
        users: UserTokenVerifier,
        entry_key: EntryTokenKey,
        service_token: &str,
    ) -> Self {
        Self {
            desk,
            users,
            entry_key,
            service_token: Arc::from(service_token),
            availability: Arc::new(AvailabilityCache::new(Duration::from_secs(1))),
            seat_cache: Arc::new(SeatListCache::default()),
        }
    }

    fn pool(&self) -> &PgPool {
        &self.desk.pool
    }
}

/// The service's routers: the API on the public listener; `/metrics`,
/// `/internal/stats` and the payment service's `/internal/holds/*` on the
/// internal one, which only the cluster reaches
/// ([`urr_service_common::server::split`]).
pub fn routers(state: AppState) -> Routers {
    let requests = state.desk.metrics.requests.clone();
    let (public, api) = public_api().split_for_parts();
    let public = openapi::serve(public, &openapi::finish(api, &views::ABOUT));
    service::frame(
        state,
        readyz,
        metrics,
        public,
        Router::new()
            .route("/internal/stats", get(stats))
            .route("/internal/holds/{hold}", get(internal_quote))
            .route("/internal/holds/{hold}/confirm", post(internal_confirm))
            .route("/internal/holds/{hold}/cancel", post(internal_cancel)),
        &requests,
    )
}

/// The OpenAPI document of the public API, as `/openapi.json` serves it
/// (and `docs/openapi/ticket.json` holds it).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(public_api().split_for_parts().1, &views::ABOUT)
}

/// The public routes, each documented by its handler's `#[utoipa::path]`:
/// `routes!` registers a route and its documentation together.
fn public_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(event_info))
        .routes(routes!(availability))
        .routes(routes!(seats))
        .routes(routes!(create_hold))
        .routes(routes!(get_hold, release_hold))
        .routes(routes!(my_tickets))
        .routes(routes!(transfer))
        .routes(routes!(history))
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, TicketError> {
    sqlx::query("SELECT 1").execute(state.pool()).await?;
    state.desk.locks.ping().await?;
    Ok("ready")
}

async fn metrics(State(state): State<AppState>) -> Response {
    if let Ok(figures) = state
        .availability
        .get(state.pool(), &state.desk.catalog)
        .await
    {
        let (total, held, sold) = figures.totals();
        state.desk.metrics.seats_total.set(total);
        state.desk.metrics.seats_held.set(held);
        state.desk.metrics.seats_sold.set(sold);
    }
    prom::render(&state.desk.metrics.registry)
}

async fn stats(State(state): State<AppState>) -> Result<Response, TicketError> {
    let figures = state
        .availability
        .get(state.pool(), &state.desk.catalog)
        .await?;
    let (total, held, sold) = figures.totals();
    Ok(Json(TicketStats {
        event: figures.event.clone(),
        total,
        held,
        sold,
        as_of_ms: figures.as_of_ms,
    })
    .into_response())
}

fn check_event(state: &AppState, event: &str) -> Result<(), TicketError> {
    if event == state.desk.catalog.event() {
        Ok(())
    } else {
        Err(TicketError::UnknownEvent(event.to_owned()))
    }
}

fn cacheable(body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=1"),
    );
    response
}

// ---- public reads ---------------------------------------------------------

/// The event: sale window, limits, sections with prices.
#[utoipa::path(
    get,
    path = "/v1/events/{event}",
    tag = "event",
    operation_id = "eventInfo",
    params(("event" = String, Path, description = "The event's name.")),
    responses(
        (status = 200, description = "The event (`Cache-Control: public, max-age=1`).", body = EventInfo),
        (status = 404, description = "`unknown-event`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn event_info(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Response, TicketError> {
    check_event(&state, &event)?;
    Ok(cacheable(EventInfo::of(&state.desk.catalog)))
}

/// Capacity, available, held and sold places per section, at most a second old.
#[utoipa::path(
    get,
    path = "/v1/events/{event}/availability",
    tag = "event",
    operation_id = "availability",
    params(("event" = String, Path, description = "The event's name.")),
    responses(
        (status = 200, description = "The figures (`Cache-Control: public, max-age=1`).", body = Availability),
        (status = 404, description = "`unknown-event`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn availability(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Response, TicketError> {
    check_event(&state, &event)?;
    let figures = state
        .availability
        .get(state.pool(), &state.desk.catalog)
        .await?;
    Ok(cacheable(&*figures))
}

/// Seat listings per section, at most a second old.
#[derive(Debug, Default)]
pub struct SeatListCache {
    sections: Mutex<std::collections::HashMap<String, (Instant, Arc<SeatListing>)>>,
}

/// A seated section's seats and their status, at most a second old.
#[utoipa::path(
    get,
    path = "/v1/events/{event}/sections/{section}/seats",
    tag = "event",
    operation_id = "sectionSeats",
    params(
        ("event" = String, Path, description = "The event's name."),
        ("section" = String, Path, description = "A seated section's id."),
    ),
    responses(
        (status = 200, description = "The seats (`Cache-Control: public, max-age=1`).", body = SeatListing),
        (status = 404, description = "`unknown-event`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown-section`: no seated section of that id.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn seats(
    State(state): State<AppState>,
    Path((event, section)): Path<(String, String)>,
) -> Result<Response, TicketError> {
    check_event(&state, &event)?;
    match state.desk.catalog.section(&section).map(|s| s.kind) {
        Some(crate::settings::SectionKind::Seated { .. }) => {}
        _ => {
            return Err(TicketError::UnknownSection(section));
        }
    }
    let mut cache = state.seat_cache.sections.lock().await;
    if let Some((at, listing)) = cache.get(&section)
        && at.elapsed() < Duration::from_secs(1)
    {
        return Ok(cacheable(&**listing));
    }
    let rows = sqlx::query(
        "SELECT s.seat_id, s.row_no, s.seat_no,
                CASE WHEN s.status = 'held' AND h.expires_at <= now() THEN 'available' ELSE s.status END AS status
         FROM seats s LEFT JOIN holds h ON h.id = s.hold_id AND s.status = 'held'
         WHERE s.event_id = $1 AND s.section_id = $2 AND s.status <> 'retired'
         ORDER BY s.row_no, s.seat_no",
    )
    .bind(&event)
    .bind(&section)
    .fetch_all(state.pool())
    .await?;
    let mut listed = Vec::with_capacity(rows.len());
    for row in rows {
        listed.push(SeatState {
            seat_id: row.try_get("seat_id")?,
            row: row.try_get("row_no")?,
            number: row.try_get("seat_no")?,
            status: row.try_get("status")?,
        });
    }
    let listing = Arc::new(SeatListing {
        section: section.clone(),
        seats: listed,
    });
    cache.insert(section, (Instant::now(), listing.clone()));
    Ok(cacheable(&*listing))
}

// ---- buyers ---------------------------------------------------------------

impl UserTokenState for AppState {
    type Rejection = TicketError;

    fn users(&self) -> &UserTokenVerifier {
        &self.users
    }
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Hold places: seats by id, or a quantity of a standing section.
///
/// Needs the entry token of the same user and event. Send an
/// `Idempotency-Key`: a retry with it replays the first answer
/// (`Idempotent-Replayed: true`) instead of holding twice; a refusal is not
/// stored, so a retry asks again. Per-order and per-user limits apply.
#[utoipa::path(
    post,
    path = "/v1/events/{event}/holds",
    tag = "holds",
    operation_id = "createHold",
    params(
        ("event" = String, Path, description = "The event's name."),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII characters, one per intended hold; a key that is not text is refused (400), never ignored."),
    ),
    request_body(content = HoldBody, description = "`{\"seats\": [\"a:1:1\"]}` or `{\"section\": \"floor\", \"quantity\": 2}`.", content_type = "application/json"),
    security(("userJwt" = [], "entryToken" = [])),
    responses(
        (status = 201, description = "The hold (or, under a replayed key, the first answer).", body = HoldView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer of an earlier request with the same key.")),
            links(
                ("GetHold" = (operation_id = "getHold", parameters(("event" = "$request.path.event"), ("hold" = "$response.body#/holdId")))),
                ("ReleaseHold" = (operation_id = "releaseHold", parameters(("event" = "$request.path.event"), ("hold" = "$response.body#/holdId")))),
            )),
        (status = 403, description = "`entry-token` (missing, expired, another user's or event's, revoked) or `sales-closed`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-event`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`seat-taken`, `sold-out`, `idempotency-in-flight` (`Retry-After`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`unknown-seat`, `unknown-section`, `limit-exceeded`, `idempotency-key-reused`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_hold(
    State(state): State<AppState>,
    Path(event): Path<String>,
    SignedIn(user): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TicketError> {
    check_event(&state, &event)?;
    let entry_token =
        header_value(&headers, entry::HEADER_NAME).ok_or(TicketError::MissingEntryToken)?;
    let claims = state.entry_key.verify(entry_token, &user, &event)?;
    // Leaving the queue gives the slot to the next user; the token must stop
    // buying then, or more than `maxActiveUsers` could buy at once.
    if let Some(revoked_at_ms) = state.desk.locks.entry_revoked_at(&user).await?
        && claims.revoked_by(revoked_at_ms)
    {
        return Err(TicketError::EntryTokenRevoked);
    }
    let parsed: HoldBody = urr_service_common::json_body::object(&body)
        .map_err(|e| TicketError::BadRequest(format!("body: {e}")))?;
    let request = state.desk.check(parsed)?;
    // A key that is not text is refused like any other malformed key:
    // ignoring it would turn the client's retry into a second hold.
    let key = headers
        .get("idempotency-key")
        .map(|value| value.to_str().map(str::trim).unwrap_or_default())
        .map(|key| {
            IdempotencyKey::new(
                &user,
                key,
                "POST",
                &format!("/v1/events/{event}/holds"),
                &body,
            )
        })
        .transpose()?;
    Ok(
        match state.desk.hold(&user, &request, key.as_ref()).await? {
            HoldAnswer::Created(view) => (StatusCode::CREATED, Json(view)).into_response(),
            HoldAnswer::Replayed(Replay { status, body }) => replay(status, body),
        },
    )
}

fn replay(status: u16, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if !status.is_success() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
    }
    response
}

/// The buyer's hold (an expired one reads as expired at once).
#[utoipa::path(
    get,
    path = "/v1/events/{event}/holds/{hold}",
    tag = "holds",
    operation_id = "getHold",
    params(
        ("event" = String, Path, description = "The event's name."),
        ("hold" = String, Path, description = "The hold's id."),
    ),
    security(("userJwt" = [])),
    responses(
        (status = 200, description = "The hold.", body = HoldView),
        (status = 404, description = "`unknown-event` or `unknown-hold` (also someone else's).", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_hold(
    State(state): State<AppState>,
    Path((event, hold)): Path<(String, String)>,
    SignedIn(user): SignedIn,
) -> Result<Response, TicketError> {
    check_event(&state, &event)?;
    Ok(Json(state.desk.get(&user, &hold).await?).into_response())
}

/// Let a hold go: its places go back on sale.
#[utoipa::path(
    delete,
    path = "/v1/events/{event}/holds/{hold}",
    tag = "holds",
    operation_id = "releaseHold",
    params(
        ("event" = String, Path, description = "The event's name."),
        ("hold" = String, Path, description = "The hold's id."),
    ),
    security(("userJwt" = [])),
    responses(
        (status = 204, description = "Released."),
        (status = 404, description = "`unknown-event` or `unknown-hold`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`hold-not-active`: confirmed, expired or released before.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn release_hold(
    State(state): State<AppState>,
    Path((event, hold)): Path<(String, String)>,
    SignedIn(user): SignedIn,
) -> Result<StatusCode, TicketError> {
    check_event(&state, &event)?;
    state.desk.release(&user, &hold).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The buyer's valid tickets.
#[utoipa::path(
    get,
    path = "/v1/me/tickets",
    tag = "tickets",
    operation_id = "myTickets",
    security(("userJwt" = [])),
    responses((status = 200, description = "The tickets.", body = MyTickets))
)]
async fn my_tickets(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
) -> Result<Response, TicketError> {
    let tickets = state.desk.tickets_of(&user).await?;
    Ok(Json(MyTickets { tickets }).into_response())
}

/// Give a ticket to another user.
#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket}/transfer",
    tag = "tickets",
    operation_id = "transferTicket",
    params(("ticket" = String, Path, description = "The ticket's id.")),
    request_body(content = TransferBody, content_type = "application/json"),
    security(("userJwt" = [])),
    responses(
        (status = 200, description = "The ticket, with its new owner.", body = TicketView),
        (status = 404, description = "`unknown-ticket` (also someone else's).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`ticket-void` or `conflict`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit-exceeded`: the recipient would hold more than `maxSeatsPerUser`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn transfer(
    State(state): State<AppState>,
    Path(ticket): Path<String>,
    SignedIn(user): SignedIn,
    body: Bytes,
) -> Result<Response, TicketError> {
    let body: TransferBody = urr_service_common::json_body::object(&body)
        .map_err(|e| TicketError::BadRequest(format!("body: {e}")))?;
    Ok(Json(
        state
            .desk
            .transfer(&user, &ticket, &body.to_user_id)
            .await?,
    )
    .into_response())
}

/// A ticket's changes of owner.
#[utoipa::path(
    get,
    path = "/v1/tickets/{ticket}/history",
    tag = "tickets",
    operation_id = "ticketHistory",
    params(("ticket" = String, Path, description = "The ticket's id.")),
    security(("userJwt" = [])),
    responses(
        (status = 200, description = "The changes, oldest first.", body = TicketHistory),
        (status = 404, description = "`unknown-ticket`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn history(
    State(state): State<AppState>,
    Path(ticket): Path<String>,
    SignedIn(user): SignedIn,
) -> Result<Response, TicketError> {
    let changes = state.desk.history(&user, &ticket).await?;
    Ok(Json(TicketHistory {
        ticket_id: ticket,
        changes,
    })
    .into_response())
}

// ---- internal (payment service) --------------------------------------------

async fn internal_quote(
    State(state): State<AppState>,
    Path(hold): Path<String>,
    _: ServiceCaller,
) -> Result<Response, TicketError> {
    Ok(Json(state.desk.quote(&hold).await?).into_response())
}

/// The caller's valid `traceparent`, carried into the outbox message.
fn traceparent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| urr_service_common::trace::is_valid(v))
}

async fn internal_confirm(
    State(state): State<AppState>,
    Path(hold): Path<String>,
    _: ServiceCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TicketError> {
    let request: ConfirmRequest = urr_service_common::json_body::object(&body)
        .map_err(|e| TicketError::BadRequest(format!("body: {e}")))?;
    Ok(Json(
        state
            .desk
            .confirm(
                &hold,
                &request,
                ConfirmPath::Rest,
                None,
                traceparent(&headers),
            )
            .await?,
    )
    .into_response())
}

async fn internal_cancel(
    State(state): State<AppState>,
    Path(hold): Path<String>,
    _: ServiceCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TicketError> {
    let request: CancelRequest = urr_service_common::json_body::object(&body)
        .map_err(|e| TicketError::BadRequest(format!("body: {e}")))?;
    Ok(Json(
        state
            .desk
            .cancel(&hold, &request, None, traceparent(&headers))
            .await?,
    )
    .into_response())
}
