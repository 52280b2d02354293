//! The KeyValueStore writer against the emulator of the local stack
//! (`scripts/stack up`; `URR_KVS_ENDPOINT`, `URR_KVS_ARN`).

use std::time::Duration;

use urr_operator::kvs::{KvsChange, KvsError, KvsWriter};

fn stack() -> (String, String) {
    let endpoint = std::env::var("URR_KVS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "URR_KVS_ENDPOINT is not set: run `eval \"$(scripts/stack env)\"` (scripts/test does)"
        )
    });
    let arn = std::env::var("URR_KVS_ARN").expect("URR_KVS_ARN");
    (endpoint, arn)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}/{}", uuid_like())
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn put(key: &str, value: &str) -> KvsChange {
    KvsChange::Put {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

#[tokio::test]
async fn a_put_lands_with_its_value_and_a_delete_removes_it() {
    let (endpoint, arn) = stack();
    let writer = KvsWriter::new(arn, Some(&endpoint)).await;
    let key = unique("wr/test/put");
    let before = writer.etag().await.expect("describe");
    let after = writer
        .apply(&[put(&key, r#"{"v":1,"active":true}"#)])
        .await
        .expect("apply");
    assert_ne!(before, after, "the store's ETag moves with a write");
    assert_eq!(
        writer.get(&key).await.expect("get").as_deref(),
        Some(r#"{"v":1,"active":true}"#)
    );
    writer
        .apply(&[KvsChange::Delete { key: key.clone() }])
        .await
        .expect("delete");
    assert_eq!(writer.get(&key).await.expect("get"), None);
}

#[tokio::test]
async fn two_writers_racing_on_the_etag_both_land() {
    let (endpoint, arn) = stack();
    let first = KvsWriter::new(arn.clone(), Some(&endpoint)).await;
    let second = KvsWriter::new(arn, Some(&endpoint)).await;
    let base = unique("wr/test/race");
    let keys: Vec<String> = (0..20).map(|i| format!("{base}/{i}")).collect();
    let run = |writer: KvsWriter, keys: Vec<String>| async move {
        for key in keys {
            writer
                .apply(&[put(&key, "x")])
                .await
                .expect("write lands despite the other writer");
        }
    };
    tokio::join!(
        run(first.clone(), keys[..10].to_vec()),
        run(second, keys[10..].to_vec())
    );
    for key in &keys {
        assert_eq!(
            first.get(key).await.expect("get").as_deref(),
            Some("x"),
            "{key}"
        );
    }
    let deletes: Vec<KvsChange> = keys
        .iter()
        .map(|k| KvsChange::Delete { key: k.clone() })
        .collect();
    first.apply(&deletes).await.expect("clean up");
}

#[tokio::test]
async fn more_keys_than_one_update_allows_go_in_batches() {
    let (endpoint, arn) = stack();
    let writer = KvsWriter::new(arn, Some(&endpoint)).await;
    let base = unique("wr/test/batch");
    let changes: Vec<KvsChange> = (0..120)
        .map(|i| put(&format!("{base}/{i}"), &i.to_string()))
        .collect();
    writer.apply(&changes).await.expect("apply 120 keys");
    assert_eq!(
        writer
            .get(&format!("{base}/119"))
            .await
            .expect("get")
            .as_deref(),
        Some("119")
    );
    let deletes: Vec<KvsChange> = (0..120)
        .map(|i| KvsChange::Delete {
            key: format!("{base}/{i}"),
        })
        .collect();
    writer.apply(&deletes).await.expect("clean up");
}

#[tokio::test]
async fn an_unreachable_store_is_an_error_after_bounded_retries_not_a_panic() {
    let (_, arn) = stack();
    // Nothing listens on port 9 (discard) on loopback here.
    let writer = KvsWriter::new(arn, Some("http://127.0.0.1:9"))
        .await
        .with_retries(3, Duration::from_millis(10));
    let error = writer
        .apply(&[put("wr/test/unreachable", "x")])
        .await
        .expect_err("no store");
    assert!(
        matches!(error, KvsError::Unreachable { attempts: 3, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_store_is_refused_with_the_service_message() {
    let (endpoint, _) = stack();
    let writer = KvsWriter::new(
        "arn:aws:cloudfront::000000000000:key-value-store/does-not-exist",
        Some(&endpoint),
    )
    .await;
    let error = writer.etag().await.expect_err("unknown store");
    assert!(matches!(error, KvsError::Refused { .. }), "{error}");
}
