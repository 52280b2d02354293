//! `Idempotency-Key` for `POST holds`: a retry with the same key and body
//! gets the first answer (status and body), a different body with the same
//! key is refused, a concurrent duplicate is told to wait.
//!
//! Where it lives, and why: a key is remembered in Redis by the same Lua
//! call that takes the seat locks (the fingerprint and hold id, for as long
//! as the locks live), and in PostgreSQL with the answer, in the hold's own
//! transaction. So a buyer who loses the race never touches PostgreSQL,
//! with a key or without one; a retry is recognised at Redis and answered
//! from PostgreSQL; and if Redis forgot the key (the locks lapsed, or Redis
//! restarted), the row's primary key still stops a second hold.
//!
//! Only a hold is remembered. A refusal (seats taken, limit, sale closed)
//! changed nothing, so a retry simply asks again and gets the answer that is
//! true then; the key stays free for it. The previous design claimed the key
//! in PostgreSQL before the work, which cost every loser two writes there.

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};

use crate::error::TicketError;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 128;

/// An `Idempotency-Key` with what it must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub user: String,
    pub key: String,
    /// Hash of method, path and body: "the same request".
    pub fingerprint: String,
}

/// A stored answer, sent again.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub status: u16,
    pub body: serde_json::Value,
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

impl IdempotencyKey {
    /// A checked key for one request.
    pub fn new(
        user: &str,
        key: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Self, TicketError> {
        check_key(key)?;
        Ok(Self {
            user: user.to_owned(),
            key: key.to_owned(),
            fingerprint: request_hash(method, path, body),
        })
    }

    /// The key's Redis key: hash-tagged with the event like the seat locks
    /// (one slot, so the lock script may touch both); user and key hashed,
    /// so neither appears in Redis and no separator can be forged.
    pub fn redis_key(&self, event: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.user.as_bytes());
        hasher.update([0]);
        hasher.update(self.key.as_bytes());
        format!("urr:{{{event}}}:idem:{:x}", hasher.finalize())
    }

    /// Stores the answer inside the hold's transaction. `Ok(false)`: the key
    /// already has an answer (Redis had forgotten it); the caller rolls back
    /// and replays that answer.
    pub async fn record_in(
        &self,
        conn: &mut PgConnection,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.user)
        .bind(&self.key)
        .bind(&self.fingerprint)
        .bind(i32::from(status))
        .bind(body)
        .execute(conn)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The stored answer of this key, if the first request has committed
    /// one; a different request under the same key is refused.
    /// On `conn`: inside a transaction, pass the transaction — a second
    /// connection from the pool while one is held can starve the pool under
    /// a crowd (every writer holding one and waiting for another).
    pub async fn stored_answer(
        &self,
        conn: impl sqlx::PgExecutor<'_>,
    ) -> Result<Option<Replay>, TicketError> {
        let row = sqlx::query(
            "SELECT request_hash, status_code, response FROM idempotency_keys
             WHERE user_id = $1 AND key = $2",
        )
        .bind(&self.user)
        .bind(&self.key)
        .fetch_optional(conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if row.try_get::<String, _>("request_hash")? != self.fingerprint {
            return Err(TicketError::IdempotencyMismatch);
        }
        match (
            row.try_get::<Option<i32>, _>("status_code")?,
            row.try_get::<Option<serde_json::Value>, _>("response")?,
        ) {
            (Some(status), Some(body)) => Ok(Some(Replay {
                status: u16::try_from(status).unwrap_or(201),
                body,
            })),
            _ => Ok(None),
        }
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
    fn redis_keys_share_the_event_slot_and_hide_user_and_key() {
        let key = IdempotencyKey::new("alice", "k-1", "POST", "/p", b"{}").expect("key");
        let redis_key = key.redis_key("concert");
        assert!(redis_key.starts_with("urr:{concert}:idem:"), "{redis_key}");
        assert!(!redis_key.contains("alice") && !redis_key.contains("k-1"));
        // "a" + "b:c" and "a:b" + "c" are different keys.
        let one = IdempotencyKey::new("a", "b:c", "POST", "/p", b"{}").expect("key");
        let two = IdempotencyKey::new("a:b", "c", "POST", "/p", b"{}").expect("key");
        assert_ne!(one.redis_key("e"), two.redis_key("e"));
    }

    #[test]
    fn keys_are_bounded_and_visible() {
        assert!(check_key("a2b9-uuid").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }
}
