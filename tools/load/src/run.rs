//! What `scripts/flash-sale` wrote for this run from the API server and the
//! local node (`run.json`, `load.env`), and the load's own knobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// Test payment methods: one that is authorized, one that is declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PaymentMethods {
    /// `pm_sandbox_ok`, `pm_sandbox_decline`.
    Sandbox,
    /// Stripe's test cards `pm_card_visa`, `pm_card_chargeDeclined`.
    Stripe,
}

impl PaymentMethods {
    pub fn method(self, declined: bool) -> &'static str {
        match (self, declined) {
            (PaymentMethods::Sandbox, false) => "pm_sandbox_ok",
            (PaymentMethods::Sandbox, true) => "pm_sandbox_decline",
            (PaymentMethods::Stripe, false) => crate::stripe_relay::APPROVED_METHOD,
            (PaymentMethods::Stripe, true) => crate::stripe_relay::DECLINED_METHOD,
        }
    }
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "urr-load",
    about = "A flash crowd through the URR platform, with a report",
    version
)]
pub struct LoadArgs {
    /// The run directory scripts/flash-sale wrote (run.json, load.env).
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Buyers in the crowd.
    #[arg(long, default_value_t = 20_000)]
    pub buyers: usize,
    /// Buyers arrive over this many seconds after the open (a burst)…
    #[arg(long, default_value_t = 5.0)]
    pub arrival_seconds: f64,
    /// …and this share of them in the minute before it (the pre-queue).
    #[arg(long, default_value_t = 0.2)]
    pub early_share: f64,
    /// Share of buyers who hold seats and then walk away.
    #[arg(long, default_value_t = 0.08)]
    pub abandon_share: f64,
    /// Share of buyers whose card is declined.
    #[arg(long, default_value_t = 0.05)]
    pub decline_share: f64,
    /// Share of buyers who send their payment request twice (same key).
    #[arg(long, default_value_t = 0.1)]
    pub retry_share: f64,
    /// Whose test payment methods the buyers use: the sandbox's, or Stripe's
    /// test cards (the payment service on stripe-mock behind `urr-stripe-relay`).
    #[arg(long, value_enum, default_value_t = PaymentMethods::Sandbox)]
    pub payment_methods: PaymentMethods,
    /// The whole run stops after this many seconds, finished or not.
    #[arg(long, default_value_t = 600)]
    pub max_seconds: u64,
    /// Ticket database (read-only checks of the invariants).
    #[arg(long, env = "URR_LOAD_TICKET_DATABASE_URL", hide_env_values = true)]
    pub ticket_database_url: String,
    /// Payment database (read-only checks of the invariants).
    #[arg(long, env = "URR_LOAD_PAYMENT_DATABASE_URL", hide_env_values = true)]
    pub payment_database_url: String,
    /// Where report.json and report.html go (default: the run directory).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// The share of buyers that may fail or time out (transport errors, a
    /// refused request no client recovers from) before the run fails. Not 0:
    /// a loaded two-core machine drops the odd connection, and a buyer who
    /// meets that is the platform's problem only when many do; 1 % of the CI
    /// run is 20 buyers.
    #[arg(long, default_value_t = 0.01)]
    pub max_unexpected_share: f64,
    /// Requests in flight per service, over a pool of as many connections
    /// (as CloudFront and a load balancer pool them to the origin).
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// The CloudFront KeyValueStore the operator published the room's edge
    /// entry to (the emulator; loopback only).
    #[arg(long, env = "URR_KVS_ENDPOINT")]
    pub kvs_endpoint: String,
    #[arg(long, env = "URR_KVS_ARN")]
    pub kvs_arn: String,
    /// The page buyers open through the edge gate (`{event}` is the Event's
    /// name); the published entry must protect it.
    #[arg(long, default_value = "/events/{event}")]
    pub edge_path: String,
    /// Seconds between reads of the edge entry while the crowd runs (it
    /// switches at `enforceFrom`, and the operator may publish it again).
    #[arg(long, default_value_t = 2)]
    pub edge_refresh_seconds: u64,
}

/// `run.json`. What the edge gate does (active, `enforceFrom`, protected
/// paths, serving counter, signing key) is deliberately not here: buyers
/// read it from the KeyValueStore, as the edge does ([`crate::gate`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub event: String,
    pub room: String,
    pub room_id: String,
    pub sales_open_at: i64,
    pub users_per_second: u32,
    pub max_active_users: u32,
    pub capacity: u64,
    pub queue_url: String,
    pub ticket_url: String,
    pub payment_url: String,
    /// The queue's and the ticket service's internal ports (`/internal/stats`
    /// is not on the public ones): the Service port named `internal`.
    pub queue_internal_url: String,
    pub ticket_internal_url: String,
    /// The payment service's internal port (its `/metrics`).
    #[serde(default)]
    pub payment_internal_url: Option<String>,
}

/// `load.env`: the secret the buyers' user JWTs are signed with (the edge
/// pass is checked with the key the operator published, not with this).
#[derive(Debug, Clone)]
pub struct Secrets {
    pub user_jwt_secret: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("{0} is missing from load.env")]
    Missing(&'static str),
    #[error("{url} is not a loopback address; urr-load only loads this machine")]
    NotLoopback { url: String },
}

fn read(path: &Path) -> Result<String, RunError> {
    std::fs::read_to_string(path).map_err(|e| RunError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

impl RunInfo {
    pub fn load(dir: &Path) -> Result<Self, RunError> {
        let path = dir.join("run.json");
        let info: RunInfo = serde_json::from_str(&read(&path)?).map_err(|e| RunError::Read {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        for url in [
            &info.queue_url,
            &info.ticket_url,
            &info.payment_url,
            &info.queue_internal_url,
            &info.ticket_internal_url,
        ] {
            let host = url
                .trim_start_matches("http://")
                .split(['/', ':'])
                .next()
                .unwrap_or_default();
            // Any loopback address: the local node gives each Service its own
            // (127.0.2.N), as a cluster gives each its ClusterIP.
            let loopback = host == "localhost"
                || host == "[::1]"
                || host
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(RunError::NotLoopback { url: url.clone() });
            }
        }
        Ok(info)
    }
}

impl Secrets {
    pub fn load(dir: &Path) -> Result<Self, RunError> {
        let text = read(&dir.join("load.env"))?;
        let values: BTreeMap<String, String> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| {
                (
                    key.trim().to_owned(),
                    value.trim().trim_matches('\'').replace(r"'\''", "'"),
                )
            })
            .collect();
        Ok(Self {
            user_jwt_secret: values
                .get("URR_USER_JWT_SECRET")
                .cloned()
                .ok_or(RunError::Missing("URR_USER_JWT_SECRET"))?,
            issuer: values.get("URR_USER_JWT_ISSUER").cloned(),
            audience: values.get("URR_USER_JWT_AUDIENCE").cloned(),
        })
    }

    /// A user JWT for `user`, as the identity provider would sign it.
    pub fn user_token(&self, user: &str, now: i64) -> String {
        let mut claims = serde_json::json!({"sub": user, "iat": now, "exp": now + 3600});
        if let Some(issuer) = &self.issuer {
            claims["iss"] = issuer.clone().into();
        }
        if let Some(audience) = &self.audience {
            claims["aud"] = audience.clone().into();
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.user_jwt_secret.as_bytes()),
        )
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_run(dir: &Path, queue_url: &str) {
        let info = serde_json::json!({
            "event": "e", "room": "r", "roomId": "ns/r", "salesOpenAt": 0,
            "usersPerSecond": 1, "maxActiveUsers": 1, "capacity": 1,
            "queueUrl": queue_url, "ticketUrl": "http://127.0.2.2:80", "paymentUrl": "http://localhost:80",
            "queueInternalUrl": "http://127.0.2.1:9090", "ticketInternalUrl": "http://127.0.2.2:9090",
        });
        std::fs::write(dir.join("run.json"), info.to_string()).expect("write run.json");
    }

    #[test]
    fn services_behind_any_loopback_address_are_accepted_and_others_refused() {
        let dir = std::env::temp_dir().join(format!("urr-load-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        write_run(&dir, "http://127.0.2.1:80");
        assert!(RunInfo::load(&dir).is_ok());
        for outside in [
            "http://10.0.0.1:80",
            "http://example.com",
            "http://128.0.0.1",
        ] {
            write_run(&dir, outside);
            assert!(
                matches!(RunInfo::load(&dir), Err(RunError::NotLoopback { .. })),
                "{outside}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
