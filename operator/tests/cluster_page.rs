//! The branded waiting page (issue 19, item 3) through the real operator on
//! the stack's API server: a good template ConfigMap reaches the queue's
//! Redis with `PageTemplateValid=True`; an edit that adds a foreign script is
//! refused with the reason and the good page stays; a missing ConfigMap is
//! named. What a person types: `kubectl create configmap`, `kubectl patch`.
//!
//! ```sh
//! eval "$(URR_STACK_DIR=/tmp/urr-dev-stack scripts/stack env)"
//! cargo test -p urr-operator --test cluster_page -- --nocapture
//! ```

// This test uses only part of the harness.
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use redis::AsyncCommands;
use serde_json::json;
use urr_crds::{Event, WaitingRoom};
use urr_service_common::page_template;

use support::{
    Operator, Release, TestNamespace, admin, create_secrets, eventually, example, example_event,
    example_room, far_future, install_crds, random_db, redis_url, room_condition, suffix,
};

async fn page_hash(url: &str, event: &str) -> HashMap<String, String> {
    let mut conn = redis::Client::open(url)
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    conn.hgetall(page_template::page_key(event))
        .await
        .expect("the page hash")
}

async fn page_condition(
    rooms: &Api<WaitingRoom>,
    name: &str,
) -> Result<(String, String, String), String> {
    let condition = room_condition(rooms, name, "PageTemplateValid").await?;
    Ok((condition.status, condition.reason, condition.message))
}

#[tokio::test]
async fn a_good_template_reaches_the_queue_and_a_foreign_script_or_a_missing_config_map_is_refused()
{
    let client = admin().await;
    install_crds(&client).await;
    let release = Release::install(&client).await;
    let ns = TestNamespace::create(&client, "urr-t-page").await;
    let redis = redis_url(random_db());
    create_secrets(&client, &ns.name, &redis).await;
    let mut operator = Operator::spawn(&release, &ns.name, "0");
    operator.wait_ready().await;

    let name = format!("page-{}", suffix());
    Api::<Event>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &example_event(&name, far_future()))
        .await
        .expect("the Event");
    let mut config_map: ConfigMap = serde_yaml::from_str(&example("waiting-page/configmap.yaml"))
        .expect("the example ConfigMap");
    config_map.metadata.namespace = None;
    let map_name = format!("{name}-page");
    config_map.metadata.name = Some(map_name.clone());
    let good_template = config_map
        .data
        .as_ref()
        .and_then(|d| d.get("template.html"))
        .cloned()
        .expect("the example's template");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    config_maps
        .create(&PostParams::default(), &config_map)
        .await
        .expect("kubectl create configmap");

    let mut room = example_room(&name);
    room.spec.edge = None;
    room.spec.page =
        serde_json::from_value(json!({"templateConfigMap": map_name})).expect("spec.page");
    let rooms: Api<WaitingRoom> = Api::namespaced(client.clone(), &ns.name);
    rooms
        .create(&PostParams::default(), &room)
        .await
        .expect("the room");

    eventually(
        "the good page in the queue's Redis",
        Duration::from_secs(30),
        || async {
            let (status, reason, _) = page_condition(&rooms, &name).await?;
            let hash = page_hash(&redis, &name).await;
            match hash.get("template") {
                Some(template)
                    if status == "True"
                        && reason == "TemplateValid"
                        && *template == good_template =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "{status} {reason}, hash keys {:?}",
                    hash.keys().collect::<Vec<_>>()
                )),
            }
        },
    )
    .await;
    let good_digest = page_hash(&redis, &name).await.get("digest").cloned();

    // A designer's edit that loads a script from elsewhere.
    let foreign = good_template.replacen(
        "</head>",
        "<script src=\"https://cdn.example.net/tracker.js\"></script></head>",
        1,
    );
    assert_ne!(foreign, good_template, "the example has a </head>");
    config_maps
        .patch(
            &map_name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"template.html": foreign}})),
        )
        .await
        .expect("kubectl patch configmap");
    eventually("ForeignScript", Duration::from_secs(30), || async {
        match page_condition(&rooms, &name).await? {
            (status, reason, message)
                if status == "False"
                    && reason == "ForeignScript"
                    && message.contains(&map_name) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        page_hash(&redis, &name).await.get("digest").cloned(),
        good_digest,
        "the last good page stays"
    );

    config_maps
        .delete(&map_name, &DeleteParams::default())
        .await
        .expect("kubectl delete configmap");
    eventually("ConfigMapMissing", Duration::from_secs(30), || async {
        match page_condition(&rooms, &name).await? {
            (status, reason, _) if status == "False" && reason == "ConfigMapMissing" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    operator.assert_running();
}
