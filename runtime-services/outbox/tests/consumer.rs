//! The consumer loop's commit discipline against the real broker: a
//! retryable failure redelivers the same message, a poison message is
//! skipped, offsets are committed only after the handler succeeded.

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
