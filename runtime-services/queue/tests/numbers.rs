//! Tier-1 numbers from leased blocks (store/numbers.rs) against a real
//! Redis: two stores on one event stand for two queue replicas.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::*;
use urr_queue::store::{NumberBlocks, NumberTaken, QueueStore};

const MAX_AGE: Duration = Duration::from_millis(1000);

async fn replica(event: &str, max_size: u64) -> QueueStore {
    store(event).await.with_number_blocks(NumberBlocks {
        max_size,
        max_age: MAX_AGE,
    })
}

async fn number(store: &QueueStore, address: &str, now_ms: i64) -> u64 {
    match store.take_number(address, 0, now_ms).await.expect("number") {
        NumberTaken::Number(number) => number,
        limited => panic!("no limit was set: {limited:?}"),
    }
}

/// Arrivals at `now_ms` of `count` visitors spread over `replicas` in turn.
async fn arrive(replicas: &[QueueStore], count: usize, now_ms: i64, seen: &mut Vec<(i64, u64)>) {
    for n in 0..count {
        let store = &replicas[n % replicas.len()];
        seen.push((now_ms, number(store, "198.51.100.1", now_ms).await));
    }
}

#[tokio::test]
async fn two_replicas_hand_out_distinct_numbers_and_each_in_arrival_order() {
    let event = unique_event();
    let replicas = [replica(&event, 1000).await, replica(&event, 1000).await];
    let now_ms = urr_service_common::unix_now_ms();
    let tasks: Vec<_> = replicas
        .iter()
        .cloned()
        .map(|store| {
            tokio::spawn(async move {
                let mut numbers = Vec::new();
                for n in 0..1500 {
                    numbers.push(number(&store, "198.51.100.1", now_ms + n / 10).await);
                }
                numbers
            })
        })
        .collect();
    let mut all = HashSet::new();
    for task in tasks {
        let numbers = task.await.expect("task");
        assert!(
            numbers.windows(2).all(|pair| pair[0] < pair[1]),
            "one replica numbers its visitors in arrival order"
        );
        for number in numbers {
            assert!(all.insert(number), "number {number} handed out twice");
        }
    }
    assert_eq!(all.len(), 3000);
    assert!(
        replicas
            .iter()
            .map(QueueStore::numbers_skipped)
            .sum::<u64>()
            < 1000,
        "no block aged out within the same second"
    );
}

/// The fairness the leases keep: whoever arrived `max_age` or more before
/// another visitor has the smaller number, whichever replicas they reached.
#[tokio::test]
async fn visitors_arriving_max_age_apart_are_numbered_in_arrival_order() {
    let event = unique_event();
    let replicas = [
        replica(&event, 1000).await,
        replica(&event, 1000).await,
        replica(&event, 1000).await,
    ];
    let start = urr_service_common::unix_now_ms();
    let mut seen = Vec::new();
    // A burst that grows the blocks, a lull, then an uneven crowd: every
    // 100 ms a different number of visitors, spread over the replicas.
    for step in 0..60i64 {
        let count = match step {
            0..=9 => 40,
            10..=19 => 1,
            _ => (step as usize * 7) % 23,
        };
        arrive(&replicas, count, start + step * 100, &mut seen).await;
    }
    let max_age_ms = MAX_AGE.as_millis() as i64;
    let mut inversions_within_max_age = 0;
    for (i, &(early_at, early)) in seen.iter().enumerate() {
        for &(late_at, late) in &seen[i + 1..] {
            if late_at - early_at >= max_age_ms {
                assert!(
                    early < late,
                    "arrived at +{} ms with {early}, at +{} ms with {late}",
                    early_at - start,
                    late_at - start
                );
            } else if early > late {
                inversions_within_max_age += 1;
            }
        }
    }
    // Blocks do reorder visitors who arrive close together: the bound above
    // is what keeps it fair, not a single counter.
    assert!(
        inversions_within_max_age > 0,
        "with three replicas leasing blocks, close arrivals interleave"
    );
}

#[tokio::test]
async fn a_block_that_ages_out_is_skipped_and_counted() {
    let event = unique_event();
    let store = replica(&event, 1000).await;
    let second = urr_service_common::unix_now_ms() / 1000 * 1000;
    // 400 arrivals within one millisecond: each lease is half the count so
    // far (1, 1, 1, 2, 3, 4, 6, ... numbers), and the 400th is the 85th of
    // a block of 158 leased at the 316th.
    let mut last = 0;
    for _ in 0..400 {
        last = number(&store, "198.51.100.1", second).await;
    }
    assert_eq!(last, 400);
    assert_eq!(store.numbers_skipped(), 0, "no block aged out yet");
    let after_max_age = number(&store, "198.51.100.1", second + 1000).await;
    assert_eq!(store.numbers_skipped(), 473 - 400);
    assert_eq!(after_max_age, 474, "the skipped numbers are the gap");
}

#[tokio::test]
async fn the_address_limit_holds_across_replicas_and_a_refusal_uses_no_number() {
    let event = unique_event();
    let (a, b) = (replica(&event, 1000).await, replica(&event, 1000).await);
    let now_ms = urr_service_common::unix_now_ms();
    let take = |store: &QueueStore, address: &'static str| {
        let store = store.clone();
        async move { store.take_number(address, 3, now_ms).await.expect("number") }
    };
    let mut numbers = Vec::new();
    for store in [&a, &b, &a] {
        match take(store, "203.0.113.9").await {
            NumberTaken::Number(number) => numbers.push(number),
            limited => panic!("within the limit: {limited:?}"),
        }
    }
    for store in [&b, &a] {
        match take(store, "203.0.113.9").await {
            NumberTaken::Limited { retry_after } => assert!((1..=60).contains(&retry_after)),
            number => panic!("the fourth number of a minute is refused: {number:?}"),
        }
    }
    // Another address is not limited, and the refusals took no number:
    // a trickle leases one number at a time, so nothing is skipped.
    let NumberTaken::Number(other) = take(&b, "203.0.113.10").await else {
        panic!("another address has its own limit");
    };
    numbers.push(other);
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn arrivals_of_every_replica_count_once_added() {
    let event = unique_event();
    let (a, b) = (replica(&event, 1000).await, replica(&event, 1000).await);
    let second = urr_service_common::unix_now_ms() / 1000 * 1000;
    for _ in 0..5 {
        number(&a, "198.51.100.1", second + 10).await;
    }
    for _ in 0..7 {
        number(&b, "198.51.100.2", second + 20).await;
    }
    let window = urr_queue::store::ARRIVAL_WINDOW_SECONDS as f64;
    // Reading adds the reader's own tally; b's waits for its flush.
    let read = a.arrivals_per_second(second + 1000).await.expect("rate");
    assert_eq!(read, 5.0 / window);
    b.flush_arrivals().await.expect("flush");
    let read = a.arrivals_per_second(second + 1000).await.expect("rate");
    assert_eq!(read, 12.0 / window, "each arrival counted once");
    b.flush_arrivals()
        .await
        .expect("a second flush adds nothing");
    let read = b.arrivals_per_second(second + 1000).await.expect("rate");
    assert_eq!(read, 12.0 / window);
}

#[tokio::test]
async fn without_leasing_every_number_comes_straight_from_the_counter() {
    let event = unique_event();
    let (a, b) = (replica(&event, 1).await, replica(&event, 1).await);
    let now_ms = urr_service_common::unix_now_ms();
    let mut numbers = Vec::new();
    for n in 0..20 {
        let store = if n % 2 == 0 { &a } else { &b };
        numbers.push(number(store, "198.51.100.1", now_ms).await);
    }
    assert_eq!(
        numbers,
        (1..=20).collect::<Vec<_>>(),
        "one counter, in call order"
    );
}
