//! Queue service benchmark: prints figures side by side with baselines run in
//! the same process against the same Redis. Timing never fails anything.
//!
//! ```sh
//! eval "$(scripts/stack env)"; cargo bench -p urr-queue --bench queue
//! URR_BENCH_REQUESTS=20000 URR_BENCH_CONNECTIONS=32 cargo bench -p urr-queue --bench queue
//! ```
//!
//! 1. `join` and `queue/me` through the real HTTP stack (axum + hyper over
//!    loopback TCP), next to the raw Redis baseline (the same Lua script from
//!    the `redis` crate, same concurrency) and a bare axum hello handler.
//! 2. One admitter tick admitting 10,000 users.
//! 3. Redis memory per waiting user with 100,000 waiters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use redis::AsyncCommands;
use urr_queue::admitter::{Admitter, AdmitterSettings};
use urr_queue::policy::Policy;
use urr_queue::store::QueueStore;
use urr_queue::telemetry::QueueMetrics;
use urr_queue::{AppState, routers};
use urr_service_common::tokens::entry::EntryTokenKey;
use urr_service_common::tokens::user::UserTokenVerifier;
use urr_service_common::tokens::vwr::VwrKey;

const USER_SECRET: &[u8] = b"bench-user-secret-0123456789abcdef";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    name: &'static str,
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        sorted
            .get(((sorted.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    }
    fn print(&self) {
        println!(
            "{:<34} {:>10.0} req/s   p50 {:>8.2} ms   p99 {:>8.2} ms   ({} requests)",
            self.name,
            self.rate(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.requests
        );
    }
}

/// Runs `total` operations over `connections` concurrent workers.
async fn drive<F, Fut>(name: &'static str, total: usize, connections: usize, op: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let per_worker = total / connections;
    let mut workers = Vec::new();
    for worker in 0..connections {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for i in 0..per_worker {
                let t = Instant::now();
                op(worker * per_worker + i).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.await.unwrap_or_default());
    }
    Figures {
        name,
        requests: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    }
}

fn token(user: &str) -> String {
    let claims = serde_json::json!({"sub": user, "exp": urr_service_common::unix_now() + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(USER_SECRET),
    )
    .unwrap_or_default()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    format!("http://{addr}")
}

#[tokio::main]
async fn main() {
    let redis_url =
        std::env::var("URR_REDIS_URL").expect("URR_REDIS_URL (eval \"$(scripts/stack env)\")");
    let total = env_usize("URR_BENCH_REQUESTS", 20_000);
    let connections = env_usize("URR_BENCH_CONNECTIONS", 32);
    let event = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let store = QueueStore::connect(&redis_url, &event)
        .await
        .expect("redis");
    store
        .write_policy(&Policy {
            users_per_second: 100_000,
            max_active_users: 1_000_000,
            ..Policy::default()
        })
        .await
        .expect("policy");
    let state = AppState {
        store: store.clone(),
        event: event.clone(),
        room_name: event.clone(),
        room_id: format!("bench/{event}"),
        users: UserTokenVerifier::hs256(USER_SECRET, None, None),
        entry_key: EntryTokenKey::new(b"bench-entry-key"),
        pass_keys: urr_queue::pass::PassKeys::new(
            VwrKey::new("k1", b"bench-vwr-key".to_vec()),
            None,
        ),
        vwr_token_ttl_seconds: 3600,
        cookie_secure: false,
        number_limit_per_ip: 0,
        join_limit_per_ip: u32::MAX,
        join_limit_per_user: u32::MAX,
        client_address: Default::default(),
        metrics: Arc::new(QueueMetrics::new()),
        drawn_members: Arc::default(),
        page: Arc::default(),
        snapshot: Arc::new(urr_queue::snapshot::SnapshotCache::new(
            std::time::Duration::from_secs(1),
        )),
    };
    let base = serve(routers(state).public).await;
    let hello = serve(Router::new().route("/hello", get(|| async { "hello" }))).await;
    let client = urr_service_common::http_client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let tokens: Arc<Vec<String>> = Arc::new((0..total).map(|i| token(&format!("u{i}"))).collect());

    println!(
        "urr-queue benchmark: {total} requests, {connections} concurrent connections, Redis {}",
        redis_url.split('@').next_back().unwrap_or("?")
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();

    // Baseline 1: the join script straight from the redis crate, same concurrency.
    let raw_store = QueueStore::connect(&redis_url, &format!("{event}-raw"))
        .await
        .expect("redis");
    let raw = drive(
        "raw Redis join (Lua, redis crate)",
        total,
        connections,
        move |i| {
            let store = raw_store.clone();
            async move {
                let _ = store
                    .join(&format!("u{i}"), urr_service_common::unix_now_ms(), 600)
                    .await;
            }
        },
    )
    .await;
    // Baseline 2: a bare axum handler over the same HTTP stack.
    let c = client.clone();
    let bare = drive("bare axum hello", total, connections, move |_| {
        let (c, url) = (c.clone(), format!("{hello}/hello"));
        async move {
            let _ = c.get(url).send().await.map(|r| r.status());
        }
    })
    .await;
    let (c, t, b, e) = (client.clone(), tokens.clone(), base.clone(), event.clone());
    let join = drive(
        "POST /v1/events/{e}/queue (join)",
        total,
        connections,
        move |i| {
            let request = c
                .post(format!("{b}/v1/events/{e}/queue"))
                .bearer_auth(&t[i]);
            async move {
                let _ = request.send().await.map(|r| r.status());
            }
        },
    )
    .await;
    let (c, t, b, e) = (client.clone(), tokens.clone(), base.clone(), event.clone());
    let me = drive(
        "GET /v1/events/{e}/queue/me",
        total,
        connections,
        move |i| {
            let request = c
                .get(format!("{b}/v1/events/{e}/queue/me"))
                .bearer_auth(&t[i]);
            async move {
                let _ = request.send().await.map(|r| r.status());
            }
        },
    )
    .await;
    for figures in [&raw, &join, &bare, &me] {
        figures.print();
    }
    println!();
    println!(
        "join  / raw Redis : {:>5.1}%   (target >= 30%)",
        100.0 * join.rate() / raw.rate()
    );
    println!(
        "me    / bare axum : {:>5.1}%   (target >= 50%)",
        100.0 * me.rate() / bare.rate()
    );

    // One admitter tick admitting 10,000 users.
    let tick_event = format!("{event}-tick");
    let tick_store = QueueStore::connect(&redis_url, &tick_event)
        .await
        .expect("redis");
    tick_store
        .write_policy(&Policy {
            users_per_second: 10_000,
            max_active_users: 1_000_000,
            ..Policy::default()
        })
        .await
        .expect("policy");
    fill(&tick_store, 10_000).await;
    let mut admitter = Admitter::new(
        tick_store.clone(),
        AdmitterSettings {
            instance: "bench".into(),
            inventory: None,
            tick_ms: 1000,
            lease_ms: 3000,
            heartbeat_timeout_ms: 3_600_000,
        },
        None,
    );
    let started = Instant::now();
    let outcome = admitter
        .tick_at(urr_service_common::unix_now_ms())
        .await
        .expect("tick")
        .expect("leader");
    let took = started.elapsed();
    println!();
    println!(
        "admitter tick: admitted {} users in {:.1} ms   (target <= 50 ms)",
        outcome.admitted,
        took.as_secs_f64() * 1e3
    );

    // Memory per waiting user.
    let memory_event = format!("{event}-mem");
    let memory_store = QueueStore::connect(&redis_url, &memory_event)
        .await
        .expect("redis");
    let waiters = env_usize("URR_BENCH_WAITERS", 100_000);
    let mut conn = redis::Client::open(redis_url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let before = used_memory(&mut conn).await;
    fill(&memory_store, waiters).await;
    let after = used_memory(&mut conn).await;
    let keys = memory_store.keys();
    let mut by_key = 0u64;
    for key in [keys.queue(), keys.heartbeats()] {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut conn)
            .await
            .unwrap_or(None);
        by_key += bytes.unwrap_or_default();
    }
    println!();
    println!(
        "memory per waiting user ({waiters} waiters, user ids like u12345): {:.0} B by MEMORY USAGE of the queue + heartbeat ZSETs, {:.0} B by INFO used_memory delta   (target <= 200 B)",
        by_key as f64 / waiters as f64,
        after.saturating_sub(before) as f64 / waiters as f64
    );
    for key_event in [&event, &format!("{event}-raw"), &tick_event, &memory_event] {
        let pattern = format!("urr:{{{key_event}}}:*");
        let doomed: Vec<String> = conn.keys(&pattern).await.unwrap_or_default();
        if !doomed.is_empty() {
            let _: Result<(), _> = conn.del(doomed).await;
        }
    }
}

/// Joins `count` users, 1,000 in flight at a time over the multiplexed connection.
async fn fill(store: &QueueStore, count: usize) {
    let now = urr_service_common::unix_now_ms();
    for chunk_start in (0..count).step_by(1000) {
        let mut joins = tokio::task::JoinSet::new();
        for i in chunk_start..(chunk_start + 1000).min(count) {
            let store = store.clone();
            joins.spawn(async move { store.join(&format!("u{i}"), now, 600).await });
        }
        while let Some(result) = joins.join_next().await {
            result.expect("task").expect("join");
        }
    }
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default()
}
