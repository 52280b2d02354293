//! Test fixtures, in the vocabulary of the tests that use them: the
//! examples as the API server would serve them, and room specs written as
//! only the fields a test is about (everything else minimal and valid).

use k8s_openapi::jiff::Timestamp;
use urr_crds::Event;
use urr_crds::waiting_room::WaitingRoomSpec;

/// `examples/event.yaml`, as if it came from the API server.
pub(crate) fn example_event() -> Event {
    let text = include_str!("../../examples/event.yaml");
    let mut event: Event = serde_yaml::from_str(text).expect("example event");
    event.metadata.namespace = Some("urr-demo".to_owned());
    event.metadata.uid = Some("3f0e2d1c-0000-4000-8000-000000000001".to_owned());
    event
}

/// A room of Event `e` admitting 10 a second, with `fields` (YAML lines of
/// the spec, e.g. `"invites: {validUntil: '2030-01-01T00:00:00Z'}"`) on top.
pub(crate) fn room_spec(fields: &str) -> WaitingRoomSpec {
    serde_yaml::from_str(&format!(
        "eventRef: {{name: e}}\nadmission: {{usersPerSecond: 10}}\n{fields}"
    ))
    .expect("room spec")
}

/// The example Event, its sales closing at `close` (RFC 3339).
pub(crate) fn event_closing_at(close: &str) -> urr_crds::EventSpec {
    let mut event = example_event().spec;
    event.sales_close_at =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(close.parse().expect("time"));
    event
}

/// `seconds` after a fixed moment in 2027, so tests never depend on the clock.
pub(crate) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("time")
}
