//! The ticket service's one error type; every variant maps to a problem response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use urr_service_common::problem::Problem;
use urr_service_common::tokens::entry::EntryTokenError;
use urr_service_common::tokens::user::UserTokenError;

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] UserTokenError),
    #[error("entry token: {0}")]
    EntryToken(#[from] EntryTokenError),
    #[error("missing entry token")]
    MissingEntryToken,
    #[error("unknown event {0}")]
    UnknownEvent(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unknown seats {0:?}")]
    UnknownSeats(Vec<String>),
    #[error("unknown section {0}")]
    UnknownSection(String),
    #[error("seats taken: {0:?}")]
    SeatsTaken(Vec<String>),
    #[error("sold out: {remaining} left")]
    SoldOut { remaining: i64 },
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    #[error("sales are not open: {0}")]
    SalesClosed(String),
    #[error("unknown hold")]
    UnknownHold,
    #[error("unknown ticket")]
    UnknownTicket,
    #[error("the hold expired or was superseded")]
    HoldExpired,
    #[error("the hold is {0}")]
    HoldNotActive(&'static str),
    #[error("the hold was confirmed by another payment")]
    ConfirmedElsewhere,
    #[error("amount mismatch: {0}")]
    AmountMismatch(String),
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    #[error("a request with this idempotency key is in progress")]
    IdempotencyInFlight,
    #[error("{count} ticket(s) of this reservation now belong to someone else")]
    TicketsTransferred { count: usize },
    #[error("ticket {0} is already void")]
    TicketVoid(String),
    #[error("entry token revoked")]
    EntryTokenRevoked,
    #[error("{0}")]
    Conflict(String),
}

impl TicketError {
    fn problem(&self) -> Problem {
        match self {
            TicketError::Database(error) => {
                tracing::error!(%error, "database unavailable");
                Problem::unavailable("the ticket database is unreachable; retry shortly")
            }
            TicketError::Redis(error) => {
                tracing::error!(%error, "redis unavailable");
                Problem::unavailable("the seat lock store is unreachable; retry shortly")
            }
            TicketError::Unauthorized(UserTokenError::KeysUnavailable(error)) => {
                tracing::error!(%error, "identity provider keys unavailable");
                Problem::unavailable("cannot verify sign-ins right now; retry shortly")
            }
            TicketError::Unauthorized(error) => Problem::unauthorized(error.to_string()),
            TicketError::EntryToken(error) => Problem::new(
                StatusCode::FORBIDDEN,
                "entry-token",
                "Entry token refused",
                format!("{error}; wait in the queue for a new one"),
            ),
            TicketError::MissingEntryToken => Problem::new(
                StatusCode::FORBIDDEN,
                "entry-token",
                "Entry token required",
                "send the urr-entry-token the queue gave you at admission in the urr-entry-token header",
            ),
            TicketError::UnknownEvent(event) => Problem::not_found(
                "unknown-event",
                "Unknown event",
                format!("no event named {event:?} is sold here"),
            ),
            TicketError::BadRequest(detail) => Problem::bad_request(detail.clone()),
            TicketError::UnknownSeats(seats) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-seat",
                "Unknown seat",
                format!("these seats are not in the seat map: {}", seats.join(", ")),
            ),
            TicketError::UnknownSection(section) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-section",
                "Unknown section",
                format!("no section {section:?} sells by quantity here"),
            ),
            TicketError::SeatsTaken(seats) => Problem::new(
                StatusCode::CONFLICT,
                "seat-taken",
                "Seat taken",
                format!(
                    "already held or sold: {}; pick other seats",
                    seats.join(", ")
                ),
            ),
            TicketError::SoldOut { remaining } => Problem::new(
                StatusCode::CONFLICT,
                "sold-out",
                "Not enough places left",
                format!("only {remaining} places are left in this section"),
            ),
            TicketError::LimitExceeded(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "limit-exceeded",
                "Limit exceeded",
                detail.clone(),
            ),
            TicketError::SalesClosed(detail) => Problem::new(
                StatusCode::FORBIDDEN,
                "sales-closed",
                "Sales are not open",
                detail.clone(),
            ),
            TicketError::UnknownHold => Problem::not_found(
                "unknown-hold",
                "Unknown hold",
                "no such hold (or it is not yours)",
            ),
            TicketError::UnknownTicket => Problem::not_found(
                "unknown-ticket",
                "Unknown ticket",
                "no such ticket (or it is not yours)",
            ),
            TicketError::HoldExpired => Problem::new(
                StatusCode::CONFLICT,
                "hold-expired",
                "Hold expired",
                "the hold expired or its seats were taken over; it can no longer be confirmed",
            ),
            TicketError::HoldNotActive(status) => Problem::new(
                StatusCode::CONFLICT,
                "hold-not-active",
                "Hold not active",
                format!("the hold is {status}"),
            ),
            TicketError::ConfirmedElsewhere => Problem::new(
                StatusCode::CONFLICT,
                "hold-confirmed-elsewhere",
                "Hold confirmed by another payment",
                "this hold was already confirmed by a different payment",
            ),
            TicketError::AmountMismatch(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount-mismatch",
                "Amount mismatch",
                detail.clone(),
            ),
            TicketError::IdempotencyMismatch => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                "this Idempotency-Key was used for a different request; use a new key",
            ),
            TicketError::IdempotencyInFlight => Problem::new(
                StatusCode::CONFLICT,
                "idempotency-in-flight",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .with_retry_after(1),
            TicketError::TicketVoid(ticket) => Problem::new(
                StatusCode::CONFLICT,
                "ticket-void",
                "Ticket already void",
                format!("ticket {ticket} was already refunded or voided"),
            ),
            TicketError::TicketsTransferred { count } => Problem::new(
                StatusCode::CONFLICT,
                "refund-tickets-transferred",
                "Tickets transferred",
                format!(
                    "{count} ticket(s) of this refund were transferred to another user and \
                     stay theirs; refund the tickets you still hold by naming them in ticketIds"
                ),
            ),
            TicketError::EntryTokenRevoked => Problem::new(
                StatusCode::FORBIDDEN,
                "entry-token",
                "Entry token refused",
                "this entry token was given back when you left the queue; join the queue again",
            ),
            TicketError::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail.clone())
            }
        }
    }

    pub fn status(&self) -> StatusCode {
        self.problem().status
    }

    /// Whether a retry could succeed (then an idempotency key is not spent on it).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TicketError::Database(_)
                | TicketError::Redis(_)
                | TicketError::IdempotencyInFlight
                | TicketError::Unauthorized(UserTokenError::KeysUnavailable(_))
        )
    }
}

impl IntoResponse for TicketError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_answers_with_a_documented_type() {
        let errors = [
            TicketError::Database(sqlx::Error::PoolTimedOut),
            TicketError::Unauthorized(UserTokenError::Missing),
            TicketError::EntryToken(EntryTokenError::Expired),
            TicketError::MissingEntryToken,
            TicketError::UnknownEvent("e".into()),
            TicketError::BadRequest("b".into()),
            TicketError::UnknownSeats(vec!["a:1:1".into()]),
            TicketError::UnknownSection("s".into()),
            TicketError::SeatsTaken(vec!["a:1:1".into()]),
            TicketError::SoldOut { remaining: 0 },
            TicketError::LimitExceeded("l".into()),
            TicketError::SalesClosed("c".into()),
            TicketError::UnknownHold,
            TicketError::UnknownTicket,
            TicketError::HoldExpired,
            TicketError::HoldNotActive("released"),
            TicketError::ConfirmedElsewhere,
            TicketError::AmountMismatch("m".into()),
            TicketError::IdempotencyMismatch,
            TicketError::IdempotencyInFlight,
            TicketError::TicketsTransferred { count: 1 },
            TicketError::TicketVoid("t".into()),
            TicketError::EntryTokenRevoked,
            TicketError::Conflict("c".into()),
        ];
        let documented: Vec<&str> = crate::views::PROBLEMS
            .iter()
            .chain(urr_service_common::openapi::FRAMEWORK_PROBLEMS)
            .map(|p| p.slug)
            .collect();
        for error in errors {
            let problem = error.problem();
            assert!(
                documented.contains(&problem.slug),
                "{error:?} answers with the undocumented type {}",
                problem.slug
            );
        }
    }
}
