//! The consumer loop's commit discipline against the real broker: a
//! retryable failure redelivers the same message, a poison message is
//! skipped, offsets are committed only after the handler succeeded; a
//! member that leaves its group hands its partitions to the other member.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;
use urr_outbox::consumer::{HandleError, Handler, run};
use urr_outbox::kafka;

fn brokers() -> String {
    std::env::var("URR_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "URR_KAFKA_BROKERS is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"`"
        )
    })
}

#[derive(Clone, Default)]
struct Recorder {
    handled: Arc<Mutex<Vec<String>>>,
    failures_left: Arc<AtomicUsize>,
    poisoned: Arc<AtomicUsize>,
}

impl Handler for Recorder {
    async fn handle(&self, payload: &[u8]) -> Result<(), HandleError> {
        let text = String::from_utf8_lossy(payload).into_owned();
        if text == "poison" {
            return Err(HandleError::Poison("not a message".into()));
        }
        if text == "flaky"
            && self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(HandleError::Retry("database down".into()));
        }
        self.handled.lock().await.push(text);
        Ok(())
    }

    fn poisoned(&self, _reason: &str) {
        self.poisoned.fetch_add(1, Ordering::SeqCst);
    }
}

async fn consume(topic: &str, group: &str, recorder: Recorder, want: usize) {
    let consumer: StreamConsumer = kafka::consumer_config(&brokers(), group)
        .expect("kafka connection")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(consumer, recorder.clone(), stopped));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while recorder.handled.lock().await.len() < want && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the last commit go out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).expect("stop");
    task.await.expect("consumer task");
}

#[tokio::test]
async fn retries_redeliver_poison_is_skipped_and_offsets_follow_success() {
    let topic = format!("consumer-test-{}", uuid::Uuid::new_v4().simple());
    kafka::ensure_topics(&brokers(), &[&topic], 1, 1)
        .await
        .expect("topic");
    let producer: FutureProducer = kafka::producer_config(&brokers())
        .expect("kafka connection")
        .create()
        .expect("producer");
    for payload in ["one", "poison", "flaky", "two"] {
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("publish");
    }
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let recorder = Recorder::default();
    recorder.failures_left.store(2, Ordering::SeqCst);
    consume(&topic, &group, recorder.clone(), 3).await;
    assert_eq!(
        *recorder.handled.lock().await,
        vec!["one", "flaky", "two"],
        "in order; the flaky message handled once after two retries"
    );
    assert_eq!(recorder.poisoned.load(Ordering::SeqCst), 1);
    assert_eq!(recorder.failures_left.load(Ordering::SeqCst), 0);

    // The same group again: everything was committed, nothing comes back.
    producer
        .send(
            FutureRecord::to(&topic).key("k").payload("three"),
            Duration::from_secs(10),
        )
        .await
        .expect("publish");
    let again = Recorder::default();
    consume(&topic, &group, again.clone(), 1).await;
    assert_eq!(*again.handled.lock().await, vec!["three"]);
}

/// One member of a consumer group: records which member handled which payload.
#[derive(Clone)]
struct Member {
    name: &'static str,
    seen: Arc<Mutex<Vec<(&'static str, String)>>>,
}

impl Handler for Member {
    async fn handle(&self, payload: &[u8]) -> Result<(), HandleError> {
        let text = String::from_utf8_lossy(payload).into_owned();
        self.seen.lock().await.push((self.name, text));
        Ok(())
    }
}

/// Sends `round:partition` to every partition of `topic`; the payloads sent.
async fn a_message_per_partition(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    round: &str,
) -> Vec<String> {
    let mut sent = Vec::new();
    for partition in 0..partitions {
        let payload = format!("{round}:{partition}");
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key("k")
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("publish");
        sent.push(payload);
    }
    sent
}

/// Waits (≤ 30 s) until every payload of `want` was handled; who handled each.
async fn handled_by(
    seen: &Mutex<Vec<(&'static str, String)>>,
    want: &[String],
) -> Vec<(&'static str, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let handled: Vec<(&'static str, String)> = seen
            .lock()
            .await
            .iter()
            .filter(|(_, payload)| want.contains(payload))
            .cloned()
            .collect();
        let all = want
            .iter()
            .all(|payload| handled.iter().any(|(_, p)| p == payload));
        if all {
            return handled;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not handled within 30 s: {want:?}; handled: {handled:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn partitions_of(handled: &[(&'static str, String)], member: &str) -> Vec<String> {
    let mut partitions: Vec<String> = handled
        .iter()
        .filter(|(name, _)| *name == member)
        .filter_map(|(_, payload)| payload.split_once(':').map(|(_, p)| p.to_owned()))
        .collect();
    partitions.sort();
    partitions.dedup();
    partitions
}

#[tokio::test]
async fn a_member_that_leaves_hands_its_partitions_to_the_other_and_nothing_is_lost() {
    const PARTITIONS: i32 = 4;
    let topic = format!("rebalance-test-{}", uuid::Uuid::new_v4().simple());
    kafka::ensure_topics(&brokers(), &[&topic], PARTITIONS, 1)
        .await
        .expect("topic");
    let producer: FutureProducer = kafka::producer_config(&brokers())
        .expect("kafka connection")
        .create()
        .expect("producer");
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let member = |name: &'static str| {
        let consumer: StreamConsumer = kafka::consumer_config(&brokers(), &group)
            .expect("kafka connection")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let handler = Member {
            name,
            seen: seen.clone(),
        };
        (stop, tokio::spawn(run(consumer, handler, stopped)))
    };
    let (stop_a, a) = member("a");
    let (stop_b, b) = member("b");
    let mut sent = Vec::new();

    // Both members join; a round on every partition until each has handled
    // some, then one more round once the group is settled: who holds what.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for round in 0.. {
        let this =
            a_message_per_partition(&producer, &topic, PARTITIONS, &format!("join{round}")).await;
        sent.extend(this.iter().cloned());
        let handled = handled_by(&seen, &this).await;
        if !partitions_of(&handled, "a").is_empty() && !partitions_of(&handled, "b").is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the two members never shared the partitions: {handled:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let settled = a_message_per_partition(&producer, &topic, PARTITIONS, "settled").await;
    sent.extend(settled.iter().cloned());
    let handled = handled_by(&seen, &settled).await;
    let held_by_b = partitions_of(&handled, "b");
    assert!(!held_by_b.is_empty(), "b holds no partition: {handled:?}");
    assert!(
        !partitions_of(&handled, "a").is_empty(),
        "a holds no partition: {handled:?}"
    );

    // b leaves the group (its consumer closes); a takes b's partitions.
    stop_b.send(true).expect("stop b");
    b.await.expect("member b");
    let after = a_message_per_partition(&producer, &topic, PARTITIONS, "after").await;
    sent.extend(after.iter().cloned());
    let handled = handled_by(&seen, &after).await;
    assert_eq!(
        partitions_of(&handled, "a").len(),
        PARTITIONS as usize,
        "a handles every partition once b left (b had {held_by_b:?}): {handled:?}"
    );
    assert!(
        partitions_of(&handled, "b").is_empty(),
        "b handled a message after it left: {handled:?}"
    );
    stop_a.send(true).expect("stop a");
    a.await.expect("member a");

    // Nothing lost across the two rebalances (a redelivery is allowed: the
    // inbox makes it once in effect).
    let seen = seen.lock().await;
    let lost: Vec<&String> = sent
        .iter()
        .filter(|payload| !seen.iter().any(|(_, p)| p == *payload))
        .collect();
    assert!(lost.is_empty(), "lost in the rebalances: {lost:?}");
}
