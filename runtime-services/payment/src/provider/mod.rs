//! Payment providers. The core talks to a [`Provider`] only: a second
//! gateway is one more implementation registered under its name in
//! [`Providers`], with no change to the payment flow.
//!
//! Providers are asynchronous like real gateways: a call is *accepted* and the
//! outcome arrives later as a signed webhook at `/v1/webhooks/{provider}`.

pub mod money;
pub mod sandbox;
pub mod stripe;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

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

pub trait Provider: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// The header its webhooks carry their signature in.
    fn signature_header(&self) -> &'static str {
        crate::webhook::SIGNATURE_HEADER
    }
    /// Starts an authorization with the buyer's payment method; returns the
    /// provider's reference. The outcome comes by webhook.
    fn authorize<'a>(
        &'a self,
        payment: &'a ProviderPayment,
        method: &'a str,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;
    /// Captures an authorized payment; the outcome comes by webhook.
    fn capture<'a>(
        &'a self,
        payment: &'a ProviderPayment,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
    /// Refunds a captured payment; the outcome comes by webhook.
    fn refund<'a>(
        &'a self,
        payment: &'a ProviderPayment,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
    /// Voids an authorization that will never be captured (it reached a
    /// payment the buyer had canceled meanwhile), so the buyer's funds are
    /// not held until the authorization lapses. No webhook follows.
    fn void<'a>(&'a self, payment: &'a ProviderPayment)
    -> BoxFuture<'a, Result<(), ProviderError>>;
    /// What the provider says the payment is, for the reconciler when a
    /// verdict never came (a lost webhook): the verdict it would have sent,
    /// or `None` when it is still undecided or the provider cannot say.
    fn status<'a>(
        &'a self,
        _payment: &'a ProviderPayment,
    ) -> BoxFuture<'a, Result<Option<ProviderVerdict>, ProviderError>> {
        Box::pin(async { Ok(None) })
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
