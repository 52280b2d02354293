#![forbid(unsafe_code)]
//! `urr-payment`: thin entry point; everything lives in the library.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use urr_payment::config::PaymentConfig;
use urr_payment::flow::Payments;
use urr_payment::reconciler::{self, ReconcilerSettings};
use urr_payment::telemetry::PaymentMetrics;
use urr_payment::ticket_client::{ClientSettings, TicketClient};
use urr_payment::{AppState, consumers, routers};
use urr_service_common::contracts::{PAYMENT_EVENTS, RESERVATION_EVENTS};
use urr_service_common::service::{self, Background, Context, StartError};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = PaymentConfig::parse();
    service::main("urr-payment", config.service.log_format, run(config)).await
}

async fn run(config: PaymentConfig) -> Result<(), StartError> {
    // Checked first: a bad limit or short key fails before any connection is made.
    let server_settings = config.service.server.settings()?;
    let users = config.service.user_jwt.verifier()?;
    let (providers, provider) = urr_payment::provider::select::configured(&config)?;
    let pool = config.outbox.database(&urr_payment::MIGRATOR).await?;
    let mut metrics = PaymentMetrics::new();
    let relay = config
        .outbox
        .relay(
            &pool,
            &[PAYMENT_EVENTS, RESERVATION_EVENTS],
            &mut metrics.registry,
        )
        .await?;
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
        event: config.service.event.clone(),
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
        consumers::spawn(&config.outbox.kafka_brokers, &payments, stopped)
            .context("cannot start the Kafka consumer")?,
    );
    let listen = config.service.listeners();
    let routers = routers(AppState {
        payments,
        users,
        service_token: Arc::from(config.service_token.as_str()),
    });
    service::serve(listen, routers, &server_settings, background, || {
        tracing::info!(listen = %config.service.listen, internal_listen = %config.service.server.internal_listen, event = %config.service.event, provider = %config.provider, "urr-payment serving");
    })
    .await
}
