//! `urr-operator invite` against the stack's API server: the binary reads
//! the room, its Event and its signing key Secret and mints codes the queue
//! can verify; a TTL past the room's end is refused with the reason; and the
//! operator refuses a room whose codes would outlive the Event's sale, with
//! the field path in `Ready=False, InvalidSpec`.
//!
//! ```sh
//! eval "$(URR_STACK_DIR=/tmp/urr-dev-stack scripts/stack env)"
//! cargo test -p urr-operator --test cluster_invites -- --nocapture
//! ```

// This test uses only part of the harness.
#[allow(dead_code)]
mod support;

use std::process::Command;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use urr_crds::waiting_room::Invites;
use urr_crds::{Event, WaitingRoom};
use urr_service_common::tokens::invite::{self, InviteMode};
use urr_service_common::tokens::vwr::VwrKey;

use support::{
    Operator, Release, SIGNING_KEY, TestNamespace, admin, at, create_secrets, eventually,
    example_event, example_room, far_future, install_crds, random_db, redis_url, room_condition,
    suffix,
};

fn mint(namespace: &str, room: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_urr-operator"))
        .args(["invite", "--namespace", namespace, "--room", room])
        .args(extra)
        .output()
        .expect("urr-operator runs")
}

#[tokio::test]
async fn codes_minted_from_the_cluster_verify_and_a_room_outliving_its_sale_is_refused() {
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-inv").await;
    create_secrets(&client, &ns.name, &redis_url(random_db())).await;

    let name = format!("inv-{}", suffix());
    let open = far_future();
    let event = example_event(&name, open);
    let close = event.spec.sales_close_at.0.as_second();
    Api::<Event>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &event)
        .await
        .expect("the Event");
    let mut room = example_room(&name);
    // The example's schedule (with an absolute endAt) aside: on from now.
    room.spec.activation = Default::default();
    let valid_until = open + 3_600;
    room.spec.invites = Some(Invites {
        valid_until: at(valid_until),
    });
    let edge = room.spec.edge.clone().expect("the example has an edge");
    let rooms: Api<WaitingRoom> = Api::namespaced(client.clone(), &ns.name);
    rooms
        .create(&PostParams::default(), &room)
        .await
        .expect("the room");

    let output = mint(
        &ns.name,
        &name,
        &["--count", "3", "--mode", "skip", "--prefix", "vip-"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = VwrKey::new(edge.signing_key_id.clone(), SIGNING_KEY.as_bytes().to_vec());
    let room_id = format!("{}/{name}", ns.name);
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        let (id, code) = line.split_once(' ').expect("<id> <code>");
        let claims = invite::verify(
            std::slice::from_ref(&key),
            code,
            &room_id,
            Timestamp::now().as_second(),
        )
        .expect("a code the queue takes");
        assert_eq!(claims.code_id, id);
        assert!(id.starts_with("vip-"));
        assert_eq!(
            (claims.mode, claims.expires_at),
            (InviteMode::Skip, valid_until)
        );
    }
    let links = mint(
        &ns.name,
        &name,
        &["--link", "https://shop.example.com/events/x"],
    );
    let link = String::from_utf8_lossy(&links.stdout).trim().to_owned();
    assert!(
        link.starts_with("https://shop.example.com/events/x?urr-invite="),
        "{link}"
    );

    // A TTL past the room's end: refused, nothing printed.
    let too_long = (valid_until - Timestamp::now().as_second() + 60).to_string();
    let refused = mint(&ns.name, &name, &["--ttl-seconds", &too_long]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("spec.invites.validUntil"), "{why}");

    // validUntil after the Event's close: the API server cannot see the
    // Event, the operator does.
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;
    let patch = json!({"spec": {"invites": {"validUntil": at(close + 60)}}});
    rooms
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("kubectl patch");
    eventually(
        "Ready=False, InvalidSpec",
        Duration::from_secs(30),
        || async {
            let c = room_condition(&rooms, &name, "Ready").await?;
            if c.status == "False"
                && c.reason == "InvalidSpec"
                && c.message.starts_with("spec.invites.validUntil: ")
                && c.message.contains("salesCloseAt")
            {
                Ok(())
            } else {
                Err(format!("{c:?}"))
            }
        },
    )
    .await;
    let past_close = mint(
        &ns.name,
        &name,
        &[
            "--ttl-seconds",
            &(close + 3_600 - Timestamp::now().as_second()).to_string(),
        ],
    );
    assert!(!past_close.status.success());
    assert!(String::from_utf8_lossy(&past_close.stderr).contains("salesCloseAt"));
}
