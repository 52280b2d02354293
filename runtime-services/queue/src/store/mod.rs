//! Every Redis operation of the queue service. Multi-key changes are Lua
//! scripts (one round trip, atomic); reads that need several values are
//! pipelines.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use urr_service_common::serving::ServingParams;

use crate::keys::EventKeys;
use crate::policy::{self, Policy};

mod controls;
mod numbers;
mod place;
pub use controls::{INVENTORY_FRESH_MS, Inventory};
pub use numbers::{NumberBlocks, flush_arrivals_until_stopped};
pub use place::{InviteUse, JoinLimits, PRIORITY_BASE, Place, Refusal};

/// The window of [`QueueStore::arrivals_per_second`].
pub const ARRIVAL_WINDOW_SECONDS: i64 = 10;

static JOIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/join.lua")));
static LEAVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/leave.lua")));
static LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/lease.lua")));
static TICK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/tick.lua")));
static NUMBER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/number.lua")));
static SHUFFLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/shuffle.lua")));

/// Samples of the admitter kept for rate measurement (see `tick.lua`).
pub const RATE_SAMPLES: isize = 120;

/// What taking a tier-1 number gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberTaken {
    Number(u64),
    /// The per-address limit was hit; retry after that many seconds.
    Limited {
        retry_after: u64,
    },
}

/// Length of a join-limit window.
const LIMIT_WINDOW_SECONDS: i64 = 60;

/// What one admitter tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickOutcome {
    pub admitted: u64,
    pub reaped: u64,
    pub active: u64,
    pub depth: u64,
}

/// Figures for `/internal/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFigures {
    pub depth: u64,
    pub active: u64,
    pub admitted_total: u64,
    pub oldest_wait_ms: i64,
}

#[derive(Clone)]
pub struct QueueStore {
    conn: ConnectionManager,
    keys: EventKeys,
    /// The `random` method's seed, created once per event (HSETNX) and
    /// never changed: every join scores its waiter with it.
    random_seed: std::sync::Arc<tokio::sync::OnceCell<String>>,
    /// This replica's block of tier-1 numbers and its untallied arrivals.
    numbers: std::sync::Arc<numbers::NumberDesk>,
}

urr_service_common::debug_fields!(QueueStore { keys });

pub(crate) type Result<T> = redis::RedisResult<T>;

/// How long one Redis answer may take before the request fails with 503.
/// The client's default (500 ms) is shorter than the queueing a flash-sale
/// burst causes: the 20,000-buyer local flash sale on two cores got 50,406
/// spurious 503s and 18 failed admitter ticks with it. Three seconds is still
/// far below the clients' own timeouts, and a dead Redis still fails fast
/// (connection errors do not wait for it).
pub const REDIS_RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The connection manager settings every service uses for Redis.
pub fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new().set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
}

impl QueueStore {
    pub async fn connect(redis_url: &str, event: &str) -> Result<Self> {
        let client = redis::Client::open(redis_url)?;
        let conn = client
            .get_connection_manager_with_config(manager_config())
            .await?;
        Ok(Self::new(conn, event))
    }

    pub fn new(conn: ConnectionManager, event: &str) -> Self {
        Self {
            conn,
            keys: EventKeys::new(event),
            random_seed: std::sync::Arc::default(),
            numbers: std::sync::Arc::default(),
        }
    }

    pub fn keys(&self) -> &EventKeys {
        &self.keys
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
    }

    async fn place(
        &self,
        user: &str,
        now_ms: i64,
        mode: &str,
        default_ttl: u32,
        limits: &JoinLimits,
    ) -> Result<Place> {
        self.place_with(user, now_ms, mode, default_ttl, limits, None)
            .await
            .map(|(place, _)| place)
    }

    /// [`Self::join_limited`] with a verified invite code: the place, and
    /// whether this call used the code up (a retry by its holder does not).
    pub async fn join_invited(
        &self,
        user: &str,
        now_ms: i64,
        default_ttl: u32,
        limits: &JoinLimits,
        invite: InviteUse<'_>,
    ) -> Result<(Place, bool)> {
        self.place_with(user, now_ms, "join", default_ttl, limits, Some(invite))
            .await
    }

    async fn place_with(
        &self,
        user: &str,
        now_ms: i64,
        mode: &str,
        default_ttl: u32,
        limits: &JoinLimits,
        invite: Option<InviteUse<'_>>,
    ) -> Result<(Place, bool)> {
        let mut conn = self.conn.clone();
        let k = &self.keys;
        // Only a join counts against the limits; other modes name a key they never touch.
        let (address_key, user_key) = if mode == "join" {
            let window = now_ms / 1000 / LIMIT_WINDOW_SECONDS;
            (
                k.rate_limit("ip", &limits.address, window),
                k.rate_limit("user", user, window),
            )
        } else {
            (k.queue().to_owned(), k.queue().to_owned())
        };
        let reply: Vec<redis::Value> = JOIN
            .key(k.queue())
            .key(k.heartbeats())
            .key(k.active())
            .key(k.sequence())
            .key(k.policy())
            .key(k.admitted_total())
            .key(address_key)
            .key(user_key)
            .key(k.arrivals(now_ms / 1000))
            .key(k.blocked_users())
            .key(k.random_queue())
            .key(k.admitted_at())
            .key(k.invites())
            .key(k.priority_sequence())
            .arg(user)
            .arg(now_ms)
            .arg(mode)
            .arg(default_ttl)
            .arg(limits.per_address)
            .arg(limits.per_user)
            .arg(LIMIT_WINDOW_SECONDS)
            .arg(self.random_seed().await?)
            .arg(invite.map_or("", |i| i.code_id))
            .arg(invite.map_or("", |i| i.mode.as_str()))
            .arg(PRIORITY_BASE)
            .invoke_async(&mut conn)
            .await?;
        let text =
            |v: &redis::Value| redis::from_redis_value::<String>(v.clone()).unwrap_or_default();
        let number =
            |v: &redis::Value| redis::from_redis_value::<i64>(v.clone()).unwrap_or_default();
        let redeemed = reply.last().map(text).as_deref() == Some("redeemed");
        let place = match reply.first().map(text).as_deref() {
            Some("admitted") => Place::Admitted {
                expires_at_ms: reply
                    .get(1)
                    .map(text)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default(),
            },
            Some("waiting") => Place::Waiting {
                rank: reply.get(1).map(number).unwrap_or_default().max(0) as u64,
                total: reply.get(2).map(number).unwrap_or_default().max(0) as u64,
            },
            Some("limited") => Place::Limited {
                scope: if reply.get(1).map(text).as_deref() == Some("user") {
                    "user"
                } else {
                    "address"
                },
                retry_after: reply.get(2).map(number).unwrap_or(1).max(1) as u64,
            },
            Some("refused") => Place::Refused(match reply.get(1).map(text).as_deref() {
                Some("blocked") => Refusal::Blocked,
                Some("draining") => Refusal::Draining,
                Some("invite-used") => Refusal::InviteUsed,
                _ => Refusal::Closed,
            }),
            _ => Place::Absent,
        };
        Ok((place, redeemed))
    }

    /// Joins (idempotent: a rejoin keeps the place) and refreshes the
    /// heartbeat, after counting the join against `limits`.
    pub async fn join_limited(
        &self,
        user: &str,
        now_ms: i64,
        default_ttl: u32,
        limits: &JoinLimits,
    ) -> Result<Place> {
        self.place(user, now_ms, "join", default_ttl, limits).await
    }

    /// [`Self::join_limited`] without limits.
    pub async fn join(&self, user: &str, now_ms: i64, default_ttl: u32) -> Result<Place> {
        self.place(user, now_ms, "join", default_ttl, &JoinLimits::unlimited())
            .await
    }

    /// Reads the place without joining; counts as a heartbeat when waiting.
    pub async fn status(&self, user: &str, now_ms: i64) -> Result<Place> {
        self.place(user, now_ms, "status", 0, &JoinLimits::unlimited())
            .await
    }

    /// Leaves the queue or gives the entry slot back, revoking the entry
    /// tokens of an admitted user (see
    /// [`urr_service_common::tokens::entry::revocation_key`]). True if the
    /// user was in.
    pub async fn leave(&self, user: &str, now_ms: i64) -> Result<bool> {
        let mut conn = self.conn.clone();
        let k = &self.keys;
        let removed: i64 = LEAVE
            .key(k.queue())
            .key(k.heartbeats())
            .key(k.active())
            .key(k.entry_revoked(user))
            .key(k.random_queue())
            .key(k.admitted_at())
            .arg(user)
            .arg(now_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(removed > 0)
    }

    pub async fn policy(&self) -> Result<Policy> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn.hgetall(self.keys.policy()).await?;
        Ok(Policy::from_fields(&fields))
    }

    /// Writes the policy hash as the operator does (the tests and benchmarks set their policies with it).
    pub async fn write_policy(&self, policy: &Policy) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.hset_multiple::<_, _, _, ()>(self.keys.policy(), &policy.to_fields())
            .await
    }

    /// A hash's fields (the waiting page's, which the operator writes).
    pub async fn hash(&self, key: &str) -> Result<HashMap<String, String>> {
        let mut conn = self.conn.clone();
        conn.hgetall(key).await
    }

    pub async fn serving_params(&self) -> Result<ServingParams> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn.hgetall(self.keys.edge()).await?;
        Ok(policy::serving_params(&fields))
    }

    pub async fn write_serving_params(&self, params: &ServingParams) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.hset_multiple::<_, _, _, ()>(self.keys.edge(), &policy::serving_fields(params))
            .await
    }

    /// New arrivals per second over the last [`ARRIVAL_WINDOW_SECONDS`]
    /// full seconds (the current one is still filling). Other replicas add their tier-1 tallies within about a second
    /// ([`flush_arrivals_until_stopped`]); this one adds its own first.
    pub async fn arrivals_per_second(&self, now_ms: i64) -> Result<f64> {
        self.flush_arrivals().await?;
        let now = now_ms / 1000;
        let keys: Vec<String> = (1..=ARRIVAL_WINDOW_SECONDS)
            .map(|back| self.keys.arrivals(now - back))
            .collect();
        let mut conn = self.conn.clone();
        let counts: Vec<Option<u64>> = conn.mget(&keys).await?;
        let total: u64 = counts.into_iter().flatten().sum();
        Ok(total as f64 / ARRIVAL_WINDOW_SECONDS as f64)
    }

    pub async fn rate_samples(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        conn.lrange(self.keys.rate_samples(), 0, RATE_SAMPLES - 1)
            .await
    }

    /// Acquires or renews the admitter lease; returns the token held, if any.
    pub async fn acquire_lease(
        &self,
        instance: &str,
        lease_ms: u64,
        current: Option<&str>,
    ) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        LEASE
            .key(self.keys.admitter_lease())
            .key(self.keys.admitter_fence())
            .arg(instance)
            .arg(lease_ms)
            .arg(current.unwrap_or(""))
            .invoke_async(&mut conn)
            .await
    }

    /// Gives the lease up (shutdown), if still ours.
    pub async fn release_lease(&self, token: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let current: Option<String> = conn.get(self.keys.admitter_lease()).await?;
        if current.as_deref() == Some(token) {
            conn.del::<_, ()>(self.keys.admitter_lease()).await?;
        }
        Ok(())
    }

    /// One admitter tick; `None` when the token no longer holds the lease.
    #[allow(clippy::too_many_arguments)]
    pub async fn tick(
        &self,
        token: &str,
        now_ms: i64,
        tick_ms: u64,
        heartbeat_timeout_ms: u64,
        lease_ms: u64,
        defaults: &Policy,
    ) -> Result<Option<TickOutcome>> {
        let mut conn = self.conn.clone();
        let k = &self.keys;
        let reply: Vec<i64> = TICK
            .key(k.admitter_lease())
            .key(k.queue())
            .key(k.heartbeats())
            .key(k.active())
            .key(k.admitted_total())
            .key(k.rate_samples())
            .key(k.sequence_clock())
            .key(k.sequence())
            .key(k.policy())
            .key(k.inventory())
            .key(k.random_queue())
            .key(k.random_seed())
            .key(k.admitted_at())
            .arg(token)
            .arg(now_ms)
            .arg(tick_ms)
            .arg(heartbeat_timeout_ms)
            .arg(lease_ms)
            .arg(defaults.users_per_second)
            .arg(defaults.max_active_users)
            .arg(defaults.entry_token_ttl_seconds)
            .arg(INVENTORY_FRESH_MS)
            .invoke_async(&mut conn)
            .await?;
        Ok(match reply.as_slice() {
            [admitted, reaped, active, depth] => Some(TickOutcome {
                admitted: *admitted as u64,
                reaped: *reaped as u64,
                active: *active as u64,
                depth: *depth as u64,
            }),
            _ => None,
        })
    }

    /// The shuffle hash (`seed`, `commitment`, `shuffledAt`, `participants`).
    pub async fn shuffle_state(&self) -> Result<HashMap<String, String>> {
        let mut conn = self.conn.clone();
        conn.hgetall(self.keys.shuffle()).await
    }

    /// Stores `seed` and its commitment unless a seed exists; returns the seed in force.
    pub async fn ensure_seed(&self, seed: &str, commitment: &str) -> Result<String> {
        let mut conn = self.conn.clone();
        let key = self.keys.shuffle();
        let created: bool = conn.hset_nx(key, "seed", seed).await?;
        if created {
            conn.hset::<_, _, _, ()>(key, "commitment", commitment)
                .await?;
        }
        let current: Option<String> = conn.hget(key, "seed").await?;
        Ok(current.unwrap_or_else(|| seed.to_owned()))
    }

    /// Everyone in the pre-queue draw, sorted by id (the leaves of the
    /// member commitment); empty before the draw.
    pub async fn drawn_members(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut members: Vec<String> = conn.lrange(self.keys.drawn(), 0, -1).await?;
        members.sort();
        Ok(members)
    }

    /// Everyone waiting without a priority code, in queue order: who the
    /// pre-queue draw orders (a priority join stays ahead of it).
    pub async fn waiting_members(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        conn.zrangebyscore(self.keys.queue(), PRIORITY_BASE / 2, "+inf")
            .await
    }

    /// Applies a drawn order (members with their new scores) once.
    pub async fn apply_shuffle(
        &self,
        token: &str,
        now_ms: i64,
        seed: &str,
        order: &[(i64, String)],
    ) -> Result<i64> {
        let mut conn = self.conn.clone();
        let mut invocation = SHUFFLE.prepare_invoke();
        // The commitment to who is in the draw: the Merkle root over the
        // members sorted by id ([`crate::merkle`]).
        let mut sorted: Vec<String> = order.iter().map(|(_, m)| m.clone()).collect();
        sorted.sort();
        let members_root = hex::encode(crate::merkle::root(&sorted));
        invocation
            .key(self.keys.admitter_lease())
            .key(self.keys.queue())
            .key(self.keys.shuffle())
            .key(self.keys.drawn())
            .arg(token)
            .arg(now_ms)
            .arg(seed)
            .arg(members_root);
        for (score, member) in order {
            invocation.arg(*score).arg(member);
        }
        invocation.invoke_async(&mut conn).await
    }

    pub async fn figures(&self, now_ms: i64) -> Result<QueueFigures> {
        let mut conn = self.conn.clone();
        let k = &self.keys;
        let (depth, active, admitted, head): (u64, u64, Option<u64>, Vec<(String, f64)>) =
            redis::pipe()
                .zcard(k.queue())
                .zcount(k.active(), now_ms, "+inf")
                .get(k.admitted_total())
                .zrange_withscores(k.queue(), 0, 0)
                .query_async(&mut conn)
                .await?;
        let mut oldest_wait_ms = 0;
        if let Some((_, head_seq)) = head.first() {
            // The first tick at which the sequence had reached the head's
            // number: the head had joined by then.
            let dated: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(k.sequence_clock())
                .arg(*head_seq)
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .query_async(&mut conn)
                .await?;
            if let Some(joined_by) = dated.first().and_then(|ms| ms.parse::<i64>().ok()) {
                oldest_wait_ms = (now_ms - joined_by).max(0);
            }
        }
        Ok(QueueFigures {
            depth,
            active,
            admitted_total: admitted.unwrap_or_default(),
            oldest_wait_ms,
        })
    }
}
