//! The first protection: Redis locks per seat with fencing tokens, and a
//! remaining-places counter per standing section. Every hold attempt goes
//! through one Lua call here; losers are turned away without a database
//! round trip.
//!
//! Keys (hash-tagged per event, so a Redis Cluster keeps them in one slot):
//! * `urr:{event}:fence`: the event's fencing counter, monotonic.
//! * `urr:{event}:seat:<seat id>`: `<hold id>:<token>` with a TTL while held,
//!   `sold` once confirmed.
//! * `urr:{event}:standing:<section>`: places not yet held or sold.
//! * `urr:{event}:idem:<hash>`: an `Idempotency-Key` that won a hold.
//! * `urr:{event}:restored`: present once loaded from PostgreSQL.

use std::sync::Arc;

use redis::Script;
use redis::aio::ConnectionManager;

use crate::flights::LockFlights;

/// Value of a seat key once the seat is sold.
pub const SOLD: &str = "sold";

/// Outcome of a lock attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Locked, under this fencing token.
    Locked { token: i64 },
    /// Seats already locked or sold (their ids).
    Taken(Vec<String>),
    /// Too few standing places left.
    NotEnough { remaining: i64 },
    /// The standing counter has not been loaded.
    Unloaded,
    /// The request's idempotency key already won a hold: a retry, with the
    /// fingerprint of the request that won. Nothing was locked.
    Retry { fingerprint: String },
}

/// The idempotency key of a lock attempt: set atomically with the locks
/// when they are won, so a retry is recognised in the same Lua call and a
/// loser (with or without a key) never reaches PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyMark<'a> {
    /// Redis key (see [`crate::idempotency::IdempotencyKey::redis_key`]).
    pub redis_key: &'a str,
    /// Fingerprint of the request, compared on a retry.
    pub fingerprint: &'a str,
    pub ttl_ms: u64,
}

fn reply_int(value: &redis::Value) -> Option<i64> {
    match value {
        redis::Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// `{2, "<fingerprint>|<hold id>"}`: the answer of a retried key (the hold
/// id is there for a person reading Redis; the answer comes from PostgreSQL).
fn reply_retry(reply: &[redis::Value]) -> Option<Acquired> {
    match reply {
        [redis::Value::Int(2), redis::Value::BulkString(seen)] => {
            let seen = String::from_utf8_lossy(seen);
            let (fingerprint, _hold_id) = seen.split_once('|')?;
            Some(Acquired::Retry {
                fingerprint: fingerprint.to_owned(),
            })
        }
        _ => None,
    }
}

fn unexpected(script: &'static str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "a lock script returned an unexpected reply",
        script.to_owned(),
    ))
}

#[derive(Clone)]
pub struct SeatLocks {
    redis: ConnectionManager,
    event: String,
    /// This replica's lock attempts in flight (see [`crate::flights`]).
    pub flights: Arc<LockFlights>,
    acquire_seats: Script,
    acquire_standing: Script,
    verify_seats: Script,
    settle_seats: Script,
}

urr_service_common::debug_fields!(SeatLocks { event });

/// The value a hold's locks carry.
pub fn lock_value(hold_id: &uuid::Uuid, token: i64) -> String {
    format!("{hold_id}:{token}")
}

impl SeatLocks {
    pub fn new(redis: ConnectionManager, event: &str) -> Self {
        Self {
            redis,
            event: event.to_owned(),
            flights: Arc::default(),
            acquire_seats: Script::new(include_str!("lua/acquire_seats.lua")),
            acquire_standing: Script::new(include_str!("lua/acquire_standing.lua")),
            verify_seats: Script::new(include_str!("lua/verify_seats.lua")),
            settle_seats: Script::new(include_str!("lua/settle_seats.lua")),
        }
    }

    fn fence_key(&self) -> String {
        format!("urr:{{{}}}:fence", self.event)
    }

    pub fn seat_key(&self, seat_id: &str) -> String {
        format!("urr:{{{}}}:seat:{seat_id}", self.event)
    }

    /// Set once the Redis side has been loaded from the database; gone
    /// means Redis lost this event's keys.
    fn restored_key(&self) -> String {
        format!("urr:{{{}}}:restored", self.event)
    }

    pub async fn mark_restored(&self) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::cmd("SET")
            .arg(self.restored_key())
            .arg(urr_service_common::unix_now_ms())
            .query_async(&mut redis)
            .await
    }

    pub async fn is_restored(&self) -> redis::RedisResult<bool> {
        let mut redis = self.redis.clone();
        redis::cmd("EXISTS")
            .arg(self.restored_key())
            .query_async(&mut redis)
            .await
    }

    pub fn standing_key(&self, section: &str) -> String {
        format!("urr:{{{}}}:standing:{section}", self.event)
    }

    /// When `user` left the queue after admission (Unix ms), if they did
    /// while a token of theirs could still be live; the queue writes it.
    pub async fn entry_revoked_at(&self, user: &str) -> redis::RedisResult<Option<i64>> {
        let mut redis = self.redis.clone();
        redis::cmd("GET")
            .arg(urr_service_common::tokens::entry::revocation_key(
                &self.event,
                user,
            ))
            .query_async(&mut redis)
            .await
    }

    /// Tells the queue that `user`'s order completed, so their session ends
    /// and the slot goes to the next in line at once (the queue's admitter
    /// reads the set each tick; its policy may ignore it).
    pub async fn end_session(&self, user: &str) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::cmd("SADD")
            .arg(urr_service_common::policy::session_end_key(&self.event))
            .arg(user)
            .query_async(&mut redis)
            .await
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::cmd("PING").query_async(&mut redis).await
    }

    /// Locks all of `seat_ids` for `hold_id`, or none of them; with a
    /// `mark`, a retry of a key that already won is answered instead.
    pub async fn acquire_seats(
        &self,
        hold_id: &uuid::Uuid,
        seat_ids: &[String],
        ttl_ms: u64,
        mark: Option<IdempotencyMark<'_>>,
    ) -> redis::RedisResult<Acquired> {
        let fence = self.fence_key();
        let mut invocation = self.acquire_seats.key(&fence);
        invocation.key(mark.map_or(fence.as_str(), |m| m.redis_key));
        for seat in seat_ids {
            invocation.key(self.seat_key(seat));
        }
        invocation
            .arg(hold_id.to_string())
            .arg(ttl_ms)
            .arg(mark.map_or("", |m| m.fingerprint))
            .arg(mark.map_or(0, |m| m.ttl_ms));
        let mut redis = self.redis.clone();
        let reply: Vec<redis::Value> = invocation.invoke_async(&mut redis).await?;
        if let Some(retry) = reply_retry(&reply) {
            return Ok(retry);
        }
        let numbers: Option<Vec<i64>> = reply.iter().map(reply_int).collect();
        Ok(match numbers.as_deref() {
            Some([1, token]) => Acquired::Locked { token: *token },
            Some([0, taken @ ..]) => Acquired::Taken(
                taken
                    .iter()
                    .filter_map(|&i| seat_ids.get((i - 1) as usize).cloned())
                    .collect(),
            ),
            _ => return Err(unexpected("acquire_seats")),
        })
    }

    /// Takes `quantity` places of a standing section for `hold_id`.
    pub async fn acquire_standing(
        &self,
        hold_id: &uuid::Uuid,
        section: &str,
        quantity: u32,
        mark: Option<IdempotencyMark<'_>>,
    ) -> redis::RedisResult<Acquired> {
        let fence = self.fence_key();
        let mut redis = self.redis.clone();
        let reply: Vec<redis::Value> = self
            .acquire_standing
            .key(&fence)
            .key(self.standing_key(section))
            .key(mark.map_or(fence.as_str(), |m| m.redis_key))
            .arg(quantity)
            .arg(hold_id.to_string())
            .arg(mark.map_or("", |m| m.fingerprint))
            .arg(mark.map_or(0, |m| m.ttl_ms))
            .invoke_async(&mut redis)
            .await?;
        if let Some(retry) = reply_retry(&reply) {
            return Ok(retry);
        }
        let numbers: Option<Vec<i64>> = reply.iter().map(reply_int).collect();
        Ok(match numbers.as_deref() {
            Some([1, token]) => Acquired::Locked { token: *token },
            Some([0, remaining]) => Acquired::NotEnough {
                remaining: *remaining,
            },
            Some([-1]) => Acquired::Unloaded,
            _ => return Err(unexpected("acquire_standing")),
        })
    }

    /// Forgets an idempotency key whose hold was not written (the attempt
    /// failed after the lock): the retry must do the work. Only this
    /// attempt can have set it (the script sets a key only when absent).
    pub async fn forget_idempotency(&self, redis_key: &str) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::cmd("DEL")
            .arg(redis_key)
            .query_async(&mut redis)
            .await
    }

    /// Gives standing places back (a released, expired or failed hold).
    pub async fn return_standing(&self, section: &str, quantity: u32) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::cmd("INCRBY")
            .arg(self.standing_key(section))
            .arg(quantity)
            .query_async(&mut redis)
            .await
    }

    /// Sets a standing counter unless it is already set (first replica wins;
    /// later replicas must not overwrite places taken in the meantime).
    pub async fn load_standing(&self, section: &str, remaining: i64) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::cmd("SET")
            .arg(self.standing_key(section))
            .arg(remaining)
            .arg("NX")
            .query_async(&mut redis)
            .await
    }

    /// Overwrites a standing counter with the database's figure.
    pub async fn reset_standing(&self, section: &str, remaining: i64) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::cmd("SET")
            .arg(self.standing_key(section))
            .arg(remaining)
            .query_async(&mut redis)
            .await
    }

    /// The confirm-time fencing check; makes the locks permanent on success.
    pub async fn verify_seats(&self, seat_ids: &[String], value: &str) -> redis::RedisResult<bool> {
        if seat_ids.is_empty() {
            return Ok(true);
        }
        let mut invocation = self.verify_seats.prepare_invoke();
        for seat in seat_ids {
            invocation.key(self.seat_key(seat));
        }
        invocation.arg(value);
        let mut redis = self.redis.clone();
        let ok: i64 = invocation.invoke_async(&mut redis).await?;
        Ok(ok == 1)
    }

    /// Marks the seats of a confirmed hold sold (only where the lock is still ours).
    pub async fn mark_sold(&self, seat_ids: &[String], value: &str) -> redis::RedisResult<u64> {
        self.settle(seat_ids, value, SOLD).await
    }

    /// Deletes the locks of a released or expired hold (only where still ours).
    pub async fn release_seats(&self, seat_ids: &[String], value: &str) -> redis::RedisResult<u64> {
        self.settle(seat_ids, value, "").await
    }

    async fn settle(&self, seat_ids: &[String], value: &str, to: &str) -> redis::RedisResult<u64> {
        if seat_ids.is_empty() {
            return Ok(0);
        }
        let mut invocation = self.settle_seats.prepare_invoke();
        for seat in seat_ids {
            invocation.key(self.seat_key(seat));
        }
        invocation.arg(value).arg(to);
        let mut redis = self.redis.clone();
        invocation.invoke_async(&mut redis).await
    }

    /// Unconditionally forgets seat keys (a refunded reservation puts its
    /// seats back on sale).
    pub async fn forget_seats(&self, seat_ids: &[String]) -> redis::RedisResult<()> {
        if seat_ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = seat_ids.iter().map(|s| self.seat_key(s)).collect();
        let mut redis = self.redis.clone();
        redis::cmd("DEL").arg(keys).query_async(&mut redis).await
    }

    /// Restores seat keys from the database at start: sold seats as `sold`,
    /// held seats with their hold's value and remaining lifetime.
    pub async fn restore(
        &self,
        sold: &[String],
        held: &[(String, String, u64)],
    ) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        for chunk in sold.chunks(500) {
            let mut pipe = redis::pipe();
            for seat in chunk {
                pipe.cmd("SET").arg(self.seat_key(seat)).arg(SOLD).ignore();
            }
            pipe.query_async::<()>(&mut redis).await?;
        }
        for chunk in held.chunks(500) {
            let mut pipe = redis::pipe();
            for (seat, value, ttl_ms) in chunk {
                pipe.cmd("SET")
                    .arg(self.seat_key(seat))
                    .arg(value)
                    .arg("PX")
                    .arg((*ttl_ms).max(1))
                    .arg("NX")
                    .ignore();
            }
            pipe.query_async::<()>(&mut redis).await?;
        }
        Ok(())
    }
}

impl SeatLocks {
    /// Raises the fencing counter to at least `floor`.
    pub async fn raise_fence(&self, floor: i64) -> redis::RedisResult<()> {
        let script = Script::new(
            "local v = tonumber(redis.call('GET', KEYS[1]) or '0')
             if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
             return 1",
        );
        let mut redis = self.redis.clone();
        script
            .key(self.fence_key())
            .arg(floor)
            .invoke_async::<i64>(&mut redis)
            .await
            .map(|_| ())
    }
}
