//! The consumer side of exactly-once effects: `processed_events`.

use sqlx::PgConnection;

/// Records that `consumer` has processed `message_id`, in the caller's
/// transaction. `true` the first time; `false` when it was already processed,
/// and then the caller must do nothing (and may commit its offset).
///
/// Because the row is written in the same transaction as the effect, a crash
/// before commit loses both, and the redelivery does the work once.
pub async fn claim(
    conn: &mut PgConnection,
    consumer: &str,
    message_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO processed_events (consumer, message_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
