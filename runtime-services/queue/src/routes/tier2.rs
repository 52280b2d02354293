//! Tier 2: the signed-in queue (join, poll, heartbeat, leave).

use super::*;
use tier1::pass_cookie;

/// Where the caller stands: waiting, or admitted with the entry token.
#[derive(Serialize, ToSchema)]
#[serde(tag = "status")]
pub(super) enum PlaceResponse {
    #[serde(rename = "waiting")]
    Waiting(Waiting),
    #[serde(rename = "admitted")]
    Admitted(Admitted),
}

/// In line (`status: waiting`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Waiting {
    event: String,
    /// 1-based; `null` in the pre-queue, before the draw at open.
    position: Option<u64>,
    /// People in line.
    total: u64,
    /// In the pre-queue: the order is drawn at open.
    pre_queue: bool,
    /// `null` while nobody is let in (pre-queue, paused, sold out…).
    eta_seconds: Option<Eta>,
    /// When to poll again (1 to 20 s, by distance: at most a third of the
    /// heartbeat timeout).
    poll_after_ms: u64,
    /// Whether the room lets anyone in now: `open`, `paused`,
    /// `draining`, `soldOut` or `closed` (the page shows each).
    admission: AdmissionState,
    /// Places the ticket service has left (`null`: unknown or stale).
    places_left: Option<u64>,
    /// Places in baskets, which come back if their holds lapse: sold
    /// out with none held is final (`null`: unknown or stale).
    places_held: Option<u64>,
    /// `fifo` or `random` order (under `random` the position is the
    /// place in the seed's order, which later joins can go ahead of).
    #[schema(value_type = String, pattern = "^(fifo|random)$")]
    order: &'static str,
}

/// Admitted (`status: admitted`): send `entryToken` in the
/// `urr-entry-token` header to the ticket API.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Admitted {
    event: String,
    entry_token: String,
    /// Unix seconds.
    entry_token_expires_at: i64,
}

async fn respond(
    state: &AppState,
    user: &UserIdentity,
    place: Place,
) -> Result<Json<PlaceResponse>, QueueError> {
    let now_ms = unix_now_ms();
    match place {
        Place::Absent => Err(QueueError::NotInQueue),
        Place::Refused(refusal) => Err(refused(state, refusal)),
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
            Ok(Json(PlaceResponse::Admitted(Admitted {
                event: state.event.clone(),
                entry_token: token,
                entry_token_expires_at: expires_at,
            })))
        }
        Place::Waiting { rank, total } => {
            let snapshot = state.snapshot.get(&state.store).await?;
            let policy = &snapshot.policy;
            let admission = snapshot.admission(now_ms);
            let inventory = admission::fresh(snapshot.inventory, now_ms);
            let places_left = inventory.map(|i| i.places_left);
            let places_held = inventory.map(|i| i.places_held);
            let order = if policy.method == QueueingMethod::Random {
                "random"
            } else {
                "fifo"
            };
            let pre_queue = policy.in_pre_queue(now_ms / 1000) && policy.randomize_at_open;
            if pre_queue {
                let until_open = (policy.sales_open_at * 1000 - now_ms).max(0) as u64;
                return Ok(Json(PlaceResponse::Waiting(Waiting {
                    event: state.event.clone(),
                    position: None,
                    total,
                    pre_queue,
                    eta_seconds: None,
                    poll_after_ms: (until_open / 2).clamp(1_000, eta::POLL_AT_MOST_MS),
                    admission,
                    places_left,
                    places_held,
                    order,
                })));
            }
            let eta = eta::estimate(rank, snapshot.rate, policy.users_per_second);
            Ok(Json(PlaceResponse::Waiting(Waiting {
                event: state.event.clone(),
                position: Some(rank + 1),
                total,
                pre_queue,
                // No estimate while nobody is let in: any number would be a guess.
                eta_seconds: (admission == AdmissionState::Open).then_some(eta),
                poll_after_ms: if admission == AdmissionState::Open {
                    eta::poll_after_ms(eta)
                } else {
                    HELD_POLL_MS
                },
                admission,
                places_left,
                places_held,
                order,
            })))
        }
    }
}

/// How often a waiter polls while admission is held (paused, sold out…):
/// often enough to see it re-open within seconds, rarely enough not to load
/// the service with a crowd that cannot move.
const HELD_POLL_MS: u64 = 5_000;

/// Optional join body.
#[derive(Deserialize, Default, ToSchema)]
#[schema(example = json!({"device": "phone"}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinRequest {
    /// A label of the device, for the user's own session list; at most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64)]
    device: Option<String>,
    /// An invite or presale code of this room (`urr-operator invite`):
    /// skips the line or joins at its head, once.
    #[serde(default)]
    invite_code: Option<String>,
}

/// The claims of the join's invite code, if it has one; a code this room
/// cannot take is refused (403 `invite-invalid`, with the reason), never
/// ignored: the buyer would wait in line believing they skipped it.
fn check_invite(
    state: &AppState,
    policy: &Policy,
    code: Option<&str>,
    now: i64,
) -> Result<Option<invite::InviteClaims>, QueueError> {
    let Some(code) = code else {
        return Ok(None);
    };
    let refuse = |reason: &'static str| {
        state.metrics.refuse("invite-invalid");
        QueueError::InviteInvalid(reason)
    };
    if policy.invites_until <= now {
        return Err(refuse(if policy.invites_until == 0 {
            "this room takes no invite codes"
        } else {
            "the room's invite codes are no longer valid"
        }));
    }
    invite::verify(state.pass_keys.accepted(), code, &state.room_id, now)
        .map(Some)
        .map_err(|error| refuse(error.outcome()))
}

/// Join the queue.
///
/// Idempotent per user: a rejoin (from any device) keeps the place. The
/// answer is the same as `GET …/queue/me`.
#[utoipa::path(
    post,
    path = "/v1/events/{event}/queue",
    tag = "tier 2",
    operation_id = "joinQueue",
    params(("event" = String, Path, description = "The event's name.")),
    request_body(content = Option<JoinRequest>, description = "Optional; an empty body joins without a device label or code.", content_type = "application/json"),
    security(("userJwt" = []), ("userJwt" = [], "vwrPass" = [])),
    responses(
        (status = 200, description = "Waiting, or admitted at once (room off, passthrough, a `skip` invite). An invite code also sets a served tier-1 pass.", body = PlaceResponse,
            headers(("Set-Cookie" = String, description = "A served `urr-vwr-token` pass, for the holder of an invite code.")),
            links(
                ("QueueStatus" = (operation_id = "queueStatus", parameters(("event" = "$request.path.event")))),
                ("QueueHeartbeat" = (operation_id = "queueHeartbeat", parameters(("event" = "$request.path.event")))),
                ("LeaveQueue" = (operation_id = "leaveQueue", parameters(("event" = "$request.path.event")))),
            )),
        (status = 403, description = "`pass-required` (take a number at `numbersUrl` first; while the edge gates the room), `pass-not-served` (with `number`, `serving`, `Retry-After`), `queue-not-open` (`Retry-After`), `blocked`, `sale-closed`, `room-draining`, `invite-invalid` (with `reason`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a join may succeed, with `pass-not-served` and `queue-not-open`."))),
        (status = 404, description = "`unknown-event`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invite-used`: another account redeemed this code.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: too many joins from this address or user; retry after `Retry-After`.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds."))),
    )
)]
pub(super) async fn join(
    State(state): State<AppState>,
    Path(event): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, QueueError> {
    check_event(&state, &event)?;
    let request: JoinRequest = if body.is_empty() {
        JoinRequest::default()
    } else {
        urr_service_common::json_body::object(&body)
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
    let snapshot = state.snapshot.get(&state.store).await?;
    let policy = &snapshot.policy;
    if let Some(address) = blocked_address(policy, &ip) {
        tracing::info!(%address, "join from a blocked network");
        return Err(refused(&state, Refusal::Blocked));
    }
    if policy.pre_queue_opens_at > now {
        return Err(QueueError::QueueNotOpen {
            opens_at: policy.pre_queue_opens_at,
            retry_after: (policy.pre_queue_opens_at - now).max(1) as u64,
        });
    }
    let invited = check_invite(&state, policy, request.invite_code.as_deref(), now)?;
    // A valid code stands in for the served tier-1 pass: its holder is
    // let past the edge's line too (see `served_pass_cookie`).
    if policy.pass_required(now) && invited.is_none() {
        check_pass(&state, &headers, now).await?;
    }
    let limits = JoinLimits {
        address: ip,
        per_address: state.join_limit_per_ip,
        per_user: state.join_limit_per_user,
    };
    let ttl = policy.entry_token_ttl_seconds;
    let place = match &invited {
        None => {
            state
                .store
                .join_limited(&user.user_id, now_ms, ttl, &limits)
                .await?
        }
        Some(claims) => {
            let invite = InviteUse {
                code_id: &claims.code_id,
                mode: claims.mode,
            };
            let (place, redeemed) = state
                .store
                .join_invited(&user.user_id, now_ms, ttl, &limits, invite)
                .await?;
            if redeemed {
                state.metrics.invite_redeemed(claims.mode.as_str());
                tracing::info!(code = %claims.code_id, mode = claims.mode.as_str(), "invite code redeemed");
            }
            place
        }
    };
    if !matches!(place, Place::Limited { .. }) {
        state.metrics.joins.inc();
    }
    let pass_cookie = invited
        .is_some()
        .then(|| served_pass_cookie(&state, &snapshot.serving, now))
        .flatten();
    let mut response = respond(&state, &user, place).await?.into_response();
    if let Some(cookie) = pass_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A tier-1 pass the edge lets through now (its number is the one being
/// served), for the holder of an invite code: the code let them past the
/// line, so the edge's line must not hold them either. `None` when the
/// room has no tier 1.
fn served_pass_cookie(state: &AppState, serving: &ServingParams, now: i64) -> Option<HeaderValue> {
    let key = state.pass_keys.current()?;
    let token = vwr::sign(
        key,
        &state.room_id,
        serving.serving_at(now),
        now + state.vwr_token_ttl_seconds,
    );
    pass_cookie(state, &token)
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

/// Where the caller stands.
///
/// Poll at `pollAfterMs`; on admission the answer carries the entry token.
#[utoipa::path(
    get,
    path = "/v1/events/{event}/queue/me",
    tag = "tier 2",
    operation_id = "queueStatus",
    params(("event" = String, Path, description = "The event's name.")),
    security(("userJwt" = [])),
    responses(
        (status = 200, description = "Waiting (position, ETA range, next poll) or admitted (entry token).", body = PlaceResponse),
        (status = 403, description = "`blocked`, `sale-closed` or `room-draining`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-event`, or `not-in-queue` (never joined, left, or dropped after missing heartbeats: join again).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn me(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<PlaceResponse>, QueueError> {
    let place = state.store.status(&user.user_id, unix_now_ms()).await?;
    respond(&state, &user, place).await
}

/// Keep the place.
///
/// Waiters silent for 60 s are reaped; polling `…/queue/me` counts too.
#[utoipa::path(
    post,
    path = "/v1/events/{event}/queue/heartbeat",
    tag = "tier 2",
    operation_id = "queueHeartbeat",
    params(("event" = String, Path, description = "The event's name.")),
    security(("userJwt" = [])),
    responses(
        (status = 204, description = "In line or admitted."),
        (status = 404, description = "`unknown-event` or `not-in-queue`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn heartbeat(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<StatusCode, QueueError> {
    match state.store.status(&user.user_id, unix_now_ms()).await? {
        Place::Absent => Err(QueueError::NotInQueue),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// Leave the line, or give the entry slot back.
///
/// Giving the slot back revokes the entry token: the ticket API refuses it
/// from then on (403 `entry-token`).
#[utoipa::path(
    delete,
    path = "/v1/events/{event}/queue/me",
    tag = "tier 2",
    operation_id = "leaveQueue",
    params(("event" = String, Path, description = "The event's name.")),
    security(("userJwt" = [])),
    responses(
        (status = 204, description = "Left."),
        (status = 404, description = "`unknown-event` or `not-in-queue`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn leave(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<StatusCode, QueueError> {
    if state.store.leave(&user.user_id, unix_now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(QueueError::NotInQueue)
    }
}
