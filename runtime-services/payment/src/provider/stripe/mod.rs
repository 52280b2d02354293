//! Stripe, over its REST API (<https://docs.stripe.com/api>), tested
//! against stripe-mock, Stripe's own mock server, which `scripts/stack`
//! builds and starts.
//!
//! One URR payment is one PaymentIntent with `capture_method=manual`:
//! authorize = create and confirm it with the buyer's payment method
//! (`pm_…`), capture = `POST /v1/payment_intents/{id}/capture`, refund =
//! `POST /v1/refunds`. Every request carries an `Idempotency-Key` derived
//! from the URR payment id and the step, so a retry after a timeout can
//! never charge twice (<https://docs.stripe.com/api/idempotent_requests>).
//! Outcomes arrive as webhooks ([`events`]) signed as [`signature`] checks.
//!
//! Errors (<https://docs.stripe.com/error-handling>): a card error (402) or
//! an invalid request (400, 404) is a refusal; authentication (401, 403),
//! rate limits (429), idempotency conflicts (409), 5xx and timeouts are
//! "unavailable": the payment stays where it is and is retried, never
//! taken for declined.

pub mod amount;
pub mod events;
pub mod signature;

use std::time::Duration;

use serde::Deserialize;

use super::{
    PartAccepted, Provider, ProviderError, ProviderPayment, ProviderVerdict, RefundPart,
    WebhookParseError,
};
use crate::webhook::WebhookEvent;

pub const NAME: &str = "stripe";
/// Stripe's API; stripe-mock listens on `http://127.0.0.1:12111` by default.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

#[derive(Clone)]
pub struct StripeSettings {
    pub api_base: String,
    /// `sk_live_…` / `sk_test_…` (or a restricted `rk_…` key).
    pub secret_key: String,
    /// The endpoint's signing secrets (`whsec_…`): the current one, and the
    /// previous one while Stripe rolls it.
    pub webhook_secrets: Vec<Vec<u8>>,
    pub tolerance_seconds: u64,
    pub timeout: Duration,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("api_base", &self.api_base)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Stripe {
    settings: StripeSettings,
    http: reqwest::Client,
}

/// The fields URR reads of Stripe's answers.
#[derive(Debug, Deserialize)]
struct Answer {
    id: String,
    /// A Refund's: `succeeded`, `pending`, `requires_action`, `failed`, `canceled`.
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Classifies a failed answer (status and body) as Stripe documents it.
fn classify(status: reqwest::StatusCode, body: &[u8]) -> ProviderError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .map(|e| {
            let code = e.error.decline_code.or(e.error.code).unwrap_or_default();
            format!(
                "{} {code}: {}",
                e.error.kind,
                e.error.message.unwrap_or_default()
            )
        })
        .unwrap_or_else(|_| "unreadable error body".to_owned());
    let detail = format!("stripe {}: {detail}", status.as_u16());
    match status.as_u16() {
        400 | 402 | 404 => ProviderError::Refused(detail),
        _ => ProviderError::Unavailable(detail),
    }
}

impl Stripe {
    pub fn new(settings: StripeSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .unwrap_or_default();
        Self { settings, http }
    }

    /// Sends a request built on `{api_base}{path}` with the key, and reads
    /// the answer as `T`; every failure is classified as Stripe documents it.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        build: impl FnOnce(&reqwest::Client, String) -> reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let url = format!("{}{path}", self.settings.api_base.trim_end_matches('/'));
        let response = build(&self.http, url)
            .bearer_auth(&self.settings.secret_key)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("stripe unreachable: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("stripe answer cut short: {e}")))?;
        if !status.is_success() {
            return Err(classify(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Unavailable(format!("unreadable stripe answer: {e}")))
    }

    /// `POST {path}` with form `params` and an idempotency key; the object's id.
    async fn post(
        &self,
        path: &str,
        idempotency_key: &str,
        params: &[(&str, String)],
    ) -> Result<String, ProviderError> {
        self.post_answer(path, idempotency_key, params)
            .await
            .map(|answer| answer.id)
    }

    /// [`Self::post`], the answer's id and status.
    async fn post_answer(
        &self,
        path: &str,
        idempotency_key: &str,
        params: &[(&str, String)],
    ) -> Result<Answer, ProviderError> {
        self.call::<Answer>(path, |http, url| {
            http.post(url)
                .header("Idempotency-Key", idempotency_key)
                .form(params)
        })
        .await
    }

    /// `GET {path}`: the object, as JSON.
    async fn get(&self, path: &str) -> Result<serde_json::Value, ProviderError> {
        self.call(path, |http, url| http.get(url)).await
    }

    fn reference(payment: &ProviderPayment, step: &str) -> Result<String, ProviderError> {
        payment
            .provider_ref
            .clone()
            .ok_or_else(|| ProviderError::Refused(format!("{step} before authorization")))
    }
}

#[async_trait::async_trait]
impl Provider for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    fn signature_header(&self) -> &'static str {
        signature::HEADER
    }

    async fn authorize(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<String, ProviderError> {
        if !method.starts_with("pm_") {
            // The method is not echoed: it is the buyer's input.
            return Err(ProviderError::Refused(
                "a Stripe payment method id (pm_…) is required".into(),
            ));
        }
        let amount = amount::to_stripe(payment.amount_minor, &payment.currency)
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        let currency = amount::stripe_currency(&payment.currency)
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        let params = [
            ("amount", amount.to_string()),
            ("currency", currency),
            ("payment_method", method.to_owned()),
            ("payment_method_types[]", "card".to_owned()),
            ("capture_method", "manual".to_owned()),
            ("confirm", "true".to_owned()),
            ("metadata[urr_payment_id]", payment.payment_id.clone()),
        ];
        // One intent per payment: a retried authorize finds the first.
        self.post(
            "/v1/payment_intents",
            &format!("urr-{}-authorize", payment.payment_id),
            &params,
        )
        .await
    }

    async fn capture(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        let intent = Self::reference(payment, "capture")?;
        self.post(
            &format!("/v1/payment_intents/{intent}/capture"),
            &format!("urr-{}-capture", payment.payment_id),
            &[],
        )
        .await
        .map(|_| ())
    }

    async fn refund(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        let intent = Self::reference(payment, "refund")?;
        let amount = amount::to_stripe(payment.amount_minor, &payment.currency)
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        let params = [
            ("payment_intent", intent),
            ("amount", amount.to_string()),
            ("metadata[urr_payment_id]", payment.payment_id.clone()),
        ];
        self.post(
            "/v1/refunds",
            &format!("urr-{}-refund", payment.payment_id),
            &params,
        )
        .await
        .map(|_| ())
    }

    /// `POST /v1/refunds` with the part's `amount`, one per part (its id in
    /// the idempotency key and the metadata). Stripe answers the Refund:
    /// `succeeded` is settled; `pending` and `requires_action` settle by the
    /// `refund.updated` webhook; `failed` and `canceled` gave nothing back.
    /// <https://docs.stripe.com/api/refunds/create>,
    /// <https://docs.stripe.com/api/refunds/object#refund_object-status>
    async fn refund_part(
        &self,
        payment: &ProviderPayment,
        part: &RefundPart,
    ) -> Result<PartAccepted, ProviderError> {
        let intent = Self::reference(payment, "refund")?;
        let amount = amount::to_stripe(part.amount_minor, &payment.currency)
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        let params = [
            ("payment_intent", intent),
            ("amount", amount.to_string()),
            ("metadata[urr_payment_id]", payment.payment_id.clone()),
            ("metadata[urr_refund_id]", part.id.clone()),
        ];
        let answer = self
            .post_answer(
                "/v1/refunds",
                &format!("urr-{}-refund-{}", payment.payment_id, part.id),
                &params,
            )
            .await?;
        match answer.status.as_deref() {
            Some("failed" | "canceled") => Err(ProviderError::Refused(format!(
                "stripe refund {} {}",
                answer.id,
                answer.status.as_deref().unwrap_or_default()
            ))),
            status => Ok(PartAccepted {
                settled: status == Some("succeeded"),
                reference: Some(answer.id),
            }),
        }
    }

    async fn void(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        let intent = Self::reference(payment, "void")?;
        self.post(
            &format!("/v1/payment_intents/{intent}/cancel"),
            &format!("urr-{}-void", payment.payment_id),
            &[("cancellation_reason", "requested_by_customer".to_owned())],
        )
        .await
        .map(|_| ())
    }

    async fn status(
        &self,
        payment: &ProviderPayment,
    ) -> Result<Option<ProviderVerdict>, ProviderError> {
        let Some(intent) = &payment.provider_ref else {
            return Ok(None);
        };
        let object = self.get(&format!("/v1/payment_intents/{intent}")).await?;
        Ok(events::verdict_of_intent(&object))
    }

    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookParseError> {
        signature::verify(
            &self.settings.webhook_secrets,
            signature_header,
            body,
            now,
            self.settings.tolerance_seconds,
        )
        .map_err(|e| {
            tracing::info!(reason = %e, "Stripe webhook refused");
            WebhookParseError::Signature(e.into())
        })?;
        match events::map(body).map_err(|e| WebhookParseError::Body(e.to_string()))? {
            events::Mapped::Event(event) => Ok(event),
            events::Mapped::Ignored(why) => Err(WebhookParseError::Ignored(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_errors_are_refusals_only_when_stripe_says_the_request_cannot_succeed() {
        let card = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#;
        let refused = |status: u16, body: &[u8]| {
            matches!(
                classify(reqwest::StatusCode::from_u16(status).expect("status"), body),
                ProviderError::Refused(_)
            )
        };
        assert!(refused(402, card));
        assert!(refused(
            400,
            br#"{"error":{"type":"invalid_request_error"}}"#
        ));
        assert!(refused(404, b"{}"));
        for retried in [401, 403, 409, 429, 500, 502, 503] {
            assert!(
                !refused(retried, b"{}"),
                "{retried} must be retried, not refused"
            );
        }
        let ProviderError::Refused(detail) = classify(reqwest::StatusCode::PAYMENT_REQUIRED, card)
        else {
            panic!("refused");
        };
        assert!(detail.contains("insufficient_funds"), "{detail}");
    }
}
