//! `spec.refundPolicy`: until when a buyer may refund their own order.
//!
//! A ticket drop's terms usually end self-service refunds some time before
//! the show (48 hours is common in Korea and Japan); after that only the
//! organiser refunds (`POST /internal/payments/{id}/refund` on the payment
//! service's internal port, with a reason). Without a policy a buyer may
//! refund a captured order at any time, as before the field existed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const MSG_REFUNDS_AFTER_OPEN: &str =
    "refundPolicy.buyerRefundsUntil must be after salesOpenAt (nobody could ever refund)";

/// Who may refund, and until when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundPolicy {
    /// The last moment (RFC 3339) a buyer may refund their own order, e.g.
    /// 48 hours before the show. After it the payment service answers 409
    /// `refund-window-closed`; the organiser can still refund. Unset: no
    /// deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_refunds_until: Option<Time>,
    /// `false`: buyers cannot refund at all, only the organiser can.
    #[serde(default = "buyer_refunds_default")]
    pub buyer_refunds: bool,
}

fn buyer_refunds_default() -> bool {
    true
}

impl RefundPolicy {
    /// The payment service's `URR_BUYER_REFUNDS_UNTIL`: the deadline in Unix
    /// seconds, `never` when buyers may not refund, absent when there is no
    /// deadline. Seconds rather than RFC 3339: a YAML 1.1 reader (kubectl's
    /// and Python's) takes an unquoted `2026-12-25T11:00:00Z` in a
    /// ConfigMap's data for a timestamp, not a string, and the ConfigMap
    /// fails validation; a number-like string is always quoted.
    pub fn service_setting(&self) -> Option<String> {
        if !self.buyer_refunds {
            return Some("never".to_owned());
        }
        self.buyer_refunds_until
            .as_ref()
            .map(|until| until.0.as_second().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_setting_says_never_a_deadline_or_nothing() {
        let until: Time =
            serde_json::from_value(serde_json::json!("2026-12-24T11:00:00Z")).expect("time");
        let policy = |buyer_refunds, until: Option<Time>| RefundPolicy {
            buyer_refunds_until: until,
            buyer_refunds,
        };
        assert_eq!(
            policy(true, Some(until.clone()))
                .service_setting()
                .as_deref(),
            Some("1798110000")
        );
        assert_eq!(
            policy(false, Some(until)).service_setting().as_deref(),
            Some("never")
        );
        assert_eq!(policy(true, None).service_setting(), None);
    }
}
