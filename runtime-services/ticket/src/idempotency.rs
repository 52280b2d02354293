//! `Idempotency-Key` for `POST holds`: a retry with the same key and body
//! gets the first answer (status and body), a different body with the same
//! key is refused, a concurrent duplicate waits its turn.
//!
//! The key is claimed in its own short transaction before the work starts,
//! and the answer is written in the work's own transaction (success) or right
//! after it (a final refusal such as `seat-taken`). Transient failures
//! (database or Redis down) release the claim so the retry does the work.

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::TicketError;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 128;
/// A claim older than this without an answer belongs to a request that died;
/// a retry may take it over.
const STALE_CLAIM_SECONDS: f64 = 30.0;

/// A claimed key, to be finished with the answer.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub user: String,
    pub key: String,
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claimed {
    /// First use: do the work, then finish the claim.
    New(IdempotencyClaim),
    /// Seen before: send this answer again.
    Replay {
        status: u16,
        body: serde_json::Value,
    },
}

/// Hash of what makes two requests "the same".
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    format!("{:x}", hasher.finalize())
}

pub fn check_key(key: &str) -> Result<(), TicketError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(TicketError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

pub async fn claim(
    pool: &PgPool,
    user: &str,
    key: &str,
    hash: &str,
) -> Result<Claimed, TicketError> {
    check_key(key)?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(key)
    .bind(hash)
    .execute(pool)
    .await?;
    let claim = IdempotencyClaim {
        user: user.to_owned(),
        key: key.to_owned(),
    };
    if inserted.rows_affected() == 1 {
        return Ok(Claimed::New(claim));
    }
    let row = sqlx::query(
        "SELECT request_hash, status_code, response,
                EXTRACT(EPOCH FROM (now() - created_at))::float8 AS age
         FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .fetch_one(pool)
    .await?;
    if row.try_get::<String, _>("request_hash")? != hash {
        return Err(TicketError::IdempotencyMismatch);
    }
    match (
        row.try_get::<Option<i32>, _>("status_code")?,
        row.try_get::<Option<serde_json::Value>, _>("response")?,
    ) {
        (Some(status), Some(body)) => Ok(Claimed::Replay {
            status: status as u16,
            body,
        }),
        _ if row.try_get::<f64, _>("age")? > STALE_CLAIM_SECONDS => {
            // Take over a dead request's claim (restart its clock).
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET created_at = now()
                 WHERE user_id = $1 AND key = $2 AND status_code IS NULL
                   AND created_at < now() - make_interval(secs => $3)",
            )
            .bind(user)
            .bind(key)
            .bind(STALE_CLAIM_SECONDS)
            .execute(pool)
            .await?;
            if taken.rows_affected() == 1 {
                Ok(Claimed::New(claim))
            } else {
                Err(TicketError::IdempotencyInFlight)
            }
        }
        _ => Err(TicketError::IdempotencyInFlight),
    }
}

impl IdempotencyClaim {
    /// Stores the answer inside the caller's transaction.
    pub async fn finish_in(
        &self,
        conn: &mut PgConnection,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE user_id = $1 AND key = $2",
        )
        .bind(&self.user)
        .bind(&self.key)
        .bind(i32::from(status))
        .bind(body)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Stores a final refusal, or forgets the claim after a transient failure.
    pub async fn settle_error(
        &self,
        pool: &PgPool,
        error: &TicketError,
    ) -> Result<(), sqlx::Error> {
        if error.is_transient() {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND status_code IS NULL",
            )
            .bind(&self.user)
            .bind(&self.key)
            .execute(pool)
            .await?;
            return Ok(());
        }
        let mut conn = pool.acquire().await?;
        self.finish_in(&mut conn, error.status().as_u16(), &error.problem_json())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let base = request_hash("POST", "/v1/events/e/holds", b"{}");
        assert_eq!(base, request_hash("POST", "/v1/events/e/holds", b"{}"));
        assert_ne!(base, request_hash("POST", "/v1/events/e/holds", b"{ }"));
        assert_ne!(base, request_hash("POST", "/v1/events/f/holds", b"{}"));
        assert_ne!(base, request_hash("PUT", "/v1/events/e/holds", b"{}"));
    }

    #[test]
    fn keys_are_bounded_and_visible() {
        assert!(check_key("a2b9-uuid").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }
}
