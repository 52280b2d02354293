//! The room's controls in Redis: the `random` method's seed, the inventory
//! the admitter reads from the ticket service, and the kicks the operator
//! asks for (`spec.control`).

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{QueueStore, Result};
use crate::inventory::Places;

/// The ticket service's last inventory read, as the admitter recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inventory {
    /// Neither sold nor held.
    pub places_left: u64,
    /// In someone's basket: they come back if the hold expires or is let go.
    pub places_held: u64,
    pub at_ms: i64,
}

impl Inventory {
    /// Nothing left and nothing that can come back (short of a refund).
    pub fn sold_out_for_good(&self) -> bool {
        self.places_left == 0 && self.places_held == 0
    }
}

/// An inventory read older than this is ignored (admission goes on): a
/// ticket service that stopped answering must not stop the sale.
pub const INVENTORY_FRESH_MS: i64 = 10_000;

impl QueueStore {
    /// The `random` method's seed (drawn and committed to on first use).
    pub async fn random_seed(&self) -> Result<String> {
        self.random_seed
            .get_or_try_init(|| async {
                let mut conn = self.conn.clone();
                let key = self.keys.random_seed();
                let fresh = crate::fairness::new_seed();
                let created: bool = conn.hset_nx(key, "seed", &fresh).await?;
                if created {
                    conn.hset::<_, _, _, ()>(
                        key,
                        "commitment",
                        crate::fairness::commitment(&fresh),
                    )
                    .await?;
                }
                let current: Option<String> = conn.hget(key, "seed").await?;
                Ok(current.unwrap_or(fresh))
            })
            .await
            .cloned()
    }

    /// The random method's hash (`seed`, `commitment`, `usedFromMs`).
    pub async fn random_state(&self) -> Result<HashMap<String, String>> {
        let mut conn = self.conn.clone();
        conn.hgetall(self.keys.random_seed()).await
    }

    /// Records the places the ticket service has left.
    pub async fn record_inventory(&self, places: Places, now_ms: i64) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .hset_multiple(
                self.keys.inventory(),
                &[
                    ("placesLeft", places.left as i64),
                    ("placesHeld", places.held as i64),
                    ("atMs", now_ms),
                ],
            )
            .ignore()
            .expire(self.keys.inventory(), 3600)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    pub async fn inventory(&self) -> Result<Option<Inventory>> {
        let mut conn = self.conn.clone();
        let (left, held, at): (Option<u64>, Option<u64>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.keys.inventory())
            .arg("placesLeft")
            .arg("placesHeld")
            .arg("atMs")
            .query_async(&mut conn)
            .await?;
        Ok(left.zip(at).map(|(places_left, at_ms)| Inventory {
            places_left,
            places_held: held.unwrap_or_default(),
            at_ms,
        }))
    }

    /// Kicks everyone the operator asked to (`spec.control.kickUsers` and
    /// blocked users): out of the queue, out of the active set with their
    /// entry tokens revoked. Returns who was in and is now out.
    pub async fn kick_requested(&self, now_ms: i64) -> Result<Vec<String>> {
        self.end_sessions(self.keys.kick(), now_ms).await
    }

    /// Ends the sessions of buyers whose order completed (the ticket
    /// service's signal), freeing their slots at once; with
    /// `end_session_on_order` off the signals are dropped.
    pub async fn end_ordered_sessions(&self, enabled: bool, now_ms: i64) -> Result<Vec<String>> {
        if !enabled {
            let mut conn = self.conn.clone();
            conn.del::<_, ()>(self.keys.session_ended()).await?;
            return Ok(Vec::new());
        }
        self.end_sessions(self.keys.session_ended(), now_ms).await
    }

    /// Removes everyone in the set `requests` (as a leave: out of the line
    /// or the active set, entry tokens revoked) and empties it.
    async fn end_sessions(&self, requests: &str, now_ms: i64) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let requested: Vec<String> = conn.smembers(requests).await?;
        let mut ended = Vec::new();
        for user in requested {
            if self.leave(&user, now_ms).await? {
                ended.push(user.clone());
            }
            conn.srem::<_, _, ()>(requests, &user).await?;
        }
        Ok(ended)
    }
}
