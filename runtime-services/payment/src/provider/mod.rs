//! Payment providers. The core talks to a [`Provider`] only: a second
//! gateway is one more implementation registered under its name in
//! [`Providers`], with no change to the payment flow.
//!
//! Providers are asynchronous like real gateways: a call is *accepted* and the
//! outcome arrives later as a signed webhook at `/v1/webhooks/{provider}`.

pub mod money;
pub mod sandbox;
pub mod select;
pub mod stripe;
pub mod toss;

use std::collections::HashMap;
use std::sync::Arc;

use crate::webhook::{SignatureError, WebhookEvent};

/// What a provider needs to know about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// The provider's reference, once it gave one.
    pub provider_ref: Option<String>,
}

/// A provider's answer to [`Provider::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderVerdict {
    pub kind: crate::webhook::WebhookKind,
    /// ISO minor units, as the provider holds them (checked against the payment).
    pub amount_minor: i64,
    pub reason: Option<String>,
    /// The provider's reference, when the answer carries it: a provider
    /// that can be asked by URR's payment id (Toss, by `orderId`) finds a
    /// payment whose authorization answer was lost before its reference
    /// was recorded.
    pub provider_ref: Option<String>,
}

/// A provider's answer to [`Provider::authorize_answer`] or
/// [`Provider::refund_answer`]: its reference, and the verdict when the
/// provider gives it in the answer itself (Toss's confirm captures at once
/// and says so) rather than later by webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub reference: Option<String>,
    pub verdict: Option<ProviderVerdict>,
}

/// Part of a captured payment to give back: the money of some of its
/// tickets. The id is URR's refund id, the provider's idempotency key for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPart {
    pub id: String,
    pub amount_minor: i64,
}

/// A provider's answer to [`Provider::refund_part`]: its refund reference,
/// and whether the money is already back (`settled`) or the provider's
/// refund webhook (of `amount_minor` = the part's) will say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartAccepted {
    pub reference: Option<String>,
    pub settled: bool,
}

/// Why a payment method is not one a provider takes. The method is the
/// buyer's input, so the message never echoes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MethodRefused(pub &'static str);

/// The method check of providers whose methods are `pm_…` tokens (the
/// sandbox, Stripe): a token, never card data. Anything else is refused
/// before it is stored, logged or sent anywhere.
pub fn check_token_method(method: &str) -> Result<(), MethodRefused> {
    let token = method.len() <= 100
        && method.strip_prefix("pm_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    let mut digits = 0;
    let card_like = method.chars().any(|c| {
        digits = if c.is_ascii_digit() { digits + 1 } else { 0 };
        digits >= 12
    });
    if token && !card_like {
        Ok(())
    } else {
        Err(MethodRefused(
            "paymentMethod must be a provider token such as pm_sandbox_ok (never card numbers)",
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or answered an error: retry later.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request outright.
    #[error("provider refused: {0}")]
    Refused(String),
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// The header its webhooks carry their signature in.
    fn signature_header(&self) -> &'static str {
        crate::webhook::SIGNATURE_HEADER
    }
    /// Whether `method` is a payment method of this provider (checked
    /// before the method is stored or sent).
    fn check_method(&self, method: &str) -> Result<(), MethodRefused> {
        check_token_method(method)
    }
    /// Starts an authorization with the buyer's payment method; returns the
    /// provider's reference. The outcome comes by webhook.
    async fn authorize(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<String, ProviderError>;
    /// [`Self::authorize`], with the verdict when the provider answers it at
    /// once; what the payment flow calls.
    async fn authorize_answer(
        &self,
        payment: &ProviderPayment,
        method: &str,
    ) -> Result<Accepted, ProviderError> {
        let reference = self.authorize(payment, method).await?;
        Ok(Accepted {
            reference: Some(reference),
            verdict: None,
        })
    }
    /// Captures an authorized payment; the outcome comes by webhook.
    async fn capture(&self, payment: &ProviderPayment) -> Result<(), ProviderError>;
    /// Refunds a captured payment; the outcome comes by webhook.
    async fn refund(&self, payment: &ProviderPayment) -> Result<(), ProviderError>;
    /// [`Self::refund`], with the verdict when the provider answers it at
    /// once; what the payment flow calls.
    async fn refund_answer(&self, payment: &ProviderPayment) -> Result<Accepted, ProviderError> {
        self.refund(payment).await?;
        Ok(Accepted {
            reference: None,
            verdict: None,
        })
    }
    /// Gives `part` of a captured payment back (a refund of some of its
    /// tickets), once per `part.id`: a retry with the same id moves no more
    /// money. A provider that cannot refuses, and the part is recorded as
    /// refused with the tickets kept.
    async fn refund_part(
        &self,
        _payment: &ProviderPayment,
        _part: &RefundPart,
    ) -> Result<PartAccepted, ProviderError> {
        Err(ProviderError::Refused(
            "this provider does not refund part of a payment".into(),
        ))
    }
    /// Voids an authorization that will never be captured (it reached a
    /// payment the buyer had canceled meanwhile), so the buyer's funds are
    /// not held until the authorization lapses. No webhook follows.
    async fn void(&self, payment: &ProviderPayment) -> Result<(), ProviderError>;
    /// What the provider says the payment is, for the reconciler when a
    /// verdict never came (a lost webhook): the verdict it would have sent,
    /// or `None` when it is still undecided or the provider cannot say.
    async fn status(
        &self,
        _payment: &ProviderPayment,
    ) -> Result<Option<ProviderVerdict>, ProviderError> {
        Ok(None)
    }
    /// Checks a webhook delivery and reads it.
    fn parse_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookParseError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookParseError {
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("body: {0}")]
    Body(String),
    /// Genuine, but nothing URR acts on (another event type, another
    /// integration's object): acknowledged so the provider stops retrying.
    #[error("ignored: {0}")]
    Ignored(String),
    /// An unsigned notice (Toss's card-payment webhooks carry no
    /// signature): it only names the payment. Its body is not trusted; the
    /// flow asks the provider ([`Provider::status`]) and applies that answer.
    #[error("notice about payment {payment_id}: ask the provider")]
    AskProvider { payment_id: String },
}

/// Providers by name.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn Provider>>,
}

impl Providers {
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.by_name.insert(provider.name(), provider);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }
}
