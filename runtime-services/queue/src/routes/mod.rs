//! HTTP routes: `routers(state)`, public and internal, so tests drive the
//! service in-process. One file per audience: [`tier1`] (anonymous numbers),
//! [`tier2`] (the signed-in queue), [`audit`] (the published draws) and
//! [`stats`] (the operator and Prometheus); this file holds the state, the
//! router and the extractors they share.

mod audit;
mod stats;
mod tier1;
mod tier2;

pub use stats::Stats;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use urr_service_common::openapi;
use urr_service_common::problem::Problem;
use urr_service_common::server::Routers;
use urr_service_common::service;
use urr_service_common::serving::ServingParams;
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::user::{UserIdentity, UserTokenVerifier};
use urr_service_common::tokens::{invite, vwr};
use urr_service_common::{metrics as prom, unix_now_ms};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admission::{self, AdmissionState};
use crate::client_address::ClientAddressSource;
use crate::error::QueueError;
use crate::eta::{self, Eta, MeasuredRate};
use crate::pass::{self, PassKeys, PassRefusal};
use crate::policy::{Policy, QueueingMethod};
use crate::snapshot::{RATE_WINDOW_MS, SnapshotCache};
use crate::store::Refusal;
use crate::store::{InviteUse, JoinLimits, NumberTaken, Place, QueueStore};
use crate::telemetry::QueueMetrics;
use crate::waiting_page;

/// Everything a request handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: QueueStore,
    pub event: String,
    pub room_name: String,
    pub room_id: String,
    pub users: UserTokenVerifier,
    pub entry_key: EntryTokenKey,
    /// The room's pass keys (current signs; current and previous verify).
    pub pass_keys: PassKeys,
    pub vwr_token_ttl_seconds: i64,
    pub cookie_secure: bool,
    /// Tier-1 numbers per client address per minute (0 = unlimited).
    pub number_limit_per_ip: u32,
    pub join_limit_per_ip: u32,
    pub join_limit_per_user: u32,
    pub client_address: ClientAddressSource,
    pub metrics: Arc<QueueMetrics>,
    /// Policy, measured rate and serving parameters, at most one tick old.
    pub snapshot: Arc<SnapshotCache>,
    /// The pre-queue draw's members and their tree (built once, after the draw).
    pub drawn_members: Arc<tokio::sync::OnceCell<Arc<audit::DrawnMembers>>>,
    /// The waiting page served, branded or default ([`waiting_page::PageCache`]).
    pub page: Arc<waiting_page::PageCache>,
}

/// The service's routers: the API on the public listener, with its OpenAPI
/// document at `/openapi.json`; `/metrics` and `/internal/stats` (the
/// operator's scaling input) on the internal one, which only the cluster
/// reaches ([`urr_service_common::server::split`]).
pub fn routers(state: AppState) -> Routers {
    let requests = state.metrics.requests.clone();
    let (public, api) = public_api().split_for_parts();
    let public = openapi::serve(public, &openapi::finish(api, &ABOUT));
    service::frame(
        state,
        readyz,
        stats::metrics,
        public,
        Router::new().route("/internal/stats", get(stats::stats)),
        &requests,
    )
}

/// The OpenAPI document of the public API, as `/openapi.json` serves it
/// (and `docs/openapi/queue.json` holds it).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(public_api().split_for_parts().1, &ABOUT)
}

/// The public routes, each documented by its handler's `#[utoipa::path]`:
/// `routes!` registers a route and its documentation together.
fn public_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tier1::take_number))
        .routes(routes!(tier1::serving))
        .routes(routes!(tier2::join))
        .routes(routes!(tier2::me, tier2::leave))
        .routes(routes!(tier2::heartbeat))
        .routes(routes!(audit::audit))
        .routes(routes!(audit::proof))
        .routes(routes!(waiting_page::page))
        .routes(routes!(waiting_page::brand_css))
        .routes(routes!(waiting_page::assets))
}

const ABOUT: openapi::About = openapi::About {
    title: "URR queue API",
    description: "The waiting room in front of a ticket sale, in two tiers. **Tier 1** (anonymous): a visitor takes a number (`POST /v1/rooms/{room}/numbers`, which sets the `urr-vwr-token` pass cookie) and computes the serving counter from the published parameters (`GET /v1/rooms/{room}/serving`) until it reaches their number. **Tier 2** (signed in with the user JWT): the buyer joins the event's queue (with a served pass while the edge gates the room), polls `GET /v1/events/{event}/queue/me` at the `pollAfterMs` it is told, and on admission receives the `entryToken` the ticket API requires. Every 4xx and 5xx is `application/problem+json`; a 429 or 503 carries `Retry-After`.",
    schemes: &[openapi::Scheme::UserJwt, openapi::Scheme::VwrPass],
    problems: crate::error::PROBLEMS,
};

async fn readyz(State(state): State<AppState>) -> Result<&'static str, QueueError> {
    state.store.ping().await?;
    Ok("ready")
}

/// The caller's address (see [`crate::client_address`]).
struct ClientIp(String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(state.client_address.resolve(&parts.headers, peer)))
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<UserIdentity, QueueError> {
    state.users.verify_headers(headers).await.map_err(|error| {
        state.metrics.refuse("unauthorized");
        QueueError::Unauthorized(error)
    })
}

/// An authenticated user calling an endpoint of this instance's event: the
/// `{event}` path segment is checked and the bearer token verified.
struct Caller(UserIdentity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = QueueError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(event) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| QueueError::BadRequest(e.to_string()))?;
        check_event(state, &event)?;
        Ok(Caller(authenticate(state, &parts.headers).await?))
    }
}

/// The answer to a join or number the room does not take, counted by reason.
fn refused(state: &AppState, refusal: Refusal) -> QueueError {
    match refusal {
        Refusal::Blocked => {
            state.metrics.refuse("blocked");
            QueueError::Blocked
        }
        Refusal::Closed => {
            state.metrics.refuse("sale-closed");
            QueueError::SaleClosed
        }
        Refusal::Draining => {
            state.metrics.refuse("draining");
            QueueError::Draining
        }
        Refusal::InviteUsed => {
            state.metrics.refuse("invite-used");
            QueueError::InviteUsed
        }
    }
}

/// The caller's address when a blocked network holds it (`spec.control.blockAddresses`).
fn blocked_address(policy: &Policy, ip: &str) -> Option<std::net::IpAddr> {
    ip.parse()
        .ok()
        .filter(|address| policy.address_blocked(*address))
}

fn check_event(state: &AppState, event: &str) -> Result<(), QueueError> {
    if event == state.event {
        Ok(())
    } else {
        Err(QueueError::UnknownEvent(event.to_owned()))
    }
}
