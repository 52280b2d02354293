//! Stripe webhook events as URR's [`WebhookEvent`]s
//! (<https://docs.stripe.com/api/events/types>).
//!
//! A payment is a PaymentIntent created with `capture_method=manual`, so its
//! life at Stripe is the life URR records:
//!
//! | Stripe event | object | URR |
//! |---|---|---|
//! | `payment_intent.amount_capturable_updated` | PaymentIntent, `requires_capture` | authorized |
//! | `payment_intent.payment_failed` | PaymentIntent | failed (`last_payment_error.message`) |
//! | `payment_intent.succeeded` | PaymentIntent | captured |
//! | `refund.created`, `refund.updated` with `status: succeeded` | Refund | refunded |
//!
//! Every object URR created carries `metadata.urr_payment_id`; an event
//! without it (another integration on the same account) or of any other
//! type is acknowledged and ignored, so Stripe does not retry it for days.

use serde::Deserialize;

use super::amount;
use crate::webhook::{WebhookEvent, WebhookKind};

/// The metadata key of URR's payment id on every Stripe object URR creates.
pub const PAYMENT_ID_METADATA: &str = "urr_payment_id";

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Object,
}

/// The fields URR reads of a PaymentIntent or a Refund.
#[derive(Debug, Deserialize)]
struct Object {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    status: Option<String>,
    /// A Refund's PaymentIntent.
    #[serde(default)]
    payment_intent: Option<String>,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
    #[serde(default)]
    last_payment_error: Option<PaymentError>,
}

#[derive(Debug, Deserialize)]
struct PaymentError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// What a verified delivery means for URR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    Event(WebhookEvent),
    /// Acknowledged, nothing to apply (and why).
    Ignored(String),
}

/// Reads a verified delivery's body.
pub fn map(body: &[u8]) -> Result<Mapped, serde_json::Error> {
    let event: Event = serde_json::from_slice(body)?;
    let object = event.data.object;
    let kind = match (event.kind.as_str(), object.status.as_deref()) {
        ("payment_intent.amount_capturable_updated", _) => WebhookKind::PaymentAuthorized,
        ("payment_intent.payment_failed", _) => WebhookKind::PaymentFailed,
        ("payment_intent.succeeded", _) => WebhookKind::PaymentCaptured,
        ("refund.created" | "refund.updated", Some("succeeded")) => WebhookKind::PaymentRefunded,
        (other, status) => {
            return Ok(Mapped::Ignored(format!(
                "{other} (status {})",
                status.unwrap_or("-")
            )));
        }
    };
    let Some(payment_id) = object.metadata.get(PAYMENT_ID_METADATA) else {
        return Ok(Mapped::Ignored(format!(
            "{} of {} has no {PAYMENT_ID_METADATA}",
            event.kind, object.id
        )));
    };
    let provider_ref = match kind {
        WebhookKind::PaymentRefunded => object.payment_intent.clone().unwrap_or(object.id.clone()),
        _ => object.id.clone(),
    };
    let currency = object.currency.to_ascii_uppercase();
    let reason = object
        .last_payment_error
        .map(|error| match (error.code, error.message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (code, message) => code.or(message).unwrap_or_else(|| "declined".to_owned()),
        });
    Ok(Mapped::Event(WebhookEvent {
        id: event.id,
        kind,
        payment_id: payment_id.clone(),
        provider_ref,
        amount_minor: amount::from_stripe(object.amount, &currency),
        currency,
        reason,
        occurred_at: event.created,
        // Set on the Refunds of parts (`refund_part`).
        refund_id: match kind {
            WebhookKind::PaymentRefunded => object.metadata.get("urr_refund_id").cloned(),
            _ => None,
        },
    }))
}

/// The verdict a PaymentIntent's `status` stands for
/// (<https://docs.stripe.com/payments/paymentintents/lifecycle>): what the
/// reconciler applies when the webhook that said so was lost.
/// `requires_capture` is authorized, `succeeded` captured, `canceled` failed,
/// `requires_payment_method` after an attempt (a `last_payment_error`)
/// failed; `processing`, `requires_action` and the rest are still undecided.
pub fn verdict_of_intent(object: &serde_json::Value) -> Option<crate::provider::ProviderVerdict> {
    let currency = object["currency"].as_str()?.to_ascii_uppercase();
    let amount_minor = amount::from_stripe(object["amount"].as_i64()?, &currency);
    let error = &object["last_payment_error"];
    let (kind, reason) = match object["status"].as_str()? {
        "requires_capture" => (WebhookKind::PaymentAuthorized, None),
        "succeeded" => (WebhookKind::PaymentCaptured, None),
        "canceled" => (
            WebhookKind::PaymentFailed,
            Some(format!(
                "canceled at Stripe ({})",
                object["cancellation_reason"]
                    .as_str()
                    .unwrap_or("no reason given")
            )),
        ),
        "requires_payment_method" if error.is_object() => (
            WebhookKind::PaymentFailed,
            Some(error["message"].as_str().unwrap_or("declined").to_owned()),
        ),
        _ => return None,
    };
    Some(crate::provider::ProviderVerdict {
        kind,
        amount_minor,
        reason,
        provider_ref: object["id"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn delivery(kind: &str, object: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "evt_1", "object": "event", "type": kind, "created": 1_700_000_000,
            "api_version": "2024-06-20", "livemode": false,
            "data": {"object": object}
        }))
        .expect("json")
    }

    fn intent(status: &str) -> serde_json::Value {
        json!({"id": "pi_1", "object": "payment_intent", "amount": 55_000, "currency": "krw",
               "status": status, "metadata": {"urr_payment_id": "6f1c"}})
    }

    #[test]
    fn a_payment_intents_life_maps_to_urrs() {
        for (kind, status, expected) in [
            (
                "payment_intent.amount_capturable_updated",
                "requires_capture",
                WebhookKind::PaymentAuthorized,
            ),
            (
                "payment_intent.payment_failed",
                "requires_payment_method",
                WebhookKind::PaymentFailed,
            ),
            (
                "payment_intent.succeeded",
                "succeeded",
                WebhookKind::PaymentCaptured,
            ),
        ] {
            let Ok(Mapped::Event(event)) = map(&delivery(kind, intent(status))) else {
                panic!("{kind} was not mapped");
            };
            assert_eq!(event.kind, expected);
            assert_eq!(
                (
                    event.payment_id.as_str(),
                    event.provider_ref.as_str(),
                    event.amount_minor,
                    event.currency.as_str()
                ),
                ("6f1c", "pi_1", 55_000, "KRW")
            );
        }
        let refund = json!({"id": "re_1", "object": "refund", "amount": 55_000, "currency": "krw",
                            "status": "succeeded", "payment_intent": "pi_1",
                            "metadata": {"urr_payment_id": "6f1c"}});
        let Ok(Mapped::Event(event)) = map(&delivery("refund.updated", refund)) else {
            panic!("refund not mapped");
        };
        assert_eq!(event.kind, WebhookKind::PaymentRefunded);
        assert_eq!(event.provider_ref, "pi_1");
    }

    #[test]
    fn an_intents_status_is_the_verdict_its_lost_webhook_carried() {
        let verdict = |status: &str, error: Option<serde_json::Value>| {
            let mut object = intent(status);
            if let Some(error) = error {
                object["last_payment_error"] = error;
            }
            verdict_of_intent(&object).map(|v| (v.kind, v.amount_minor))
        };
        assert_eq!(
            verdict("requires_capture", None),
            Some((WebhookKind::PaymentAuthorized, 55_000))
        );
        assert_eq!(
            verdict("succeeded", None),
            Some((WebhookKind::PaymentCaptured, 55_000))
        );
        assert_eq!(
            verdict("canceled", None),
            Some((WebhookKind::PaymentFailed, 55_000))
        );
        assert_eq!(
            verdict(
                "requires_payment_method",
                Some(json!({"message": "declined"}))
            ),
            Some((WebhookKind::PaymentFailed, 55_000))
        );
        for undecided in [
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
            "processing",
        ] {
            assert_eq!(verdict(undecided, None), None, "{undecided}");
        }
    }

    #[test]
    fn a_decline_carries_its_reason() {
        let mut object = intent("requires_payment_method");
        object["last_payment_error"] =
            json!({"code": "card_declined", "message": "Your card was declined."});
        let Ok(Mapped::Event(event)) = map(&delivery("payment_intent.payment_failed", object))
        else {
            panic!("not mapped");
        };
        assert_eq!(
            event.reason.as_deref(),
            Some("card_declined: Your card was declined.")
        );
    }

    #[test]
    fn other_events_and_foreign_objects_are_ignored_and_garbage_is_an_error() {
        assert!(matches!(
            map(&delivery(
                "customer.created",
                json!({"id": "cus_1", "amount": 0, "currency": "usd"})
            )),
            Ok(Mapped::Ignored(_))
        ));
        let mut foreign = intent("succeeded");
        foreign["metadata"] = json!({});
        assert!(matches!(
            map(&delivery("payment_intent.succeeded", foreign)),
            Ok(Mapped::Ignored(_))
        ));
        let pending = json!({"id": "re_1", "amount": 1, "currency": "usd", "status": "pending",
                             "metadata": {"urr_payment_id": "x"}});
        assert!(matches!(
            map(&delivery("refund.created", pending)),
            Ok(Mapped::Ignored(_))
        ));
        assert!(map(b"{not json").is_err());
    }
}
