//! Command-line flags, each with an environment fallback (the operator sets
//! the environment from the Event's ConfigMap and Secrets). Secret values are
//! accepted from the environment and never echoed by `--help`.

use std::time::Duration;

use clap::Parser;

#[derive(Parser, Clone)]
#[command(
    name = "urr-queue",
    version,
    about = "URR queue service: two-tier waiting room and batch admitter"
)]
pub struct QueueConfig {
    /// Listen address, Event, user JWTs, server limits, log format.
    #[command(flatten)]
    pub service: urr_service_common::service::ServiceArgs,
    /// Redis URL (`redis://host:port`).
    #[arg(long, env = "URR_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    /// The WaitingRoom's name, as used in `/v1/rooms/{room}` and `/waiting/{room}`.
    #[arg(long, env = "URR_ROOM_NAME")]
    pub room_name: Option<String>,
    /// The WaitingRoom's `<namespace>/<name>`, as signed into `urr-vwr-token`.
    #[arg(long, env = "URR_ROOM_ID")]
    pub room_id: Option<String>,
    /// HMAC key of `urr-entry-token`.
    #[arg(long, env = "URR_ENTRY_TOKEN_KEY", hide_env_values = true)]
    pub entry_token_key: String,
    /// HMAC key of `urr-vwr-token` (the edge function holds the same key).
    /// Unset (an Event without a WaitingRoom with an edge): no tier 1, and
    /// `POST /v1/rooms/{room}/numbers` answers 404 `no-tier-one`.
    #[arg(long, env = "URR_VWR_SIGNING_KEY", hide_env_values = true)]
    pub vwr_signing_key: Option<String>,
    #[arg(long, env = "URR_VWR_KEY_ID", default_value = "k1")]
    pub vwr_key_id: String,
    /// During a key rotation: the key passes were signed with before; passes
    /// signed with it are still accepted (never used to sign).
    #[arg(
        long,
        env = "URR_VWR_PREVIOUS_SIGNING_KEY",
        hide_env_values = true,
        requires = "vwr_previous_key_id"
    )]
    pub vwr_previous_signing_key: Option<String>,
    #[arg(
        long,
        env = "URR_VWR_PREVIOUS_KEY_ID",
        requires = "vwr_previous_signing_key"
    )]
    pub vwr_previous_key_id: Option<String>,
    /// Lifetime of a tier-1 `urr-vwr-token`, in seconds.
    #[arg(long, env = "URR_VWR_TOKEN_TTL_SECONDS", default_value_t = 4 * 3600)]
    pub vwr_token_ttl_seconds: i64,
    /// Admitter tick, in milliseconds.
    #[arg(long, env = "URR_TICK_MS", default_value_t = 1000)]
    pub tick_ms: u64,
    /// A waiter without a heartbeat (join, poll or heartbeat) for this long loses the place.
    #[arg(long, env = "URR_HEARTBEAT_TIMEOUT_SECONDS", default_value_t = 60)]
    pub heartbeat_timeout_seconds: u64,
    /// Set the `Secure` attribute on cookies. On by default (the seed shipped
    /// with it off); turn off only for plain-HTTP local runs.
    #[arg(long, env = "URR_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cookie_secure: bool,
    /// Joins per client IP per minute.
    #[arg(long, env = "URR_JOIN_LIMIT_PER_IP", default_value_t = 30)]
    pub join_limit_per_ip: u32,
    /// Joins per user per minute.
    #[arg(long, env = "URR_JOIN_LIMIT_PER_USER", default_value_t = 10)]
    pub join_limit_per_user: u32,
    /// Tier-1 numbers per client address per minute for callers without a
    /// valid pass (a holder of one keeps their number without counting); 0 = unlimited.
    #[arg(long, env = "URR_NUMBER_LIMIT_PER_IP", default_value_t = 60)]
    pub number_limit_per_ip: u32,
    /// The most tier-1 numbers a replica leases at once (store/numbers.rs:
    /// one `INCRBY` of the shared counter per block instead of one `INCR`
    /// per visitor); 1 = no leasing, every number straight from the counter.
    #[arg(long, env = "URR_NUMBER_BLOCK", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub number_block: u64,
    /// How long a leased block may still hand out numbers, in milliseconds:
    /// two visitors arriving this far apart or more are always numbered in
    /// arrival order, whichever replicas they reach.
    #[arg(long, env = "URR_NUMBER_BLOCK_MAX_AGE_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub number_block_max_age_ms: u64,
    /// Header holding the client address behind a proxy: `CloudFront-Viewer-Address`
    /// (behind CloudFront with the origin secret) or `X-Forwarded-For` (with
    /// `--trusted-proxy-hops`). Unset: the socket peer.
    #[arg(long, env = "URR_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// How many proxies of ours append to `--client-ip-header`: the client
    /// address is the entry this far from the right (client-written entries come first).
    #[arg(long, env = "URR_TRUSTED_PROXY_HOPS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    pub trusted_proxy_hops: u8,
    /// The ticket service's internal base URL (the operator sets it for
    /// every service): the admitter reads the places left there when the
    /// room has `inventory.minPlaces`. Unset: no inventory awareness.
    #[arg(long, env = "URR_TICKET_URL")]
    pub ticket_url: Option<String>,
    /// Run the admitter loop in this instance (all replicas may; one leads).
    #[arg(long, env = "URR_ADMITTER", default_value_t = true, action = clap::ArgAction::Set)]
    pub admitter: bool,
}

// Only the service's listen address and Event show: the struct holds
// secrets (database and Redis URLs, signing keys).
urr_service_common::debug_fields!(QueueConfig { service });

impl QueueConfig {
    pub fn room_name(&self) -> &str {
        self.room_name.as_deref().unwrap_or(&self.service.event)
    }

    pub fn room_id(&self) -> String {
        self.room_id
            .clone()
            .unwrap_or_else(|| format!("default/{}", self.room_name()))
    }

    pub fn client_address(&self) -> crate::client_address::ClientAddressSource {
        crate::client_address::ClientAddressSource {
            header: self.client_ip_header.clone(),
            trusted_hops: usize::from(self.trusted_proxy_hops),
        }
    }

    pub fn number_blocks(&self) -> crate::store::NumberBlocks {
        crate::store::NumberBlocks {
            max_size: self.number_block,
            max_age: Duration::from_millis(self.number_block_max_age_ms),
        }
    }

    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms.max(50))
    }

    /// The lease outlives three ticks, so one slow tick does not hand over leadership.
    pub fn lease_ms(&self) -> u64 {
        self.tick_ms.max(50) * 3
    }
}
