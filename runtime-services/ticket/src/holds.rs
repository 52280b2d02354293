//! Holds: the buyer-facing half of the triple protection.
//!
//! A hold attempt goes (1) through one Redis Lua call that locks every seat
//! or none and hands out a fencing token; losers stop there. Winners (2)
//! update the seat rows in PostgreSQL only where they are still available
//! (status check, `version` bumped), with the token recorded, inside one
//! transaction that also enforces the per-user limit. (3) Confirmation later
//! checks the token is still current (see [`crate::confirm`]).
//!
//! This file makes holds; [`reading`] reads, releases and expires them.

mod reading;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use urr_service_common::contracts::HoldStatus;

use crate::error::TicketError;
use crate::flights::{self, Flight, Role};
use crate::idempotency::{IdempotencyKey, Replay};
use crate::locks::{Acquired, IdempotencyMark, SeatLocks, lock_value};
use crate::settings::{Catalog, SectionKind};
use crate::telemetry::TicketMetrics;

/// Body of `POST /v1/events/{event}/holds`: seats by id, or a quantity of a
/// standing section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(example = json!({"seats": ["a:1:1", "a:1:2"]}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldBody {
    #[serde(default)]
    pub seats: Option<Vec<String>>,
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub quantity: Option<u32>,
}

/// A checked hold request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRequest {
    Seats(Vec<String>),
    Standing { section: String, quantity: u32 },
}

/// A hold as its buyer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldView {
    pub hold_id: String,
    pub event: String,
    pub user_id: String,
    pub status: HoldStatus,
    pub seats: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    pub quantity: u32,
    pub amount_minor: i64,
    pub currency: String,
    pub expires_at_ms: i64,
}

/// What a hold request got.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldAnswer {
    /// A new hold (HTTP 201).
    Created(HoldView),
    /// A retry under the same `Idempotency-Key`: the first answer.
    Replayed(Replay),
}

/// Seat locks outlive the hold by this much, so a confirm that starts just
/// before the hold's expiry still finds its locks (the fencing check then
/// refuses it if the hold has lapsed in PostgreSQL).
const LOCK_MARGIN_MS: u64 = 5_000;

/// Everything holds need.
#[derive(Debug, Clone)]
pub struct HoldDesk {
    pub pool: PgPool,
    pub locks: SeatLocks,
    pub catalog: Arc<Catalog>,
    pub metrics: Arc<TicketMetrics>,
}

/// The answer stored for a retried key. Committed: its answer. Not yet: the
/// first request is still writing (or died; its Redis key lapses with its
/// locks), so the retry is told to wait.
async fn first_answer(
    key: &IdempotencyKey,
    conn: impl sqlx::PgExecutor<'_>,
) -> Result<HoldAnswer, TicketError> {
    match key.stored_answer(conn).await? {
        Some(replay) => Ok(HoldAnswer::Replayed(replay)),
        None => Err(TicketError::IdempotencyInFlight),
    }
}

/// Per (event, user) advisory lock, so two concurrent holds of one user
/// cannot both pass the per-user limit.
pub(crate) fn user_lock_id(event: &str, user: &str) -> i64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("{event}\u{0}{user}").as_bytes());
    i64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
}

impl HoldDesk {
    /// Checks a body against the seat map and the per-order limit; nothing
    /// is locked or written for a bad request.
    pub fn check(&self, body: HoldBody) -> Result<HoldRequest, TicketError> {
        let max = self.catalog.settings.limits.max_seats_per_order;
        match (body.seats, body.section, body.quantity) {
            (Some(seats), None, None) => {
                if seats.is_empty() {
                    return Err(TicketError::BadRequest("seats must not be empty".into()));
                }
                if seats.len() > max as usize {
                    return Err(TicketError::LimitExceeded(format!(
                        "at most {max} seats per order"
                    )));
                }
                // The canonical id ("a:01:1" and "a:+1:1" are "a:1:1"): the
                // Redis lock key must be the same for the same seat, or a
                // spelling would bypass the first protection.
                let mut unique = Vec::with_capacity(seats.len());
                let mut unknown = Vec::new();
                for seat in &seats {
                    match self.catalog.seat(seat) {
                        Some(known) => unique.push(known.id()),
                        None => unknown.push(seat.clone()),
                    }
                }
                if !unknown.is_empty() {
                    return Err(TicketError::UnknownSeats(unknown));
                }
                unique.sort();
                unique.dedup();
                if unique.len() != seats.len() {
                    return Err(TicketError::BadRequest("a seat is listed twice".into()));
                }
                // Sorted: the locks of overlapping multi-seat holds are
                // always taken in one order.
                Ok(HoldRequest::Seats(unique))
            }
            (None, Some(section), Some(quantity)) => {
                match self.catalog.section(&section).map(|s| s.kind) {
                    Some(SectionKind::Standing { .. }) => {}
                    _ => return Err(TicketError::UnknownSection(section)),
                }
                if quantity == 0 {
                    return Err(TicketError::BadRequest(
                        "quantity must be at least 1".into(),
                    ));
                }
                if quantity > max {
                    return Err(TicketError::LimitExceeded(format!(
                        "at most {max} places per order"
                    )));
                }
                Ok(HoldRequest::Standing { section, quantity })
            }
            _ => Err(TicketError::BadRequest(
                "send either {\"seats\": [...]} or {\"section\": ..., \"quantity\": n}".into(),
            )),
        }
    }

    fn price(&self, request: &HoldRequest) -> i64 {
        match request {
            HoldRequest::Seats(seats) => seats
                .iter()
                .filter_map(|s| self.catalog.seat(s))
                .filter_map(|s| self.catalog.section(&s.section))
                .map(|s| s.price.amount_minor)
                .sum(),
            HoldRequest::Standing { section, quantity } => self
                .catalog
                .section(section)
                .map(|s| s.price.amount_minor * i64::from(*quantity))
                .unwrap_or_default(),
        }
    }

    fn check_sales_window(&self) -> Result<(), TicketError> {
        let now = Utc::now();
        if let Some(open) = self.catalog.opens_at
            && now < open
        {
            return Err(TicketError::SalesClosed(format!("sales open at {open}")));
        }
        if let Some(close) = self.catalog.closes_at
            && now >= close
        {
            return Err(TicketError::SalesClosed(format!("sales closed at {close}")));
        }
        Ok(())
    }

    /// Places a hold for `user`. With an idempotency key, a retry gets the
    /// first answer and the answer is stored in the hold's transaction.
    pub async fn hold(
        &self,
        user: &str,
        request: &HoldRequest,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<HoldAnswer, TicketError> {
        let started = Instant::now();
        let result = self.hold_inner(user, request, idempotency).await;
        self.metrics
            .hold_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.hold(match &result {
            Ok(HoldAnswer::Created(_)) => "held",
            Ok(HoldAnswer::Replayed(_)) => "replayed",
            Err(TicketError::SeatsTaken(_)) => "taken",
            Err(TicketError::SoldOut { .. }) => "sold-out",
            Err(TicketError::LimitExceeded(_)) => "limit",
            Err(_) => "error",
        });
        result
    }

    /// The Redis lock of a seat set, through the replica's single flight:
    /// an attempt on seats another attempt is asking Redis about right now
    /// waits for that answer instead of asking again (see [`crate::flights`]).
    async fn lock_seats(
        &self,
        hold_id: &uuid::Uuid,
        seats: &[String],
        ttl_ms: u64,
        mark: Option<IdempotencyMark<'_>>,
    ) -> Result<Acquired, TicketError> {
        let leader = match self.locks.flights.join(seats) {
            Role::Leader(leader) => Some(leader),
            Role::Follower(slot) => {
                match (flights::wait(slot).await, mark) {
                    // The leader is this very request, sent twice.
                    (
                        Some(Flight::Won {
                            idempotency: Some(theirs),
                        }),
                        Some(mark),
                    ) if theirs == mark.redis_key => {
                        return Err(TicketError::IdempotencyInFlight);
                    }
                    (Some(Flight::Won { .. }), _) => {
                        self.metrics.conflict("coalesced");
                        return Err(TicketError::SeatsTaken(seats.to_vec()));
                    }
                    // With a key, Redis may know this request won before.
                    (Some(Flight::Lost(taken)), None) => {
                        self.metrics.conflict("coalesced");
                        return Err(TicketError::SeatsTaken(taken));
                    }
                    _ => None,
                }
            }
        };
        let acquired = self
            .locks
            .acquire_seats(hold_id, seats, ttl_ms, mark)
            .await?;
        if let Some(leader) = leader {
            match &acquired {
                Acquired::Locked { .. } => leader.finish(Flight::Won {
                    idempotency: mark.map(|m| m.redis_key.to_owned()),
                }),
                Acquired::Taken(taken) => leader.finish(Flight::Lost(taken.clone())),
                // A replay says nothing about the seats: followers ask Redis.
                _ => drop(leader),
            }
        }
        Ok(acquired)
    }

    async fn hold_inner(
        &self,
        user: &str,
        request: &HoldRequest,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<HoldAnswer, TicketError> {
        self.check_sales_window()?;
        let hold_id = uuid::Uuid::new_v4();
        let ttl_ms = u64::from(self.catalog.settings.hold_timeout_seconds) * 1000 + LOCK_MARGIN_MS;
        let redis_key = idempotency.map(|k| k.redis_key(self.catalog.event()));
        // The key lives as long as the locks: while they do, a retry is
        // recognised at Redis; after, PostgreSQL's row still answers it.
        let mark = idempotency
            .zip(redis_key.as_deref())
            .map(|(key, redis_key)| IdempotencyMark {
                redis_key,
                fingerprint: &key.fingerprint,
                ttl_ms,
            });
        let acquired = match request {
            HoldRequest::Seats(seats) => self.lock_seats(&hold_id, seats, ttl_ms, mark).await?,
            HoldRequest::Standing { section, quantity } => {
                let mut attempt = self
                    .locks
                    .acquire_standing(&hold_id, section, *quantity, mark)
                    .await?;
                if attempt == Acquired::Unloaded {
                    self.reload_standing(section).await?;
                    attempt = self
                        .locks
                        .acquire_standing(&hold_id, section, *quantity, mark)
                        .await?;
                }
                attempt
            }
        };
        let token = match acquired {
            Acquired::Locked { token } => token,
            Acquired::Taken(taken) => {
                self.metrics.conflict("redis");
                return Err(TicketError::SeatsTaken(taken));
            }
            Acquired::NotEnough { remaining } => {
                self.metrics.conflict("redis");
                return Err(TicketError::SoldOut { remaining });
            }
            Acquired::Retry { fingerprint, .. } => {
                let key = idempotency
                    .ok_or_else(|| TicketError::Conflict("a retry answer without a key".into()))?;
                if fingerprint != key.fingerprint {
                    return Err(TicketError::IdempotencyMismatch);
                }
                return first_answer(key, &self.pool).await;
            }
            Acquired::Unloaded => {
                return Err(TicketError::Conflict("standing counter missing".into()));
            }
        };
        let lock = lock_value(&hold_id, token);
        let written = self
            .write_hold(user, request, hold_id, token, idempotency)
            .await;
        if matches!(written, Ok(HoldAnswer::Created(_))) {
            return written;
        }
        // Give back what Redis handed out; the database has nothing.
        let undo = match request {
            HoldRequest::Seats(seats) => self.locks.release_seats(seats, &lock).await.map(|_| ()),
            HoldRequest::Standing { section, quantity } => {
                self.locks.return_standing(section, *quantity).await
            }
        };
        if let Err(undo_error) = undo {
            tracing::warn!(%undo_error, %hold_id, "could not undo a lock; it lapses with its TTL");
        }
        // A replay found in PostgreSQL keeps the key in Redis (it is the
        // truth); anything else leaves the key free for the retry.
        if !matches!(written, Ok(HoldAnswer::Replayed(_)))
            && let Some(redis_key) = &redis_key
            && let Err(undo_error) = self.locks.forget_idempotency(redis_key).await
        {
            tracing::warn!(%undo_error, %hold_id, "could not free an idempotency key; it lapses with the locks");
        }
        written
    }

    async fn reload_standing(&self, section: &str) -> Result<(), TicketError> {
        let remaining: Option<i64> = sqlx::query_scalar(
            "SELECT (capacity - held - sold)::bigint FROM standing_inventory WHERE event_id = $1 AND section_id = $2",
        )
        .bind(self.catalog.event())
        .bind(section)
        .fetch_optional(&self.pool)
        .await?;
        self.locks
            .load_standing(section, remaining.unwrap_or(0))
            .await?;
        Ok(())
    }

    async fn write_hold(
        &self,
        user: &str,
        request: &HoldRequest,
        hold_id: uuid::Uuid,
        token: i64,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<HoldAnswer, TicketError> {
        let event = self.catalog.event();
        let quantity = match request {
            HoldRequest::Seats(seats) => seats.len() as u32,
            HoldRequest::Standing { quantity, .. } => *quantity,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(user_lock_id(event, user))
            .execute(&mut *tx)
            .await?;
        // Redis let this attempt through, but PostgreSQL may already hold
        // the key's answer (Redis forgot the key: its locks lapsed, or it
        // restarted): the first answer, and no second hold. Under the
        // user's advisory lock, so a concurrent twin waits for this one.
        if let Some(key) = idempotency
            && let Some(replay) = key.stored_answer(&mut *tx).await?
        {
            return Ok(HoldAnswer::Replayed(replay));
        }
        let owned = places_of_user(&mut tx, event, user).await?;
        let max = i64::from(self.catalog.settings.limits.max_seats_per_user);
        if owned + i64::from(quantity) > max {
            return Err(TicketError::LimitExceeded(format!(
                "at most {max} places per buyer for this event; you already hold, bought or received {owned}"
            )));
        }
        let (seats, section) = match request {
            HoldRequest::Seats(seats) => {
                let mut updated: Vec<String> = sqlx::query_scalar(
                    "UPDATE seats SET status = 'held', version = version + 1, hold_id = $1, fencing_token = $2
                     WHERE event_id = $3 AND seat_id = ANY($4) AND status = 'available'
                     RETURNING seat_id",
                )
                .bind(hold_id)
                .bind(token)
                .bind(event)
                .bind(seats)
                .fetch_all(&mut *tx)
                .await?;
                if updated.len() != seats.len() {
                    // Rare: seats still marked held by a hold whose time is
                    // up (its Redis lock lapsed too, or this attempt would
                    // not be here) and which the reaper has not reached.
                    let missing: Vec<&String> =
                        seats.iter().filter(|s| !updated.contains(s)).collect();
                    let taken_over: Vec<String> = sqlx::query_scalar(
                        "UPDATE seats s SET status = 'held', version = s.version + 1, hold_id = $1, fencing_token = $2
                         FROM holds h
                         WHERE s.event_id = $3 AND s.seat_id = ANY($4) AND s.status = 'held'
                           AND h.id = s.hold_id AND (h.status <> 'active' OR h.expires_at <= now())
                         RETURNING s.seat_id",
                    )
                    .bind(hold_id)
                    .bind(token)
                    .bind(event)
                    .bind(&missing)
                    .fetch_all(&mut *tx)
                    .await?;
                    updated.extend(taken_over);
                }
                if updated.len() != seats.len() {
                    self.metrics.conflict("postgres");
                    let taken = seats
                        .iter()
                        .filter(|s| !updated.contains(s))
                        .cloned()
                        .collect();
                    return Err(TicketError::SeatsTaken(taken));
                }
                (seats.clone(), None)
            }
            HoldRequest::Standing { section, quantity } => {
                let updated = sqlx::query(
                    "UPDATE standing_inventory SET held = held + $1, version = version + 1
                     WHERE event_id = $2 AND section_id = $3 AND held + sold + $1 <= capacity",
                )
                .bind(*quantity as i32)
                .bind(event)
                .bind(section)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    self.metrics.conflict("postgres");
                    return Err(TicketError::SoldOut { remaining: 0 });
                }
                (Vec::new(), Some(section.clone()))
            }
        };
        let amount = self.price(request);
        let expires_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO holds (id, event_id, user_id, section_id, seat_ids, quantity, amount_minor, currency,
                                fencing_token, status, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', now() + make_interval(secs => $10))
             RETURNING expires_at",
        )
        .bind(hold_id)
        .bind(event)
        .bind(user)
        .bind(&section)
        .bind(&seats)
        .bind(quantity as i32)
        .bind(amount)
        .bind(self.catalog.currency())
        .bind(token)
        .bind(f64::from(self.catalog.settings.hold_timeout_seconds))
        .fetch_one(&mut *tx)
        .await?;
        let view = HoldView {
            hold_id: hold_id.to_string(),
            event: event.to_owned(),
            user_id: user.to_owned(),
            status: HoldStatus::Active,
            seats,
            section,
            quantity,
            amount_minor: amount,
            currency: self.catalog.currency().to_owned(),
            expires_at_ms: expires_at.timestamp_millis(),
        };
        if let Some(key) = idempotency {
            let body = serde_json::to_value(&view).unwrap_or_default();
            if !key.record_in(&mut tx, 201, &body).await? {
                // Redis had forgotten the key (its locks lapsed, or Redis
                // restarted) but PostgreSQL has the first answer: no second hold.
                drop(tx);
                return first_answer(key, &self.pool).await;
            }
        }
        tx.commit().await?;
        Ok(HoldAnswer::Created(view))
    }
}

/// Places a user holds (live holds), bought (confirmed holds, transferred
/// tickets included) or received at an event.
pub(crate) async fn places_of_user(
    conn: &mut PgConnection,
    event: &str,
    user: &str,
) -> Result<i64, sqlx::Error> {
    // What the user holds or bought (a confirmed hold keeps counting after
    // its tickets are transferred out, or transferring out and buying again
    // would get around the limit), plus tickets received from other buyers.
    // A refund cancels the hold, which then stops counting.
    sqlx::query_scalar(
        "SELECT (COALESCE((SELECT sum(quantity) FROM holds
                           WHERE event_id = $1 AND user_id = $2
                             AND (status = 'confirmed' OR (status = 'active' AND expires_at > now()))), 0)
               + (SELECT count(*) FROM tickets t JOIN reservations r ON r.id = t.reservation_id
                  WHERE t.event_id = $1 AND t.owner_user_id = $2 AND t.status = 'valid'
                    AND r.user_id <> $2))::bigint",
    )
    .bind(event)
    .bind(user)
    .fetch_one(conn)
    .await
}
