#![forbid(unsafe_code)]
//! `urr-stripe-relay --listen 127.0.0.1:12112 --upstream $URR_STRIPE_MOCK_URL
//! --webhook-url http://…/v1/webhooks/stripe`: Stripe's side of a flash sale
//! on stripe-mock (what it does and why: `urr_load::stripe_relay`). The
//! webhook secret comes from `URR_STRIPE_WEBHOOK_SECRET`, never a flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use urr_load::stripe_relay::{Relay, RelaySettings};

#[derive(Parser)]
#[command(
    name = "urr-stripe-relay",
    about = "Stripe's state and webhooks in front of stripe-mock"
)]
struct Args {
    /// Where the payment service reaches "Stripe" (its provider's apiBase).
    #[arg(long, default_value = "127.0.0.1:12112")]
    listen: SocketAddr,
    /// stripe-mock's base URL.
    #[arg(long, env = "URR_STRIPE_MOCK_URL")]
    upstream: String,
    /// The payment service's Stripe webhook endpoint.
    #[arg(long)]
    webhook_url: String,
    /// The endpoint's signing secret (`whsec_…`).
    #[arg(long, env = "URR_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: String,
    /// How long after a call Stripe sends its event, in milliseconds.
    #[arg(long, default_value_t = 50)]
    event_delay_ms: u64,
    /// Where to write what the relay did (JSON), when it stops.
    #[arg(long)]
    figures_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let settings = RelaySettings {
        upstream: args.upstream,
        webhook_url: args.webhook_url,
        webhook_secret: args.webhook_secret.into_bytes(),
        event_delay: Duration::from_millis(args.event_delay_ms),
    };
    let relay = match Relay::new(settings) {
        Ok(relay) => relay,
        Err(error) => {
            eprintln!("urr-stripe-relay: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "urr-stripe-relay: cannot listen on {}: {error}",
                args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    eprintln!("urr-stripe-relay: listening on {}", args.listen);
    let served = axum::serve(listener, relay.router())
        .with_graceful_shutdown(urr_service_common::shutdown::signal())
        .await;
    let figures = relay.figures();
    eprintln!("urr-stripe-relay: {figures:?}");
    if let Some(path) = args.figures_file {
        let written = serde_json::to_vec_pretty(&figures)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&path, bytes));
        if let Err(error) = written {
            eprintln!("urr-stripe-relay: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("urr-stripe-relay: {error}");
            ExitCode::FAILURE
        }
    }
}
