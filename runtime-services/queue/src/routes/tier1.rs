//! Tier 1: anonymous numbers and the serving counter the edge computes.

use super::*;

// ---- tier 1 ------------------------------------------------------------

/// A tier-1 number.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct NumberResponse {
    room: String,
    /// The visitor's number; served once the counter reaches it.
    number: u64,
    /// The number being served now.
    serving: u64,
    ahead_of_you: u64,
    /// Exact: the counter follows a published schedule (`basis: schedule`).
    eta_seconds: Eta,
    /// When to look again (the page computes the counter meanwhile).
    poll_after_ms: u64,
}

/// The serving counter and the parameters to compute it with:
/// `start + perInterval × ⌊(now − epoch) / intervalSeconds⌋`, standing still
/// from `pausedAt`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServingResponse {
    admission: AdmissionState,
    room: String,
    /// The highest number served at `now`.
    serving: u64,
    start: u64,
    per_interval: u64,
    interval_seconds: u64,
    /// Unix seconds.
    epoch: i64,
    /// Unix seconds from which the counter stands still (admission paused); `null` otherwise.
    paused_at: Option<i64>,
    /// The server's clock, Unix seconds (correct it by the cache's `Age`).
    now: i64,
}

/// The `Set-Cookie` value that carries a tier-1 pass.
pub(super) fn pass_cookie(state: &AppState, token: &str) -> Option<HeaderValue> {
    let secure = if state.cookie_secure { "; Secure" } else { "" };
    let cookie = format!(
        "{}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        vwr::COOKIE_NAME,
        state.vwr_token_ttl_seconds
    );
    HeaderValue::from_str(&cookie).ok()
}

fn check_room(state: &AppState, room: &str) -> Result<(), QueueError> {
    if room == state.room_name {
        Ok(())
    } else {
        Err(QueueError::UnknownRoom(room.to_owned()))
    }
}

/// A number and its signed pass.
///
/// A visitor
/// who already holds a valid pass for this room keeps their number, and
/// does not count against the per-address limit; a loop without the cookie
/// hits that limit, so it cannot push everyone after it back.
#[utoipa::path(
    post,
    path = "/v1/rooms/{room}/numbers",
    tag = "tier 1",
    operation_id = "takeNumber",
    params(("room" = String, Path, description = "The waiting room's name.")),
    security((), ("vwrPass" = [])),
    responses(
        (status = 201, description = "The number; a new one comes with its pass in `Set-Cookie` (a valid pass keeps its number and sets none).", body = NumberResponse,
            headers(("Set-Cookie" = String, description = "`urr-vwr-token=<pass>; Path=/; Max-Age=…; HttpOnly; SameSite=Lax[; Secure]`"))),
        (status = 403, description = "`blocked` (address), `sale-closed` or `room-draining`: no new numbers.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-room`, or `no-tier-one` (the room has no edge tier: join directly).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: too many numbers from this address; keep the one you have or retry after `Retry-After`.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds."))),
    )
)]
pub(super) async fn take_number(
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
    let snapshot = state.snapshot.get(&state.store).await?;
    if blocked_address(&snapshot.policy, &ip).is_some() {
        return Err(refused(&state, Refusal::Blocked));
    }
    let existing = pass::valid_pass(state.pass_keys.accepted(), &headers, &state.room_id, now);
    // A visitor with a number keeps it whatever the room does now; only a
    // new one is turned away from a closed or draining room.
    if existing.is_none() {
        match snapshot.admission(now_ms) {
            AdmissionState::Closed => return Err(refused(&state, Refusal::Closed)),
            AdmissionState::Draining => return Err(refused(&state, Refusal::Draining)),
            _ => {}
        }
    }
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
    let params = snapshot.serving;
    let serving = params.serving_at(now);
    let wait = params.seconds_until_served(number, now);
    let body = NumberResponse {
        room: room.clone(),
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
    if let Some(cookie) = token.and_then(|token| pass_cookie(&state, &token)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The serving counter's parameters.
///
/// The same for every visitor, so shared caches keep it for 5 s (the edge's cache policy, terraform/modules/edge):
/// the waiting page computes the counter from these parameters and corrects
/// `now` by the cache's `Age`, so a stale copy costs it nothing. Browsers
/// keep none (`max-age=0`): the page asks about once a minute, and then
/// wants what the edge has.
#[utoipa::path(
    get,
    path = "/v1/rooms/{room}/serving",
    tag = "tier 1",
    operation_id = "serving",
    params(("room" = String, Path, description = "The waiting room's name.")),
    responses(
        (status = 200, description = "The counter now and its parameters (`Cache-Control: public, max-age=0, s-maxage=5`).", body = ServingResponse),
        (status = 404, description = "`unknown-room`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn serving(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, QueueError> {
    check_room(&state, &room)?;
    let snapshot = state.snapshot.get(&state.store).await?;
    let params = snapshot.serving;
    let now_ms = unix_now_ms();
    let now = now_ms / 1000;
    let body = ServingResponse {
        admission: snapshot.admission(now_ms),
        serving: params.serving_at(now),
        room,
        start: params.start,
        per_interval: params.per_interval,
        interval_seconds: params.interval_seconds,
        epoch: params.epoch,
        // Set while admission is paused: the counter stands still there.
        paused_at: params.paused_at,
        now,
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, s-maxage=5"),
    );
    Ok(response)
}
