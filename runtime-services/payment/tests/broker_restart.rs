//! The Kafka broker is killed in the middle of a sale and started again
//! (`scripts/stack restart kafka --hard`, the stack's Apache Kafka, same
//! port and data): the payment service's outbox relay keeps relaying, and
//! the ticket service's consumer confirms every payment exactly once.
//!
//! Its own test binary: the restart takes the broker away from every test
//! running beside it, and cargo runs test binaries one after another.

mod support;

use std::time::Duration;

use prometheus_client::registry::Registry;
use serde_json::json;
use sqlx::PgPool;
use support::{Platform, env, quick_client};

/// Kills the stack's broker (SIGKILL), keeps it down `down_for`, starts it
/// again on its port with its data, and waits until it answers.
fn restart_broker(down_for: Duration) -> std::process::Output {
    std::process::Command::new(env("URR_STACK"))
        .args([
            "restart",
            "kafka",
            "--hard",
            "--down-for",
            &down_for.as_secs().to_string(),
        ])
        .output()
        .expect("run the stack's restart command ($URR_STACK)")
}

async fn broker_answers(brokers: &str) -> bool {
    let first = brokers.split(',').next().unwrap_or_default();
    tokio::net::TcpStream::connect(first).await.is_ok()
}

/// Polls `sql` on the ticket database until it counts `want` (≤ 60 s).
async fn ticket_reaches(platform: &Platform, sql: &str, want: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = platform.ticket_count(sql).await;
        if got >= want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Confirms a created payment and waits until it is captured.
async fn capture(platform: &Platform, user: &str, payment: &str) {
    let (status, body) = platform
        .post(
            user,
            &format!("/v1/payments/{payment}/confirm"),
            json!({"paymentMethod": "pm_sandbox_ok"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let captured = platform
        .wait_for(user, payment, |p| p["status"] == "captured")
        .await;
    assert_eq!(captured["status"], "captured", "{captured}");
}

#[sqlx::test(migrations = false)]
async fn the_relay_and_the_ticket_consumer_ride_out_a_broker_restart(pool: PgPool) {
    let brokers = env("URR_KAFKA_BROKERS");
    urr_outbox::kafka::ensure_topics(&brokers, &["payment-events", "transfer-events"], 3, 1)
        .await
        .expect("topics");
    let mut platform = Platform::start(pool, quick_client(), Duration::from_millis(20)).await;
    // Six buyers hold a seat each and create their payments (priced by the
    // ticket service); then the ticket service's HTTP side goes down, so
    // every confirmation has to come through Kafka.
    let mut payments = Vec::new();
    for n in 1..=6 {
        let user = format!("buyer{n}");
        let seat = format!("a:1:{n}");
        let hold = platform.hold(&user, &[seat.as_str()]).await;
        let (status, created) = platform
            .post(&user, "/v1/payments", json!({"holdId": hold}), None)
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["paymentId"].as_str().expect("id").to_owned();
        payments.push((user, id));
    }
    platform.stop_ticket().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = urr_outbox::Relay::new(
        platform.payments.pool.clone(),
        urr_outbox::kafka::producer_config(&brokers).expect("kafka connection"),
        urr_outbox::RelaySettings::default(),
        &mut Registry::default(),
    )
    .expect("relay");
    let relay_task = tokio::spawn(relay.run(stopped.clone()));
    let consumers =
        urr_ticket::consumers::spawn(&brokers, &platform.desk, stopped).expect("consumers");
    let kafka_confirmed = "SELECT count(*) FROM reservations WHERE confirmed_via = 'kafka'";

    // Before the restart: three captures, confirmed through Kafka.
    for (user, id) in &payments[..3] {
        capture(&platform, user, id).await;
    }
    assert_eq!(
        ticket_reaches(&platform, kafka_confirmed, 3).await,
        3,
        "confirmed through Kafka before the restart"
    );

    // The broker is killed and stays down 4 s; three captures meanwhile.
    let restart = tokio::task::spawn_blocking(|| restart_broker(Duration::from_secs(4)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while broker_answers(&brokers).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker still accepts connections 15 s after the restart began"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (user, id) in &payments[3..] {
        capture(&platform, user, id).await;
    }
    assert!(
        !broker_answers(&brokers).await,
        "the broker came back before the captures were done: lengthen --down-for"
    );
    assert_eq!(
        platform
            .payment_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        3,
        "captured while the broker is down: committed, not yet published"
    );
    let restarted = restart.await.expect("restart task");
    assert!(
        restarted.status.success(),
        "the stack could not restart the broker: {}",
        String::from_utf8_lossy(&restarted.stderr)
    );

    // After the restart: the relay publishes what waited and the consumer
    // (same group, offsets kept by the broker) confirms it.
    assert_eq!(
        ticket_reaches(&platform, kafka_confirmed, 6).await,
        6,
        "every capture confirmed through Kafka after the restart"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while platform
        .payment_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .await
        > 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox rows still unpublished 30 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a redelivery of anything whose offset commit the kill lost arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).expect("stop");
    relay_task.await.expect("relay");
    for consumer in consumers {
        consumer.await.expect("consumer");
    }

    // Exactly once in effect: one reservation and one ticket per payment,
    // each payment event claimed once, nothing left unapplied.
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM reservations")
            .await,
        6
    );
    assert_eq!(
        platform
            .ticket_count("SELECT count(DISTINCT hold_id) FROM reservations")
            .await,
        6
    );
    assert_eq!(
        platform.ticket_count("SELECT count(*) FROM tickets").await,
        6
    );
    assert_eq!(
        platform
            .ticket_count(
                "SELECT count(*) FROM processed_events WHERE consumer = 'ticket/payment-events'"
            )
            .await,
        6
    );
    assert_eq!(
        platform
            .ticket_count("SELECT count(*) FROM unapplied_payments")
            .await,
        0
    );
    assert_eq!(
        platform
            .payment_count("SELECT count(*) FROM outbox WHERE topic = 'payment-events'")
            .await,
        6,
        "one payment event per capture"
    );
    platform.finish().await;
}
