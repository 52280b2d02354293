//! Tier-1 numbering, leased blocks against one `INCR` per number, side by
//! side in one run against the stack's Redis (store/numbers.rs, issue 24
//! item 5). Prints numbers/s, p50/p99 per number and Redis commands per
//! number (`INFO commandstats` before and after). Timing fails nothing.
//!
//! ```sh
//! eval "$(scripts/stack env)"; cargo bench -p urr-queue --bench numbers
//! URR_BENCH_NUMBERS=200000 URR_BENCH_CONNECTIONS=64 cargo bench -p urr-queue --bench numbers
//! ```

use std::time::{Duration, Instant};

use urr_queue::store::{NumberBlocks, NumberTaken, QueueStore};

const REPLICAS: usize = 2;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Calls of every command Redis has run since it started.
async fn commands_run(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|line| line.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .sum()
}

struct Run {
    name: &'static str,
    max_size: u64,
    /// Numbers per address per minute (0 = no limit); each visitor has an
    /// address of their own, so the limit costs its command but never refuses.
    per_address: u32,
}

async fn run(redis_url: &str, run: &Run, total: usize, connections: usize) {
    let event = format!("bench-numbers-{}", uuid::Uuid::new_v4().simple());
    let blocks = NumberBlocks {
        max_size: run.max_size,
        max_age: Duration::from_secs(1),
    };
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let store = QueueStore::connect(redis_url, &event)
            .await
            .expect("Redis from the local stack")
            .with_number_blocks(blocks);
        replicas.push(store);
    }
    let mut probe = redis::Client::open(redis_url)
        .expect("Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let commands_before = commands_run(&mut probe).await;
    let started = Instant::now();
    let per_worker = total / connections;
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let store = replicas[worker % REPLICAS].clone();
            let per_address = run.per_address;
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_worker);
                for n in 0..per_worker {
                    let address = format!("10.{}.{}.{}", worker, n / 256 % 256, n % 256);
                    let began = Instant::now();
                    let taken = store
                        .take_number(&address, per_address, urr_service_common::unix_now_ms())
                        .await
                        .expect("number");
                    assert!(matches!(taken, NumberTaken::Number(_)), "{taken:?}");
                    latencies.push(began.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    for store in &replicas {
        store.flush_arrivals().await.expect("flush");
    }
    // The probe's own INFO call is one of the commands counted.
    let commands = commands_run(&mut probe).await - commands_before - 1;
    latencies.sort_unstable();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let skipped: u64 = replicas.iter().map(QueueStore::numbers_skipped).sum();
    println!(
        "{:<38} {:>9.0} numbers/s   p50 {:>7.3} ms   p99 {:>7.3} ms   {:>7.4} Redis commands/number   {} skipped",
        run.name,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        commands as f64 / latencies.len() as f64,
        skipped,
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let redis_url = std::env::var("URR_REDIS_URL")
        .expect("URR_REDIS_URL is not set: eval \"$(scripts/stack env)\" first");
    let total = env_usize("URR_BENCH_NUMBERS", 100_000);
    let connections = env_usize("URR_BENCH_CONNECTIONS", 32).max(1);
    println!(
        "tier-1 numbers: {total} over {connections} concurrent callers on {REPLICAS} replicas (stores)"
    );
    for each in [
        Run {
            name: "one INCR per number (URR_NUMBER_BLOCK=1)",
            max_size: 1,
            per_address: 0,
        },
        Run {
            name: "leased blocks of up to 1000",
            max_size: 1000,
            per_address: 0,
        },
        Run {
            name: "leased blocks + per-address limit",
            max_size: 1000,
            per_address: 60,
        },
    ] {
        run(&redis_url, &each, total, connections).await;
    }
}
