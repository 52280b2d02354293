//! The relay and the inbox against the real PostgreSQL and Kafka-protocol
//! broker of the local stack (`scripts/stack up`; `scripts/test` does it).

use std::collections::HashSet;
use std::time::Duration;

use prometheus_client::registry::Registry;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::json;
use sqlx::PgPool;
use urr_outbox::{Relay, RelaySettings, enqueue, ensure_schema, inbox, kafka};

fn brokers() -> String {
    std::env::var("URR_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "URR_KAFKA_BROKERS is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"`"
        )
    })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn consume(topic: &str, want: usize) -> Vec<(String, serde_json::Value)> {
    let consumer: StreamConsumer = kafka::consumer_config(&brokers(), &unique("test-group"))
        .expect("kafka connection")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < want && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            Ok(Ok(message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                let payload: serde_json::Value =
                    serde_json::from_slice(message.payload().unwrap_or_default()).expect("json");
                seen.push((key, payload));
            }
            Ok(Err(error)) => panic!("consume failed: {error}"),
            Err(_) => {}
        }
    }
    drop(consumer);
    seen
}

async fn unpublished(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = false)]
async fn committed_rows_are_published_in_order_and_rolled_back_rows_never(pool: PgPool) {
    ensure_schema(&pool).await.expect("schema");
    ensure_schema(&pool).await.expect("schema is idempotent");
    let topic = unique("outbox-test");
    kafka::ensure_topics(&brokers(), &[&topic], 1, 1)
        .await
        .expect("topic");

    let mut rolled_back = pool.begin().await.expect("tx");
    enqueue(&mut rolled_back, &topic, "k", &json!({"n": -1}))
        .await
        .expect("enqueue");
    rolled_back.rollback().await.expect("rollback");

    let mut tx = pool.begin().await.expect("tx");
    for n in 0..5 {
        enqueue(&mut tx, &topic, "same-key", &json!({"n": n}))
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");
    assert_eq!(unpublished(&pool).await, 5);

    let mut registry = Registry::default();
    let relay = Relay::new(
        pool.clone(),
        kafka::producer_config(&brokers()).expect("kafka connection"),
        RelaySettings::default(),
        &mut registry,
    )
    .expect("relay");
    let round = relay.round().await.expect("round");
    assert_eq!(round.published, 5);
    assert_eq!(round.failed, 0);
    assert_eq!(unpublished(&pool).await, 0);
    assert_eq!(relay.round().await.expect("round").published, 0);

    let seen = consume(&topic, 5).await;
    let numbers: Vec<i64> = seen.iter().filter_map(|(_, p)| p["n"].as_i64()).collect();
    assert_eq!(
        numbers,
        vec![0, 1, 2, 3, 4],
        "in outbox order, nothing rolled back"
    );
    assert!(seen.iter().all(|(key, _)| key == "same-key"));
}

#[sqlx::test(migrations = false)]
async fn a_relay_started_later_publishes_what_a_dead_one_left(pool: PgPool) {
    ensure_schema(&pool).await.expect("schema");
    let topic = unique("outbox-test");
    kafka::ensure_topics(&brokers(), &[&topic], 1, 1)
        .await
        .expect("topic");
    // Committed while no relay ran (the relay "died" after the commit).
    let mut tx = pool.begin().await.expect("tx");
    enqueue(&mut tx, &topic, "h1", &json!({"n": 1}))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = Relay::new(
        pool.clone(),
        kafka::producer_config(&brokers()).expect("kafka connection"),
        RelaySettings::default(),
        &mut Registry::default(),
    )
    .expect("relay");
    let task = tokio::spawn(relay.run(stopped));
    // A row committed while the relay runs is picked up via NOTIFY.
    let mut tx = pool.begin().await.expect("tx");
    enqueue(&mut tx, &topic, "h2", &json!({"n": 2}))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    let seen = consume(&topic, 2).await;
    stop.send(true).expect("stop");
    task.await.expect("relay task");
    let keys: HashSet<String> = seen.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, HashSet::from(["h1".to_owned(), "h2".to_owned()]));
    assert_eq!(unpublished(&pool).await, 0);
}

#[sqlx::test(migrations = false)]
async fn an_unreachable_broker_leaves_rows_for_later(pool: PgPool) {
    ensure_schema(&pool).await.expect("schema");
    let mut tx = pool.begin().await.expect("tx");
    enqueue(&mut tx, "nowhere", "k", &json!({}))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    let mut config = kafka::producer_config("127.0.0.1:1").expect("kafka connection");
    config.set("message.timeout.ms", "300");
    let relay = Relay::new(
        pool.clone(),
        config,
        RelaySettings::default(),
        &mut Registry::default(),
    )
    .expect("relay");
    let round = relay.round().await.expect("round");
    assert_eq!(
        round,
        urr_outbox::relay::Round {
            published: 0,
            failed: 1
        }
    );
    assert_eq!(unpublished(&pool).await, 1);
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM outbox")
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!(attempts, 1);
    assert!(error.is_some());
}

#[sqlx::test(migrations = false)]
async fn inbox_claims_a_message_once_per_consumer(pool: PgPool) {
    ensure_schema(&pool).await.expect("schema");
    let mut conn = pool.acquire().await.expect("conn");
    assert!(
        inbox::claim(&mut conn, "ticket", "m1")
            .await
            .expect("claim")
    );
    assert!(
        !inbox::claim(&mut conn, "ticket", "m1")
            .await
            .expect("claim")
    );
    assert!(inbox::claim(&mut conn, "stats", "m1").await.expect("claim"));
    // A claim inside a rolled-back transaction leaves nothing behind.
    let mut tx = pool.begin().await.expect("tx");
    assert!(inbox::claim(&mut tx, "ticket", "m2").await.expect("claim"));
    tx.rollback().await.expect("rollback");
    assert!(
        inbox::claim(&mut conn, "ticket", "m2")
            .await
            .expect("claim")
    );
}
