//! `spec.services.payment.provider`: who moves the money for an Event.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::SecretKeyRef;

pub const MSG_STRIPE_KEYS: &str =
    "the Stripe provider needs secretKeyRef (sk_… or rk_…) and webhookSecretRef (whsec_…)";
/// Toss signs no card-payment webhook (the payment service checks each one
/// against Toss's API), so its secret key is all it needs.
pub const MSG_TOSS_KEYS: &str = "the Toss provider needs secretKeyRef (test_sk_… or live_sk_…)";
/// An API base: an http(s) URL without spaces.
pub const API_BASE_PATTERN: &str = r"^https?://[^\s]+$";
pub const MSG_PROVIDER_ONLY_PAYMENT: &str = "provider is a setting of the payment service only";

/// The payment provider and its keys. Without it the payment service runs
/// the sandbox, which answers like a gateway but moves no money (local runs).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.name != 'Stripe' || (has(self.secretKeyRef) && has(self.webhookSecretRef))").message(MSG_STRIPE_KEYS))]
#[x_kube(validation = Rule::new("self.name != 'Toss' || has(self.secretKeyRef)").message(MSG_TOSS_KEYS))]
pub struct PaymentProvider {
    pub name: PaymentProviderName,
    /// Stripe: the secret API key (`sk_live_…`, `sk_test_…` or a restricted
    /// `rk_…`); Toss: the secret key (`live_sk_…`, `test_sk_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// Stripe: the webhook endpoint's signing secret (`whsec_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_ref: Option<SecretKeyRef>,
    /// Stripe, while it rolls the endpoint's secret: the one being replaced
    /// (deliveries signed with either are accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_webhook_secret_ref: Option<SecretKeyRef>,
    /// The provider's API: `https://api.stripe.com` or
    /// `https://api.tosspayments.com` when unset (a mock's address in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 512), regex(pattern = API_BASE_PATTERN))]
    pub api_base: Option<String>,
}

/// The providers the payment service implements.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PaymentProviderName {
    Sandbox,
    Stripe,
    /// TossPayments' payment widget (<https://docs.tosspayments.com>).
    Toss,
}

impl PaymentProviderName {
    /// The payment service's `URR_PAYMENT_PROVIDER`.
    pub fn service_name(self) -> &'static str {
        match self {
            PaymentProviderName::Sandbox => "sandbox",
            PaymentProviderName::Stripe => "stripe",
            PaymentProviderName::Toss => "toss",
        }
    }

    /// The payment service's variable for this provider's API base.
    pub fn api_base_env(self) -> Option<&'static str> {
        match self {
            PaymentProviderName::Sandbox => None,
            PaymentProviderName::Stripe => Some("URR_STRIPE_API_BASE"),
            PaymentProviderName::Toss => Some("URR_TOSS_API_BASE"),
        }
    }
}
