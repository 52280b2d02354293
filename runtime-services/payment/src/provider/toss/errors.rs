//! Toss's error codes and what each means for the money
//! (<https://docs.tosspayments.com/reference/error-codes>: the error object
//! `{"code", "message"}`, the codes of the confirm, query and cancel APIs,
//! and the full list of the core API).
//!
//! The one rule: a code is taken as "no money moved, and this request can
//! never succeed" ([`Class::Declined`]) only when Toss documents it so (a
//! card or account refusal, a request that is wrong for this payment).
//! Everything else is retried and the payment stays where the reconciler
//! asks Toss about it ([`Class::Retry`], [`Class::Misconfigured`]), and a
//! code saying the work was already done ([`Class::AlreadyDone`]) is
//! answered by fetching the payment: a code Toss adds later, or a typo in
//! this table, costs a retry, never a buyer's money.

use std::fmt;

/// What a Toss error code means for the payment it was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Refused, nothing moved: the payment fails (a confirm) or the refund
    /// is refused (a cancel) with Toss's message.
    Declined,
    /// The confirm or cancel already happened (a retry after a lost
    /// answer): the payment is fetched and its state applied.
    AlreadyDone,
    /// Temporary at Toss or the card company: asked again later.
    Retry,
    /// The merchant's keys or contract, not the buyer: retried (and logged
    /// as an error) until an operator fixes it; nothing moved.
    Misconfigured,
}

/// Every documented code of the confirm, query and cancel APIs (and the
/// core API's common ones), with its class.
pub const CODES: &[(&str, Class)] = &[
    // Confirm (결제 승인), 400.
    ("ALREADY_PROCESSED_PAYMENT", Class::AlreadyDone),
    ("PROVIDER_ERROR", Class::Retry),
    ("EXCEED_MAX_CARD_INSTALLMENT_PLAN", Class::Declined),
    ("INVALID_REQUEST", Class::Declined),
    ("NOT_ALLOWED_POINT_USE", Class::Declined),
    ("INVALID_API_KEY", Class::Misconfigured),
    ("INVALID_REJECT_CARD", Class::Declined),
    ("BELOW_MINIMUM_AMOUNT", Class::Declined),
    ("INVALID_CARD_EXPIRATION", Class::Declined),
    ("INVALID_STOPPED_CARD", Class::Declined),
    ("EXCEED_MAX_DAILY_PAYMENT_COUNT", Class::Declined),
    (
        "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
        Class::Declined,
    ),
    ("INVALID_CARD_INSTALLMENT_PLAN", Class::Declined),
    ("NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN", Class::Declined),
    ("EXCEED_MAX_PAYMENT_AMOUNT", Class::Declined),
    ("INVALID_AUTHORIZE_AUTH", Class::Misconfigured),
    ("INVALID_CARD_LOST_OR_STOLEN", Class::Declined),
    ("RESTRICTED_TRANSFER_ACCOUNT", Class::Declined),
    ("INVALID_CARD_NUMBER", Class::Declined),
    ("INVALID_ACCOUNT_INFO_RE_REGISTER", Class::Declined),
    ("INVALID_UNREGISTERED_SUBMALL", Class::Misconfigured),
    ("INVALID_PASSWORD", Class::Declined),
    ("INCORRECT_BASIC_AUTH_FORMAT", Class::Misconfigured),
    // The request's own fields, wrong for this payment (the full list's 400s).
    ("INVALID_PAYMENT_KEY", Class::Declined),
    ("INVALID_ORDER_ID", Class::Declined),
    ("INVALID_CURRENCY", Class::Declined),
    ("NOT_SUPPORTED_USD", Class::Declined),
    ("NOT_SUPPORTED_METHOD", Class::Declined),
    ("NOT_SUPPORTED_CARD_TYPE", Class::Declined),
    ("BELOW_ZERO_AMOUNT", Class::Declined),
    ("REQUIRED_AMOUNT", Class::Declined),
    ("INVALID_REQUIRED_PARAM", Class::Declined),
    ("EXCEED_MAX_AMOUNT", Class::Declined),
    ("INVALID_CARD", Class::Declined),
    ("INVALID_CARD_PASSWORD", Class::Declined),
    ("INVALID_CARD_IDENTITY", Class::Declined),
    ("INVALID_EASY_PAY", Class::Declined),
    ("USER_ACCOUNT_ON_HOLD", Class::Declined),
    ("PAY_PROCESS_ABORTED", Class::Declined),
    ("PAY_PROCESS_CANCELED", Class::Declined),
    ("INVALID_CLIENT_KEY", Class::Misconfigured),
    ("NOT_FOUND_MERCHANT_INTEGRATION", Class::Misconfigured),
    // This order id was approved or canceled before: this very payment
    // (URR's payment id is the order id), so it is fetched, not failed.
    ("DUPLICATED_ORDER_ID", Class::AlreadyDone),
    ("ALREADY_COMPLETED_PAYMENT", Class::AlreadyDone),
    // Confirm, 401 and 403.
    ("UNAUTHORIZED_KEY", Class::Misconfigured),
    ("REJECT_ACCOUNT_PAYMENT", Class::Declined),
    ("REJECT_CARD_PAYMENT", Class::Declined),
    ("REJECT_CARD_COMPANY", Class::Declined),
    // A paymentKey and orderId that do not belong together (a tampered
    // redirect), or a payment of another merchant: this request never moves money.
    ("FORBIDDEN_REQUEST", Class::Declined),
    ("REJECT_TOSSPAY_INVALID_ACCOUNT", Class::Declined),
    ("EXCEED_MAX_AUTH_COUNT", Class::Declined),
    ("EXCEED_MAX_ONE_DAY_AMOUNT", Class::Declined),
    // Outside the bank's hours: the widget session lapses meanwhile, so
    // the buyer pays again later rather than waiting on this one.
    ("NOT_AVAILABLE_BANK", Class::Declined),
    ("FDS_ERROR", Class::Declined),
    // Confirm, 404: the key is not Toss's, or the buyer's widget session
    // (10 minutes after authentication) lapsed: the buyer pays again.
    ("NOT_FOUND_TERMINAL_ID", Class::Misconfigured),
    ("NOT_FOUND_PAYMENT", Class::Declined),
    ("NOT_FOUND_PAYMENT_SESSION", Class::Declined),
    ("NOT_REGISTERED_BUSINESS", Class::Misconfigured),
    ("NOT_FOUND_MERCHANT", Class::Misconfigured),
    // Confirm, 500: the outcome is not known; Toss says to retry.
    ("CARD_PROCESSING_ERROR", Class::Retry),
    ("FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", Class::Retry),
    ("FAILED_INTERNAL_SYSTEM_PROCESSING", Class::Retry),
    ("UNKNOWN_PAYMENT_ERROR", Class::Retry),
    // Cancel (결제 취소), 400.
    ("ALREADY_CANCELED_PAYMENT", Class::AlreadyDone),
    ("ALREADY_REFUND_PAYMENT", Class::AlreadyDone),
    ("ALREADY_REFUNDING_PAYMENT", Class::Retry),
    ("INVALID_REFUND_ACCOUNT_INFO", Class::Declined),
    ("EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT", Class::Declined),
    ("INVALID_REFUND_ACCOUNT_NUMBER", Class::Declined),
    ("INVALID_REFUND_AMOUNT", Class::Declined),
    ("INVALID_BANK", Class::Declined),
    ("NOT_MATCHES_REFUNDABLE_AMOUNT", Class::Declined),
    ("REFUND_REJECTED", Class::Declined),
    ("FORBIDDEN_BANK_REFUND_REQUEST", Class::Declined),
    // Cancel, 403.
    ("NOT_CANCELABLE_AMOUNT", Class::Declined),
    ("FORBIDDEN_CONSECUTIVE_REQUEST", Class::Retry),
    ("NOT_CANCELABLE_PAYMENT", Class::Declined),
    ("EXCEED_MAX_REFUND_DUE", Class::Declined),
    // A daily or monthly refund limit of the merchant: tomorrow it passes.
    ("EXCEED_MAX_REFUND_AMOUNT", Class::Retry),
    (
        "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT",
        Class::Declined,
    ),
    ("NOT_ALLOWED_PARTIAL_REFUND", Class::Declined),
    ("NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER", Class::Declined),
    ("NOT_SUPPORTED_REFUND", Class::Declined),
    ("NOT_ALLOWED_REFUND_BANK", Class::Declined),
    // Cancel, 500.
    ("FAILED_REFUND_PROCESS", Class::Retry),
    ("FAILED_METHOD_HANDLING_CANCEL", Class::Retry),
    ("FAILED_PARTIAL_REFUND", Class::Retry),
    ("FAILED_CLOSED_ACCOUNT_REFUND", Class::Declined),
    ("COMMON_ERROR", Class::Retry),
    // Idempotency (https://docs.tosspayments.com/reference/using-api/idempotency-key):
    // the first request with this key is still being processed.
    ("IDEMPOTENT_REQUEST_PROCESSING", Class::Retry),
    ("ALREADY_PROCESSING_REQUEST", Class::Retry),
    ("INVALID_IDEMPOTENCY_KEY", Class::Misconfigured),
    // The core API's common ones.
    ("FAILED_DB_PROCESSING", Class::Retry),
    ("FAILED_METHOD_HANDLING", Class::Retry),
    ("UNKNOWN_ERROR", Class::Retry),
    ("NOT_FOUND", Class::Declined),
    ("NOT_SUPPORTED_PROCESS", Class::Declined),
    ("MAINTAINED_METHOD", Class::Retry),
    ("API_VERSION_UPDATE_NEEDED", Class::Misconfigured),
];

/// The class of `code`; a code not in the table is retried (never taken
/// for a refusal: that could fail a payment whose money moved).
pub fn class_of(code: &str) -> Class {
    CODES
        .iter()
        .find(|(known, _)| *known == code)
        .map_or(Class::Retry, |(_, class)| *class)
}

/// A Toss error answer, as Toss sends it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct TossError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl fmt::Display for TossError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        for (i, (code, _)) in CODES.iter().enumerate() {
            assert!(
                CODES[i + 1..].iter().all(|(other, _)| other != code),
                "{code} is listed twice"
            );
            assert!(
                code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn the_codes_map_as_toss_documents_them() {
        for (code, class) in [
            ("ALREADY_PROCESSED_PAYMENT", Class::AlreadyDone),
            ("DUPLICATED_ORDER_ID", Class::AlreadyDone),
            ("ALREADY_CANCELED_PAYMENT", Class::AlreadyDone),
            ("PROVIDER_ERROR", Class::Retry),
            ("FAILED_INTERNAL_SYSTEM_PROCESSING", Class::Retry),
            ("FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", Class::Retry),
            ("IDEMPOTENT_REQUEST_PROCESSING", Class::Retry),
            ("EXCEED_MAX_CARD_INSTALLMENT_PLAN", Class::Declined),
            ("INVALID_REQUEST", Class::Declined),
            ("NOT_FOUND_PAYMENT", Class::Declined),
            ("NOT_FOUND_PAYMENT_SESSION", Class::Declined),
            ("REJECT_CARD_PAYMENT", Class::Declined),
            ("FORBIDDEN_REQUEST", Class::Declined),
            ("NOT_CANCELABLE_PAYMENT", Class::Declined),
            ("UNAUTHORIZED_KEY", Class::Misconfigured),
            ("INVALID_API_KEY", Class::Misconfigured),
        ] {
            assert_eq!(class_of(code), class, "{code}");
        }
    }

    #[test]
    fn an_unknown_code_is_retried_never_declined() {
        assert_eq!(class_of("SOMETHING_TOSS_ADDS_NEXT_YEAR"), Class::Retry);
        assert_eq!(class_of(""), Class::Retry);
        assert_eq!(class_of("reject_card_payment"), Class::Retry);
    }
}
