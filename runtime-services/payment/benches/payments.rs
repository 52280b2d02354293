//! End-to-end payments per second (hold → create → confirm → sandbox
//! authorization and capture webhooks → synchronous confirm → reservation),
//! with the real ticket service in-process, and the outbox publish lag under
//! that load: the relay woken by `LISTEN/NOTIFY` next to a relay that only
//! polls every 500 ms (the common outbox implementation), in the same run.
//! Prints figures; asserts only that every payment ended with a reservation.
//!
//!     scripts/stack up && eval "$(scripts/stack env)"
//!     cargo bench -p urr-payment --bench payments
//!
//! Knobs: URR_BENCH_PAYMENTS (default 400), URR_BENCH_CONCURRENCY (32).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use serde_json::json;
use sqlx::PgPool;
use support::{Database, Platform, env};
use urr_outbox::{Relay, RelaySettings};
use urr_payment::ticket_client::ClientSettings;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn lag_ms(pool: &PgPool) -> Vec<f64> {
    let mut lags: Vec<f64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM (published_at - created_at)) * 1000)::float8 FROM outbox
         WHERE topic = 'payment-events' AND published_at IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("lags");
    lags.sort_by(f64::total_cmp);
    lags
}

async fn run(label: &str, listen: bool, payments: usize, concurrency: usize) {
    let database = Database::create().await;
    let platform = Arc::new(
        Platform::start_with(
            database.pool.clone(),
            ClientSettings::default(),
            Duration::ZERO,
            (payments as u32).div_ceil(10) + 1,
        )
        .await,
    );
    urr_outbox::kafka::ensure_topics(&env("URR_KAFKA_BROKERS"), &["payment-events"], 3, 1)
        .await
        .expect("topic");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = Relay::new(
        platform.payments.pool.clone(),
        urr_outbox::kafka::producer_config(&env("URR_KAFKA_BROKERS")).expect("kafka connection"),
        RelaySettings {
            listen,
            ..RelaySettings::default()
        },
        &mut Registry::default(),
    )
    .expect("relay");
    let relay_task = tokio::spawn(relay.run(stopped));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(payments);
    for n in 0..payments {
        let platform = platform.clone();
        let semaphore = semaphore.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.expect("semaphore");
            let begun = Instant::now();
            let user = format!("buyer-{n}");
            let seat = format!("a:{}:{}", n / 10 + 1, n % 10 + 1);
            let hold = platform.hold(&user, &[seat.as_str()]).await;
            let held = begun.elapsed();
            let (status, created) = platform
                .post(
                    &user,
                    "/v1/payments",
                    json!({"holdId": hold}),
                    Some(&format!("k-{n}")),
                )
                .await;
            assert_eq!(status, 201, "{created}");
            let create_ms = (begun.elapsed() - held).as_secs_f64() * 1000.0;
            let id = created["paymentId"].as_str().expect("id").to_owned();
            platform
                .post(
                    &user,
                    &format!("/v1/payments/{id}/confirm"),
                    json!({"paymentMethod": "pm_sandbox_ok"}),
                    None,
                )
                .await;
            let done = platform
                .wait_for(&user, &id, |p| p["reservationId"].is_string())
                .await;
            assert!(done["reservationId"].is_string(), "{done}");
            (
                begun.elapsed().as_secs_f64() * 1000.0,
                held.as_secs_f64() * 1000.0,
                create_ms,
            )
        }));
    }
    let (mut latencies, mut holds, mut creates) = (Vec::new(), Vec::new(), Vec::new());
    for task in tasks {
        let (end_to_end, hold, create) = task.await.expect("payment");
        latencies.push(end_to_end);
        holds.push(hold);
        creates.push(create);
    }
    let wall = started.elapsed();
    // Let the relay drain, then read the lags.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stop.send(true).expect("stop");
    relay_task.await.expect("relay");
    for figures in [&mut latencies, &mut holds, &mut creates] {
        figures.sort_by(f64::total_cmp);
    }
    let lags = lag_ms(&platform.payments.pool).await;
    println!(
        "{label:<34} {payments} paid orders in {:.2} s = {:>6.1} orders/s  end-to-end p50 {:>6.1} ms p99 {:>6.1} ms  outbox lag p50 {:>6.1} ms p99 {:>6.1} ms ({} published)",
        wall.as_secs_f64(),
        payments as f64 / wall.as_secs_f64(),
        ms(&latencies, 0.5),
        ms(&latencies, 0.99),
        ms(&lags, 0.5),
        ms(&lags, 0.99),
        lags.len(),
    );
    // The step issue 24 compares: creating a payment should cost about
    // what the hold before it cost.
    println!(
        "{:<34} hold p50 {:>6.1} ms p99 {:>6.1} ms  payment create p50 {:>6.1} ms p99 {:>6.1} ms",
        "",
        ms(&holds, 0.5),
        ms(&holds, 0.99),
        ms(&creates, 0.5),
        ms(&creates, 0.99),
    );
    match Arc::try_unwrap(platform) {
        Ok(platform) => platform.finish().await,
        Err(_) => eprintln!("platform still shared; its ticket database is left behind"),
    }
    database.drop_now().await;
}

#[tokio::main]
async fn main() {
    let payments = env_or("URR_BENCH_PAYMENTS", 400);
    let concurrency = env_or("URR_BENCH_CONCURRENCY", 32);
    println!(
        "# payments end to end: {payments} buyers, {concurrency} at a time; sandbox latency 0; machine: {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    run("relay woken by LISTEN/NOTIFY", true, payments, concurrency).await;
    run(
        "baseline: relay polling every 500 ms",
        false,
        payments,
        concurrency,
    )
    .await;
}
