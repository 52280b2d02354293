//! Hold throughput and the hot-seat stampede, side by side with a naive
//! baseline that protects seats with PostgreSQL `SELECT … FOR UPDATE` only,
//! in the same run, on the same database. Prints figures; asserts nothing
//! about time.
//!
//!     scripts/stack up && eval "$(scripts/stack env)"
//!     cargo bench -p urr-ticket --bench holds
//!
//! Scale with URR_BENCH_BUYERS (stampede buyers, default 1000) and
//! URR_BENCH_HOLDS (uncontended holds, default 2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use urr_ticket::holds::{HoldDesk, HoldRequest};
use urr_ticket::inventory;
use urr_ticket::locks::SeatLocks;
use urr_ticket::settings::Catalog;
use urr_ticket::telemetry::TicketMetrics;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"`");
        std::process::exit(2)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// One way of placing a single-seat hold; `Ok(true)` = won.
#[derive(Clone)]
enum Strategy {
    Urr(Box<HoldDesk>),
    Naive { pool: PgPool, event: String },
}

impl Strategy {
    /// The same strategy on another pool (each phase gets its own, closed at
    /// the end so its backends flush their statistics).
    fn with_pool(&self, pool: &PgPool) -> Self {
        match self {
            Strategy::Urr(desk) => Strategy::Urr(Box::new(HoldDesk {
                pool: pool.clone(),
                ..(**desk).clone()
            })),
            Strategy::Naive { event, .. } => Strategy::Naive {
                pool: pool.clone(),
                event: event.clone(),
            },
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Strategy::Urr(_) => "urr (redis lock + pg version + fencing)",
            Strategy::Naive { .. } => "naive (pg SELECT ... FOR UPDATE)",
        }
    }

    async fn hold(&self, user: &str, seat: &str) -> Result<bool, String> {
        match self {
            Strategy::Urr(desk) => {
                match desk
                    .hold(user, &HoldRequest::Seats(vec![seat.to_owned()]), None)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(urr_ticket::error::TicketError::SeatsTaken(_)) => Ok(false),
                    Err(error) => Err(error.to_string()),
                }
            }
            Strategy::Naive { pool, event } => naive_hold(pool, event, user, seat)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

async fn naive_hold(
    pool: &PgPool,
    event: &str,
    user: &str,
    seat: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM seats WHERE event_id = $1 AND seat_id = $2 FOR UPDATE",
    )
    .bind(event)
    .bind(seat)
    .fetch_optional(&mut *tx)
    .await?;
    if status.as_deref() != Some("available") {
        tx.rollback().await?;
        return Ok(false);
    }
    let hold = uuid::Uuid::new_v4();
    sqlx::query(
        "UPDATE seats SET status = 'held', version = version + 1, hold_id = $1, fencing_token = 0
         WHERE event_id = $2 AND seat_id = $3",
    )
    .bind(hold)
    .bind(event)
    .bind(seat)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO holds (id, event_id, user_id, seat_ids, quantity, amount_minor, currency, fencing_token, status, expires_at)
         VALUES ($1, $2, $3, ARRAY[$4], 1, 0, 'KRW', 0, 'active', now() + interval '10 minutes')",
    )
    .bind(hold)
    .bind(event)
    .bind(user)
    .bind(seat)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn seat_updates(url: &str) -> i64 {
    // Backends flush their table statistics when they exit (the phase's
    // pool is closed before this) and at most once a second when idle.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connection");
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut conn)
        .await
        .expect("clear snapshot");
    sqlx::query_scalar("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'seats'")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_user_tables")
}

struct Figures {
    attempts: usize,
    wins: usize,
    wall: Duration,
    winners: Vec<Duration>,
    losers: Vec<Duration>,
    updates: i64,
}

async fn run(
    strategy: &Strategy,
    url: &str,
    attempts: Vec<(String, String)>,
    concurrency: usize,
) -> Figures {
    let before = seat_updates(url).await;
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
    let options = match std::env::var("URR_BENCH_PLAN_MODE") {
        Ok(mode) => options.options([("plan_cache_mode", mode)]),
        Err(_) => options,
    };
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect_with(options)
        .await
        .expect("phase pool");
    let strategy = &strategy.with_pool(&pool);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start_line = Arc::new(tokio::sync::Barrier::new(attempts.len() + 1));
    let total = attempts.len();
    let mut tasks = Vec::with_capacity(total);
    for (user, seat) in attempts {
        let strategy = strategy.clone();
        let semaphore = semaphore.clone();
        let start_line = start_line.clone();
        tasks.push(tokio::spawn(async move {
            start_line.wait().await;
            let _permit = semaphore.acquire().await.expect("semaphore");
            let started = Instant::now();
            let won = strategy.hold(&user, &seat).await;
            (won, started.elapsed())
        }));
    }
    start_line.wait().await;
    let started = Instant::now();
    let mut figures = Figures {
        attempts: total,
        wins: 0,
        wall: Duration::ZERO,
        winners: Vec::new(),
        losers: Vec::new(),
        updates: 0,
    };
    for task in tasks {
        let (won, took) = task.await.expect("task");
        match won {
            Ok(true) => {
                figures.wins += 1;
                figures.winners.push(took);
            }
            Ok(false) => figures.losers.push(took),
            Err(error) => panic!("{}: {error}", strategy.name()),
        }
    }
    figures.wall = started.elapsed();
    figures.winners.sort();
    figures.losers.sort();
    pool.close().await;
    figures.updates = seat_updates(url).await - before;
    figures
}

fn print(title: &str, strategy: &Strategy, figures: &Figures) {
    let per_second = figures.attempts as f64 / figures.wall.as_secs_f64();
    println!(
        "{title:<22} {:<42} attempts {:>5}  won {:>5}  {:>9.0} attempts/s  winner p50 {:>7.2} ms p99 {:>7.2} ms  loser p50 {:>7.2} ms p99 {:>7.2} ms  seat-row updates/won {:>5.2}",
        strategy.name(),
        figures.attempts,
        figures.wins,
        per_second,
        percentile(&figures.winners, 0.5),
        percentile(&figures.winners, 0.99),
        percentile(&figures.losers, 0.5),
        percentile(&figures.losers, 0.99),
        figures.updates as f64 / figures.wins.max(1) as f64,
    );
}

#[tokio::main]
async fn main() {
    let admin_url = required("DATABASE_URL");
    let redis_url = required("URR_REDIS_URL");
    let buyers = env_or("URR_BENCH_BUYERS", 1000);
    let holds = env_or("URR_BENCH_HOLDS", 2000).min(10_000);
    let database = format!("urr_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("admin connection");
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => panic!("DATABASE_URL has no database name"),
    };
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .expect("bench database");
    urr_ticket::prepare_database(&pool)
        .await
        .expect("migrations");
    let redis = redis::Client::open(redis_url.as_str())
        .expect("redis url")
        .get_connection_manager()
        .await
        .expect("redis");

    let mut strategies = Vec::new();
    for label in ["urr", "naive"] {
        let event = format!(
            "bench-{label}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let settings = json!({
            "event": event, "displayName": "bench", "holdTimeoutSeconds": 600,
            "limits": {"maxSeatsPerOrder": 4, "maxSeatsPerUser": 4},
            "seatMap": {"sections": [
                {"id": "a", "name": "A", "rows": 100, "seatsPerRow": 100, "price": {"amountMinor": 1000, "currency": "KRW"}}
            ]}
        });
        let catalog = Arc::new(Catalog::from_json(&settings.to_string(), &event).expect("catalog"));
        inventory::import(&pool, &catalog).await.expect("import");
        strategies.push(if label == "urr" {
            Strategy::Urr(Box::new(HoldDesk {
                pool: pool.clone(),
                locks: SeatLocks::new(redis.clone(), &event),
                catalog,
                metrics: Arc::new(TicketMetrics::new()),
            }))
        } else {
            Strategy::Naive {
                pool: pool.clone(),
                event,
            }
        });
    }

    println!(
        "# ticket holds: {holds} uncontended holds (64 at a time), then a stampede of {buyers} buyers on 10 seats (all at once; pool of 20 connections)"
    );
    println!(
        "# machine: {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    {
        // The cost of the first protection alone: one Lua call per attempt
        // (on an event of its own, so the runs below start from free seats).
        let locks = SeatLocks::new(
            redis.clone(),
            &format!("bench-locks-{}", uuid::Uuid::new_v4().simple()),
        );
        let mut times = Vec::with_capacity(holds);
        for i in 0..holds {
            let seat = vec![format!("a:{}:{}", i / 100 + 1, i % 100 + 1)];
            let started = Instant::now();
            let _ = locks
                .acquire_seats(&uuid::Uuid::new_v4(), &seat, 60_000, None)
                .await
                .expect("lock");
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "redis lock alone (sequential, one Lua call): p50 {:.3} ms p99 {:.3} ms",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
        // The same call, {buyers} at once on 10 seats: the floor under the
        // stampede's loser latency on this machine.
        let start_line = Arc::new(tokio::sync::Barrier::new(buyers + 1));
        let tasks: Vec<_> = (0..buyers)
            .map(|i| {
                let locks = locks.clone();
                let start_line = start_line.clone();
                tokio::spawn(async move {
                    let seat = vec![format!("z:1:{}", i % 10 + 1)];
                    start_line.wait().await;
                    let started = Instant::now();
                    let _ = locks
                        .acquire_seats(&uuid::Uuid::new_v4(), &seat, 60_000, None)
                        .await;
                    started.elapsed()
                })
            })
            .collect();
        start_line.wait().await;
        let mut times = Vec::with_capacity(buyers);
        for task in tasks {
            times.push(task.await.expect("task"));
        }
        times.sort();
        println!(
            "redis lock alone ({buyers} at once, 10 seats): p50 {:.3} ms p99 {:.3} ms",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    for strategy in &strategies {
        let attempts = (0..holds)
            .map(|i| {
                (
                    format!("u{i}"),
                    format!("a:{}:{}", i / 100 + 1, i % 100 + 1),
                )
            })
            .collect();
        let figures = run(
            strategy,
            &url,
            attempts,
            env_or("URR_BENCH_CONCURRENCY", 64),
        )
        .await;
        print("uncontended", strategy, &figures);
    }
    for strategy in &strategies {
        // The last row is untouched by the uncontended run.
        let attempts = (0..buyers)
            .map(|i| (format!("s{i}"), format!("a:100:{}", i % 10 + 1)))
            .collect();
        let figures = run(strategy, &url, attempts, buyers).await;
        print("stampede 10 seats", strategy, &figures);
        assert_eq!(figures.wins, 10, "{}: exactly 10 winners", strategy.name());
    }
    pool.close().await;
    let _ = sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}
