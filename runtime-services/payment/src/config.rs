//! Settings, from flags or the environment (the operator's ConfigMap and
//! Secret references). Secret values are never echoed in `--help`.

use clap::Parser;

#[derive(Clone, Parser)]
#[command(name = "urr-payment", about = "URR payment service", version)]
pub struct PaymentConfig {
    /// Listen address, Event, user JWTs, server limits, log format.
    #[command(flatten)]
    pub service: urr_service_common::service::ServiceArgs,
    /// PostgreSQL and Kafka: the outbox and the inbox.
    #[command(flatten)]
    pub outbox: urr_outbox::OutboxArgs,
    /// Bearer token of the ticket service's internal API.
    #[arg(long, env = "URR_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: String,
    /// The ticket service's internal listener (`/internal/holds/*` is not
    /// on its public one), e.g. `http://<event>-ticket:9090`.
    #[arg(long, env = "URR_TICKET_URL")]
    pub ticket_url: String,
    #[arg(long, env = "URR_PAYMENT_PROVIDER", default_value = "sandbox")]
    pub provider: String,
    /// Where this service is reachable, for the sandbox's webhooks.
    #[arg(long, env = "URR_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    #[arg(
        long,
        env = "URR_SANDBOX_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    pub sandbox_webhook_secret: String,
    #[arg(long, env = "URR_SANDBOX_LATENCY_MS", default_value_t = 200)]
    pub sandbox_latency_ms: u64,
    #[arg(long, env = "URR_SANDBOX_FAILURE_RATE", default_value_t = 0.0)]
    pub sandbox_failure_rate: f64,
    #[arg(long, env = "URR_SANDBOX_DUPLICATE_RATE", default_value_t = 0.05)]
    pub sandbox_duplicate_rate: f64,
    /// Stripe's API (`https://api.stripe.com`; stripe-mock's address in tests).
    #[arg(long, env = "URR_STRIPE_API_BASE", default_value = crate::provider::stripe::DEFAULT_API_BASE)]
    pub stripe_api_base: String,
    #[arg(
        long,
        env = "URR_STRIPE_SECRET_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    pub stripe_secret_key: String,
    /// The webhook endpoint's signing secret (`whsec_…`).
    #[arg(
        long,
        env = "URR_STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    pub stripe_webhook_secret: String,
    /// While Stripe rolls the endpoint secret: the one being replaced.
    #[arg(
        long,
        env = "URR_STRIPE_PREVIOUS_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub stripe_previous_webhook_secret: Option<String>,
    /// Until when buyers may refund their own orders: Unix seconds (what the
    /// operator writes) or an RFC 3339 time, `never` (the organiser
    /// refunds), or unset/`always` (no deadline).
    /// The operator sets it from the Event's `spec.refundPolicy`.
    #[arg(long, env = "URR_BUYER_REFUNDS_UNTIL", default_value = "always")]
    pub buyer_refunds_until: crate::refund_policy::BuyerRefunds,
    /// Toss's API (`https://api.tosspayments.com`; a contract fake in tests).
    #[arg(long, env = "URR_TOSS_API_BASE", default_value = crate::provider::toss::DEFAULT_API_BASE)]
    pub toss_api_base: String,
    /// The secret key (`test_sk_…` / `live_sk_…`) Toss's API authenticates with.
    #[arg(
        long,
        env = "URR_TOSS_SECRET_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    pub toss_secret_key: String,
    #[arg(long, env = "URR_RECONCILE_INTERVAL_MS", default_value_t = 5000)]
    pub reconcile_interval_ms: u64,
}

// Only the service's listen address and Event show: the struct holds
// secrets (database and Redis URLs, signing keys).
urr_service_common::debug_fields!(PaymentConfig { service });
