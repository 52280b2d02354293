//! Toss's Payment object as URR's verdicts, and its webhooks as notices.
//!
//! The Payment object (<https://docs.tosspayments.com/reference#payment-객체>)
//! is what confirm, cancel and both queries answer. Its `status`:
//!
//! | Toss `status` | meaning | URR verdict |
//! |---|---|---|
//! | `READY`, `IN_PROGRESS` | created / authenticated in the widget, not confirmed | none yet |
//! | `WAITING_FOR_DEPOSIT` | a virtual account issued, no money yet | none yet |
//! | `DONE` | confirmed: approved and captured at once | captured |
//! | `PARTIAL_CANCELED` | captured, part of it refunded | captured (URR refunds whole payments) |
//! | `CANCELED` with `approvedAt` | captured, then refunded in full | refunded |
//! | `CANCELED` without `approvedAt` | a deposit that never came, canceled | failed |
//! | `ABORTED` | the confirm failed (`failure.code`, `failure.message`) | failed |
//! | `EXPIRED` | never confirmed within the session (10 minutes after authentication) | failed |
//!
//! Any other status is an error, never a guess: the payment then waits for
//! the reconciler, which asks again.
//!
//! Webhooks (<https://docs.tosspayments.com/reference/using-api/webhook-events>,
//! <https://docs.tosspayments.com/en/webhooks>): `{"eventType", "createdAt",
//! "data"}` with the Payment object in `data` for `PAYMENT_STATUS_CHANGED`
//! and `CANCEL_STATUS_CHANGED`; `DEPOSIT_CALLBACK` (virtual accounts) names
//! the order at the top level. Toss does not sign the card-payment events,
//! and its guide says to check a delivery against the payment query API
//! before acting; so URR reads only the order id from a delivery (URR's
//! payment id) and applies what `GET /v1/payments/orders/{orderId}`
//! answers. A forged delivery can therefore make URR ask Toss, and
//! nothing more: the body's status, amount or key are never believed.

use serde::Deserialize;

use super::errors::TossError;
use crate::provider::money::{self, MoneyError};
use crate::provider::{ProviderVerdict, WebhookParseError};
use crate::webhook::WebhookKind;

/// The fields URR reads of a Payment object.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub payment_key: String,
    pub order_id: String,
    pub status: String,
    /// KRW when absent (Toss's domestic payments).
    #[serde(default)]
    pub currency: Option<String>,
    /// Major units: won, or dollars with cents.
    pub total_amount: serde_json::Number,
    #[serde(default)]
    pub balance_amount: Option<serde_json::Number>,
    #[serde(default)]
    pub approved_at: Option<String>,
    #[serde(default)]
    pub failure: Option<TossError>,
}

/// Why a Payment object cannot be read as a verdict.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("unreadable Toss payment: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown Toss payment status {0:?}")]
    UnknownStatus(String),
    #[error("Toss amount: {0}")]
    Amount(#[from] MoneyError),
}

impl Payment {
    pub fn parse(body: &[u8]) -> Result<Self, AnswerError> {
        Ok(serde_json::from_slice(body)?)
    }

    pub fn currency(&self) -> &str {
        self.currency.as_deref().unwrap_or("KRW")
    }

    /// `totalAmount` in ISO minor units.
    pub fn total_minor(&self) -> Result<i64, MoneyError> {
        money::from_major(&self.total_amount.to_string(), self.currency())
    }

    /// `balanceAmount` (what is left after cancels) in ISO minor units.
    pub fn balance_minor(&self) -> Result<i64, MoneyError> {
        match &self.balance_amount {
            Some(balance) => money::from_major(&balance.to_string(), self.currency()),
            None => self.total_minor(),
        }
    }

    /// The verdict this payment's state stands for, `None` while Toss has
    /// decided nothing; an unknown status is an error.
    pub fn verdict(&self) -> Result<Option<ProviderVerdict>, AnswerError> {
        let failure = || {
            self.failure
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_else(|| format!("{} at Toss", self.status.to_ascii_lowercase()))
        };
        let (kind, reason) = match self.status.as_str() {
            "READY" | "IN_PROGRESS" | "WAITING_FOR_DEPOSIT" => return Ok(None),
            "DONE" | "PARTIAL_CANCELED" => (WebhookKind::PaymentCaptured, None),
            "CANCELED" if self.approved_at.is_some() => (WebhookKind::PaymentRefunded, None),
            "CANCELED" => (
                WebhookKind::PaymentFailed,
                Some("canceled at Toss before it was approved".to_owned()),
            ),
            "ABORTED" | "EXPIRED" => (WebhookKind::PaymentFailed, Some(failure())),
            other => return Err(AnswerError::UnknownStatus(other.to_owned())),
        };
        Ok(Some(ProviderVerdict {
            kind,
            amount_minor: self.total_minor()?,
            reason,
            provider_ref: Some(self.payment_key.clone()),
        }))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    event_type: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    /// `DEPOSIT_CALLBACK` names its order at the top level.
    #[serde(default)]
    order_id: Option<String>,
}

/// Reads a webhook delivery: the URR payment it is about (to ask Toss),
/// ignored for events URR does not act on, an error for a body that is not
/// a Toss delivery.
pub fn notice(body: &[u8]) -> WebhookParseError {
    let delivery: Delivery = match serde_json::from_slice(body) {
        Ok(delivery) => delivery,
        Err(error) => return WebhookParseError::Body(format!("not a Toss webhook: {error}")),
    };
    let order = match delivery.event_type.as_str() {
        "PAYMENT_STATUS_CHANGED" | "CANCEL_STATUS_CHANGED" => delivery
            .data
            .as_ref()
            .and_then(|data| data["orderId"].as_str())
            .map(str::to_owned),
        "DEPOSIT_CALLBACK" => delivery.order_id,
        other => return WebhookParseError::Ignored(format!("Toss {other}")),
    };
    match order {
        Some(payment_id) if !payment_id.is_empty() => WebhookParseError::AskProvider { payment_id },
        _ => WebhookParseError::Body(format!("Toss {} without an orderId", delivery.event_type)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment(status: &str) -> serde_json::Value {
        json!({
            "mId": "tosspayments", "version": "2022-11-16",
            "paymentKey": "tgen_20261203101631QgTJ9", "orderId": "6f1c0c4e-0000-4000-8000-000000000001",
            "orderName": "Seats", "currency": "KRW", "method": "카드", "status": status,
            "requestedAt": "2026-12-03T10:16:31+09:00", "approvedAt": null,
            "totalAmount": 55000, "balanceAmount": 55000, "suppliedAmount": 50000, "vat": 5000,
            "failure": null, "cancels": null
        })
    }

    fn verdict(object: serde_json::Value) -> Option<(WebhookKind, i64)> {
        let payment = Payment::parse(&serde_json::to_vec(&object).expect("json")).expect("payment");
        payment
            .verdict()
            .expect("known status")
            .map(|v| (v.kind, v.amount_minor))
    }

    #[test]
    fn each_status_is_the_verdict_the_table_says() {
        for undecided in ["READY", "IN_PROGRESS", "WAITING_FOR_DEPOSIT"] {
            assert_eq!(verdict(payment(undecided)), None, "{undecided}");
        }
        let mut done = payment("DONE");
        done["approvedAt"] = json!("2026-12-03T10:16:58+09:00");
        assert_eq!(
            verdict(done.clone()),
            Some((WebhookKind::PaymentCaptured, 55_000))
        );
        let mut partial = done.clone();
        partial["status"] = json!("PARTIAL_CANCELED");
        partial["balanceAmount"] = json!(30000);
        assert_eq!(
            verdict(partial),
            Some((WebhookKind::PaymentCaptured, 55_000))
        );
        let mut canceled = done;
        canceled["status"] = json!("CANCELED");
        assert_eq!(
            verdict(canceled),
            Some((WebhookKind::PaymentRefunded, 55_000))
        );
        assert_eq!(
            verdict(payment("CANCELED")),
            Some((WebhookKind::PaymentFailed, 55_000))
        );
        for failed in ["ABORTED", "EXPIRED"] {
            assert_eq!(
                verdict(payment(failed)),
                Some((WebhookKind::PaymentFailed, 55_000)),
                "{failed}"
            );
        }
    }

    #[test]
    fn a_failure_carries_tosss_code_and_message() {
        let mut aborted = payment("ABORTED");
        aborted["failure"] = json!({"code": "REJECT_CARD_PAYMENT", "message": "한도초과 혹은 잔액부족으로 결제에 실패했습니다."});
        let payment =
            Payment::parse(&serde_json::to_vec(&aborted).expect("json")).expect("payment");
        let verdict = payment.verdict().expect("known").expect("decided");
        assert!(
            verdict
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("REJECT_CARD_PAYMENT: ")),
            "{verdict:?}"
        );
        assert_eq!(
            verdict.provider_ref.as_deref(),
            Some("tgen_20261203101631QgTJ9")
        );
    }

    #[test]
    fn an_unknown_status_or_amount_is_an_error_not_a_guess() {
        let unknown = Payment::parse(&serde_json::to_vec(&payment("HALF_DONE")).expect("json"))
            .expect("payment");
        assert!(matches!(
            unknown.verdict(),
            Err(AnswerError::UnknownStatus(s)) if s == "HALF_DONE"
        ));
        let mut fractional = payment("DONE");
        fractional["totalAmount"] = json!(55000.5);
        let fractional =
            Payment::parse(&serde_json::to_vec(&fractional).expect("json")).expect("payment");
        assert!(matches!(fractional.verdict(), Err(AnswerError::Amount(_))));
        assert!(Payment::parse(b"{\"status\":\"DONE\"}").is_err());
        assert!(Payment::parse(b"<html>").is_err());
    }

    #[test]
    fn usd_amounts_are_read_in_cents() {
        let mut usd = payment("DONE");
        usd["currency"] = json!("USD");
        usd["totalAmount"] = json!(12.34);
        let usd = Payment::parse(&serde_json::to_vec(&usd).expect("json")).expect("payment");
        assert_eq!(usd.total_minor(), Ok(1_234));
    }

    #[test]
    fn a_delivery_only_names_the_payment_to_ask_about() {
        let delivery = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-12-03T10:16:59.000000",
                              "data": payment("DONE")});
        assert_eq!(
            notice(&serde_json::to_vec(&delivery).expect("json")),
            WebhookParseError::AskProvider {
                payment_id: "6f1c0c4e-0000-4000-8000-000000000001".into()
            }
        );
        let deposit = json!({"createdAt": "2026-12-03T10:16:59.000000", "eventType": "DEPOSIT_CALLBACK",
                             "secret": "ps_x", "status": "DONE", "transactionKey": "t", "orderId": "order-1"});
        assert_eq!(
            notice(&serde_json::to_vec(&deposit).expect("json")),
            WebhookParseError::AskProvider {
                payment_id: "order-1".into()
            }
        );
        let payout = json!({"eventType": "PAYOUT_STATUS_CHANGED", "createdAt": "x", "data": {}});
        assert!(matches!(
            notice(&serde_json::to_vec(&payout).expect("json")),
            WebhookParseError::Ignored(_)
        ));
        let no_order = json!({"eventType": "PAYMENT_STATUS_CHANGED", "data": {"status": "DONE"}});
        assert!(matches!(
            notice(&serde_json::to_vec(&no_order).expect("json")),
            WebhookParseError::Body(_)
        ));
        for garbage in [
            &b"{not json"[..],
            &b""[..],
            &b"[]"[..],
            &b"{\"data\":{}}"[..],
        ] {
            assert!(
                matches!(notice(garbage), WebhookParseError::Body(_)),
                "{garbage:?}"
            );
        }
    }
}
