use super::*;

#[test]
fn pointers_become_api_server_paths() {
    assert_eq!(
        pointer_to_path("/spec/seatMap/sections/2/rows"),
        "spec.seatMap.sections[2].rows"
    );
    assert_eq!(pointer_to_path(""), "");
    assert_eq!(
        pointer_to_path("/metadata/labels/a~1b"),
        "metadata.labels.a/b"
    );
}

#[test]
fn other_kinds_are_skipped() {
    let reports =
        check_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").expect("yaml");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].kind, None);
    assert!(reports[0].is_valid());
}

#[test]
fn broken_yaml_is_an_error_not_a_panic() {
    let error = check_manifest("a: [unclosed\n").expect_err("bad yaml");
    assert!(
        error.to_string().starts_with("document 0: not valid YAML"),
        "{error}"
    );
}

#[test]
fn typed_mismatch_is_reported_by_both_layers() {
    let yaml = "apiVersion: urr.dev/v1alpha1\nkind: WaitingRoom\nmetadata: {name: r}\nspec:\n  eventRef: {name: e}\n  admission: {usersPerSecond: fast}\n";
    let report = check_manifest(yaml).expect("yaml").remove(0);
    assert_eq!(report.kind, Some(UrrKind::WaitingRoom));
    assert!(
        report
            .server
            .iter()
            .any(|v| v.path == "spec.admission.usersPerSecond"),
        "{:?}",
        report.server
    );
    assert_eq!(report.operator.len(), 1);
    assert!(report.operator[0].message.starts_with("cannot be read"));
}
