//! The payment service's one error type; every variant maps to a problem response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use urr_service_common::openapi::ProblemType;
use urr_service_common::problem::Problem;
use urr_service_common::tokens::user::UserTokenError;

use crate::state::{InvalidTransition, TransitionError};
use crate::webhook::SignatureError;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] UserTokenError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unknown payment")]
    UnknownPayment,
    #[error("unknown hold")]
    UnknownHold,
    #[error("the hold is {0}")]
    HoldNotActive(String),
    #[error("a payment for this hold is already under way")]
    PaymentExists,
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    #[error("the payment is authorized and being captured")]
    CancelTooLate,
    /// The ticket service would not void the reservation (tickets of it
    /// were transferred): the money stays, so no one holds both.
    #[error("the reservation cannot be refunded: {0}")]
    RefundRefused(String),
    /// Another refund of this payment is under way (one at a time).
    #[error("another refund of this payment is under way")]
    RefundInProgress,
    /// The Event's refund policy does not let the buyer refund now.
    #[error(transparent)]
    RefundClosed(#[from] crate::refund_policy::RefundClosed),
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    #[error("the ticket service is unavailable: {0}")]
    TicketUnavailable(String),
    #[error("the payment provider refused: {0}")]
    ProviderRefused(String),
    #[error("the payment provider is unavailable: {0}")]
    ProviderUnavailable(String),
    #[error("unknown provider {0}")]
    UnknownProvider(String),
    #[error("webhook signature")]
    WebhookSignature(#[source] SignatureError),
    #[error("amount mismatch: {0}")]
    AmountMismatch(String),
}

/// Every problem type the payment service's own errors answer with (the
/// frame's are [`urr_service_common::openapi::FRAMEWORK_PROBLEMS`]): the
/// OpenAPI document's `Problem.type` enum. A test maps every variant
/// through its answer and fails on a type missing here.
pub const PROBLEMS: &[ProblemType] = &[
    ProblemType::new("unknown-payment", 404, "no such payment (or not yours)"),
    ProblemType::new(
        "unknown-hold",
        404,
        "no such hold for this event (or not yours)",
    ),
    ProblemType::new(
        "hold-not-active",
        409,
        "the hold is no longer active: hold the seats again",
    ),
    ProblemType::new(
        "payment-exists",
        409,
        "the hold already has a live payment: use it, or cancel it first",
    ),
    ProblemType::new(
        "invalid-transition",
        409,
        "not possible in the payment's state",
    ),
    ProblemType::new(
        "cancel-too-late",
        409,
        "the provider authorized the payment: refund it once captured",
    ),
    ProblemType::new(
        "refund-refused",
        409,
        "the ticket service would not void the tickets (one was transferred or refunded): `detail` says why",
    ),
    ProblemType::new(
        "refund-in-progress",
        409,
        "another refund of the payment is under way: read it, retry once done",
    ),
    ProblemType::new(
        "refund-window-closed",
        409,
        "buyers may no longer (or never) refund this sale: ask the organiser",
    ),
    ProblemType::new(
        "idempotency-key-reused",
        422,
        "this `Idempotency-Key` was used for a different request: use a new key",
    ),
    ProblemType::new(
        "provider-refused",
        422,
        "the payment provider refused the payment method",
    ),
    ProblemType::new(
        "unknown-provider",
        404,
        "no payment provider of that name is configured",
    ),
    ProblemType::new(
        "webhook-stale",
        400,
        "the webhook's timestamp is outside the replay window",
    ),
    ProblemType::new(
        "webhook-malformed",
        400,
        "the webhook's signature header cannot be read",
    ),
    ProblemType::new(
        "amount-mismatch",
        422,
        "an amount that differs from the payment's",
    ),
];

impl From<TransitionError> for PaymentError {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::Invalid(invalid) => PaymentError::InvalidTransition(invalid),
            TransitionError::Unknown => PaymentError::UnknownPayment,
            TransitionError::Database(error) => PaymentError::Database(error),
        }
    }
}

impl IntoResponse for PaymentError {
    fn into_response(self) -> Response {
        let problem = match &self {
            PaymentError::Database(error) => {
                tracing::error!(%error, "database unavailable");
                Problem::unavailable("the payment database is unreachable; retry shortly")
            }
            PaymentError::Unauthorized(UserTokenError::KeysUnavailable(error)) => {
                tracing::error!(%error, "identity provider keys unavailable");
                Problem::unavailable("cannot verify sign-ins right now; retry shortly")
            }
            PaymentError::Unauthorized(error) => Problem::unauthorized(error.to_string()),
            PaymentError::BadRequest(detail) => Problem::bad_request(detail.clone()),
            PaymentError::UnknownPayment => Problem::not_found(
                "unknown-payment",
                "Unknown payment",
                "no such payment (or it is not yours)",
            ),
            PaymentError::UnknownHold => Problem::not_found(
                "unknown-hold",
                "Unknown hold",
                "no such hold for this event (or it is not yours)",
            ),
            PaymentError::HoldNotActive(status) => Problem::new(
                StatusCode::CONFLICT,
                "hold-not-active",
                "Hold not active",
                format!("the hold is {status}; hold the seats again"),
            ),
            PaymentError::PaymentExists => Problem::new(
                StatusCode::CONFLICT,
                "payment-exists",
                "Payment already under way",
                "this hold already has a live payment; use it, or cancel it first",
            ),
            PaymentError::InvalidTransition(invalid) => Problem::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "Not possible in this state",
                invalid.to_string(),
            ),
            PaymentError::CancelTooLate => Problem::new(
                StatusCode::CONFLICT,
                "cancel-too-late",
                "Too late to cancel",
                "the provider authorized this payment and is capturing it; refund it once it is captured",
            ),
            PaymentError::RefundRefused(detail) => Problem::new(
                StatusCode::CONFLICT,
                "refund-refused",
                "Refund refused",
                detail.clone(),
            ),
            PaymentError::RefundInProgress => Problem::new(
                StatusCode::CONFLICT,
                "refund-in-progress",
                "Refund in progress",
                "another refund of this payment is under way; read the payment and retry once it is done",
            ),
            PaymentError::RefundClosed(closed) => Problem::new(
                StatusCode::CONFLICT,
                "refund-window-closed",
                "Refund window closed",
                closed.to_string(),
            ),
            PaymentError::IdempotencyMismatch => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                "this Idempotency-Key was used for a different request; use a new key",
            ),
            PaymentError::TicketUnavailable(detail) => {
                // The buyer gets "retry shortly"; the operator needs the cause
                // (a URL that does not resolve, a refused token, a timeout).
                tracing::warn!(%detail, "the ticket service is unreachable");
                Problem::unavailable("the ticket service is unreachable; retry shortly")
            }
            PaymentError::ProviderRefused(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "provider-refused",
                "Payment refused",
                detail.clone(),
            ),
            PaymentError::ProviderUnavailable(detail) => {
                tracing::warn!(%detail, "the payment provider is unreachable");
                Problem::unavailable("the payment provider is unreachable; retry shortly")
            }
            PaymentError::UnknownProvider(name) => Problem::not_found(
                "unknown-provider",
                "Unknown provider",
                format!("no payment provider named {name:?} is configured"),
            ),
            // A header that cannot be read, or one whose timestamp is out of
            // the replay window (the ends of i64 included), is a malformed
            // request: 400 with its own type, so a provider's dashboard
            // tells a clock or encoding fault from a wrong secret (401).
            PaymentError::WebhookSignature(
                error @ (SignatureError::Malformed | SignatureError::Stale),
            ) => Problem::new(
                StatusCode::BAD_REQUEST,
                if *error == SignatureError::Stale {
                    "webhook-stale"
                } else {
                    "webhook-malformed"
                },
                "Webhook refused",
                format!("webhook {error}"),
            ),
            PaymentError::WebhookSignature(
                error @ (SignatureError::Missing | SignatureError::Mismatch),
            ) => Problem::unauthorized(format!("webhook {error}")),
            PaymentError::AmountMismatch(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount-mismatch",
                "Amount mismatch",
                detail.clone(),
            ),
        };
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_error_answers_with_a_documented_type() {
        let errors = [
            PaymentError::Database(sqlx::Error::PoolTimedOut),
            PaymentError::Unauthorized(UserTokenError::Missing),
            PaymentError::BadRequest("b".into()),
            PaymentError::UnknownPayment,
            PaymentError::UnknownHold,
            PaymentError::HoldNotActive("expired".into()),
            PaymentError::PaymentExists,
            PaymentError::InvalidTransition(InvalidTransition {
                from: "created".into(),
                to: "refunded",
            }),
            PaymentError::CancelTooLate,
            PaymentError::RefundRefused("r".into()),
            PaymentError::RefundInProgress,
            PaymentError::RefundClosed(crate::refund_policy::RefundClosed::OrganiserOnly),
            PaymentError::IdempotencyMismatch,
            PaymentError::TicketUnavailable("t".into()),
            PaymentError::ProviderRefused("p".into()),
            PaymentError::ProviderUnavailable("p".into()),
            PaymentError::UnknownProvider("p".into()),
            PaymentError::WebhookSignature(SignatureError::Missing),
            PaymentError::WebhookSignature(SignatureError::Malformed),
            PaymentError::WebhookSignature(SignatureError::Stale),
            PaymentError::WebhookSignature(SignatureError::Mismatch),
            PaymentError::AmountMismatch("a".into()),
        ];
        let documented: Vec<String> = PROBLEMS
            .iter()
            .chain(urr_service_common::openapi::FRAMEWORK_PROBLEMS)
            .map(ProblemType::uri)
            .collect();
        for error in errors {
            let name = format!("{error:?}");
            let body = axum::body::to_bytes(error.into_response().into_body(), 1 << 16)
                .await
                .expect("body");
            let json: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
            let uri = json["type"].as_str().unwrap_or_default().to_owned();
            assert!(
                documented.contains(&uri),
                "{name} answers with the undocumented type {uri}"
            );
        }
    }
}
