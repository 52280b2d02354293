//! Rules that examples cannot show well (long inputs, boundaries), checked on
//! both layers from one table so they cannot disagree.

use serde_json::{Value, json};
use urr_crds::manifest::check_object;

fn room(spec_patch: Value) -> Value {
    let mut object = json!({
        "apiVersion": "urr.dev/v1alpha1",
        "kind": "WaitingRoom",
        "metadata": {"name": "r"},
        "spec": {"eventRef": {"name": "e"}}
    });
    merge(&mut object["spec"], spec_patch);
    object
}

fn event(spec_patch: Value) -> Value {
    let text =
        std::fs::read_to_string(manifest_dir().join("../examples/event.yaml")).expect("example");
    let mut object: Value = serde_yaml::from_str(&text).expect("yaml");
    merge(&mut object["spec"], spec_patch);
    object
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

/// Asserts both layers agree: both accept, or both refuse at `path`.
fn assert_agree(object: &Value, refused_at: Option<&str>) {
    let report = check_object(object);
    match refused_at {
        None => {
            assert!(report.server.is_empty(), "server: {:?}", report.server);
            assert!(
                report.operator.is_empty(),
                "operator: {:?}",
                report.operator
            );
        }
        Some(path) => {
            assert!(
                report.server.iter().any(|v| v.path == path),
                "server at {path}: {:?}",
                report.server
            );
            assert!(
                report.operator.iter().any(|v| v.path == path),
                "operator at {path}: {:?}",
                report.operator
            );
        }
    }
}

#[test]
fn defaults_make_a_minimal_room_valid() {
    assert_agree(&room(json!({})), None);
}

#[test]
fn edge_paths_must_fit_the_one_kilobyte_entry() {
    let long = |c: char| format!("/{}", c.to_string().repeat(99)); // 100 characters each
    let five: Vec<String> = "abcde".chars().map(long).collect(); // 500
    assert_agree(&room(json!({"paths": {"protected": five}})), None);
    let six: Vec<String> = "abcdef".chars().map(long).collect(); // 600
    assert_agree(
        &room(json!({"paths": {"protected": six}})),
        Some("spec.paths"),
    );
}

#[test]
fn range_boundaries_are_inclusive_on_both_layers() {
    for (value, refused) in [(0, true), (1, false), (100_000, false), (100_001, true)] {
        let object = room(json!({"admission": {"usersPerSecond": value}}));
        assert_agree(&object, refused.then_some("spec.admission.usersPerSecond"));
    }
    for (value, refused) in [(29, true), (30, false), (3600, false), (3601, true)] {
        let object = event(json!({"holdTimeoutSeconds": value}));
        assert_agree(&object, refused.then_some("spec.holdTimeoutSeconds"));
    }
}

#[test]
fn equal_open_and_close_is_refused() {
    assert_agree(
        &event(
            json!({"salesOpenAt": "2026-12-12T11:00:00Z", "salesCloseAt": "2026-12-12T11:00:00Z"}),
        ),
        Some("spec.salesCloseAt"),
    );
}

#[test]
fn rs256_with_a_jwks_url_is_accepted() {
    let auth = json!({"auth": {"userJwt": {"algorithm": "RS256", "secretRef": null, "jwksUrl": "https://id.example.com/jwks.json"}}});
    let mut object = event(auth);
    object["spec"]["auth"]["userJwt"]
        .as_object_mut()
        .expect("object")
        .remove("secretRef");
    assert_agree(&object, None);
}

#[test]
fn an_arn_store_reference_is_accepted_and_a_bad_arn_refused() {
    let edge = |arn: &str| {
        room(json!({"edge": {
            "keyValueStoreArn": arn,
            "signingKeyRef": {"name": "s", "key": "k"},
            "signingKeyId": "k1"
        }}))
    };
    assert_agree(
        &edge(
            "arn:aws:cloudfront::123456789012:key-value-store/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        ),
        None,
    );
    assert_agree(
        &edge("arn:aws:s3:::bucket"),
        Some("spec.edge.keyValueStoreArn"),
    );
}

#[test]
fn scheduled_room_with_start_is_accepted() {
    assert_agree(
        &room(json!({"activation": {"mode": "Scheduled", "startAt": "2026-12-12T10:30:00Z"}})),
        None,
    );
}

#[test]
fn unknown_mode_is_refused_by_the_schema_and_unreadable_for_the_operator() {
    let report = check_object(&room(json!({"activation": {"mode": "Sometimes"}})));
    assert!(
        report
            .server
            .iter()
            .any(|v| v.path == "spec.activation.mode"),
        "{:?}",
        report.server
    );
    assert!(
        report
            .operator
            .iter()
            .any(|v| v.message.contains("unknown variant")),
        "{:?}",
        report.operator
    );
}

#[test]
fn long_event_names_are_refused() {
    let mut object = event(json!({}));
    object["metadata"]["name"] = json!("a".repeat(56));
    assert_agree(&object, Some("metadata.name"));
    object["metadata"]["name"] = json!("a".repeat(55));
    assert_agree(&object, None);
}

/// The package directory at run time (cargo sets it for test binaries): a
/// compile-time path would point into whichever clone built a binary that
/// cargo reuses from a shared target directory.
fn manifest_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
}
