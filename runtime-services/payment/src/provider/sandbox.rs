//! A sandbox gateway that behaves like a real one: every call is accepted
//! at once and its outcome is delivered later by a signed webhook, after a
//! configurable latency; a configurable share of authorizations fails, and
//! the method `pm_sandbox_decline` is always declined. It can also deliver
//! a webhook twice (`duplicate_rate`), as real gateways do on retries.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::{
    PartAccepted, Provider, ProviderError, ProviderPayment, RefundPart, WebhookParseError,
};
use crate::webhook::{self, WebhookEvent, WebhookKind};

pub const NAME: &str = "sandbox";
/// Always declined.
pub const DECLINE_METHOD: &str = "pm_sandbox_decline";
/// Always approved (unless the failure rate strikes).
pub const OK_METHOD: &str = "pm_sandbox_ok";

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub webhook_url: String,
    pub secret: Vec<u8>,
    pub latency: Duration,
    /// Share of authorizations that fail, 0.0 to 1.0.
    pub failure_rate: f64,
    /// Share of webhooks delivered twice.
    pub duplicate_rate: f64,
}

#[derive(Clone)]
pub struct Sandbox {
    settings: Arc<SandboxSettings>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("webhook_url", &self.settings.webhook_url)
            .field("latency", &self.settings.latency)
            .field("failure_rate", &self.settings.failure_rate)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn new(settings: SandboxSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Delivers `event` after the latency, retrying a few times like a
    /// gateway does when the receiver is down.
    fn deliver_later(&self, event: WebhookEvent) {
        let sandbox = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(sandbox.settings.latency).await;
            let twice = rand::rng().random_bool(sandbox.settings.duplicate_rate.clamp(0.0, 1.0));
            for _ in 0..if twice { 2 } else { 1 } {
                sandbox.deliver(&event).await;
            }
        });
    }

    async fn deliver(&self, event: &WebhookEvent) {
        let body = serde_json::to_vec(event).unwrap_or_default();
        for attempt in 0..5u32 {
            let now = urr_service_common::unix_now();
            let signature = webhook::sign(&self.settings.secret, now, &body);
            let sent = self
                .http
                .post(&self.settings.webhook_url)
                .header(webhook::SIGNATURE_HEADER, signature)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) if response.status().is_client_error() => {
                    tracing::warn!(status = %response.status(), event = %event.id, "sandbox webhook refused");
                    return;
                }
                Ok(_) | Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                }
            }
        }
        tracing::warn!(event = %event.id, "sandbox webhook undeliverable; the reconciler will re-drive");
    }

    fn event(
        &self,
        kind: WebhookKind,
        payment: &ProviderPayment,
        reference: &str,
        reason: Option<String>,
    ) -> WebhookEvent {
        WebhookEvent {
            id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
            kind,
            payment_id: payment.payment_id.clone(),
            provider_ref: reference.to_owned(),
            amount_minor: payment.amount_minor,
            currency: payment.currency.clone(),
            reason,
            occurred_at: urr_service_common::unix_now(),
            refund_id: None,
        }
    }
}

#[async_trait::async_trait]
impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authorize(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<String, ProviderError> {
        if !method.starts_with("pm_sandbox_") {
            // The method is not echoed: it is the buyer's input.
            return Err(ProviderError::Refused(format!(
                "unknown payment method; the sandbox takes {OK_METHOD} or {DECLINE_METHOD}"
            )));
        }
        let reference = payment
            .provider_ref
            .clone()
            .unwrap_or_else(|| format!("sbx_{}", uuid::Uuid::new_v4().simple()));
        let declined = method == DECLINE_METHOD
            || rand::rng().random_bool(self.settings.failure_rate.clamp(0.0, 1.0));
        let event = if declined {
            self.event(
                WebhookKind::PaymentFailed,
                payment,
                &reference,
                Some("card declined".into()),
            )
        } else {
            self.event(WebhookKind::PaymentAuthorized, payment, &reference, None)
        };
        self.deliver_later(event);
        Ok(reference)
    }

    async fn capture(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        let reference = payment
            .provider_ref
            .clone()
            .ok_or_else(|| ProviderError::Refused("capture before authorization".into()))?;
        self.deliver_later(self.event(WebhookKind::PaymentCaptured, payment, &reference, None));
        Ok(())
    }

    async fn refund(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        let reference = payment
            .provider_ref
            .clone()
            .ok_or_else(|| ProviderError::Refused("refund of an unknown charge".into()))?;
        self.deliver_later(self.event(WebhookKind::PaymentRefunded, payment, &reference, None));
        Ok(())
    }

    /// As a gateway does: accepted now, confirmed by a refund webhook of
    /// the part's amount.
    async fn refund_part(
        &self,
        payment: &ProviderPayment,
        part: &RefundPart,
    ) -> Result<PartAccepted, ProviderError> {
        let reference = payment
            .provider_ref
            .clone()
            .ok_or_else(|| ProviderError::Refused("refund of an unknown charge".into()))?;
        let refunded = ProviderPayment {
            amount_minor: part.amount_minor,
            ..payment.clone()
        };
        let mut event = self.event(WebhookKind::PaymentRefunded, &refunded, &reference, None);
        event.refund_id = Some(part.id.clone());
        self.deliver_later(event);
        Ok(PartAccepted {
            reference: Some(format!("re_sandbox_{}", part.id)),
            settled: false,
        })
    }

    async fn void(&self, payment: &ProviderPayment) -> Result<(), ProviderError> {
        let reference = payment
            .provider_ref
            .as_deref()
            .ok_or_else(|| ProviderError::Refused("void of an unknown authorization".into()))?;
        // A void moves no money, so the sandbox, like gateways, sends no verdict.
        tracing::info!(payment = %payment.payment_id, reference, "sandbox authorization voided");
        Ok(())
    }

    fn parse_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookParseError> {
        webhook::verify(&self.settings.secret, signature, body, now)?;
        serde_json::from_slice(body).map_err(|e| WebhookParseError::Body(e.to_string()))
    }
}
