//! The queue service's one error type; every variant maps to a problem response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use urr_service_common::openapi::ProblemType;
use urr_service_common::problem::Problem;
use urr_service_common::tokens::user::UserTokenError;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] UserTokenError),
    #[error("unknown room {0}")]
    UnknownRoom(String),
    #[error("unknown event {0}")]
    UnknownEvent(String),
    /// Room `{0}` has no tier 1 (no edge, so no pass key): numbers are not handed out.
    #[error("room {0} has no tier 1")]
    NoTierOne(String),
    #[error("not in the queue")]
    NotInQueue,
    #[error("rate limited ({scope}), retry after {retry_after}s")]
    RateLimited {
        scope: &'static str,
        retry_after: u64,
    },
    /// A join without a valid tier-1 pass while the edge gates the room.
    #[error("a served pass of room {room} is required ({reason})")]
    PassRequired { room: String, reason: &'static str },
    /// A join with a valid pass the serving counter has not reached.
    #[error("pass number {number} is not served yet (serving {serving})")]
    PassNotServed {
        room: String,
        number: u64,
        serving: u64,
        retry_after: u64,
    },
    #[error("too many numbers from this address, retry after {retry_after}s")]
    NumbersLimited { retry_after: u64 },
    #[error("the queue opens at {opens_at}")]
    QueueNotOpen { opens_at: i64, retry_after: u64 },
    /// A join or number from a blocked user or address (`spec.control`).
    #[error("blocked")]
    Blocked,
    /// The queueing method is `reject`.
    #[error("the sale is closed")]
    SaleClosed,
    /// The room drains: nobody new.
    #[error("the room admits no one new")]
    Draining,
    /// An invite code that is not this room's, is forged or has expired, or
    /// a room that takes no codes.
    #[error("invite code refused: {0}")]
    InviteInvalid(&'static str),
    /// An invite code someone else redeemed.
    #[error("invite code already used")]
    InviteUsed,
    /// A proof asked of the draw by someone not in it (or before it).
    #[error("not in the pre-queue draw")]
    NotInDraw,
    #[error("no asset named {0}")]
    NoSuchAsset(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("could not sign a token: {0}")]
    Signing(String),
}

/// Every problem type the queue's own errors answer with (the frame's are
/// in [`urr_service_common::openapi::FRAMEWORK_PROBLEMS`]): the OpenAPI
/// document's `Problem.type` enum. A test maps every variant through
/// [`QueueError::into_response`] and fails on a type missing here.
pub const PROBLEMS: &[ProblemType] = &[
    ProblemType::new(
        "unknown-room",
        404,
        "no waiting room of that name is served here",
    ),
    ProblemType::new(
        "no-tier-one",
        404,
        "the room has no edge tier: join the queue directly",
    ),
    ProblemType::new("unknown-event", 404, "no event of that name is served here"),
    ProblemType::new(
        "not-in-queue",
        404,
        "not in this queue (never joined, left, or dropped after missing heartbeats): join again",
    ),
    ProblemType::new(
        "rate-limited",
        429,
        "too many joins or numbers from this address or user: retry after `Retry-After`",
    ),
    ProblemType::new(
        "pass-required",
        403,
        "the edge gates the room: take a number at `numbersUrl` (it sets the pass cookie), wait until it is served, join with the cookie",
    ),
    ProblemType::new(
        "pass-not-served",
        403,
        "the pass's `number` is not served yet (`serving`): join after `Retry-After`",
    ),
    ProblemType::new(
        "queue-not-open",
        403,
        "the (pre-)queue opens later: retry after `Retry-After`",
    ),
    ProblemType::new(
        "blocked",
        403,
        "this account or network may not join this sale",
    ),
    ProblemType::new("sale-closed", 403, "the sale takes no one in line"),
    ProblemType::new(
        "room-draining",
        403,
        "the room takes no one new while the admitted finish",
    ),
    ProblemType::new(
        "invite-invalid",
        403,
        "the invite code is forged, expired, another room's, or the room takes none (`reason`)",
    ),
    ProblemType::new(
        "invite-used",
        409,
        "another account redeemed this invite code",
    ),
    ProblemType::new(
        "not-in-draw",
        404,
        "not in line at the pre-queue draw, or the draw has not happened",
    ),
];

impl IntoResponse for QueueError {
    fn into_response(self) -> Response {
        let problem = match &self {
            QueueError::Redis(error) => {
                tracing::error!(%error, "redis unavailable");
                Problem::unavailable("the queue store is unreachable; retry shortly")
            }
            QueueError::Unauthorized(UserTokenError::KeysUnavailable(error)) => {
                tracing::error!(%error, "identity provider keys unavailable");
                Problem::unavailable("cannot verify sign-ins right now; retry shortly")
            }
            QueueError::Unauthorized(error) => Problem::unauthorized(error.to_string()),
            QueueError::UnknownRoom(room) => Problem::not_found(
                "unknown-room",
                "Unknown waiting room",
                format!("no waiting room named {room:?} is served here"),
            ),
            QueueError::NoTierOne(room) => Problem::not_found(
                "no-tier-one",
                "No tier-1 numbers here",
                format!("waiting room {room:?} has no edge tier; join the queue directly"),
            ),
            QueueError::UnknownEvent(event) => Problem::not_found(
                "unknown-event",
                "Unknown event",
                format!("no event named {event:?} is served here"),
            ),
            QueueError::NotInQueue => Problem::not_found(
                "not-in-queue",
                "Not in the queue",
                "you are not in this queue (never joined, left, or dropped after missing heartbeats); join again",
            ),
            QueueError::RateLimited { scope, retry_after } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("too many joins from this {scope}; retry after {retry_after} s"),
            )
            .with_retry_after(*retry_after),
            QueueError::PassRequired { room, reason } => Problem::new(
                StatusCode::FORBIDDEN,
                "pass-required",
                "Take a number first",
                format!(
                    "this queue admits through the waiting room: take a number (POST the numbersUrl, which sets the urr-vwr-token cookie), wait until it is served, then join with the cookie ({reason})"
                ),
            )
            .with("numbersUrl", format!("/v1/rooms/{room}/numbers"))
            .with("waitingPage", format!("/waiting/{room}")),
            QueueError::PassNotServed {
                room,
                number,
                serving,
                retry_after,
            } => Problem::new(
                StatusCode::FORBIDDEN,
                "pass-not-served",
                "Your number is not served yet",
                format!("number {number} is not served yet (serving {serving}); join once it is"),
            )
            .with("number", *number)
            .with("serving", *serving)
            .with("waitingPage", format!("/waiting/{room}"))
            .with_retry_after(*retry_after),
            QueueError::NumbersLimited { retry_after } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("too many numbers taken from this address; keep the one you have (its cookie) or retry after {retry_after} s"),
            )
            .with_retry_after(*retry_after),
            QueueError::QueueNotOpen {
                opens_at,
                retry_after,
            } => Problem::new(
                StatusCode::FORBIDDEN,
                "queue-not-open",
                "The queue is not open yet",
                format!("the queue opens at {opens_at} (Unix seconds)"),
            )
            .with_retry_after(*retry_after),
            QueueError::Blocked => Problem::new(
                StatusCode::FORBIDDEN,
                "blocked",
                "Not admitted",
                "this account or network may not join this sale; contact the organiser if you think this is a mistake",
            ),
            QueueError::SaleClosed => Problem::new(
                StatusCode::FORBIDDEN,
                "sale-closed",
                "The sale is closed",
                "this sale is not taking anyone in line; those already in line keep their place",
            )
            .with("admission", "closed"),
            QueueError::Draining => Problem::new(
                StatusCode::FORBIDDEN,
                "room-draining",
                "The room is closing",
                "the waiting room takes no one new while those already admitted finish",
            )
            .with("admission", "draining"),
            QueueError::InviteInvalid(reason) => Problem::new(
                StatusCode::FORBIDDEN,
                "invite-invalid",
                "The invite code is not valid",
                format!("the invite code was refused: {reason}"),
            )
            .with("reason", *reason),
            QueueError::InviteUsed => Problem::new(
                StatusCode::CONFLICT,
                "invite-used",
                "The invite code was already used",
                "each invite code lets one buyer in; this one was redeemed by another account",
            ),
            QueueError::NotInDraw => Problem::not_found(
                "not-in-draw",
                "Not in the draw",
                "you were not in line when the pre-queue was drawn at open, or the draw has not happened yet",
            ),
            QueueError::NoSuchAsset(file) => Problem::not_found(
                "not-found",
                "Not found",
                format!("no waiting-page asset named {file:?}"),
            ),
            QueueError::BadRequest(detail) => Problem::bad_request(detail.clone()),
            QueueError::Signing(error) => {
                tracing::error!(%error, "token signing failed");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `type` slug of `error`'s answer.
    async fn slug(error: QueueError) -> String {
        let body = axum::body::to_bytes(error.into_response().into_body(), 1 << 16)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
        json["type"]
            .as_str()
            .and_then(|t| t.strip_prefix(urr_service_common::problem::PROBLEM_BASE))
            .expect("a problem type")
            .to_owned()
    }

    #[tokio::test]
    async fn every_error_answers_with_a_documented_type() {
        let errors = [
            QueueError::Unauthorized(UserTokenError::Missing),
            QueueError::UnknownRoom("r".into()),
            QueueError::UnknownEvent("e".into()),
            QueueError::NoTierOne("r".into()),
            QueueError::NotInQueue,
            QueueError::RateLimited {
                scope: "user",
                retry_after: 1,
            },
            QueueError::PassRequired {
                room: "r".into(),
                reason: "none",
            },
            QueueError::PassNotServed {
                room: "r".into(),
                number: 2,
                serving: 1,
                retry_after: 1,
            },
            QueueError::NumbersLimited { retry_after: 1 },
            QueueError::QueueNotOpen {
                opens_at: 1,
                retry_after: 1,
            },
            QueueError::Blocked,
            QueueError::SaleClosed,
            QueueError::Draining,
            QueueError::InviteInvalid("expired"),
            QueueError::InviteUsed,
            QueueError::NotInDraw,
            QueueError::NoSuchAsset("x".into()),
            QueueError::BadRequest("b".into()),
            QueueError::Signing("s".into()),
        ];
        let documented: Vec<&str> = PROBLEMS
            .iter()
            .chain(urr_service_common::openapi::FRAMEWORK_PROBLEMS)
            .map(|p| p.slug)
            .collect();
        for error in errors {
            let name = format!("{error:?}");
            let slug = slug(error).await;
            assert!(
                documented.contains(&slug.as_str()),
                "{name} answers with the undocumented type {slug}"
            );
        }
    }
}
