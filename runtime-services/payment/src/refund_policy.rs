//! Who may refund a captured payment, and until when: the Event's
//! `spec.refundPolicy`, given to the service as `URR_BUYER_REFUNDS_UNTIL`.
//!
//! A buyer refunds their own order (`POST /v1/payments/{id}/refund`) within
//! the window; the organiser refunds any order at any time
//! (`POST /internal/payments/{id}/refund` with the service token and a
//! reason). Either way the reason is the `payment_transitions` row that
//! records the refund as owed.

use std::str::FromStr;

use chrono::{DateTime, Utc};

/// Whether buyers may refund their own orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuyerRefunds {
    /// At any time (no `refundPolicy`, or one without a deadline).
    #[default]
    Always,
    /// Until this instant, included.
    Until(DateTime<Utc>),
    /// Never: only the organiser refunds.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "URR_BUYER_REFUNDS_UNTIL must be Unix seconds, an RFC 3339 time, `never` or `always`, not {0:?}"
)]
pub struct BadBuyerRefunds(String);

impl FromStr for BuyerRefunds {
    type Err = BadBuyerRefunds;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "" | "always" => Ok(BuyerRefunds::Always),
            "never" => Ok(BuyerRefunds::Never),
            // What the operator writes: Unix seconds (see urr-crds' RefundPolicy).
            seconds if seconds.bytes().all(|b| b.is_ascii_digit()) => seconds
                .parse::<i64>()
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .map(BuyerRefunds::Until)
                .ok_or_else(|| BadBuyerRefunds(value.to_owned())),
            time => DateTime::parse_from_rfc3339(time)
                .map(|t| BuyerRefunds::Until(t.to_utc()))
                .map_err(|_| BadBuyerRefunds(value.to_owned())),
        }
    }
}

/// Why a buyer's refund was refused by the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefundClosed {
    #[error("buyers could refund until {0}; ask the organiser")]
    WindowClosed(DateTime<Utc>),
    #[error("refunds of this sale are made by the organiser only")]
    OrganiserOnly,
}

impl BuyerRefunds {
    /// May a buyer refund at `now`?
    pub fn check(self, now: DateTime<Utc>) -> Result<(), RefundClosed> {
        match self {
            BuyerRefunds::Always => Ok(()),
            BuyerRefunds::Until(until) if now <= until => Ok(()),
            BuyerRefunds::Until(until) => Err(RefundClosed::WindowClosed(until)),
            BuyerRefunds::Never => Err(RefundClosed::OrganiserOnly),
        }
    }

    /// The `payment_transitions` reason of a buyer's refund.
    pub fn buyer_reason(self) -> String {
        match self {
            BuyerRefunds::Until(until) => {
                format!("refund requested by the buyer (within the window, until {until})")
            }
            _ => "refund requested by the buyer".to_owned(),
        }
    }
}

/// The longest reason the organiser may give (it is stored and shown).
pub const MAX_REASON_CHARS: usize = 200;

/// The organiser's reason, checked: 1 to [`MAX_REASON_CHARS`] characters,
/// no control characters (it ends up in logs and the audit trail).
pub fn organiser_reason(reason: &str) -> Option<String> {
    let reason = reason.trim();
    let fine = !reason.is_empty()
        && reason.chars().count() <= MAX_REASON_CHARS
        && !reason.chars().any(char::is_control);
    fine.then(|| format!("refund by the organiser: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(time).expect("time").to_utc()
    }

    #[test]
    fn the_setting_reads_a_deadline_never_or_always() {
        assert_eq!("".parse(), Ok(BuyerRefunds::Always));
        assert_eq!("always".parse(), Ok(BuyerRefunds::Always));
        assert_eq!("never".parse(), Ok(BuyerRefunds::Never));
        assert_eq!(
            "2026-12-24T11:00:00Z".parse(),
            Ok(BuyerRefunds::Until(at("2026-12-24T11:00:00Z")))
        );
        assert_eq!(
            "2026-12-24T20:00:00+09:00".parse(),
            Ok(BuyerRefunds::Until(at("2026-12-24T11:00:00Z")))
        );
        assert_eq!(
            "1798110000".parse(),
            Ok(BuyerRefunds::Until(at("2026-12-24T11:00:00Z")))
        );
        assert!("tomorrow".parse::<BuyerRefunds>().is_err());
        assert!("99999999999999999999".parse::<BuyerRefunds>().is_err());
    }

    #[test]
    fn the_window_includes_its_last_second() {
        let until = at("2026-12-24T11:00:00Z");
        let policy = BuyerRefunds::Until(until);
        assert_eq!(policy.check(until), Ok(()));
        assert_eq!(
            policy.check(until + chrono::Duration::seconds(1)),
            Err(RefundClosed::WindowClosed(until))
        );
        assert_eq!(BuyerRefunds::Always.check(until), Ok(()));
        assert_eq!(
            BuyerRefunds::Never.check(until),
            Err(RefundClosed::OrganiserOnly)
        );
    }

    #[test]
    fn an_organiser_reason_is_short_printable_text() {
        assert_eq!(
            organiser_reason("  show canceled  ").as_deref(),
            Some("refund by the organiser: show canceled")
        );
        assert_eq!(organiser_reason("   "), None);
        assert_eq!(organiser_reason("line\nbreak"), None);
        assert_eq!(organiser_reason(&"x".repeat(MAX_REASON_CHARS + 1)), None);
    }
}
