//! The provider this service runs with, chosen and checked from its
//! settings before any connection is made: a key of the wrong shape is
//! refused at start, naming the variable (never printing the key).

use std::sync::Arc;
use std::time::Duration;

use super::Providers;
use super::sandbox::{self, Sandbox, SandboxSettings};
use super::stripe::{self, Stripe, StripeSettings};
use super::toss::{self, Toss, TossSettings};
use crate::config::PaymentConfig;

/// Why the configured provider cannot start.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderConfigError {
    #[error("URR_SANDBOX_WEBHOOK_SECRET must be at least 16 characters")]
    SandboxSecret,
    #[error("URR_STRIPE_SECRET_KEY must be a Stripe secret key (sk_… or rk_…)")]
    StripeKey,
    #[error(
        "URR_STRIPE_WEBHOOK_SECRET (and the previous one) must be the endpoint's whsec_… secret"
    )]
    StripeWebhookSecret,
    #[error("URR_TOSS_SECRET_KEY must be a Toss secret key (test_sk_… or live_sk_…)")]
    TossKey,
    #[error("unknown URR_PAYMENT_PROVIDER {0:?} (available: sandbox, stripe, toss)")]
    Unknown(String),
}

/// The providers registry with the configured one, and its name.
pub fn configured(
    config: &PaymentConfig,
) -> Result<(Providers, &'static str), ProviderConfigError> {
    let (provider, name): (Arc<dyn super::Provider>, &'static str) = match config.provider.as_str()
    {
        sandbox::NAME => (Arc::new(sandbox_from(config)?), sandbox::NAME),
        stripe::NAME => (Arc::new(stripe_from(config)?), stripe::NAME),
        toss::NAME => (Arc::new(toss_from(config)?), toss::NAME),
        other => return Err(ProviderConfigError::Unknown(other.to_owned())),
    };
    Ok((Providers::default().with(provider), name))
}

fn sandbox_from(config: &PaymentConfig) -> Result<Sandbox, ProviderConfigError> {
    if config.sandbox_webhook_secret.len() < 16 {
        return Err(ProviderConfigError::SandboxSecret);
    }
    Ok(Sandbox::new(SandboxSettings {
        webhook_url: format!(
            "{}/v1/webhooks/sandbox",
            config.public_url.trim_end_matches('/')
        ),
        secret: config.sandbox_webhook_secret.as_bytes().to_vec(),
        latency: Duration::from_millis(config.sandbox_latency_ms),
        failure_rate: config.sandbox_failure_rate,
        duplicate_rate: config.sandbox_duplicate_rate,
    }))
}

fn stripe_from(config: &PaymentConfig) -> Result<Stripe, ProviderConfigError> {
    let key = &config.stripe_secret_key;
    if !key.starts_with("sk_") && !key.starts_with("rk_") {
        return Err(ProviderConfigError::StripeKey);
    }
    let webhook_secrets: Vec<Vec<u8>> = std::iter::once(&config.stripe_webhook_secret)
        .chain(config.stripe_previous_webhook_secret.as_ref())
        .map(|secret| secret.as_bytes().to_vec())
        .collect();
    if webhook_secrets.iter().any(|secret| secret.len() < 16) {
        return Err(ProviderConfigError::StripeWebhookSecret);
    }
    Ok(Stripe::new(StripeSettings {
        api_base: config.stripe_api_base.clone(),
        secret_key: key.clone(),
        webhook_secrets,
        tolerance_seconds: stripe::signature::DEFAULT_TOLERANCE_SECONDS,
        timeout: Duration::from_secs(10),
    }))
}

fn toss_from(config: &PaymentConfig) -> Result<Toss, ProviderConfigError> {
    let key = &config.toss_secret_key;
    if !key.starts_with("test_sk_") && !key.starts_with("live_sk_") {
        return Err(ProviderConfigError::TossKey);
    }
    Ok(Toss::new(TossSettings {
        api_base: config.toss_api_base.clone(),
        secret_key: key.clone(),
        // Toss asks for a generous read timeout on confirm: the card
        // company answers within it, and a timeout is an unknown outcome.
        timeout: Duration::from_secs(30),
    }))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(extra: &[&str]) -> PaymentConfig {
        let mut args = vec![
            "urr-payment",
            "--event",
            "e",
            "--database-url",
            "postgres://x",
            "--kafka-brokers",
            "127.0.0.1:9092",
            "--service-token",
            "t",
            "--ticket-url",
            "http://127.0.0.1:9090",
            "--user-jwt-secret",
            "0123456789abcdef0123456789abcdef",
        ];
        args.extend_from_slice(extra);
        PaymentConfig::try_parse_from(args).expect("config parses")
    }

    fn refusal(extra: &[&str]) -> Option<ProviderConfigError> {
        configured(&config(extra)).err()
    }

    #[test]
    fn each_provider_refuses_a_key_of_the_wrong_shape() {
        assert_eq!(refusal(&[]), Some(ProviderConfigError::SandboxSecret));
        assert_eq!(
            refusal(&["--provider", "stripe", "--stripe-secret-key", "pk_test_x"]),
            Some(ProviderConfigError::StripeKey)
        );
        assert_eq!(
            refusal(&[
                "--provider",
                "stripe",
                "--stripe-secret-key",
                "sk_test_x",
                "--stripe-webhook-secret",
                "short"
            ]),
            Some(ProviderConfigError::StripeWebhookSecret)
        );
        assert_eq!(
            refusal(&["--provider", "toss", "--toss-secret-key", "sk_test_x"]),
            Some(ProviderConfigError::TossKey)
        );
        assert_eq!(
            refusal(&["--provider", "paypal"]),
            Some(ProviderConfigError::Unknown("paypal".into()))
        );
    }

    #[test]
    fn a_well_formed_key_starts_its_provider() {
        let (providers, name) = configured(&config(&[
            "--provider",
            "toss",
            "--toss-secret-key",
            "test_sk_0123456789",
        ]))
        .expect("toss starts");
        assert_eq!(name, "toss");
        assert!(providers.get("toss").is_some());
        assert!(providers.get("sandbox").is_none());
    }
}
