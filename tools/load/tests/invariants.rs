//! Each invariant `urr-load` checks in the databases, against the real
//! PostgreSQL of the local stack (`DATABASE_URL`, from `scripts/stack env`):
//! a ticket and a payment database with the services' own migrations, seeded
//! with a small consistent sale → no violation; then, each in a fresh copy of
//! that state, one kind of corruption the schemas let through → that
//! violation is reported. A check that could never fire fails here.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use urr_load::invariants::{self, Invariants};

// The migrations from the services' directories rather than their crates'
// MIGRATOR: the same files, without building both services into this test.
static TICKET_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../runtime-services/ticket/migrations");
static PAYMENT_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../runtime-services/payment/migrations");

const EVENT: &str = "e1";
const P1: &str = "00000000-0000-4000-8000-0000000000a1";
const P2: &str = "00000000-0000-4000-8000-0000000000a2";
const P3: &str = "00000000-0000-4000-8000-0000000000a3";

/// A small sale where everything agrees: seated `a` (2 × 2) with two seats
/// sold in one order, standing `floor` (5) with three places sold in
/// another, a hold that lapsed before its payment landed (refunded), a
/// declined payment, and a canceled order (tickets void, refunded).
const TICKET_SEED: &str = r#"
INSERT INTO events (id, display_name, settings, settings_hash) VALUES ('e1', 'Test', '{}', 'x');
INSERT INTO sections (event_id, id, name, kind, rows_count, seats_per_row, capacity, price_minor, currency) VALUES
  ('e1', 'a', 'Block A', 'seated', 2, 2, 4, 1000, 'KRW'),
  ('e1', 'floor', 'Floor', 'standing', NULL, NULL, 5, 500, 'KRW');
INSERT INTO holds (id, event_id, user_id, section_id, seat_ids, quantity, amount_minor, currency, fencing_token, status, expires_at, payment_id) VALUES
  ('00000000-0000-4000-8000-0000000000b1', 'e1', 'u1', 'a', '{a-1-1,a-1-2}', 2, 2000, 'KRW', 1, 'confirmed', now(), '00000000-0000-4000-8000-0000000000a1'),
  ('00000000-0000-4000-8000-0000000000b2', 'e1', 'u2', 'floor', '{}', 3, 1500, 'KRW', 2, 'confirmed', now(), '00000000-0000-4000-8000-0000000000a2'),
  ('00000000-0000-4000-8000-0000000000b3', 'e1', 'u3', 'floor', '{}', 1, 500, 'KRW', 3, 'expired', now(), '00000000-0000-4000-8000-0000000000a3'),
  ('00000000-0000-4000-8000-0000000000b4', 'e1', 'u4', 'a', '{a-2-1}', 1, 1000, 'KRW', 4, 'released', now(), '00000000-0000-4000-8000-0000000000a4'),
  ('00000000-0000-4000-8000-0000000000b5', 'e1', 'u5', 'a', '{a-2-2}', 1, 1000, 'KRW', 5, 'canceled', now(), '00000000-0000-4000-8000-0000000000a5');
INSERT INTO seats (event_id, seat_id, section_id, row_no, seat_no, status, hold_id, fencing_token) VALUES
  ('e1', 'a-1-1', 'a', 1, 1, 'sold', '00000000-0000-4000-8000-0000000000b1', 1),
  ('e1', 'a-1-2', 'a', 1, 2, 'sold', '00000000-0000-4000-8000-0000000000b1', 1),
  ('e1', 'a-2-1', 'a', 2, 1, 'available', NULL, NULL),
  ('e1', 'a-2-2', 'a', 2, 2, 'available', NULL, NULL);
INSERT INTO standing_inventory (event_id, section_id, capacity, held, sold) VALUES ('e1', 'floor', 5, 0, 3);
INSERT INTO reservations (id, hold_id, payment_id, event_id, user_id, amount_minor, currency, status, confirmed_via) VALUES
  ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1', 'e1', 'u1', 2000, 'KRW', 'confirmed', 'rest'),
  ('00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-0000000000a2', 'e1', 'u2', 1500, 'KRW', 'confirmed', 'kafka'),
  ('00000000-0000-4000-8000-0000000000c5', '00000000-0000-4000-8000-0000000000b5', '00000000-0000-4000-8000-0000000000a5', 'e1', 'u5', 1000, 'KRW', 'canceled', 'rest');
INSERT INTO tickets (id, reservation_id, event_id, section_id, seat_id, owner_user_id, status) VALUES
  ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000c1', 'e1', 'a', 'a-1-1', 'u1', 'valid'),
  ('00000000-0000-4000-8000-0000000000d2', '00000000-0000-4000-8000-0000000000c1', 'e1', 'a', 'a-1-2', 'u1', 'valid'),
  ('00000000-0000-4000-8000-0000000000d3', '00000000-0000-4000-8000-0000000000c2', 'e1', 'floor', NULL, 'u2', 'valid'),
  ('00000000-0000-4000-8000-0000000000d4', '00000000-0000-4000-8000-0000000000c2', 'e1', 'floor', NULL, 'u2', 'valid'),
  ('00000000-0000-4000-8000-0000000000d5', '00000000-0000-4000-8000-0000000000c2', 'e1', 'floor', NULL, 'u2', 'valid'),
  ('00000000-0000-4000-8000-0000000000d6', '00000000-0000-4000-8000-0000000000c5', 'e1', 'a', 'a-2-2', 'u5', 'void');
INSERT INTO unapplied_payments (payment_id, hold_id, reason) VALUES
  ('00000000-0000-4000-8000-0000000000a3', '00000000-0000-4000-8000-0000000000b3', 'hold expired');
"#;

const PAYMENT_SEED: &str = r#"
INSERT INTO payments (id, event_id, hold_id, user_id, amount_minor, currency, status, provider) VALUES
  ('00000000-0000-4000-8000-0000000000a1', 'e1', '00000000-0000-4000-8000-0000000000b1', 'u1', 2000, 'KRW', 'captured', 'sandbox'),
  ('00000000-0000-4000-8000-0000000000a2', 'e1', '00000000-0000-4000-8000-0000000000b2', 'u2', 1500, 'KRW', 'captured', 'sandbox'),
  ('00000000-0000-4000-8000-0000000000a3', 'e1', '00000000-0000-4000-8000-0000000000b3', 'u3', 500, 'KRW', 'refunded', 'sandbox'),
  ('00000000-0000-4000-8000-0000000000a4', 'e1', '00000000-0000-4000-8000-0000000000b4', 'u4', 1000, 'KRW', 'failed', 'sandbox'),
  ('00000000-0000-4000-8000-0000000000a5', 'e1', '00000000-0000-4000-8000-0000000000b5', 'u5', 1000, 'KRW', 'refunded', 'sandbox');
"#;

enum Db {
    Ticket,
    Payment,
}

/// One corruption and the violation it must produce.
struct Case {
    name: &'static str,
    db: Db,
    sql: &'static str,
    /// Payment ids buyers saw captured, besides P1 and P2.
    also_seen: &'static [&'static str],
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "a section holds more valid tickets than its capacity",
        db: Db::Ticket,
        sql: "UPDATE sections SET capacity = 2 WHERE id = 'floor'",
        also_seen: &[],
        expected: "tickets over their section's capacity: 1",
    },
    Case {
        name: "a ticket in a section the event does not have",
        db: Db::Ticket,
        sql: "UPDATE tickets SET section_id = 'ghost' WHERE id = '00000000-0000-4000-8000-0000000000d3'",
        also_seen: &[],
        expected: "tickets over their section's capacity: 1",
    },
    Case {
        name: "a seat sold without a ticket",
        db: Db::Ticket,
        sql: "UPDATE seats SET status = 'sold', hold_id = '00000000-0000-4000-8000-0000000000b4' WHERE seat_id = 'a-2-1'",
        also_seen: &[],
        expected: "seats whose status disagrees with their tickets: 1",
    },
    Case {
        name: "a valid seated ticket whose seat is not sold",
        db: Db::Ticket,
        sql: "UPDATE seats SET status = 'available', hold_id = NULL, fencing_token = NULL WHERE seat_id = 'a-1-1'",
        also_seen: &[],
        expected: "seats whose status disagrees with their tickets: 1",
    },
    Case {
        name: "a seat sold under another hold than its ticket's",
        db: Db::Ticket,
        sql: "UPDATE seats SET hold_id = '00000000-0000-4000-8000-0000000000b4' WHERE seat_id = 'a-1-2'",
        also_seen: &[],
        expected: "seats whose status disagrees with their tickets: 2",
    },
    Case {
        name: "standing sold counter ahead of the tickets",
        db: Db::Ticket,
        sql: "UPDATE standing_inventory SET sold = 4 WHERE section_id = 'floor'",
        also_seen: &[],
        expected: "standing sections whose sold count disagrees with their tickets: 1",
    },
    Case {
        name: "a confirmed reservation with fewer tickets than its hold",
        db: Db::Ticket,
        sql: "UPDATE holds SET quantity = 3 WHERE id = '00000000-0000-4000-8000-0000000000b1'",
        also_seen: &[],
        expected: "reservations whose tickets differ from the hold's quantity: 1",
    },
    Case {
        name: "a canceled reservation whose ticket is still valid",
        db: Db::Ticket,
        sql: "UPDATE tickets SET status = 'valid' WHERE id = '00000000-0000-4000-8000-0000000000d6'",
        also_seen: &[],
        expected: "reservations whose tickets differ from the hold's quantity: 1",
    },
    Case {
        name: "a payment for another amount than its reservation",
        db: Db::Payment,
        sql: "UPDATE payments SET amount_minor = 1999 WHERE id = '00000000-0000-4000-8000-0000000000a1'",
        also_seen: &[],
        expected: "payments whose amount, currency or hold differ from the reservation: 1",
    },
    Case {
        name: "a payment for another hold than its reservation",
        db: Db::Payment,
        sql: "UPDATE payments SET hold_id = '00000000-0000-4000-8000-0000000000b9' WHERE id = '00000000-0000-4000-8000-0000000000a2'",
        also_seen: &[],
        expected: "payments whose amount, currency or hold differ from the reservation: 1",
    },
    Case {
        name: "a captured payment without a reservation",
        db: Db::Payment,
        sql: "INSERT INTO payments (id, event_id, hold_id, user_id, amount_minor, currency, status, provider)
              VALUES ('00000000-0000-4000-8000-0000000000a7', 'e1', '00000000-0000-4000-8000-0000000000b7', 'u7', 1000, 'KRW', 'captured', 'sandbox')",
        also_seen: &[],
        expected: "captured payments without a reservation: 1",
    },
    Case {
        name: "a confirmed reservation whose payment is not captured",
        db: Db::Payment,
        sql: "UPDATE payments SET status = 'canceled' WHERE id = '00000000-0000-4000-8000-0000000000a2'",
        also_seen: &[],
        expected: "reservations without a captured payment: 1",
    },
    Case {
        name: "a payment stuck in authorized",
        db: Db::Payment,
        sql: "INSERT INTO payments (id, event_id, hold_id, user_id, amount_minor, currency, status, provider)
              VALUES ('00000000-0000-4000-8000-0000000000a8', 'e1', '00000000-0000-4000-8000-0000000000b8', 'u8', 1000, 'KRW', 'authorized', 'sandbox')",
        also_seen: &[],
        expected: "payments stuck in authorized: 1",
    },
    Case {
        name: "an unapplied payment left captured (money taken for a lapsed hold)",
        db: Db::Payment,
        sql: "UPDATE payments SET status = 'captured' WHERE id = '00000000-0000-4000-8000-0000000000a3'",
        also_seen: &[],
        expected: "unapplied payments not refunded (lost): 1",
    },
    Case {
        name: "an unapplied payment the payment service does not know",
        db: Db::Payment,
        sql: "DELETE FROM payments WHERE id = '00000000-0000-4000-8000-0000000000a3'",
        also_seen: &[],
        expected: "unapplied payments not refunded (lost): 1",
    },
    Case {
        name: "a payment a buyer saw captured, missing from the payment database",
        db: Db::Payment,
        sql: "SELECT 1",
        also_seen: &["00000000-0000-4000-8000-0000000000a9"],
        expected: "lost payments (seen captured, not in the payment database): 1",
    },
    Case {
        name: "a payment a buyer saw captured, now failed",
        db: Db::Payment,
        sql: "UPDATE payments SET status = 'failed' WHERE id = '00000000-0000-4000-8000-0000000000a4'",
        also_seen: &[P3, "00000000-0000-4000-8000-0000000000a4"],
        expected: "lost payments (seen captured, not in the payment database): 1",
    },
];

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"` (scripts/test does this)")
    })
}

/// The URL of database `name` on the server of `DATABASE_URL`.
fn url_of(name: &str) -> String {
    let admin = admin_url();
    let (server, rest) = admin.rsplit_once('/').expect("DATABASE_URL has a database");
    let query = rest
        .split_once('?')
        .map_or(String::new(), |(_, q)| format!("?{q}"));
    format!("{server}/{name}{query}")
}

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL from the local stack")
}

async fn create(name: &str, template: Option<&str>) {
    let sql = match template {
        Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
        None => format!("CREATE DATABASE {name}"),
    };
    sqlx::raw_sql(&sql)
        .execute(&mut admin().await)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn drop_all(names: &[String]) {
    let mut admin = admin().await;
    for name in names {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

async fn pool(name: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&url_of(name))
        .await
        .expect("connect")
}

/// A database from `migrator` and `seed`, closed so it can be a template.
async fn seeded(name: &str, migrator: &sqlx::migrate::Migrator, seed: &str) {
    create(name, None).await;
    let pool = pool(name).await;
    migrator.run(&pool).await.expect("migrations");
    sqlx::raw_sql(seed).execute(&pool).await.expect("seed");
    pool.close().await;
}

async fn check(prefix: &str, copy: &str, seen: &[String]) -> Invariants {
    invariants::check(
        &url_of(&format!("{prefix}_ticket_{copy}")),
        &url_of(&format!("{prefix}_payment_{copy}")),
        EVENT,
        seen,
        Duration::ZERO,
    )
    .await
    .expect("invariants")
}

#[tokio::test]
async fn every_violation_the_schema_lets_through_is_reported() {
    let prefix = format!(
        "urr_load_t{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let ticket_template = format!("{prefix}_ticket_tpl");
    let payment_template = format!("{prefix}_payment_tpl");
    let mut created = vec![ticket_template.clone(), payment_template.clone()];
    seeded(&ticket_template, &TICKET_MIGRATIONS, TICKET_SEED).await;
    seeded(&payment_template, &PAYMENT_MIGRATIONS, PAYMENT_SEED).await;

    // Failures are collected, not raised at once, so the databases are
    // dropped whatever happens.
    let mut failures = Vec::new();
    for (index, case) in std::iter::once(None)
        .chain(CASES.iter().map(Some))
        .enumerate()
    {
        let copy = format!("c{index}");
        let ticket = format!("{prefix}_ticket_{copy}");
        let payment = format!("{prefix}_payment_{copy}");
        create(&ticket, Some(&ticket_template)).await;
        create(&payment, Some(&payment_template)).await;
        created.extend([ticket.clone(), payment.clone()]);
        let mut seen = vec![P1.to_owned(), P2.to_owned()];
        if let Some(case) = case {
            let target = pool(match case.db {
                Db::Ticket => &ticket,
                Db::Payment => &payment,
            })
            .await;
            if let Err(e) = sqlx::raw_sql(case.sql).execute(&target).await {
                failures.push(format!("{}: the corruption did not apply: {e}", case.name));
            }
            target.close().await;
            seen.extend(case.also_seen.iter().map(|s| (*s).to_owned()));
        }
        let found = check(&prefix, &copy, &seen).await;
        let violations = found.violations();
        match case {
            None => {
                if !violations.is_empty() {
                    failures.push(format!("the clean sale reports {violations:?}"));
                }
                let figures = (
                    found.capacity,
                    found.sold,
                    found.captured_payments,
                    found.reservations_confirmed_via_kafka,
                );
                if figures != (9, 5, 2, 1) {
                    failures.push(format!(
                        "the clean sale: (capacity, sold, captured, via Kafka) = {figures:?}, expected (9, 5, 2, 1)"
                    ));
                }
            }
            Some(case) => {
                if !violations.iter().any(|v| v == case.expected) {
                    failures.push(format!(
                        "{}: expected \"{}\", got {violations:?}",
                        case.name, case.expected
                    ));
                }
            }
        }
    }
    drop_all(&created).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The settle wait gives up after its bound and reports what it found.
#[tokio::test]
async fn an_unsettled_state_is_reported_after_the_settle_time() {
    let prefix = format!(
        "urr_load_s{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let ticket = format!("{prefix}_ticket_x");
    let payment = format!("{prefix}_payment_x");
    seeded(&ticket, &TICKET_MIGRATIONS, TICKET_SEED).await;
    seeded(&payment, &PAYMENT_MIGRATIONS, PAYMENT_SEED).await;
    let target = pool(&payment).await;
    let corrupted = sqlx::raw_sql("UPDATE payments SET status = 'authorized' WHERE id = '00000000-0000-4000-8000-0000000000a4'")
        .execute(&target)
        .await;
    target.close().await;
    let found = invariants::check(
        &url_of(&ticket),
        &url_of(&payment),
        EVENT,
        &[P1.to_owned(), P2.to_owned()],
        Duration::from_millis(600),
    )
    .await;
    drop_all(&[ticket, payment]).await;
    corrupted.expect("corruption");
    let found = found.expect("invariants");
    assert!(found.seconds_to_settle >= 0.6, "{found:?}");
    assert_eq!(found.stuck_authorized, 1, "{found:?}");
}
