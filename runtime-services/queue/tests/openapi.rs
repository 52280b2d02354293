//! The queue's OpenAPI document (`docs/openapi/queue.json`) and its rendered
//! reference (`docs/api/queue.md`) are what the code describes: this fails
//! when either drifts (`URR_OPENAPI_WRITE=1` rewrites them).

use std::path::Path;

use urr_service_common::openapi;

#[test]
fn the_checked_in_document_and_reference_are_what_the_code_describes() {
    let api = urr_queue::openapi_document();
    let findings = openapi::lint(&api);
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (dir, name, text) in [
        ("docs/openapi", "queue.json", openapi::to_json(&api)),
        ("docs/api", "queue.md", openapi::markdown(&api)),
    ] {
        if let Err(error) = openapi::check_or_write(&root, dir, name, &text, "urr-queue") {
            panic!("{error}");
        }
    }
}
