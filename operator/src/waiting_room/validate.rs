//! The validating steps of a room's reconcile: the spec alone (what the
//! CRD's CEL rules say, for a cluster without them or an older CRD), then,
//! once the Event is read, the room against its Event (what CEL cannot see).
//! A refusal is a message for `Ready=False, InvalidSpec` naming the field.

use urr_crds::EventSpec;
use urr_crds::WaitingRoom;
use urr_crds::validation::Validate;
use urr_crds::waiting_room::{MSG_INVITES_OUTLIVE_SALE, WaitingRoomSpec};

/// Why a spec cannot be reconciled, as the condition's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSpec(pub String);

/// The room's own rules.
pub(super) fn spec(room: &WaitingRoom) -> Result<(), InvalidSpec> {
    room.validate()
        .map_err(|invalid| InvalidSpec(invalid.to_string().replace('\n', "; ")))
}

/// The room against its Event: no invite code may outlive the sale.
pub(super) fn against_event(room: &WaitingRoomSpec, event: &EventSpec) -> Result<(), InvalidSpec> {
    match &room.invites {
        Some(invites) if invites.valid_until.0 > event.sales_close_at.0 => {
            Err(InvalidSpec(format!(
                "spec.invites.validUntil: {MSG_INVITES_OUTLIVE_SALE} ({} is after {})",
                invites.valid_until.0, event.sales_close_at.0
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{event_closing_at, room_spec};

    #[test]
    fn an_invite_that_outlives_the_sale_is_refused_naming_the_field() {
        let spec = room_spec("invites: {validUntil: '2030-01-02T00:00:00Z'}");
        let refusal =
            against_event(&spec, &event_closing_at("2030-01-01T00:00:00Z")).expect_err("refused");
        assert!(
            refusal.0.starts_with("spec.invites.validUntil: "),
            "{refusal:?}"
        );
        assert!(refusal.0.contains(MSG_INVITES_OUTLIVE_SALE));
        let on_time = event_closing_at("2030-01-02T00:00:00Z");
        assert_eq!(against_event(&spec, &on_time), Ok(()));
        let no_invites = room_spec("");
        assert_eq!(against_event(&no_invites, &on_time), Ok(()));
    }
}
