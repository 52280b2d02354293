//! The two tables this crate owns, created idempotently by each service at
//! start (after its own migrations), so the relay and the inbox can never
//! disagree with a service's copy of their DDL.

use sqlx::PgPool;

/// Serializes concurrent `CREATE TABLE IF NOT EXISTS` from replicas starting
/// together (PostgreSQL can otherwise fail one of them on the catalog's
/// unique index).
const SCHEMA_LOCK: i64 = 0x7572_725f_6f75_7462; // "urr_outb"

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox (
        id BIGSERIAL PRIMARY KEY,
        topic TEXT NOT NULL,
        message_key TEXT NOT NULL,
        payload JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        published_at TIMESTAMPTZ,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    )",
    "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL",
    "CREATE TABLE IF NOT EXISTS processed_events (
        consumer TEXT NOT NULL,
        message_id TEXT NOT NULL,
        processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, message_id)
    )",
];

/// Creates `outbox` and `processed_events` when missing.
pub async fn ensure_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    for statement in DDL {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Prepares a service's database: its own migrations, then the outbox and
/// inbox tables (what every service with an outbox does at start).
pub async fn prepare_database(
    pool: &PgPool,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), sqlx::Error> {
    migrator.run(pool).await.map_err(sqlx::Error::from)?;
    ensure_schema(pool).await
}
