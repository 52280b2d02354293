//! The seat map in PostgreSQL: idempotent import from the Event spec, the
//! Redis restore at start, and the cheap read side (availability, stats),
//! cached for at most a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{PgPool, Row};
use tokio::sync::Mutex;

use crate::locks::{SeatLocks, lock_value};
use crate::settings::{Catalog, SectionKind};

/// Serializes imports of one event across replicas starting together.
fn import_lock_id(event: &str) -> i64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(event.as_bytes());
    i64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
}

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Standing sections the new map would shrink below what is already
    /// held or sold: `(section, requested, kept)`. They shrink only down to
    /// what is taken, and the service starts (a spec mistake must not take
    /// the sale down); the operator sees the warning in the logs.
    pub capacity_floors: Vec<(String, i64, i64)>,
    /// `false` when the database already held this exact seat map.
    pub changed: bool,
    pub seats_added: u64,
    pub seats_retired: u64,
    pub seats_restored: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Brings the database in line with the seat map. Idempotent: the same map
/// twice changes nothing. Never touches a held or sold seat: a seat removed
/// from the map is retired only while available, and a retired seat that
/// comes back is put on sale again.
pub async fn import(pool: &PgPool, catalog: &Catalog) -> Result<ImportReport, ImportError> {
    let event = catalog.event();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(import_lock_id(event))
        .execute(&mut *tx)
        .await?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT settings_hash FROM events WHERE id = $1")
            .bind(event)
            .fetch_optional(&mut *tx)
            .await?;
    if current.as_deref() == Some(catalog.hash.as_str()) {
        tx.rollback().await?;
        return Ok(ImportReport::default());
    }
    let settings = serde_json::to_value(&catalog.settings).unwrap_or_default();
    sqlx::query(
        "INSERT INTO events (id, display_name, settings, settings_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET display_name = $2, settings = $3, settings_hash = $4, imported_at = now()",
    )
    .bind(event)
    .bind(&catalog.settings.display_name)
    .bind(settings)
    .bind(&catalog.hash)
    .execute(&mut *tx)
    .await?;
    let mut report = ImportReport {
        changed: true,
        ..ImportReport::default()
    };
    for section in &catalog.sections {
        let mut capacity = i64::from(section.kind.capacity());
        if let SectionKind::Standing { .. } = section.kind {
            let taken: Option<i64> = sqlx::query_scalar(
                "SELECT (held + sold)::bigint FROM standing_inventory WHERE event_id = $1 AND section_id = $2",
            )
            .bind(event)
            .bind(&section.id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(taken) = taken
                && taken > capacity
            {
                report
                    .capacity_floors
                    .push((section.id.clone(), capacity, taken));
                capacity = taken;
            }
        }
        let (rows, per_row) = match section.kind {
            SectionKind::Seated {
                rows,
                seats_per_row,
            } => (Some(rows as i32), Some(seats_per_row as i32)),
            SectionKind::Standing { .. } => (None, None),
        };
        sqlx::query(
            "INSERT INTO sections (event_id, id, name, kind, rows_count, seats_per_row, capacity, price_minor, currency, retired)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false)
             ON CONFLICT (event_id, id) DO UPDATE SET name = $3, kind = $4, rows_count = $5,
                 seats_per_row = $6, capacity = $7, price_minor = $8, currency = $9, retired = false",
        )
        .bind(event)
        .bind(&section.id)
        .bind(&section.name)
        .bind(section.kind.as_str())
        .bind(rows)
        .bind(per_row)
        .bind(capacity as i32)
        .bind(section.price.amount_minor)
        .bind(&section.price.currency)
        .execute(&mut *tx)
        .await?;
        match section.kind {
            SectionKind::Seated {
                rows,
                seats_per_row,
            } => {
                let added = sqlx::query(
                    "INSERT INTO seats (event_id, seat_id, section_id, row_no, seat_no)
                     SELECT $1, $2 || ':' || r || ':' || s, $2, r, s
                     FROM generate_series(1, $3) AS r, generate_series(1, $4) AS s
                     ON CONFLICT (event_id, seat_id) DO NOTHING",
                )
                .bind(event)
                .bind(&section.id)
                .bind(rows as i32)
                .bind(seats_per_row as i32)
                .execute(&mut *tx)
                .await?;
                report.seats_added += added.rows_affected();
                let restored = sqlx::query(
                    "UPDATE seats SET status = 'available', version = version + 1
                     WHERE event_id = $1 AND section_id = $2 AND status = 'retired'
                       AND row_no <= $3 AND seat_no <= $4",
                )
                .bind(event)
                .bind(&section.id)
                .bind(rows as i32)
                .bind(seats_per_row as i32)
                .execute(&mut *tx)
                .await?;
                report.seats_restored += restored.rows_affected();
                let retired = sqlx::query(
                    "UPDATE seats SET status = 'retired', version = version + 1
                     WHERE event_id = $1 AND section_id = $2 AND status = 'available'
                       AND (row_no > $3 OR seat_no > $4)",
                )
                .bind(event)
                .bind(&section.id)
                .bind(rows as i32)
                .bind(seats_per_row as i32)
                .execute(&mut *tx)
                .await?;
                report.seats_retired += retired.rows_affected();
            }
            SectionKind::Standing { .. } => {
                sqlx::query(
                    "INSERT INTO standing_inventory (event_id, section_id, capacity) VALUES ($1, $2, $3)
                     ON CONFLICT (event_id, section_id) DO UPDATE SET capacity = $3, version = standing_inventory.version + 1",
                )
                .bind(event)
                .bind(&section.id)
                .bind(capacity as i32)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    // Sections dropped from the map: retired, their available seats too.
    let ids: Vec<String> = catalog.sections.iter().map(|s| s.id.clone()).collect();
    sqlx::query("UPDATE sections SET retired = true WHERE event_id = $1 AND NOT (id = ANY($2))")
        .bind(event)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    let retired = sqlx::query(
        "UPDATE seats SET status = 'retired', version = version + 1
         WHERE event_id = $1 AND status = 'available' AND NOT (section_id = ANY($2))",
    )
    .bind(event)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    report.seats_retired += retired.rows_affected();
    tx.commit().await?;
    // Fresh statistics now: a freshly loaded seats table looks empty to the
    // planner until autovacuum gets to it, and a seat update planned as a
    // sequential scan costs a millisecond instead of tens of microseconds
    // just when the sale opens.
    sqlx::query("ANALYZE seats, sections, standing_inventory")
        .execute(pool)
        .await?;
    Ok(report)
}

/// How standing counters are restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandingCounters {
    /// Set only where missing: another replica may be selling already, and
    /// its places taken in the meantime must not be given back.
    KeepExisting,
    /// Overwrite from the database: the seat map changed (a capacity moved),
    /// or Redis lost its data. A counter briefly too high only lets a few
    /// extra attempts reach PostgreSQL, whose conditional update refuses them.
    FromDatabase,
}

/// Loads the Redis side from the database (at start, and whenever Redis has
/// lost it): sold seats, live holds' locks, standing counters, the fencing
/// floor; then the event's restore marker, whose absence tells the reaper
/// that Redis forgot (a restart without persistence, a failover to an empty
/// replica).
pub async fn restore_locks(
    pool: &PgPool,
    locks: &SeatLocks,
    event: &str,
    standing_counters: StandingCounters,
) -> Result<(), RestoreError> {
    let sold: Vec<String> =
        sqlx::query_scalar("SELECT seat_id FROM seats WHERE event_id = $1 AND status = 'sold'")
            .bind(event)
            .fetch_all(pool)
            .await?;
    let held_rows = sqlx::query(
        "SELECT s.seat_id, h.id, h.fencing_token,
                GREATEST(0, EXTRACT(EPOCH FROM (h.expires_at - now())) * 1000)::bigint AS ttl_ms
         FROM seats s JOIN holds h ON h.id = s.hold_id
         WHERE s.event_id = $1 AND s.status = 'held' AND h.status = 'active'",
    )
    .bind(event)
    .fetch_all(pool)
    .await?;
    let mut held = Vec::with_capacity(held_rows.len());
    for row in held_rows {
        let hold: uuid::Uuid = row.try_get("id")?;
        let token: i64 = row.try_get("fencing_token")?;
        let ttl: i64 = row.try_get("ttl_ms")?;
        held.push((
            row.try_get::<String, _>("seat_id")?,
            lock_value(&hold, token),
            ttl.max(1) as u64,
        ));
    }
    locks.restore(&sold, &held).await?;
    let standing = sqlx::query(
        "SELECT section_id, (capacity - held - sold)::bigint AS remaining
         FROM standing_inventory WHERE event_id = $1",
    )
    .bind(event)
    .fetch_all(pool)
    .await?;
    for row in standing {
        let section: String = row.try_get("section_id")?;
        let remaining: i64 = row.try_get("remaining")?;
        match standing_counters {
            StandingCounters::KeepExisting => locks.load_standing(&section, remaining).await?,
            StandingCounters::FromDatabase => locks.reset_standing(&section, remaining).await?,
        }
    }
    // The fencing counter must stay ahead of every token in the database,
    // even if Redis lost its data.
    let max_token: Option<i64> =
        sqlx::query_scalar("SELECT max(fencing_token) FROM holds WHERE event_id = $1")
            .bind(event)
            .fetch_one(pool)
            .await?;
    locks.raise_fence(max_token.unwrap_or(0)).await?;
    locks.mark_restored().await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// One section's figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectionAvailability {
    pub id: String,
    pub capacity: i64,
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

/// The event's figures at one moment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub event: String,
    pub as_of_ms: i64,
    pub sections: Vec<SectionAvailability>,
}

impl Availability {
    pub fn totals(&self) -> (i64, i64, i64) {
        self.sections.iter().fold((0, 0, 0), |(t, h, s), section| {
            (t + section.capacity, h + section.held, s + section.sold)
        })
    }
}

/// Reads availability from PostgreSQL at most once per `max_age`: the
/// figure every buyer polls must not cost a query per poll.
#[derive(Debug)]
pub struct AvailabilityCache {
    max_age: Duration,
    cached: Mutex<Option<(Instant, Arc<Availability>)>>,
}

impl AvailabilityCache {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            cached: Mutex::new(None),
        }
    }

    pub async fn get(
        &self,
        pool: &PgPool,
        catalog: &Catalog,
    ) -> Result<Arc<Availability>, sqlx::Error> {
        // One reader refreshes while the others wait for its result, instead
        // of every waiter querying at once when the entry goes stale.
        let mut cached = self.cached.lock().await;
        if let Some((at, availability)) = cached.as_ref()
            && at.elapsed() < self.max_age
        {
            return Ok(availability.clone());
        }
        let fresh = Arc::new(read_availability(pool, catalog).await?);
        *cached = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }
}

/// Availability straight from the database. Holds whose time is up but
/// which the reaper has not reached yet count as available (the check at read).
pub async fn read_availability(
    pool: &PgPool,
    catalog: &Catalog,
) -> Result<Availability, sqlx::Error> {
    let event = catalog.event();
    let seated = sqlx::query(
        "SELECT s.section_id,
                count(*) FILTER (WHERE s.status = 'sold') AS sold,
                count(*) FILTER (WHERE s.status = 'held' AND h.expires_at > now()) AS held,
                count(*) FILTER (WHERE s.status = 'available'
                                  OR (s.status = 'held' AND h.expires_at <= now())) AS available
         FROM seats s LEFT JOIN holds h ON h.id = s.hold_id AND s.status = 'held'
         WHERE s.event_id = $1
         GROUP BY s.section_id",
    )
    .bind(event)
    .fetch_all(pool)
    .await?;
    let standing = sqlx::query(
        "SELECT i.section_id, i.capacity::bigint AS capacity, i.sold::bigint AS sold,
                COALESCE((SELECT sum(h.quantity) FROM holds h
                          WHERE h.event_id = i.event_id AND h.section_id = i.section_id
                            AND h.status = 'active' AND h.expires_at > now()), 0)::bigint AS held
         FROM standing_inventory i WHERE i.event_id = $1",
    )
    .bind(event)
    .fetch_all(pool)
    .await?;
    let mut sections = Vec::with_capacity(catalog.sections.len());
    for section in &catalog.sections {
        let mut figures = SectionAvailability {
            id: section.id.clone(),
            capacity: i64::from(section.kind.capacity()),
            available: 0,
            held: 0,
            sold: 0,
        };
        for row in seated.iter().filter(|r| {
            r.try_get::<String, _>("section_id")
                .is_ok_and(|id| id == section.id)
        }) {
            figures.sold = row.try_get("sold")?;
            figures.held = row.try_get("held")?;
            figures.available = row.try_get("available")?;
        }
        for row in standing.iter().filter(|r| {
            r.try_get::<String, _>("section_id")
                .is_ok_and(|id| id == section.id)
        }) {
            figures.capacity = row.try_get("capacity")?;
            figures.sold = row.try_get("sold")?;
            figures.held = row.try_get("held")?;
            figures.available = (figures.capacity - figures.sold - figures.held).max(0);
        }
        sections.push(figures);
    }
    Ok(Availability {
        event: event.to_owned(),
        as_of_ms: urr_service_common::unix_now_ms(),
        sections,
    })
}
