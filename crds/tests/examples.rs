//! Every manifest under `examples/` is checked by both validation layers: the
//! API server's (generated schema + unknown fields + CEL, evaluated offline)
//! and the operator's (`Validate`). Good examples pass both; each file under
//! `examples/invalid/` states what must be refused in its header:
//!
//! ```text
//! # expect: <path>: <message>              both layers refuse <path>; the operator says exactly
//!                                          this, the API server a message containing it
//! # expect-server-only: <path>: <message>  only the API server can see it (e.g. unknown fields)
//! ```
//!
//! tests/apiserver.rs holds the same headers to a real API server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use urr_crds::manifest::{DocumentReport, check_manifest};

fn examples_dir() -> PathBuf {
    manifest_dir().join("../examples")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples directory exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn single_report(path: &Path) -> DocumentReport {
    let text = std::fs::read_to_string(path).expect("readable example");
    let mut reports: Vec<DocumentReport> = check_manifest(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|report| report.kind.is_some())
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "{}: expected one URR resource",
        path.display()
    );
    reports.remove(0)
}

#[test]
fn good_examples_pass_both_layers() {
    let files = yaml_files(&examples_dir());
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable example");
        for report in check_manifest(&text).expect("valid YAML") {
            if report.kind.is_none() {
                continue;
            }
            checked += 1;
            assert!(
                report.server.is_empty(),
                "{}: API server would refuse: {:?}",
                file.display(),
                report.server
            );
            assert!(
                report.operator.is_empty(),
                "{}: operator refuses: {:?}",
                file.display(),
                report.operator
            );
        }
    }
    assert!(
        checked >= 2,
        "expected the Event and WaitingRoom examples, checked {checked}"
    );
}

#[test]
fn example_event_is_a_realistic_concert() {
    let text = std::fs::read_to_string(examples_dir().join("event.yaml")).expect("event.yaml");
    let event: urr_crds::Event = serde_yaml::from_str(&text).expect("typed Event");
    assert!(
        event.spec.total_capacity() >= 10_000,
        "capacity {}",
        event.spec.total_capacity()
    );
    assert!(event.spec.seat_map.sections.len() >= 10);
    assert!(
        event
            .spec
            .seat_map
            .sections
            .iter()
            .any(|s| s.capacity.is_some()),
        "a standing section"
    );
    assert!(
        event
            .spec
            .seat_map
            .sections
            .iter()
            .any(|s| s.rows.is_some()),
        "a seated section"
    );
}

#[derive(Default, Debug)]
struct Expectations {
    /// `path: message` lines the operator must print, exactly.
    operator: BTreeSet<String>,
    /// Paths the API server must refuse, exactly.
    server_paths: BTreeSet<String>,
    /// `(path, message)`: the API server refuses `path` with a message that
    /// contains `message` (its own carries the value and the path as well).
    server: Vec<(String, String)>,
}

fn expectations(path: &Path) -> Expectations {
    let text = std::fs::read_to_string(path).expect("readable example");
    let mut expected = Expectations::default();
    for line in text.lines() {
        let (server_only, rest) = if let Some(rest) = line.strip_prefix("# expect-server-only: ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("# expect: ") {
            (false, rest)
        } else {
            continue;
        };
        let (field, message) = rest
            .split_once(": ")
            .expect("expect line has `path: message`");
        expected.server_paths.insert(field.to_owned());
        expected.server.push((field.to_owned(), message.to_owned()));
        if !server_only {
            expected.operator.insert(rest.to_owned());
        }
    }
    assert!(
        !expected.server_paths.is_empty(),
        "{}: an invalid example must say what it expects",
        path.display()
    );
    expected
}

/// Every message of a CEL rule, read back from the generated CRDs.
fn cel_messages() -> BTreeSet<String> {
    let mut messages = BTreeSet::new();
    for crd in urr_crds::all_crds() {
        let json = serde_json::to_value(&crd).expect("CRD as JSON");
        collect_rule_messages(&json, &mut messages);
    }
    messages
}

fn collect_rule_messages(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(rules) = map
                .get("x-kubernetes-validations")
                .and_then(|r| r.as_array())
            {
                out.extend(
                    rules
                        .iter()
                        .filter_map(|r| r.get("message")?.as_str().map(str::to_owned)),
                );
            }
            map.values().for_each(|v| collect_rule_messages(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_rule_messages(v, out)),
        _ => {}
    }
}

#[test]
fn every_invalid_example_is_refused_by_both_layers_as_declared() {
    let files = yaml_files(&examples_dir().join("invalid"));
    assert!(
        files.len() >= 10,
        "expected a broad set of invalid examples, found {}",
        files.len()
    );
    for file in &files {
        let expected = expectations(file);
        let report = single_report(file);
        let shown = file.display();

        let operator: BTreeSet<String> = report.operator.iter().map(ToString::to_string).collect();
        assert_eq!(operator, expected.operator, "{shown}: operator violations");

        // The empty path is the API server's `<nil>` note that it skipped the
        // CEL rules, not a refusal of its own.
        let server_paths: BTreeSet<String> = report
            .server
            .iter()
            .filter(|v| !v.path.is_empty())
            .map(|v| v.path.clone())
            .collect();
        assert_eq!(
            server_paths, expected.server_paths,
            "{shown}: API server violation paths ({:?})",
            report.server
        );

        for (path, message) in &expected.server {
            assert!(
                report
                    .server
                    .iter()
                    .any(|v| &v.path == path && v.message.contains(message.as_str())),
                "{shown}: API server should refuse `{path}` saying `{message}`, said {:#?}",
                report.server
            );
        }
    }
}

#[test]
fn each_cel_rule_is_exercised_by_an_invalid_example() {
    // A rule no example breaks is a rule nobody has seen fire.
    let mut said = Vec::new();
    for file in yaml_files(&examples_dir().join("invalid")) {
        for violation in single_report(&file).server {
            said.push(violation.message);
        }
    }
    let unexercised: Vec<String> = cel_messages()
        .into_iter()
        .filter(|m| !said.iter().any(|s| s.contains(m.as_str())))
        .filter(|m| !m.contains("512 bytes")) // exercised in tests/rules.rs, needs long paths
        .collect();
    assert!(
        unexercised.is_empty(),
        "CEL rules without an invalid example: {unexercised:#?}"
    );
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
