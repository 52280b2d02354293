//! A WaitingRoom's controls (`spec.queueing`, `spec.control`,
//! `spec.inventory`) through the real operator on the stack's API server:
//! what a person types with kubectl reaches the queue's Redis, the status,
//! the `Admitting` condition and the namespace's Kubernetes Events.
//!
//! ```sh
//! eval "$(URR_STACK_DIR=/tmp/urr-dev-stack scripts/stack env)"
//! cargo test -p urr-operator --test cluster_controls -- --nocapture
//! ```

// This test uses only part of the harness.
#[allow(dead_code)]
mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use redis::AsyncCommands;
use serde_json::json;
use urr_crds::{Event, WaitingRoom};
use urr_service_common::policy;

use support::{
    Operator, Release, TestNamespace, admin, create_secrets, eventually, example_event,
    example_room, far_future, install_crds, random_db, redis_url, room_status, suffix,
};

async fn redis_state(
    url: &str,
    event: &str,
) -> (HashMap<String, String>, BTreeSet<String>, BTreeSet<String>) {
    let mut conn = redis::Client::open(url)
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let policy: HashMap<String, String> = conn
        .hgetall(policy::policy_key(event))
        .await
        .expect("policy");
    let blocked: BTreeSet<String> = conn
        .smembers(policy::blocked_users_key(event))
        .await
        .expect("blocked");
    let kicks: BTreeSet<String> = conn.smembers(policy::kick_key(event)).await.expect("kicks");
    (policy, blocked, kicks)
}

async fn announced(client: &kube::Client, namespace: &str, room: &str) -> Vec<String> {
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .map(|list| {
            list.items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(room))
                .filter_map(|e| e.reason)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn pause_kick_block_and_the_method_typed_with_kubectl_reach_the_queue_and_the_status() {
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-ctl").await;
    let redis = redis_url(random_db());
    create_secrets(&client, &ns.name, &redis).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    let name = format!("ctl-{}", suffix());
    let event = example_event(&name, far_future());
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    events
        .create(&PostParams::default(), &event)
        .await
        .expect("the Event");

    // Tier 2 only (no edge): the controls are the queue's.
    let mut room = example_room(&name);
    room.spec.edge = None;
    let rooms: Api<WaitingRoom> = Api::namespaced(client.clone(), &ns.name);
    rooms
        .create(&PostParams::default(), &room)
        .await
        .expect("the room");

    // What an organiser types during the sale.
    let patch = json!({"spec": {
        "queueing": {"method": "Random"},
        "control": {
            "paused": true,
            "kickUsers": ["user-ann"],
            "blockUsers": ["user-mallory"],
            "blockAddresses": ["203.0.113.0/24", "2001:db8::1"],
        },
    }});
    rooms
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("kubectl patch");

    eventually(
        "the controls in the queue's Redis",
        Duration::from_secs(30),
        || async {
            let (policy, blocked, kicks) = redis_state(&redis, &name).await;
            let want = [
                ("method", "random"),
                ("paused", "1"),
                ("draining", "0"),
                ("minPlaces", "1"),
                ("blockedAddresses", "203.0.113.0/24,2001:db8::1/128"),
            ];
            let wrong: Vec<_> = want
                .iter()
                .filter(|(k, v)| policy.get(*k).map(String::as_str) != Some(*v))
                .collect();
            let kicked = ["user-ann", "user-mallory"]
                .iter()
                .all(|u| kicks.contains(*u));
            if wrong.is_empty() && blocked == BTreeSet::from(["user-mallory".to_owned()]) && kicked
            {
                Ok(())
            } else {
                Err(format!(
                    "policy {policy:?}, blocked {blocked:?}, kicks {kicks:?}; wrong {wrong:?}"
                ))
            }
        },
    )
    .await;
    eventually(
        "status.admission Paused",
        Duration::from_secs(30),
        || async {
            let status = room_status(&rooms, &name).await?;
            let admitting = status.conditions.iter().find(|c| c.type_ == "Admitting");
            match (
                status.admission.as_deref(),
                admitting,
                status.kicked_users.as_slice(),
            ) {
                (Some("Paused"), Some(c), [ann])
                    if c.status == "False" && c.reason == "Paused" && ann == "user-ann" =>
                {
                    Ok(())
                }
                _ => Err(format!("{status:?}")),
            }
        },
    )
    .await;
    eventually(
        "an AdmissionPaused event",
        Duration::from_secs(30),
        || async {
            let reasons = announced(&client, &ns.name, &name).await;
            if reasons.iter().any(|r| r == "AdmissionPaused")
                && reasons.iter().any(|r| r == "UsersKicked")
            {
                Ok(())
            } else {
                Err(format!("{reasons:?}"))
            }
        },
    )
    .await;

    // The admitter empties the kick set; a later reconcile must not kick
    // user-ann again (kicked once per appearance in the list), while the
    // blocked user is asked for again (a no-op unless they got back in).
    let mut conn = redis::Client::open(redis.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    conn.del::<_, ()>(policy::kick_key(&name))
        .await
        .expect("del");
    let resume = json!({"spec": {"control": {"paused": false}}});
    rooms
        .patch(&name, &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .expect("resume");
    eventually(
        "admission Open and user-ann not kicked again",
        Duration::from_secs(30),
        || async {
            let status = room_status(&rooms, &name).await?;
            let (policy, _, kicks) = redis_state(&redis, &name).await;
            let admitting = status.conditions.iter().find(|c| c.type_ == "Admitting");
            if status.admission.as_deref() == Some("Open")
                && admitting.is_some_and(|c| c.status == "True")
                && policy.get("paused").map(String::as_str) == Some("0")
                && kicks == BTreeSet::from(["user-mallory".to_owned()])
            {
                Ok(())
            } else {
                Err(format!("{status:?}; policy {policy:?}; kicks {kicks:?}"))
            }
        },
    )
    .await;
    eventually(
        "an AdmissionOpen event",
        Duration::from_secs(30),
        || async {
            let reasons = announced(&client, &ns.name, &name).await;
            if reasons.iter().any(|r| r == "AdmissionOpen") {
                Ok(())
            } else {
                Err(format!("{reasons:?}"))
            }
        },
    )
    .await;

    // Contradictions are refused by the API server with the field path.
    let contradiction =
        json!({"spec": {"queueing": {"method": "Passthrough"}, "control": {"draining": true}}});
    let refused = rooms
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&contradiction),
        )
        .await
        .expect_err("draining with passthrough is refused");
    assert!(
        refused.to_string().contains("spec.control.draining"),
        "{refused}"
    );
    operator.assert_running();
}
