//! The ticket service's OpenAPI document (`docs/openapi/ticket.json`) and its rendered
//! reference (`docs/api/ticket.md`) are what the code describes: this fails
//! when either drifts (`URR_OPENAPI_WRITE=1` rewrites them).

use std::path::Path;

use urr_service_common::openapi;

#[test]
fn the_checked_in_document_and_reference_are_what_the_code_describes() {
    let api = urr_ticket::openapi_document();
    let findings = openapi::lint(&api);
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (dir, name, text) in [
        ("docs/openapi", "ticket.json", openapi::to_json(&api)),
        ("docs/api", "ticket.md", openapi::markdown(&api)),
    ] {
        if let Err(error) = openapi::check_or_write(&root, dir, name, &text, "urr-ticket") {
            panic!("{error}");
        }
    }
}
