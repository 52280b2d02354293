//! HTTP routes: `routers(state)`, public and internal, so tests drive the
//! service in-process.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use urr_service_common::server::Routers;
use urr_service_common::service;
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::user::{UserIdentity, UserTokenVerifier};
use urr_service_common::tokens::vwr;
use urr_service_common::{metrics as prom, unix_now_ms};

use crate::client_address::ClientAddressSource;
use crate::error::QueueError;
use crate::eta::{self, Eta, MeasuredRate};
use crate::pass::{self, PassKeys, PassRefusal};
use crate::snapshot::{RATE_WINDOW_MS, SnapshotCache};
use crate::store::{JoinLimits, NumberTaken, Place, QueueStore};
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
}

/// The service's routers: the API on the public listener; `/metrics` and
/// `/internal/stats` (the operator's scaling input) on the internal one,
/// which only the cluster reaches ([`urr_service_common::server::split`]).
pub fn routers(state: AppState) -> Routers {
    let requests = state.metrics.requests.clone();
    service::frame(
        state,
        readyz,
        metrics,
        Router::new()
            .route("/v1/rooms/{room}/numbers", post(take_number))
            .route("/v1/rooms/{room}/serving", get(serving))
            .route("/v1/events/{event}/queue", post(join))
            .route("/v1/events/{event}/queue/me", get(me).delete(leave))
            .route("/v1/events/{event}/queue/heartbeat", post(heartbeat))
            .route("/v1/events/{event}/queue/audit", get(audit))
            .route("/waiting/{room}", get(waiting_page::page))
            .route("/waiting/assets/{file}", get(waiting_page::assets)),
        Router::new().route("/internal/stats", get(stats)),
        &requests,
    )
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, QueueError> {
    state.store.ping().await?;
    Ok("ready")
}

// ---- tier 1 ------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NumberResponse<'a> {
    room: &'a str,
    number: u64,
    serving: u64,
    ahead_of_you: u64,
    eta_seconds: Eta,
    poll_after_ms: u64,
}

fn check_room(state: &AppState, room: &str) -> Result<(), QueueError> {
    if room == state.room_name {
        Ok(())
    } else {
        Err(QueueError::UnknownRoom(room.to_owned()))
    }
}

/// `POST /v1/rooms/{room}/numbers`: a number and its signed pass. A visitor
/// who already holds a valid pass for this room keeps their number, and
/// does not count against the per-address limit; a loop without the cookie
/// hits that limit, so it cannot push everyone after it back.
async fn take_number(
    State(state): State<AppState>,
    Path(room): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, QueueError> {
    check_room(&state, &room)?;
    let now_ms = unix_now_ms();
    let now = now_ms / 1000;
    let Some(signing_key) = state.pass_keys.current() else {
        return Err(QueueError::NoTierOne(room));
    };
    let existing = pass::valid_pass(state.pass_keys.accepted(), &headers, &state.room_id, now);
    let (number, token) = match existing {
        Some(claims) => (claims.number, None),
        None => match state
            .store
            .take_number(&ip, state.number_limit_per_ip, now_ms)
            .await?
        {
            NumberTaken::Number(number) => {
                state.metrics.numbers_issued.inc();
                let token = vwr::sign(
                    signing_key,
                    &state.room_id,
                    number,
                    now + state.vwr_token_ttl_seconds,
                );
                (number, Some(token))
            }
            NumberTaken::Limited { retry_after } => {
                state.metrics.refuse("rate-limit-numbers");
                return Err(QueueError::NumbersLimited { retry_after });
            }
        },
    };
    let params = state.snapshot.get(&state.store).await?.serving;
    let serving = params.serving_at(now);
    let wait = params.seconds_until_served(number, now);
    let body = NumberResponse {
        room: &room,
        number,
        serving,
        ahead_of_you: number.saturating_sub(serving),
        // The counter is deterministic, so the estimate is exact.
        eta_seconds: Eta {
            low: wait,
            high: wait,
            basis: "schedule",
        },
        poll_after_ms: (wait * 1000 / 4).clamp(1_000, 15_000),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Some(token) = token {
        let secure = if state.cookie_secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            vwr::COOKIE_NAME,
            state.vwr_token_ttl_seconds
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /v1/rooms/{room}/serving`: cheap and cacheable for a second; the
/// same for every visitor.
async fn serving(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, QueueError> {
    check_room(&state, &room)?;
    let params = state.snapshot.get(&state.store).await?.serving;
    let now = unix_now_ms() / 1000;
    let body = json!({
        "room": room,
        "serving": params.serving_at(now),
        "start": params.start,
        "perInterval": params.per_interval,
        "intervalSeconds": params.interval_seconds,
        "epoch": params.epoch,
        "now": now,
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=1"),
    );
    Ok(response)
}

// ---- tier 2 ------------------------------------------------------------

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

fn check_event(state: &AppState, event: &str) -> Result<(), QueueError> {
    if event == state.event {
        Ok(())
    } else {
        Err(QueueError::UnknownEvent(event.to_owned()))
    }
}

#[derive(Serialize)]
#[serde(tag = "status", rename_all_fields = "camelCase")]
enum PlaceResponse {
    #[serde(rename = "waiting")]
    Waiting {
        event: String,
        /// 1-based; `null` in the pre-queue, before the draw at open.
        position: Option<u64>,
        total: u64,
        pre_queue: bool,
        eta_seconds: Option<Eta>,
        poll_after_ms: u64,
    },
    #[serde(rename = "admitted")]
    Admitted {
        event: String,
        entry_token: String,
        /// Unix seconds.
        entry_token_expires_at: i64,
    },
}

async fn respond(
    state: &AppState,
    user: &UserIdentity,
    place: Place,
) -> Result<Json<PlaceResponse>, QueueError> {
    let now_ms = unix_now_ms();
    match place {
        Place::Absent => Err(QueueError::NotInQueue),
        Place::Limited { scope, retry_after } => {
            state.metrics.refuse(if scope == "user" {
                "rate-limit-user"
            } else {
                "rate-limit-ip"
            });
            Err(QueueError::RateLimited { scope, retry_after })
        }
        Place::Admitted { expires_at_ms } => {
            let expires_at = expires_at_ms / 1000;
            let token = state
                .entry_key
                .issue(&user.user_id, &state.event, now_ms / 1000, expires_at)
                .map_err(|e| QueueError::Signing(e.to_string()))?;
            Ok(Json(PlaceResponse::Admitted {
                event: state.event.clone(),
                entry_token: token,
                entry_token_expires_at: expires_at,
            }))
        }
        Place::Waiting { rank, total } => {
            let snapshot = state.snapshot.get(&state.store).await?;
            let policy = snapshot.policy;
            let pre_queue = policy.in_pre_queue(now_ms / 1000) && policy.randomize_at_open;
            if pre_queue {
                let until_open = (policy.sales_open_at * 1000 - now_ms).max(0) as u64;
                return Ok(Json(PlaceResponse::Waiting {
                    event: state.event.clone(),
                    position: None,
                    total,
                    pre_queue,
                    eta_seconds: None,
                    poll_after_ms: (until_open / 2).clamp(1_000, 30_000),
                }));
            }
            let eta = eta::estimate(rank, snapshot.rate, policy.users_per_second);
            Ok(Json(PlaceResponse::Waiting {
                event: state.event.clone(),
                position: Some(rank + 1),
                total,
                pre_queue,
                eta_seconds: Some(eta),
                poll_after_ms: eta::poll_after_ms(eta),
            }))
        }
    }
}

/// Optional join body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinRequest {
    /// A label of the device, for the user's own session list; at most 64 characters.
    #[serde(default)]
    device: Option<String>,
}

/// `POST /v1/events/{event}/queue`: idempotent per user; a rejoin (from any
/// device) keeps the place.
async fn join(
    State(state): State<AppState>,
    Path(event): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<PlaceResponse>, QueueError> {
    check_event(&state, &event)?;
    let request: JoinRequest = if body.is_empty() {
        JoinRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| QueueError::BadRequest(format!("invalid join body: {e}")))?
    };
    if request
        .device
        .as_ref()
        .is_some_and(|d| d.chars().count() > 64)
    {
        return Err(QueueError::BadRequest(
            "device must be at most 64 characters".into(),
        ));
    }
    let user = authenticate(&state, &headers).await?;
    let now_ms = unix_now_ms();
    let now = now_ms / 1000;
    let policy = state.snapshot.get(&state.store).await?.policy;
    if policy.pre_queue_opens_at > now {
        return Err(QueueError::QueueNotOpen {
            opens_at: policy.pre_queue_opens_at,
            retry_after: (policy.pre_queue_opens_at - now).max(1) as u64,
        });
    }
    if policy.pass_required(now) {
        check_pass(&state, &headers, now).await?;
    }
    let limits = JoinLimits {
        address: ip,
        per_address: state.join_limit_per_ip,
        per_user: state.join_limit_per_user,
    };
    let place = state
        .store
        .join_limited(
            &user.user_id,
            now_ms,
            policy.entry_token_ttl_seconds,
            &limits,
        )
        .await?;
    if !matches!(place, Place::Limited { .. }) {
        state.metrics.joins.inc();
    }
    respond(&state, &user, place).await
}

/// The served tier-1 pass a join needs while the edge gates (chained tiers).
async fn check_pass(state: &AppState, headers: &HeaderMap, now: i64) -> Result<(), QueueError> {
    let serving = state.snapshot.get(&state.store).await?.serving;
    let room = || state.room_name.clone();
    match pass::served_pass(
        state.pass_keys.accepted(),
        headers,
        &state.room_id,
        &serving,
        now,
    ) {
        Ok(_) => Ok(()),
        Err(PassRefusal::Missing) => {
            state.metrics.refuse("pass-required");
            Err(QueueError::PassRequired {
                room: room(),
                reason: "no urr-vwr-token cookie",
            })
        }
        Err(PassRefusal::Invalid(error)) => {
            state.metrics.refuse("pass-invalid");
            tracing::info!(reason = error.outcome(), "join with an invalid pass");
            Err(QueueError::PassRequired {
                room: room(),
                reason: "the urr-vwr-token cookie is not a valid pass for this room",
            })
        }
        Err(PassRefusal::NotServed {
            number,
            serving,
            wait_seconds,
        }) => {
            state.metrics.refuse("pass-not-served");
            Err(QueueError::PassNotServed {
                room: room(),
                number,
                serving,
                retry_after: wait_seconds,
            })
        }
    }
}

/// `GET /v1/events/{event}/queue/me`.
async fn me(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<PlaceResponse>, QueueError> {
    let place = state.store.status(&user.user_id, unix_now_ms()).await?;
    respond(&state, &user, place).await
}

/// `POST /v1/events/{event}/queue/heartbeat`: 204 while in the queue or admitted.
async fn heartbeat(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<StatusCode, QueueError> {
    match state.store.status(&user.user_id, unix_now_ms()).await? {
        Place::Absent => Err(QueueError::NotInQueue),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// `DELETE /v1/events/{event}/queue/me`: leaves, or gives an entry slot back.
async fn leave(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<StatusCode, QueueError> {
    if state.store.leave(&user.user_id, unix_now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(QueueError::NotInQueue)
    }
}

/// `GET /v1/events/{event}/queue/audit`: the pre-queue draw. The seed is
/// shown only after the draw; before it, only its commitment.
async fn audit(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Json<serde_json::Value>, QueueError> {
    check_event(&state, &event)?;
    let draw = state.store.shuffle_state().await?;
    let shuffled_at = draw.get("shuffledAt").and_then(|v| v.parse::<i64>().ok());
    Ok(Json(json!({
        "event": state.event,
        "algorithm": "members present at open sorted ascending by SHA-256(seed || userId), seed as its lowercase hex string, userId as UTF-8; the commitment is SHA-256(seed)",
        "seedCommitment": draw.get("commitment"),
        "seed": shuffled_at.and(draw.get("seed")),
        "shuffledAtMs": shuffled_at,
        "participants": draw.get("participants").and_then(|v| v.parse::<u64>().ok()),
    })))
}

// ---- operator and people ------------------------------------------------

/// Figures for the operator's scaling and for people.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub event: String,
    pub depth: u64,
    pub active_users: u64,
    pub admitted_total: u64,
    pub admitted_per_second: f64,
    pub oldest_wait_seconds: u64,
    /// New joins and tier-1 numbers per second over the last 10 s.
    pub arrivals_per_second: f64,
    pub room_active: bool,
    pub max_active_users: u32,
    pub users_per_second: u32,
}

async fn collect_stats(state: &AppState) -> Result<Stats, QueueError> {
    let now_ms = unix_now_ms();
    let figures = state.store.figures(now_ms).await?;
    let policy = state.store.policy().await?;
    let measured =
        MeasuredRate::from_samples(&state.store.rate_samples().await?, now_ms, RATE_WINDOW_MS);
    let stats = Stats {
        event: state.event.clone(),
        depth: figures.depth,
        active_users: figures.active,
        admitted_total: figures.admitted_total,
        admitted_per_second: (measured.mean * 10.0).round() / 10.0,
        oldest_wait_seconds: (figures.oldest_wait_ms / 1000) as u64,
        arrivals_per_second: state.store.arrivals_per_second(now_ms).await?,
        room_active: policy.active,
        max_active_users: policy.max_active_users,
        users_per_second: policy.users_per_second,
    };
    let m = &state.metrics;
    m.depth.set(stats.depth as i64);
    m.active_users.set(stats.active_users as i64);
    m.admitted_total.set(stats.admitted_total as i64);
    m.admitted_per_second.set(stats.admitted_per_second);
    m.oldest_wait_seconds.set(stats.oldest_wait_seconds as i64);
    Ok(stats)
}

async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, QueueError> {
    Ok(Json(collect_stats(&state).await?))
}

async fn metrics(State(state): State<AppState>) -> Response {
    if let Err(error) = collect_stats(&state).await {
        tracing::warn!(%error, "stats unavailable for /metrics");
    }
    prom::render(&state.metrics.registry)
}
