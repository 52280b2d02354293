//! Tickets after the sale: the buyer's list, transfers to another user, and
//! the ownership history fed by the `transfer-events` consumer.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use urr_service_common::contracts::{TRANSFER_EVENT_V1, TRANSFER_EVENTS, TransferEvent};
use urr_service_common::unix_now_ms;

use crate::error::TicketError;
use crate::holds::{HoldDesk, places_of_user, user_lock_id};

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    pub ticket_id: String,
    pub event: String,
    pub section: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_id: Option<String>,
    pub hold_id: String,
    pub reservation_id: String,
    pub owner_user_id: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnershipChange {
    pub from_user_id: String,
    pub to_user_id: String,
    pub occurred_at_ms: i64,
}

/// Longest user id accepted as a transfer target.
const MAX_USER_ID_LEN: usize = 200;

const TICKET_COLUMNS: &str = "t.id, t.event_id, t.section_id, t.seat_id, r.hold_id, t.reservation_id, t.owner_user_id, t.status";

fn view(row: &sqlx::postgres::PgRow) -> Result<TicketView, sqlx::Error> {
    Ok(TicketView {
        ticket_id: row.try_get::<uuid::Uuid, _>("id")?.to_string(),
        event: row.try_get("event_id")?,
        section: row.try_get("section_id")?,
        seat_id: row.try_get("seat_id")?,
        hold_id: row.try_get::<uuid::Uuid, _>("hold_id")?.to_string(),
        reservation_id: row.try_get::<uuid::Uuid, _>("reservation_id")?.to_string(),
        owner_user_id: row.try_get("owner_user_id")?,
        status: row.try_get("status")?,
    })
}

impl HoldDesk {
    /// The valid tickets `user` owns at this event.
    pub async fn tickets_of(&self, user: &str) -> Result<Vec<TicketView>, TicketError> {
        let rows = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t JOIN reservations r ON r.id = t.reservation_id
             WHERE t.event_id = $1 AND t.owner_user_id = $2 AND t.status = 'valid'
             ORDER BY t.created_at, t.id"
        ))
        .bind(self.catalog.event())
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(view).collect::<Result<_, _>>()?)
    }

    /// Gives a valid ticket of `from` to `to`. The receiver's per-user limit
    /// applies (a transfer must not become a way around it).
    pub async fn transfer(
        &self,
        from: &str,
        ticket_id: &str,
        to: &str,
    ) -> Result<TicketView, TicketError> {
        let id = uuid::Uuid::parse_str(ticket_id).map_err(|_| TicketError::UnknownTicket)?;
        if to.is_empty() || to.len() > MAX_USER_ID_LEN || to.chars().any(char::is_control) {
            return Err(TicketError::BadRequest(format!(
                "toUserId must be 1 to {MAX_USER_ID_LEN} printable characters"
            )));
        }
        if to == from {
            return Err(TicketError::BadRequest(
                "you already own this ticket".into(),
            ));
        }
        let event = self.catalog.event();
        let mut tx = self.pool.begin().await?;
        // Both users' limits are guarded by their advisory locks, taken in a
        // fixed order so two opposite transfers cannot deadlock.
        let mut users = [from, to];
        users.sort();
        for user in users {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(user_lock_id(event, user))
                .execute(&mut *tx)
                .await?;
        }
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT owner_user_id FROM tickets WHERE id = $1 AND event_id = $2 AND status = 'valid' FOR UPDATE",
        )
        .bind(id)
        .bind(event)
        .fetch_optional(&mut *tx)
        .await?;
        if owner.as_deref() != Some(from) {
            return Err(TicketError::UnknownTicket);
        }
        let max = i64::from(self.catalog.settings.limits.max_seats_per_user);
        if places_of_user(&mut tx, event, to).await? + 1 > max {
            return Err(TicketError::LimitExceeded(format!(
                "the receiver already holds or owns {max} places at this event"
            )));
        }
        sqlx::query("UPDATE tickets SET owner_user_id = $2 WHERE id = $1")
            .bind(id)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ticket_transfers (id, ticket_id, from_user_id, to_user_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(id)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        let message = TransferEvent {
            schema: TRANSFER_EVENT_V1.to_owned(),
            message_id: uuid::Uuid::new_v4().to_string(),
            ticket_id: id.to_string(),
            event: event.to_owned(),
            from_user_id: from.to_owned(),
            to_user_id: to.to_owned(),
            occurred_at_ms: unix_now_ms(),
        };
        urr_outbox::enqueue(&mut tx, TRANSFER_EVENTS, &message.ticket_id, &message).await?;
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t JOIN reservations r ON r.id = t.reservation_id WHERE t.id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.metrics.transfers.inc();
        Ok(view(&row)?)
    }

    /// The ownership history of a ticket its current owner (or a former
    /// owner) asks about, as recorded from `transfer-events`.
    pub async fn history(
        &self,
        user: &str,
        ticket_id: &str,
    ) -> Result<Vec<OwnershipChange>, TicketError> {
        let id = uuid::Uuid::parse_str(ticket_id).map_err(|_| TicketError::UnknownTicket)?;
        let rows = sqlx::query(
            "SELECT from_user_id, to_user_id, occurred_at FROM ticket_ownership_log
             WHERE ticket_id = $1 ORDER BY occurred_at, message_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT owner_user_id FROM tickets WHERE id = $1 AND event_id = $2")
                .bind(id)
                .bind(self.catalog.event())
                .fetch_optional(&self.pool)
                .await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let at: DateTime<Utc> = row.try_get("occurred_at")?;
            changes.push(OwnershipChange {
                from_user_id: row.try_get("from_user_id")?,
                to_user_id: row.try_get("to_user_id")?,
                occurred_at_ms: at.timestamp_millis(),
            });
        }
        let involved = owner.as_deref() == Some(user)
            || changes
                .iter()
                .any(|c| c.from_user_id == user || c.to_user_id == user);
        if owner.is_none() || !involved {
            return Err(TicketError::UnknownTicket);
        }
        Ok(changes)
    }
}
