//! The queue and the admitter against a real Redis.

mod support;

use std::collections::HashSet;

use redis::AsyncCommands;
use support::*;
use urr_queue::fairness;
use urr_queue::policy::Policy;
use urr_queue::store::Place;

const HOUR_MS: u64 = 3_600_000;

fn open_policy(users_per_second: u32, max_active_users: u32, ttl: u32) -> Policy {
    Policy {
        users_per_second,
        max_active_users,
        entry_token_ttl_seconds: ttl,
        ..Policy::default()
    }
}

#[tokio::test]
async fn join_position_and_leave() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&open_policy(10, 10, 60))
        .await
        .expect("policy");
    let now = 1_000_000;
    for (i, user) in ["ann", "ben", "cy"].iter().enumerate() {
        let place = store.join(user, now, 60).await.expect("join");
        assert_eq!(
            place,
            Place::Waiting {
                rank: i as u64,
                total: i as u64 + 1
            }
        );
    }
    assert!(store.leave("ben", now).await.expect("leave"));
    assert!(
        !store.leave("ben", now).await.expect("leave twice"),
        "already gone"
    );
    assert_eq!(
        store.status("cy", now).await.expect("status"),
        Place::Waiting { rank: 1, total: 2 }
    );
    assert_eq!(
        store.status("ben", now).await.expect("status"),
        Place::Absent
    );
}

#[tokio::test]
async fn rejoining_keeps_the_place() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&open_policy(10, 10, 60))
        .await
        .expect("policy");
    for user in ["a", "b", "c"] {
        store.join(user, 1, 60).await.expect("join");
    }
    // `a` rejoins from another device: still first, nobody added.
    assert_eq!(
        store.join("a", 2, 60).await.expect("rejoin"),
        Place::Waiting { rank: 0, total: 3 }
    );
}

#[tokio::test]
async fn three_racing_admitters_never_exceed_the_threshold_nor_admit_twice() {
    let event = unique_event();
    let store = store(&event).await;
    let threshold = 50u64;
    // 20 per tick, entries last 5 s, so slots free up and refill many times.
    store
        .write_policy(&open_policy(20, threshold as u32, 5))
        .await
        .expect("policy");
    let users: Vec<String> = (0..600).map(|i| format!("user-{i:04}")).collect();
    let start_ms = 10_000_000;
    for user in &users {
        store.join(user, start_ms, 5).await.expect("join");
    }
    let mut admitters: Vec<_> = (0..3)
        .map(|i| admitter(&store, &format!("replica-{i}"), HOUR_MS))
        .collect();
    let mut conn = redis_connection().await;
    let mut admitted_ever: HashSet<String> = HashSet::new();
    let mut total_admitted = 0u64;
    for tick in 0..60i64 {
        let now = start_ms + tick * 1000;
        let [a, b, c] = &mut admitters[..] else {
            unreachable!()
        };
        let (ra, rb, rc) = tokio::join!(a.tick_at(now), b.tick_at(now), c.tick_at(now));
        let outcomes: Vec<_> = [ra, rb, rc]
            .into_iter()
            .filter_map(|r| r.expect("tick"))
            .collect();
        assert_eq!(
            outcomes.len(),
            1,
            "tick {tick}: exactly one replica admits, got {outcomes:?}"
        );
        total_admitted += outcomes[0].admitted;
        let active: Vec<String> = conn
            .zrangebyscore(store.keys().active(), now, "+inf")
            .await
            .expect("active");
        assert!(
            active.len() as u64 <= threshold,
            "tick {tick}: {} active > threshold {threshold}",
            active.len()
        );
        for user in active {
            admitted_ever.insert(user);
        }
    }
    let counted: u64 = conn
        .get(store.keys().admitted_total())
        .await
        .expect("admitted total");
    assert_eq!(counted, total_admitted);
    assert_eq!(
        admitted_ever.len() as u64,
        total_admitted,
        "someone was admitted twice (or the count is off)"
    );
    // 60 ticks × 20 per tick capped by 50 slots freed every 5 s: about 10 per second.
    assert!(total_admitted >= 500, "admitted only {total_admitted}");
    let depth: u64 = conn.zcard(store.keys().queue()).await.expect("depth");
    assert_eq!(
        depth + total_admitted,
        users.len() as u64,
        "every user is either waiting or was admitted once"
    );
}

#[tokio::test]
async fn a_stalled_leader_is_fenced_out() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&open_policy(5, 100, 60))
        .await
        .expect("policy");
    store.join("u", 1_000, 60).await.expect("join");
    let mut first = admitter(&store, "first", HOUR_MS);
    let mut second = admitter(&store, "second", HOUR_MS);
    assert!(first.tick_at(1_000).await.expect("tick").is_some());
    // `first` stalls; its lease expires and `second` takes over.
    let mut conn = redis_connection().await;
    let _: () = conn
        .del(store.keys().admitter_lease())
        .await
        .expect("expire lease");
    assert!(second.tick_at(5_000).await.expect("tick").is_some());
    // `first` wakes up with its old token: it must not act.
    let fenced = store
        .tick("first:1", 6_000, 1000, HOUR_MS, 3000, &Policy::default())
        .await
        .expect("tick");
    assert_eq!(fenced, None);
    assert!(
        first.tick_at(6_000).await.expect("tick").is_none(),
        "old leader does not lead"
    );
    assert!(second.is_leader());
}

#[tokio::test]
async fn waiters_without_heartbeats_are_reaped_and_entries_expire() {
    let event = unique_event();
    let store = store(&event).await;
    // Nothing admitted (room paused by a zero-rate-equivalent: threshold 1, filled below).
    store
        .write_policy(&open_policy(1, 1, 10))
        .await
        .expect("policy");
    store.join("first", 0, 10).await.expect("join");
    let mut leader = admitter(&store, "leader", 60_000);
    let outcome = leader.tick_at(1_000).await.expect("tick").expect("leader");
    assert_eq!(outcome.admitted, 1, "first takes the only slot");
    store.join("quiet", 1_000, 10).await.expect("join");
    store.join("alive", 1_000, 10).await.expect("join");
    // `alive` polls (a heartbeat), `quiet` does not.
    assert!(matches!(
        store.status("alive", 50_000).await.expect("status"),
        Place::Waiting { .. }
    ));
    let outcome = leader.tick_at(62_000).await.expect("tick").expect("leader");
    assert_eq!(outcome.reaped, 1);
    assert_eq!(
        store.status("quiet", 62_000).await.expect("status"),
        Place::Absent
    );
    // `first`'s entry (10 s) expired long ago: its slot went to `alive`.
    assert_eq!(outcome.admitted, 1);
    assert!(matches!(
        store.status("alive", 62_500).await.expect("status"),
        Place::Admitted { .. }
    ));
}

#[tokio::test]
async fn nobody_is_admitted_before_the_sale_opens() {
    let event = unique_event();
    let store = store(&event).await;
    let policy = Policy {
        sales_open_at: 100,
        randomize_at_open: false,
        ..open_policy(10, 10, 60)
    };
    store.write_policy(&policy).await.expect("policy");
    store.join("early", 10_000, 60).await.expect("join");
    let mut leader = admitter(&store, "leader", HOUR_MS);
    assert_eq!(admitted_at(&mut leader, 99_000).await, 0);
    assert_eq!(admitted_at(&mut leader, 100_000).await, 1);
}

#[tokio::test]
async fn the_pre_queue_draw_is_reproducible_from_the_published_seed() {
    let event = unique_event();
    let store = store(&event).await;
    // Opens at t = 1000 s; rate 0-ish so nobody is admitted before we look.
    let policy = Policy {
        sales_open_at: 1_000,
        pre_queue_opens_at: 0,
        randomize_at_open: true,
        ..open_policy(1, 1, 60)
    };
    store.write_policy(&policy).await.expect("policy");
    let users: Vec<String> = (0..40).map(|i| format!("fan-{i:02}")).collect();
    let mut leader = admitter(&store, "leader", HOUR_MS);
    // Pre-queue: the seed is drawn, only its commitment is known.
    leader.tick_at(900_000).await.expect("tick");
    for user in &users {
        store.join(user, 900_000, 60).await.expect("join");
    }
    let before = store.shuffle_state().await.expect("state");
    let commitment = before
        .get("commitment")
        .cloned()
        .expect("commitment published before open");
    assert!(!before.contains_key("shuffledAt"));
    // Open: the draw happens on the leader's first tick.
    leader.tick_at(1_000_000).await.expect("tick");
    let after = store.shuffle_state().await.expect("state");
    let seed = after.get("seed").cloned().expect("seed");
    assert_eq!(
        fairness::commitment(&seed),
        commitment,
        "the revealed seed matches the commitment"
    );
    // One user was admitted by that tick (rate 1); the rest are in drawn order.
    let expected = fairness::shuffled(&seed, users.iter().map(String::as_str));
    let waiting = store.waiting_members().await.expect("members");
    assert_eq!(waiting.len(), users.len() - 1);
    assert_eq!(
        waiting,
        expected[1..]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    assert_ne!(waiting, users[1..].to_vec(), "the draw is not join order");
    // A join after open goes to the back (FIFO after open).
    store.join("late", 1_000_500, 60).await.expect("join");
    assert_eq!(
        store
            .waiting_members()
            .await
            .expect("members")
            .last()
            .map(String::as_str),
        Some("late")
    );
}

#[tokio::test]
async fn with_the_room_off_a_join_is_admitted_at_once() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&Policy {
            active: false,
            entry_token_ttl_seconds: 30,
            ..Policy::default()
        })
        .await
        .expect("policy");
    let place = store.join("walk-in", 5_000, 600).await.expect("join");
    assert_eq!(
        place,
        Place::Admitted {
            expires_at_ms: 35_000
        },
        "TTL from the policy, not the default"
    );
    assert_eq!(
        store.figures(5_000).await.expect("figures").admitted_total,
        1
    );
}

async fn admitted_at(leader: &mut urr_queue::admitter::Admitter, now_ms: i64) -> u64 {
    leader
        .tick_at(now_ms)
        .await
        .expect("tick")
        .expect("leader")
        .admitted
}

/// Issue 24: a late tick followed by an on-time one admitted twice the rate
/// within one second. No one-second window admits more than the rate.
#[tokio::test]
async fn no_one_second_window_admits_more_than_the_rate_after_a_late_tick() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&open_policy(10, 1_000, 600))
        .await
        .expect("policy");
    for i in 0..100 {
        store.join(&format!("u{i:03}"), 0, 600).await.expect("join");
    }
    let mut leader = admitter(&store, "leader", HOUR_MS);
    let mut ticks = Vec::new();
    // On time, late by 700 ms, on time again, then a burst of short ticks.
    for at in [1_000, 2_700, 3_000, 3_700, 3_800, 3_900, 4_000, 5_000] {
        ticks.push((at, admitted_at(&mut leader, at).await));
    }
    for &(start, _) in &ticks {
        let in_window: u64 = ticks
            .iter()
            .filter(|(at, _)| *at >= start && *at < start + 1_000)
            .map(|(_, admitted)| admitted)
            .sum();
        assert!(
            in_window <= 10,
            "{in_window} admitted in the second from {start} ms (rate 10): {ticks:?}"
        );
    }
    // The window slides rather than starving: the late tick and the next
    // whole second each admit the full rate.
    assert_eq!(ticks[1], (2_700, 10));
    assert_eq!(ticks[2], (3_000, 0));
    assert_eq!(ticks[7], (5_000, 10));
}

#[tokio::test]
async fn a_policy_change_applies_on_the_next_tick() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&open_policy(2, 100, 60))
        .await
        .expect("policy");
    for i in 0..20 {
        store.join(&format!("u{i}"), 0, 60).await.expect("join");
    }
    let mut leader = admitter(&store, "leader", HOUR_MS);
    assert_eq!(admitted_at(&mut leader, 1_000).await, 2);
    store
        .write_policy(&open_policy(5, 100, 60))
        .await
        .expect("policy");
    assert_eq!(admitted_at(&mut leader, 2_000).await, 5);
    store
        .write_policy(&open_policy(5, 8, 60))
        .await
        .expect("policy");
    assert_eq!(
        admitted_at(&mut leader, 3_000).await,
        1,
        "threshold 8 with 7 active"
    );
}

// Issue 22: leaving after admission freed the slot but the entry token kept
// buying. The leave records the revocation the ticket service checks, for as
// long as a token of that admission can live; a user who only waited had no
// token, so nothing is recorded for them.
#[tokio::test]
async fn leaving_after_admission_records_the_entry_token_revocation() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&Policy {
            active: false,
            entry_token_ttl_seconds: 30,
            ..Policy::default()
        })
        .await
        .expect("policy");
    let now = urr_service_common::unix_now_ms();
    let place = store.join("walk-in", now, 600).await.expect("join");
    assert_eq!(
        place,
        Place::Admitted {
            expires_at_ms: now + 30_000
        }
    );
    assert!(store.leave("walk-in", now + 1_000).await.expect("leave"));
    let key = urr_service_common::tokens::entry::revocation_key(&event, "walk-in");
    let mut redis = redis_connection().await;
    let revoked_at: Option<i64> = redis.get(&key).await.expect("get");
    assert_eq!(revoked_at, Some(now + 1_000));
    let ttl: i64 = redis.pttl(&key).await.expect("pttl");
    assert!((29_000..=30_000).contains(&ttl), "{ttl}");

    let waiting = unique_event();
    let store = support::store(&waiting).await;
    store
        .write_policy(&open_policy(10, 10, 60))
        .await
        .expect("policy");
    store.join("waiter", now, 60).await.expect("join");
    assert!(store.leave("waiter", now).await.expect("leave"));
    let key = urr_service_common::tokens::entry::revocation_key(&waiting, "waiter");
    let none: Option<i64> = redis.get(&key).await.expect("get");
    assert_eq!(none, None);
}

/// Issue 18 item 5: with the room off every join is admitted at once and the
/// depth stays 0, so the queue measures arrivals (new joins and tier-1
/// numbers per second, over the last full seconds) for `Auto` activation;
/// reads and repeated joins are not arrivals.
#[tokio::test]
async fn arrivals_are_measured_while_the_room_is_off() {
    let event = unique_event();
    let store = store(&event).await;
    store
        .write_policy(&Policy {
            active: false,
            ..open_policy(10, 10, 60)
        })
        .await
        .expect("policy");
    let second = urr_service_common::unix_now_ms() / 1000 * 1000;
    for n in 0..30 {
        let place = store
            .join(&format!("walk-in-{n}"), second + 10, 60)
            .await
            .expect("join");
        assert!(
            matches!(place, Place::Admitted { .. }),
            "room off: {place:?}"
        );
    }
    // A repeat and a read are not new arrivals.
    store
        .join("walk-in-0", second + 20, 60)
        .await
        .expect("join");
    store
        .status("walk-in-1", second + 30)
        .await
        .expect("status");
    for _ in 0..10 {
        store
            .take_number("198.51.100.1", 0, second + 40)
            .await
            .expect("number");
    }
    let figures = store.figures(second + 50).await.expect("figures");
    assert_eq!(figures.depth, 0, "nobody waits with the room off");
    // Still in the second: it is not counted until it is over.
    assert_eq!(
        store.arrivals_per_second(second + 500).await.expect("rate"),
        0.0
    );
    let window = urr_queue::store::ARRIVAL_WINDOW_SECONDS as f64;
    assert_eq!(
        store
            .arrivals_per_second(second + 1_000)
            .await
            .expect("rate"),
        40.0 / window
    );
    // Past the window, the surge is over.
    assert_eq!(
        store
            .arrivals_per_second(second + 1_000 * (urr_queue::store::ARRIVAL_WINDOW_SECONDS + 1))
            .await
            .expect("rate"),
        0.0
    );
}
