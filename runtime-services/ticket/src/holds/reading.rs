//! A hold after it was made: read by its buyer or the payment service (a
//! hold whose time is up reads as expired before the reaper reaches it),
//! released by its buyer, or expired by the reaper, its seats and standing
//! places given back.

use chrono::{DateTime, Utc};
use sqlx::Row;
use urr_service_common::contracts::{HoldQuote, HoldStatus};

use super::{HoldDesk, HoldView};
use crate::error::TicketError;
use crate::locks::lock_value;

impl HoldDesk {
    /// The buyer's own hold.
    pub async fn get(&self, user: &str, hold_id: &str) -> Result<HoldView, TicketError> {
        let view = self.load(hold_id).await?;
        if view.user_id != user {
            return Err(TicketError::UnknownHold);
        }
        Ok(view)
    }

    /// A hold by id, with the check at read: a hold whose time is up shows
    /// as expired even before the reaper has reached it.
    pub async fn load(&self, hold_id: &str) -> Result<HoldView, TicketError> {
        let id = uuid::Uuid::parse_str(hold_id).map_err(|_| TicketError::UnknownHold)?;
        let row = sqlx::query(
            "SELECT user_id, section_id, seat_ids, quantity, amount_minor, currency, status, expires_at,
                    expires_at <= now() AS lapsed
             FROM holds WHERE id = $1 AND event_id = $2",
        )
        .bind(id)
        .bind(self.catalog.event())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(TicketError::UnknownHold)?;
        let stored: String = row.try_get("status")?;
        let mut status = HoldStatus::parse(&stored).unwrap_or(HoldStatus::Expired);
        if status == HoldStatus::Active && row.try_get::<bool, _>("lapsed")? {
            status = HoldStatus::Expired;
        }
        let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
        Ok(HoldView {
            hold_id: id.to_string(),
            event: self.catalog.event().to_owned(),
            user_id: row.try_get("user_id")?,
            status,
            seats: row.try_get("seat_ids")?,
            section: row.try_get("section_id")?,
            quantity: row.try_get::<i32, _>("quantity")? as u32,
            amount_minor: row.try_get("amount_minor")?,
            currency: row.try_get("currency")?,
            expires_at_ms: expires_at.timestamp_millis(),
        })
    }

    /// The internal quote the payment service prices a payment from.
    pub async fn quote(&self, hold_id: &str) -> Result<HoldQuote, TicketError> {
        let view = self.load(hold_id).await?;
        Ok(HoldQuote {
            hold_id: view.hold_id,
            event: view.event,
            user_id: view.user_id,
            amount_minor: view.amount_minor,
            currency: view.currency,
            expires_at_ms: view.expires_at_ms,
            status: view.status,
            quantity: view.quantity,
        })
    }

    /// The buyer lets go of an active hold.
    pub async fn release(&self, user: &str, hold_id: &str) -> Result<(), TicketError> {
        let id = uuid::Uuid::parse_str(hold_id).map_err(|_| TicketError::UnknownHold)?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM holds WHERE id = $1 AND event_id = $2")
                .bind(id)
                .bind(self.catalog.event())
                .fetch_optional(&self.pool)
                .await?;
        match owner {
            Some(owner) if owner == user => {}
            _ => return Err(TicketError::UnknownHold),
        }
        match self.close(id, "released").await? {
            Some(_) => {
                self.metrics.releases.inc();
                Ok(())
            }
            None => {
                let view = self.load(hold_id).await?;
                Err(TicketError::HoldNotActive(view.status.as_str()))
            }
        }
    }

    /// Expires up to `limit` holds whose time is up; returns how many.
    pub async fn expire_due(&self, limit: i64) -> Result<u64, TicketError> {
        let due: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM holds WHERE event_id = $1 AND status = 'active' AND expires_at <= now()
             ORDER BY expires_at LIMIT $2",
        )
        .bind(self.catalog.event())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = 0;
        for id in due {
            if self.close(id, "expired").await?.is_some() {
                expired += 1;
                self.metrics.expiries.inc();
            }
        }
        Ok(expired)
    }

    /// Ends an active hold (`released` or `expired`): seats back on sale where
    /// they are still this hold's, standing places returned, locks dropped.
    /// `None` when the hold was not active any more.
    async fn close(&self, id: uuid::Uuid, to: &'static str) -> Result<Option<()>, TicketError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE holds SET status = $2, closed_at = now()
             WHERE id = $1 AND status = 'active' AND ($2 <> 'expired' OR expires_at <= now())
             RETURNING section_id, seat_ids, quantity, fencing_token",
        )
        .bind(id)
        .bind(to)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let seats: Vec<String> = row.try_get("seat_ids")?;
        let section: Option<String> = row.try_get("section_id")?;
        let quantity: i32 = row.try_get("quantity")?;
        let token: i64 = row.try_get("fencing_token")?;
        if !seats.is_empty() {
            sqlx::query(
                "UPDATE seats SET status = 'available', version = version + 1, hold_id = NULL, fencing_token = NULL
                 WHERE event_id = $1 AND hold_id = $2 AND status = 'held'",
            )
            .bind(self.catalog.event())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(section) = &section {
            sqlx::query(
                "UPDATE standing_inventory SET held = held - $1, version = version + 1
                 WHERE event_id = $2 AND section_id = $3",
            )
            .bind(quantity)
            .bind(self.catalog.event())
            .bind(section)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // After the commit: a lock freed before it could let a buyer reach
        // PostgreSQL while the seat row still says held (refused there, but
        // a wasted round trip).
        if !seats.is_empty() {
            self.locks
                .release_seats(&seats, &lock_value(&id, token))
                .await?;
        }
        if let Some(section) = &section {
            self.locks.return_standing(section, quantity as u32).await?;
        }
        Ok(Some(()))
    }
}
