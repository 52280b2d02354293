//! The room's controls on a real Redis (WaitingRoom `spec.queueing`,
//! `spec.control`, `spec.inventory`, as the operator writes them to the
//! policy): each queueing method, pause, drain, sold out and its re-opening,
//! kicks and blocks — through the store and the admitter, and the answers
//! buyers get through the routers.

mod support;

use sha1::{Digest, Sha1};
use support::*;
use urr_queue::admitter::Admitter;
use urr_queue::inventory::Places;
use urr_queue::policy::{Policy, QueueingMethod};
use urr_queue::store::{Place, QueueStore, Refusal};

const NOW: i64 = 1_000_000;

fn policy(method: QueueingMethod) -> Policy {
    Policy {
        users_per_second: 5,
        max_active_users: 1_000,
        entry_token_ttl_seconds: 600,
        method,
        ..Policy::default()
    }
}

async fn room(policy: &Policy) -> (String, QueueStore) {
    let event = unique_event();
    let store = store(&event).await;
    store.write_policy(policy).await.expect("policy");
    (event, store)
}

async fn join_all(store: &QueueStore, users: &[String]) {
    for user in users {
        let place = store.join(user, NOW, 600).await.expect("join");
        assert!(matches!(place, Place::Waiting { .. }), "{user}: {place:?}");
    }
}

/// One admitter tick at `at` ms; how many it admitted.
async fn tick(admitter: &mut Admitter, at: i64) -> u64 {
    admitter
        .tick_at(at)
        .await
        .expect("tick")
        .expect("leader")
        .admitted
}

async fn admitted(store: &QueueStore, users: &[String], at: i64) -> Vec<String> {
    let mut out = Vec::new();
    for user in users {
        if let Place::Admitted { .. } = store.status(user, at).await.expect("status") {
            out.push(user.clone());
        }
    }
    out
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("fan-{i:03}")).collect()
}

/// The random method's score, computed here from the seed as an outsider
/// would from `/queue/audit`: the first 13 hex digits of SHA-1(seed ‖ user).
fn score(seed: &str, user: &str) -> u64 {
    let digest = hex::encode(Sha1::digest(format!("{seed}{user}")));
    u64::from_str_radix(&digest[..13], 16).expect("hex")
}

#[tokio::test]
async fn random_admits_the_lowest_scores_of_the_seed_not_the_first_joins() {
    let (_, store) = room(&policy(QueueingMethod::Random)).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(40);
    join_all(&store, &fans).await;
    assert_eq!(tick(&mut leader, NOW + 1_000).await, 5);
    let seed = store.random_seed().await.expect("seed");
    let mut by_score = fans.clone();
    by_score.sort_by_key(|u| score(&seed, u));
    let mut got = admitted(&store, &fans, NOW + 1_000).await;
    got.sort();
    let mut expected = by_score[..5].to_vec();
    expected.sort();
    assert_eq!(got, expected, "the seed's order decides");
    assert_ne!(got, fans[..5].to_vec(), "not join order");
    // The commitment published before is SHA-256 of the seed.
    let state = store.random_state().await.expect("state");
    assert_eq!(
        state.get("commitment").map(String::as_str),
        Some(urr_queue::fairness::commitment(&seed).as_str())
    );
}

#[tokio::test]
async fn switching_random_to_fifo_mid_sale_admits_in_join_order_without_a_rescore() {
    let (_, store) = room(&policy(QueueingMethod::Random)).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(30);
    join_all(&store, &fans).await;
    tick(&mut leader, NOW + 1_000).await;
    let first = admitted(&store, &fans, NOW + 1_000).await;
    store
        .write_policy(&policy(QueueingMethod::Fifo))
        .await
        .expect("switch");
    assert_eq!(tick(&mut leader, NOW + 2_100).await, 5);
    let waiting_in_join_order: Vec<String> = fans
        .iter()
        .filter(|u| !first.contains(u))
        .cloned()
        .collect();
    let mut second: Vec<String> = admitted(&store, &fans, NOW + 2_100)
        .await
        .into_iter()
        .filter(|u| !first.contains(u))
        .collect();
    second.sort();
    assert_eq!(second, waiting_in_join_order[..5].to_vec());
}

#[tokio::test]
async fn passthrough_admits_everyone_at_join_past_the_rate_and_counts_them() {
    let mut p = policy(QueueingMethod::Passthrough);
    p.max_active_users = 3;
    let (_, store) = room(&p).await;
    for user in users(10) {
        let place = store.join(&user, NOW, 600).await.expect("join");
        assert!(matches!(place, Place::Admitted { .. }), "{place:?}");
    }
    assert_eq!(
        store.figures(NOW).await.expect("figures").admitted_total,
        10
    );
}

#[tokio::test]
async fn reject_refuses_new_joins_admits_nobody_and_keeps_the_line() {
    let (_, store) = room(&policy(QueueingMethod::Fifo)).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(3);
    join_all(&store, &fans).await;
    store
        .write_policy(&policy(QueueingMethod::Reject))
        .await
        .expect("close");
    assert_eq!(
        store.join("late", NOW, 600).await.expect("join"),
        Place::Refused(Refusal::Closed)
    );
    assert_eq!(tick(&mut leader, NOW + 1_000).await, 0);
    assert_eq!(
        store.status(&fans[0], NOW + 1_000).await.expect("status"),
        Place::Waiting { rank: 0, total: 3 },
        "those in line keep their place"
    );
    store
        .write_policy(&policy(QueueingMethod::Fifo))
        .await
        .expect("re-open");
    assert_eq!(tick(&mut leader, NOW + 2_100).await, 3);
}

#[tokio::test]
async fn paused_admits_nobody_but_takes_joins_and_resumes_in_order() {
    let mut paused = policy(QueueingMethod::Fifo);
    paused.paused = true;
    let (_, store) = room(&paused).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(8);
    join_all(&store, &fans).await;
    assert_eq!(tick(&mut leader, NOW + 1_000).await, 0);
    store
        .write_policy(&policy(QueueingMethod::Fifo))
        .await
        .expect("resume");
    assert_eq!(tick(&mut leader, NOW + 2_100).await, 5);
    assert_eq!(
        admitted(&store, &fans, NOW + 2_100).await,
        fans[..5].to_vec()
    );
}

#[tokio::test]
async fn draining_refuses_joins_and_admits_nobody_while_the_admitted_keep_their_slot() {
    let (_, store) = room(&policy(QueueingMethod::Fifo)).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(7);
    join_all(&store, &fans).await;
    tick(&mut leader, NOW + 1_000).await;
    let mut draining = policy(QueueingMethod::Fifo);
    draining.draining = true;
    store.write_policy(&draining).await.expect("drain");
    assert_eq!(
        store.join("late", NOW + 1_500, 600).await.expect("join"),
        Place::Refused(Refusal::Draining)
    );
    assert_eq!(tick(&mut leader, NOW + 2_100).await, 0);
    assert_eq!(
        admitted(&store, &fans, NOW + 2_100).await,
        fans[..5].to_vec()
    );
}

#[tokio::test]
async fn sold_out_stops_admission_and_places_that_come_back_reopen_it() {
    let mut aware = policy(QueueingMethod::Fifo);
    aware.min_places = 1;
    let (_, store) = room(&aware).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(12);
    join_all(&store, &fans).await;
    store
        .record_inventory(Places { left: 0, held: 4 }, NOW + 900)
        .await
        .expect("inventory");
    assert_eq!(
        tick(&mut leader, NOW + 1_000).await,
        0,
        "nothing to buy: nobody in"
    );
    // A lapsed hold gives places back.
    store
        .record_inventory(Places { left: 2, held: 2 }, NOW + 1_900)
        .await
        .expect("inventory");
    assert_eq!(tick(&mut leader, NOW + 2_100).await, 5);
    // A read older than the freshness limit is ignored: a silent ticket
    // service must not stop the sale.
    store
        .record_inventory(Places { left: 0, held: 0 }, NOW + 2_200)
        .await
        .expect("inventory");
    let stale_at = NOW + 2_200 + urr_queue::store::INVENTORY_FRESH_MS + 1_000;
    assert_eq!(tick(&mut leader, stale_at).await, 5);
}

#[tokio::test]
async fn a_kicked_user_leaves_the_line_and_the_active_set_with_the_token_revoked() {
    let (event, store) = room(&policy(QueueingMethod::Fifo)).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(7);
    join_all(&store, &fans).await;
    tick(&mut leader, NOW + 1_000).await;
    let mut conn = redis_connection().await;
    let kick = urr_service_common::policy::kick_key(&event);
    redis::cmd("SADD")
        .arg(&kick)
        .arg(&fans[0]) // admitted
        .arg(&fans[6]) // waiting
        .arg("nobody")
        .query_async::<()>(&mut conn)
        .await
        .expect("sadd");
    tick(&mut leader, NOW + 2_100).await;
    for user in [&fans[0], &fans[6]] {
        assert_eq!(
            store.status(user, NOW + 2_200).await.expect("status"),
            Place::Absent
        );
    }
    let revoked: bool = redis::cmd("EXISTS")
        .arg(store.keys().entry_revoked(&fans[0]))
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert!(revoked, "the kicked user's entry tokens are revoked");
    let left: u64 = redis::cmd("SCARD")
        .arg(&kick)
        .query_async(&mut conn)
        .await
        .expect("scard");
    assert_eq!(left, 0, "the admitter empties the kick set");
}

#[tokio::test]
async fn blocked_users_and_networks_are_refused_with_a_problem() {
    let mut blocking = policy(QueueingMethod::Fifo);
    blocking.blocked_addresses = vec!["203.0.113.0/24".parse().expect("net")];
    let event = unique_event();
    let state = state(&event).await;
    state.store.write_policy(&blocking).await.expect("policy");
    let mut conn = redis_connection().await;
    redis::cmd("SADD")
        .arg(urr_service_common::policy::blocked_users_key(&event))
        .arg("mallory")
        .query_async::<()>(&mut conn)
        .await
        .expect("sadd");
    let join = format!("/v1/events/{event}/queue");
    let (status, headers, body) = send(&state, post(&join, Some(&user_token("mallory")), "")).await;
    assert_eq!(status, 403, "{body}");
    assert_problem(&headers, &body, "blocked");
    let (status, _, body) = send(&state, post(&join, Some(&user_token("alice")), "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["admission"], "open");
    let from_blocked_network = with_peer(
        post(&join, Some(&user_token("bob")), ""),
        "203.0.113.9:4000",
    );
    let (status, headers, body) = send(&state, from_blocked_network).await;
    assert_eq!(status, 403, "{body}");
    assert_problem(&headers, &body, "blocked");
}

#[tokio::test]
async fn waiters_are_told_the_room_is_sold_out_or_closed_in_json() {
    let mut aware = policy(QueueingMethod::Fifo);
    aware.min_places = 1;
    let event = unique_event();
    let state = state(&event).await;
    state.store.write_policy(&aware).await.expect("policy");
    let now = urr_service_common::unix_now_ms();
    state
        .store
        .record_inventory(Places { left: 0, held: 0 }, now)
        .await
        .expect("inventory");
    let join = format!("/v1/events/{event}/queue");
    let (status, _, body) = send(&state, post(&join, Some(&user_token("ann")), "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "waiting");
    assert_eq!(body["admission"], "soldOut");
    assert_eq!(body["placesLeft"], 0);
    assert_eq!(body["placesHeld"], 0);
    assert!(
        body["etaSeconds"].is_null(),
        "no estimate while nobody moves"
    );
    state
        .store
        .write_policy(&policy(QueueingMethod::Reject))
        .await
        .expect("close");
    // A fresh state: the snapshot of the old one is a tick old.
    let state = support::state(&event).await;
    let (status, headers, body) = send(&state, post(&join, Some(&user_token("late")), "")).await;
    assert_eq!(status, 403, "{body}");
    assert_problem(&headers, &body, "sale-closed");
    let (status, _, body) =
        send(&state, get(&format!("{join}/me"), Some(&user_token("ann")))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["admission"], "closed");
    let (_, _, stats) = send_internal(&state, get("/internal/stats", None)).await;
    assert_eq!(stats["admission"], "closed");
    assert_eq!(stats["method"], "reject");
}

/// Issue 18 item 8: the draw's member list is committed to (a Merkle root on
/// `/queue/audit`) and each buyer gets an inclusion proof an outsider can
/// check; who was not in the draw gets none.
#[tokio::test]
async fn the_draw_publishes_a_member_root_and_each_drawn_buyer_a_proof_that_verifies() {
    let event = unique_event();
    let state = state(&event).await;
    let store = state.store.clone();
    let pre_queue = Policy {
        sales_open_at: 1_000,
        pre_queue_opens_at: 0,
        randomize_at_open: true,
        ..policy(QueueingMethod::Fifo)
    };
    store.write_policy(&pre_queue).await.expect("policy");
    let mut leader = admitter(&store, "leader", 3_600_000);
    leader.tick_at(900_000).await.expect("tick");
    let fans = users(13);
    for fan in &fans {
        store.join(fan, 900_000, 600).await.expect("join");
    }
    let audit = format!("/v1/events/{event}/queue/audit");
    let (_, _, before) = send(&state, get(&audit, None)).await;
    assert!(before["membersRoot"].is_null(), "no root before the draw");
    let (status, headers, body) = send(
        &state,
        get(&format!("{audit}/proof"), Some(&user_token(&fans[0]))),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_problem(&headers, &body, "not-in-draw");

    leader.tick_at(1_000_000).await.expect("the draw at open");
    store
        .join("late", 1_000_500, 600)
        .await
        .expect("join after open");
    let (_, _, after) = send(&state, get(&audit, None)).await;
    let root_hex = after["membersRoot"].as_str().expect("root").to_owned();
    let mut sorted = fans.clone();
    sorted.sort();
    assert_eq!(root_hex, hex::encode(urr_queue::merkle::root(&sorted)));
    let root: [u8; 32] = hex::decode(&root_hex)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    for fan in [&fans[0], &fans[7], &fans[12]] {
        let (status, _, proof) = send(
            &state,
            get(&format!("{audit}/proof"), Some(&user_token(fan))),
        )
        .await;
        assert_eq!(status, 200, "{proof}");
        let path: Vec<[u8; 32]> = proof["auditPath"]
            .as_array()
            .expect("path")
            .iter()
            .map(|h| {
                hex::decode(h.as_str().expect("hex"))
                    .expect("hex")
                    .try_into()
                    .expect("32 bytes")
            })
            .collect();
        let index = proof["leafIndex"].as_u64().expect("index") as usize;
        assert_eq!(proof["treeSize"], 13);
        assert!(
            urr_queue::merkle::verify(fan, index, 13, &path, &root),
            "{proof}"
        );
        assert!(!urr_queue::merkle::verify("late", index, 13, &path, &root));
    }
    let (status, _, body) = send(
        &state,
        get(&format!("{audit}/proof"), Some(&user_token("late"))),
    )
    .await;
    assert_eq!(status, 404, "joined after the draw: {body}");
}

/// Issue 18 item 2: a session renews while its buyer is active, never past
/// `sessionMaxSeconds` after admission; a completed order (the ticket
/// service's signal) ends it at once, freeing the slot, unless the room
/// keeps sessions to their expiry.
#[tokio::test]
async fn sessions_renew_while_active_up_to_the_maximum_and_end_with_the_order() {
    let mut sessions = policy(QueueingMethod::Fifo);
    sessions.entry_token_ttl_seconds = 60;
    sessions.session_max_seconds = 150;
    let (event, store) = room(&sessions).await;
    let mut leader = admitter(&store, "only", 3_600_000);
    let fans = users(3);
    join_all(&store, &fans).await;
    let at = NOW + 1_000;
    tick(&mut leader, at).await;
    let expiry = |place: Place| match place {
        Place::Admitted { expires_at_ms } => expires_at_ms,
        other => panic!("not admitted: {other:?}"),
    };
    assert_eq!(
        expiry(store.status(&fans[0], at).await.expect("status")),
        at + 60_000
    );
    assert_eq!(
        expiry(store.status(&fans[0], at + 50_000).await.expect("status")),
        at + 110_000,
        "renewed by the token's lifetime while active"
    );
    assert_eq!(
        expiry(store.status(&fans[0], at + 100_000).await.expect("status")),
        at + 150_000,
        "never past the maximum"
    );
    // Without renewal (the default) an entry keeps its first expiry.
    let mut fixed = sessions.clone();
    fixed.session_max_seconds = 0;
    store.write_policy(&fixed).await.expect("policy");
    assert_eq!(
        expiry(store.status(&fans[1], at + 50_000).await.expect("status")),
        at + 60_000
    );

    let mut conn = redis_connection().await;
    let ended = urr_service_common::policy::session_end_key(&event);
    redis::cmd("SADD")
        .arg(&ended)
        .arg(&fans[1])
        .query_async::<()>(&mut conn)
        .await
        .expect("the ticket service's signal");
    tick(&mut leader, at + 2_000).await;
    assert_eq!(
        store.status(&fans[1], at + 2_100).await.expect("status"),
        Place::Absent,
        "the order ended the session"
    );
    let revoked: bool = redis::cmd("EXISTS")
        .arg(store.keys().entry_revoked(&fans[1]))
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert!(revoked, "its entry tokens are revoked");
    // A room that keeps sessions to their expiry drops the signal.
    let mut keep = fixed.clone();
    keep.end_session_on_order = false;
    store.write_policy(&keep).await.expect("policy");
    redis::cmd("SADD")
        .arg(&ended)
        .arg(&fans[2])
        .query_async::<()>(&mut conn)
        .await
        .expect("signal");
    tick(&mut leader, at + 3_000).await;
    assert!(matches!(
        store.status(&fans[2], at + 3_100).await.expect("status"),
        Place::Admitted { .. }
    ));
}
