#![forbid(unsafe_code)]
//! `urr-payment`: thin entry point; everything lives in the library.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use urr_outbox::{Relay, RelaySettings};
use urr_payment::config::PaymentConfig;
use urr_payment::flow::Payments;
use urr_payment::provider::Providers;
use urr_payment::provider::sandbox::{Sandbox, SandboxSettings};
use urr_payment::provider::stripe::{self, Stripe, StripeSettings};
use urr_payment::provider::toss::{self, Toss, TossSettings};
use urr_payment::reconciler::{self, ReconcilerSettings};
use urr_payment::telemetry::PaymentMetrics;
use urr_payment::ticket_client::{ClientSettings, TicketClient};
use urr_payment::{AppState, consumers, routers};
use urr_service_common::contracts::{PAYMENT_EVENTS, RESERVATION_EVENTS};
use urr_service_common::service::{self, Background, Listen, StartError};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = PaymentConfig::parse();
    service::main("urr-payment", config.log_format, run(config)).await
}

async fn run(config: PaymentConfig) -> Result<(), StartError> {
    // Checked first: a bad limit or short key fails before any connection is made.
    let server_settings = config.server.settings()?;
    let users = config.user_jwt.verifier()?;
    let (providers, provider): (Providers, &'static str) = match config.provider.as_str() {
        "sandbox" => {
            if config.sandbox_webhook_secret.len() < 16 {
                return Err("URR_SANDBOX_WEBHOOK_SECRET must be at least 16 characters".into());
            }
            let providers = Providers::default().with(Arc::new(Sandbox::new(SandboxSettings {
                webhook_url: format!(
                    "{}/v1/webhooks/sandbox",
                    config.public_url.trim_end_matches('/')
                ),
                secret: config.sandbox_webhook_secret.as_bytes().to_vec(),
                latency: Duration::from_millis(config.sandbox_latency_ms),
                failure_rate: config.sandbox_failure_rate,
                duplicate_rate: config.sandbox_duplicate_rate,
            })));
            (providers, urr_payment::provider::sandbox::NAME)
        }
        stripe::NAME => {
            if !config.stripe_secret_key.starts_with("sk_")
                && !config.stripe_secret_key.starts_with("rk_")
            {
                return Err(
                    "URR_STRIPE_SECRET_KEY must be a Stripe secret key (sk_… or rk_…)".into(),
                );
            }
            let webhook_secrets: Vec<Vec<u8>> = std::iter::once(&config.stripe_webhook_secret)
                .chain(config.stripe_previous_webhook_secret.as_ref())
                .map(|secret| secret.as_bytes().to_vec())
                .collect();
            if webhook_secrets.iter().any(|secret| secret.len() < 16) {
                return Err("URR_STRIPE_WEBHOOK_SECRET (and the previous one) must be the endpoint's whsec_… secret".into());
            }
            let providers = Providers::default().with(Arc::new(Stripe::new(StripeSettings {
                api_base: config.stripe_api_base.clone(),
                secret_key: config.stripe_secret_key.clone(),
                webhook_secrets,
                tolerance_seconds: stripe::signature::DEFAULT_TOLERANCE_SECONDS,
                timeout: Duration::from_secs(10),
            })));
            (providers, stripe::NAME)
        }
        toss::NAME => {
            // Only the key's shape is checked; the key itself is never printed.
            if !config.toss_secret_key.starts_with("test_sk_")
                && !config.toss_secret_key.starts_with("live_sk_")
            {
                return Err(
                    "URR_TOSS_SECRET_KEY must be a Toss secret key (test_sk_… or live_sk_…)".into(),
                );
            }
            let providers = Providers::default().with(Arc::new(Toss::new(TossSettings {
                api_base: config.toss_api_base.clone(),
                secret_key: config.toss_secret_key.clone(),
                // Toss asks for a generous read timeout on confirm: the card
                // company answers within it, and a timeout is an unknown outcome.
                timeout: Duration::from_secs(30),
            })));
            (providers, toss::NAME)
        }
        other => {
            return Err(format!(
                "unknown URR_PAYMENT_PROVIDER {other:?} (available: sandbox, stripe, toss)"
            )
            .into());
        }
    };
    let pool = PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&config.database_url)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    urr_payment::prepare_database(&pool)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    urr_outbox::kafka::ensure_topics(
        &config.kafka_brokers,
        &[PAYMENT_EVENTS, RESERVATION_EVENTS],
        config.kafka_partitions,
        config.kafka_replication,
    )
    .await
    .map_err(|e| format!("cannot create Kafka topics: {e}"))?;
    let mut metrics = PaymentMetrics::new();
    let relay = Relay::new(
        pool.clone(),
        urr_outbox::kafka::producer_config(&config.kafka_brokers).map_err(|e| e.to_string())?,
        RelaySettings::default(),
        &mut metrics.registry,
    )
    .map_err(|e| format!("cannot start the outbox relay: {e}"))?;
    let payments = Payments {
        pool,
        ticket: TicketClient::new(
            &config.ticket_url,
            &config.service_token,
            &ClientSettings::default(),
            metrics.circuit_state.clone(),
        )?,
        providers,
        provider,
        event: config.event.clone(),
        metrics: Arc::new(metrics),
        buyer_refunds: config.buyer_refunds_until,
    };
    let mut background = Background::default();
    let stopped = background.stopped();
    background.push(tokio::spawn(relay.run(stopped.clone())));
    background.push(tokio::spawn(reconciler::run(
        payments.clone(),
        ReconcilerSettings {
            interval: Duration::from_millis(config.reconcile_interval_ms),
            ..ReconcilerSettings::default()
        },
        stopped.clone(),
    )));
    background.push(
        consumers::spawn(&config.kafka_brokers, &payments, stopped)
            .map_err(|e| format!("cannot start the Kafka consumer: {e}"))?,
    );
    let listen = Listen {
        public: config.listen,
        internal: config.server.internal_listen,
    };
    let routers = routers(AppState {
        payments,
        users,
        service_token: Arc::from(config.service_token.as_str()),
    });
    service::serve(listen, routers, &server_settings, background, || {
        tracing::info!(listen = %config.listen, internal_listen = %config.server.internal_listen, event = %config.event, provider = %config.provider, "urr-payment serving");
    })
    .await
}
