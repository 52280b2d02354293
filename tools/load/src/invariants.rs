//! The invariants, checked in the databases themselves after the crowd has
//! gone: nothing oversold, every captured payment with exactly one confirmed
//! reservation (and no reservation without a captured payment), no payment a
//! buyer saw captured missing from the payment service.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invariants {
    pub capacity: u64,
    pub sold: i64,
    /// Seats with more than one valid ticket, plus standing sections sold past capacity.
    pub oversold: i64,
    pub captured_payments: usize,
    /// Captured payments without exactly one confirmed reservation.
    pub paid_without_one_reservation: usize,
    /// Confirmed reservations whose payment is not captured.
    pub reservations_without_payment: usize,
    /// Payments buyers saw captured that the payment service does not hold as captured (or refunded).
    pub lost_payments: usize,
    pub reservations_confirmed_via_kafka: i64,
    pub seconds_to_settle: f64,
}

impl Invariants {
    pub fn violations(&self) -> Vec<String> {
        let mut violations = Vec::new();
        if self.oversold != 0 {
            violations.push(format!("oversold: {}", self.oversold));
        }
        if self.sold > self.capacity as i64 {
            violations.push(format!("sold {} of {} places", self.sold, self.capacity));
        }
        if self.paid_without_one_reservation != 0 {
            violations.push(format!(
                "paid orders without exactly one reservation: {}",
                self.paid_without_one_reservation
            ));
        }
        if self.reservations_without_payment != 0 {
            violations.push(format!(
                "reservations without a captured payment: {}",
                self.reservations_without_payment
            ));
        }
        if self.lost_payments != 0 {
            violations.push(format!("lost payments: {}", self.lost_payments));
        }
        violations
    }
}

async fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new().max_connections(2).connect(url).await
}

async fn reservations_by_payment(
    ticket: &PgPool,
    event: &str,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT payment_id, count(*) FROM reservations WHERE event_id = $1 AND status = 'confirmed' GROUP BY payment_id",
    )
    .bind(event)
    .fetch_all(ticket)
    .await?;
    Ok(rows.into_iter().collect())
}

async fn captured(payment: &PgPool, event: &str) -> Result<HashSet<String>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id::text FROM payments WHERE event_id = $1 AND status = 'captured'",
    )
    .bind(event)
    .fetch_all(payment)
    .await?;
    Ok(ids.into_iter().collect())
}

/// Waits (up to `settle`) for the fallback paths to finish, then checks.
pub async fn check(
    ticket_url: &str,
    payment_url: &str,
    event: &str,
    capacity: u64,
    seen_captured: &[String],
    settle: Duration,
) -> Result<Invariants, sqlx::Error> {
    let ticket = pool(ticket_url).await?;
    let payment = pool(payment_url).await?;
    let started = Instant::now();
    let (captured, reservations) = loop {
        let captured = captured(&payment, event).await?;
        let reservations = reservations_by_payment(&ticket, event).await?;
        let settled = captured.iter().all(|id| reservations.get(id) == Some(&1));
        if settled || started.elapsed() > settle {
            break (captured, reservations);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let duplicate_seats: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT seat_id FROM tickets WHERE event_id = $1 AND status = 'valid'
                               AND seat_id IS NOT NULL GROUP BY seat_id HAVING count(*) > 1) d",
    )
    .bind(event)
    .fetch_one(&ticket)
    .await?;
    let standing_over: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM standing_inventory WHERE event_id = $1 AND sold > capacity",
    )
    .bind(event)
    .fetch_one(&ticket)
    .await?;
    let sold: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE event_id = $1 AND status = 'valid'")
            .bind(event)
            .fetch_one(&ticket)
            .await?;
    let via_kafka: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM reservations WHERE event_id = $1 AND confirmed_via = 'kafka'",
    )
    .bind(event)
    .fetch_one(&ticket)
    .await?;
    let still_held: HashSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT id::text FROM payments WHERE event_id = $1 AND status IN ('captured', 'refunded')",
    )
    .bind(event)
    .fetch_all(&payment)
    .await?
    .into_iter()
    .collect();
    Ok(Invariants {
        capacity,
        sold,
        oversold: duplicate_seats + standing_over,
        captured_payments: captured.len(),
        paid_without_one_reservation: captured
            .iter()
            .filter(|id| reservations.get(*id) != Some(&1))
            .count(),
        reservations_without_payment: reservations
            .keys()
            .filter(|id| !captured.contains(*id))
            .count(),
        lost_payments: seen_captured
            .iter()
            .filter(|id| !still_held.contains(*id))
            .count(),
        reservations_confirmed_via_kafka: via_kafka,
        seconds_to_settle: started.elapsed().as_secs_f64(),
    })
}
