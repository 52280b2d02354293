//! The invariants, checked in the databases themselves after the crowd has
//! gone.
//!
//! Only what the schemas do not already enforce is worth checking here: the
//! ticket database refuses two valid tickets for one seat (a partial unique
//! index) and a standing section held or sold past its capacity (a CHECK), so
//! counting those could never find anything. What can go wrong without any
//! constraint firing is agreement between rows: tickets against section
//! capacities, seat statuses and standing counters; tickets against the hold
//! they were sold from; money in the payment database against orders in the
//! ticket database (two databases, so no foreign key can tie them).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invariants {
    /// Places in the Event's sections (the ticket database's `sections`).
    pub capacity: u64,
    /// Valid tickets.
    pub sold: i64,
    /// Valid tickets beyond their section's capacity, summed over sections
    /// (a ticket in a section the database does not know counts in full).
    pub oversold: i64,
    /// Seats marked sold without a valid ticket of their hold, plus valid
    /// seated tickets whose seat is not sold under that ticket's hold.
    pub seats_out_of_step: i64,
    /// Standing sections whose `standing_inventory.sold` differs from their
    /// valid standing tickets.
    pub standing_out_of_step: i64,
    /// Reservations whose valid tickets differ from their hold's quantity
    /// (zero for a canceled reservation).
    pub reservations_with_wrong_tickets: i64,
    pub captured_payments: usize,
    /// Captured payments without a confirmed reservation.
    pub captured_without_reservation: usize,
    /// Confirmed reservations whose payment is not captured.
    pub reservations_without_payment: usize,
    /// Confirmed reservations whose captured payment differs in amount,
    /// currency or hold.
    pub payment_mismatches: usize,
    /// Payments still `authorized` after the settle time: money reserved on
    /// a card that is neither taken nor released.
    pub stuck_authorized: i64,
    /// Payments the ticket service could not apply (the hold had lapsed)
    /// that the payment service has not refunded: money taken for nothing.
    pub unapplied_not_refunded: usize,
    /// Payments buyers saw captured that the payment service does not hold
    /// as captured (or refunded).
    pub lost_payments: usize,
    pub reservations_confirmed_via_kafka: i64,
    pub seconds_to_settle: f64,
}

/// One line of the verdict: what was counted and its value (must be 0).
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub value: i64,
}

impl Invariants {
    /// Every counted invariant, in the order the report shows them. Each
    /// must be 0; [`Self::violations`] derives from this list so the
    /// report and the exit status cannot disagree.
    pub fn checks(&self) -> Vec<Check> {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        vec![
            Check {
                name: "tickets over their section's capacity",
                value: self.oversold,
            },
            Check {
                name: "seats whose status disagrees with their tickets",
                value: self.seats_out_of_step,
            },
            Check {
                name: "standing sections whose sold count disagrees with their tickets",
                value: self.standing_out_of_step,
            },
            Check {
                name: "reservations whose tickets differ from the hold's quantity",
                value: self.reservations_with_wrong_tickets,
            },
            Check {
                name: "captured payments without a reservation",
                value: n(self.captured_without_reservation),
            },
            Check {
                name: "reservations without a captured payment",
                value: n(self.reservations_without_payment),
            },
            Check {
                name: "payments whose amount, currency or hold differ from the reservation",
                value: n(self.payment_mismatches),
            },
            Check {
                name: "payments stuck in authorized",
                value: self.stuck_authorized,
            },
            Check {
                name: "unapplied payments not refunded (lost)",
                value: n(self.unapplied_not_refunded),
            },
            Check {
                name: "lost payments (seen captured, not in the payment database)",
                value: n(self.lost_payments),
            },
        ]
    }

    pub fn violations(&self) -> Vec<String> {
        let mut violations: Vec<String> = self
            .checks()
            .into_iter()
            .filter(|c| c.value != 0)
            .map(|c| format!("{}: {}", c.name, c.value))
            .collect();
        // Implied by the per-section check when the sections table is whole;
        // kept because it compares against a figure computed independently.
        if self.sold > i64::try_from(self.capacity).unwrap_or(i64::MAX) {
            violations.push(format!("sold {} of {} places", self.sold, self.capacity));
        }
        violations
    }

    /// True once the asynchronous paths (Kafka confirmation, the payment
    /// reconciler's captures and refunds) have nothing left to do.
    fn settled(&self) -> bool {
        self.captured_without_reservation == 0
            && self.reservations_without_payment == 0
            && self.stuck_authorized == 0
            && self.unapplied_not_refunded == 0
    }
}

/// The sale worked at all, from the crowd's side: invariants of the run, not
/// timings (a slower machine changes none of them).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Liveness {
    pub buyers: u64,
    /// Buyers who saw their payment captured.
    pub paid: u64,
    /// Buyers whose journey failed or ran out of time: every way to end
    /// other than paid, declined, abandoned and sold out.
    pub unexpected: u64,
    /// The most `unexpected` may be, as a share of `buyers`.
    pub max_unexpected_share: f64,
    /// Captured payments in the payment database.
    pub captured_payments: usize,
    /// `/internal/stats` samples the queue answered.
    pub samples: usize,
    /// The most active users any sample showed.
    pub peak_active_users: u64,
    /// The WaitingRoom's `maxActiveUsers`.
    pub max_active_users: u32,
    /// Buyers the board told there was nothing left (the sale sold out).
    pub saw_sold_out: u64,
    /// Of them, told by the queue while in line (never admitted).
    #[serde(default)]
    pub sold_out_in_line: u64,
    /// Places in the Event not sold when the run ended.
    pub unsold: u64,
    /// How many of those may be unsold even though the sale sold out:
    /// places let go (abandoned or declined holds) after the last sold-out
    /// buyer looked, and places left held by buyers who failed.
    pub unsold_allowed: u64,
}

impl Liveness {
    pub fn violations(&self) -> Vec<String> {
        let mut violations = Vec::new();
        if self.unexpected as f64 > self.max_unexpected_share * self.buyers as f64 {
            violations.push(format!(
                "buyers failed or timed out: {} of {} (at most {:.1} % may)",
                self.unexpected,
                self.buyers,
                self.max_unexpected_share * 100.0
            ));
        }
        if self.paid == 0 {
            violations.push("no buyer paid".to_owned());
        }
        if self.captured_payments as u64 != self.paid {
            violations.push(format!(
                "captured payments in the payment database: {}, buyers who saw theirs captured: {}",
                self.captured_payments, self.paid
            ));
        }
        // The admitter only ever admits up to the threshold and the active
        // set only shrinks between its ticks, so every sample of it, late or
        // not, must be within the threshold; without samples it is unchecked.
        if self.samples == 0 {
            violations.push(
                "the queue answered no /internal/stats sample: the active-user threshold is unchecked"
                    .to_owned(),
            );
        } else if self.peak_active_users > u64::from(self.max_active_users) {
            violations.push(format!(
                "active users peaked at {} over the threshold of {}",
                self.peak_active_users, self.max_active_users
            ));
        }
        // Sold out means sold: once buyers are told nothing is left, every
        // place still unsold must have come free after the last of them
        // looked (nobody was left to buy it) or sit in a failed buyer's
        // lapsing hold. More than that is availability that lied.
        if self.saw_sold_out > 0 && self.unsold > self.unsold_allowed {
            violations.push(format!(
                "{} buyers were told the sale was sold out, yet {} places are unsold (at most {} came free after the last of them looked or sit in failed buyers' holds)",
                self.saw_sold_out, self.unsold, self.unsold_allowed
            ));
        }
        violations
    }
}

async fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new().max_connections(2).connect(url).await
}

/// A confirmed reservation, as the ticket database holds it.
struct Order {
    hold_id: String,
    amount_minor: i64,
    currency: String,
}

/// A payment, as the payment database holds it.
struct Payment {
    status: String,
    hold_id: String,
    amount_minor: i64,
    currency: String,
}

async fn count(pool: &PgPool, sql: &str, event: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql).bind(event).fetch_one(pool).await
}

/// One pass over both databases.
async fn measure(
    ticket: &PgPool,
    payment: &PgPool,
    event: &str,
    seen_captured: &[String],
) -> Result<Invariants, sqlx::Error> {
    let capacity = count(
        ticket,
        "SELECT COALESCE(sum(capacity), 0)::bigint FROM sections WHERE event_id = $1",
        event,
    )
    .await?;
    let sold = count(
        ticket,
        "SELECT count(*) FROM tickets WHERE event_id = $1 AND status = 'valid'",
        event,
    )
    .await?;
    let oversold = count(
        ticket,
        "SELECT COALESCE(sum(GREATEST(t.n - COALESCE(s.capacity, 0), 0)), 0)::bigint
           FROM (SELECT section_id, count(*) AS n FROM tickets
                  WHERE event_id = $1 AND status = 'valid' GROUP BY section_id) t
           LEFT JOIN sections s ON s.event_id = $1 AND s.id = t.section_id",
        event,
    )
    .await?;
    // The hold ties a seat to its ticket: the seat keeps the hold id when it
    // is sold, the ticket reaches it through its reservation.
    let seats_out_of_step = count(
        ticket,
        "SELECT (SELECT count(*) FROM seats s
                  WHERE s.event_id = $1 AND s.status = 'sold'
                    AND NOT EXISTS (SELECT 1 FROM tickets t JOIN reservations r ON r.id = t.reservation_id
                                     WHERE t.event_id = s.event_id AND t.seat_id = s.seat_id
                                       AND t.status = 'valid' AND r.hold_id = s.hold_id))
              + (SELECT count(*) FROM tickets t JOIN reservations r ON r.id = t.reservation_id
                  WHERE t.event_id = $1 AND t.status = 'valid' AND t.seat_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM seats s
                                     WHERE s.event_id = t.event_id AND s.seat_id = t.seat_id
                                       AND s.section_id = t.section_id AND s.status = 'sold'
                                       AND s.hold_id = r.hold_id))",
        event,
    )
    .await?;
    let standing_out_of_step = count(
        ticket,
        "SELECT count(*)
           FROM (SELECT section_id, sold FROM standing_inventory WHERE event_id = $1) si
           FULL JOIN (SELECT section_id, count(*) AS n FROM tickets
                       WHERE event_id = $1 AND status = 'valid' AND seat_id IS NULL
                       GROUP BY section_id) t
             ON t.section_id = si.section_id
          WHERE COALESCE(si.sold, 0) <> COALESCE(t.n, 0)",
        event,
    )
    .await?;
    let reservations_with_wrong_tickets = count(
        ticket,
        "SELECT count(*) FROM reservations r JOIN holds h ON h.id = r.hold_id
          WHERE r.event_id = $1
            AND (SELECT count(*) FROM tickets t WHERE t.reservation_id = r.id AND t.status = 'valid')
                <> CASE WHEN r.status = 'confirmed' THEN h.quantity ELSE 0 END",
        event,
    )
    .await?;
    let reservations_confirmed_via_kafka = count(
        ticket,
        "SELECT count(*) FROM reservations WHERE event_id = $1 AND status = 'confirmed' AND confirmed_via = 'kafka'",
        event,
    )
    .await?;
    let orders: HashMap<String, Order> = sqlx::query_as::<_, (String, String, i64, String)>(
        "SELECT payment_id, hold_id::text, amount_minor, currency FROM reservations
          WHERE event_id = $1 AND status = 'confirmed'",
    )
    .bind(event)
    .fetch_all(ticket)
    .await?
    .into_iter()
    .map(|(payment_id, hold_id, amount_minor, currency)| {
        (
            payment_id.to_ascii_lowercase(),
            Order {
                hold_id: hold_id.to_ascii_lowercase(),
                amount_minor,
                currency,
            },
        )
    })
    .collect();
    // No event column on unapplied_payments: its hold says which event.
    let unapplied: Vec<String> = sqlx::query_scalar(
        "SELECT u.payment_id FROM unapplied_payments u JOIN holds h ON h.id = u.hold_id
          WHERE h.event_id = $1",
    )
    .bind(event)
    .fetch_all(ticket)
    .await?;
    let payments: HashMap<String, Payment> =
        sqlx::query_as::<_, (String, String, String, i64, String)>(
            "SELECT id::text, status, hold_id, amount_minor, currency FROM payments WHERE event_id = $1",
        )
        .bind(event)
        .fetch_all(payment)
        .await?
        .into_iter()
        .map(|(id, status, hold_id, amount_minor, currency)| {
            (
                id,
                Payment {
                    status,
                    hold_id: hold_id.to_ascii_lowercase(),
                    amount_minor,
                    currency,
                },
            )
        })
        .collect();
    let captured: HashSet<&str> = payments
        .iter()
        .filter(|(_, p)| p.status == "captured")
        .map(|(id, _)| id.as_str())
        .collect();
    let status = |id: &str| {
        payments
            .get(&id.to_ascii_lowercase())
            .map(|p| p.status.as_str())
    };
    Ok(Invariants {
        capacity: u64::try_from(capacity).unwrap_or_default(),
        sold,
        oversold,
        seats_out_of_step,
        standing_out_of_step,
        reservations_with_wrong_tickets,
        captured_payments: captured.len(),
        captured_without_reservation: captured
            .iter()
            .filter(|id| !orders.contains_key(**id))
            .count(),
        reservations_without_payment: orders
            .keys()
            .filter(|id| !captured.contains(id.as_str()))
            .count(),
        payment_mismatches: orders
            .iter()
            .filter_map(|(id, order)| Some((order, payments.get(id)?)))
            .filter(|(_, p)| p.status == "captured")
            .filter(|(order, p)| {
                p.amount_minor != order.amount_minor
                    || p.currency != order.currency
                    || p.hold_id != order.hold_id
            })
            .count(),
        stuck_authorized: payments
            .values()
            .filter(|p| p.status == "authorized")
            .count() as i64,
        unapplied_not_refunded: unapplied
            .iter()
            .filter(|id| status(id) != Some("refunded"))
            .count(),
        lost_payments: seen_captured
            .iter()
            .filter(|id| !matches!(status(id), Some("captured" | "refunded")))
            .count(),
        reservations_confirmed_via_kafka,
        seconds_to_settle: 0.0,
    })
}

/// Waits (up to `settle`) for the asynchronous paths to finish, then checks.
/// `settle` of zero checks once, as the databases are.
pub async fn check(
    ticket_url: &str,
    payment_url: &str,
    event: &str,
    seen_captured: &[String],
    settle: Duration,
) -> Result<Invariants, sqlx::Error> {
    let ticket = pool(ticket_url).await?;
    let payment = pool(payment_url).await?;
    let started = Instant::now();
    let mut invariants = loop {
        let invariants = measure(&ticket, &payment, event, seen_captured).await?;
        if invariants.settled() || started.elapsed() >= settle {
            break invariants;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    invariants.seconds_to_settle = started.elapsed().as_secs_f64();
    ticket.close().await;
    payment.close().await;
    Ok(invariants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Liveness {
        Liveness {
            buyers: 2_000,
            paid: 900,
            unexpected: 20,
            max_unexpected_share: 0.01,
            captured_payments: 900,
            samples: 60,
            peak_active_users: 1_500,
            max_active_users: 1_500,
            saw_sold_out: 1_000,
            sold_out_in_line: 0,
            unsold: 3,
            unsold_allowed: 3,
        }
    }

    #[test]
    fn places_may_stay_unsold_only_when_nobody_was_told_it_was_sold_out() {
        let mut liveness = healthy();
        liveness.saw_sold_out = 0;
        liveness.unsold = 10_000;
        liveness.unsold_allowed = 0;
        assert_eq!(liveness.violations(), Vec::<String>::new());
    }

    #[test]
    fn a_healthy_run_is_live() {
        assert_eq!(healthy().violations(), Vec::<String>::new());
    }

    #[test]
    fn each_liveness_failure_is_a_violation() {
        type Corruption = fn(&mut Liveness);
        let cases: [(&str, Corruption); 6] = [
            ("failed or timed out", |l| l.unexpected = 21),
            ("places are unsold", |l| l.unsold = 4),
            ("no buyer paid", |l| {
                l.paid = 0;
                l.captured_payments = 0;
            }),
            ("captured payments in the payment database", |l| {
                l.captured_payments = 899
            }),
            ("no /internal/stats sample", |l| l.samples = 0),
            ("over the threshold", |l| l.peak_active_users = 1_501),
        ];
        for (expected, corrupt) in cases {
            let mut liveness = healthy();
            corrupt(&mut liveness);
            let violations = liveness.violations();
            assert!(
                violations.iter().any(|v| v.contains(expected)),
                "{expected}: {violations:?}"
            );
        }
    }
}
