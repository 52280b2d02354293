//! The checked-in CRD YAML must be exactly what the types generate. When this
//! fails, run `cargo run -p urr-crds --bin crdgen -- write` and commit.

use urr_crds::generate::{GENERATED_DIR, all_files};

#[test]
fn checked_in_crds_match_the_types() {
    let dir = manifest_dir().join("..").join(GENERATED_DIR);
    let files = all_files().expect("CRDs render");
    assert_eq!(files.len(), 2);
    for file in files {
        let path = dir.join(&file.file_name);
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing ({e}); run crdgen write", path.display()));
        assert!(
            on_disk == file.contents,
            "{} drifted from the types; run `cargo run -p urr-crds --bin crdgen -- write`",
            path.display()
        );
    }
    // No stale file of a kind that no longer exists.
    let on_disk = std::fs::read_dir(&dir).expect("generated dir").count();
    assert_eq!(on_disk, 2, "unexpected files in {}", dir.display());
}

#[test]
fn the_chart_ships_the_generated_crds() {
    // Helm installs the chart's copy; it must be the CRDs the tests exercise.
    let chart = manifest_dir().join("../charts/urr-operator/crds");
    for file in all_files().expect("CRDs render") {
        let path = chart.join(&file.file_name);
        let shipped = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing ({e})", path.display()));
        assert!(
            shipped == file.contents,
            "{} differs from crds/generated/; run `cp crds/generated/*.yaml charts/urr-operator/crds/`",
            path.display()
        );
    }
}

#[test]
fn crds_have_the_names_kubectl_users_need() {
    for crd in urr_crds::all_crds() {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "urr.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            names.categories.as_deref(),
            Some(&["urr".to_owned()][..]),
            "{}",
            names.kind
        );
        let short = names.short_names.clone().unwrap_or_default();
        assert!(!short.is_empty(), "{} has short names", names.kind);
        // `ev` is the core Event's short name; ours must never shadow it.
        assert!(
            !short.iter().any(|s| s == "ev" || s == "event"),
            "{short:?}"
        );
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "status subresource"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert!(columns.len() >= 5, "{} columns: {columns:?}", names.kind);
    }
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
