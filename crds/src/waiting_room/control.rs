//! What the organiser changes during a sale, from kubectl: the queueing
//! method, pause and drain, kicks and blocks, and how the room follows the
//! inventory. The operator writes them to the queue's policy within a
//! reconcile; the queue applies them on its next tick.
//!
//! ```sh
//! kubectl patch wr aurora --type merge -p '{"spec":{"control":{"paused":true}}}'
//! kubectl patch wr aurora --type merge -p '{"spec":{"queueing":{"method":"Random"}}}'
//! kubectl patch wr aurora --type json -p '[{"op":"add","path":"/spec/control/kickUsers/-","value":"user-123"}]'
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_BLOCKED_ADDRESSES, MAX_CONTROL_USERS, MAX_USER_ID_LEN};

/// A CIDR (`192.0.2.0/24`, `2001:db8::/32`) or one address.
pub const CIDR_PATTERN: &str =
    r"^([0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?)$";

pub const MSG_RANDOM_KEEPS_ORDER: &str =
    "queueing.method Random contradicts preQueue.randomizeAtOpen false (keep join order)";
pub const MSG_DRAIN_PASSTHROUGH: &str =
    "control.draining admits no one new; queueing.method Passthrough admits everyone";

/// How the queue orders who gets in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum QueueingMethod {
    /// First come, first served (after the pre-queue draw at open).
    #[default]
    Fifo,
    /// Each tick admits uniformly among those waiting, in the order of
    /// SHA-1(seed ‖ user), the seed committed to on `/queue/audit` and
    /// revealed there once the room stops being random.
    Random,
    /// The room is on but admits everyone at once, counting them.
    Passthrough,
    /// The sale is closed: new visitors get a "sale closed" page or 403
    /// `sale-closed`; nobody is admitted; those in line keep their place.
    Reject,
}

/// The queueing method; switchable during a sale.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Queueing {
    #[serde(default)]
    pub method: QueueingMethod,
}

/// Operations during a sale.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    /// Admit nobody until set back to false; the line keeps its order and
    /// new visitors may still join it.
    #[serde(default)]
    pub paused: bool,
    /// Admit nobody new and take no new joins; the admitted finish.
    #[serde(default)]
    pub draining: bool,
    /// User ids to remove from the line or the active set (their entry
    /// tokens revoked). Each is kicked once per appearance in this list
    /// (`status.kickedUsers`); they may join again at the back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONTROL_USERS), inner(length(min = 1, max = MAX_USER_ID_LEN)))]
    pub kick_users: Vec<String>,
    /// User ids that may not join (and are kicked if in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONTROL_USERS), inner(length(min = 1, max = MAX_USER_ID_LEN)))]
    pub block_users: Vec<String>,
    /// Client networks (CIDR) whose joins and numbers are refused, as the
    /// queue resolves the client address (`Event.spec.clientAddress`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_BLOCKED_ADDRESSES), inner(regex(pattern = CIDR_PATTERN)))]
    pub block_addresses: Vec<String>,
}

/// How the room follows the ticket service's inventory.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryAwareness {
    /// Admission stops while fewer places than this are neither sold nor
    /// held, and waiters are told it is sold out (on the page and in JSON);
    /// places that come back (lapsed holds) re-open it. 0: admit whatever
    /// the inventory says. Default 1: stop when sold out.
    #[serde(default = "default_min_places")]
    pub min_places: u32,
}

fn default_min_places() -> u32 {
    1
}

impl Default for InventoryAwareness {
    fn default() -> Self {
        Self {
            min_places: default_min_places(),
        }
    }
}

/// The tier-1 counter's pause, kept in the status so every reconcile
/// publishes the same parameters (`status.tier1`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tier1Counter {
    /// Unix seconds from which the counter stands still (published ahead
    /// by the propagation margin, so every edge freezes at the same number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<i64>,
    /// After a resume: the frozen number and when counting goes on (Unix
    /// seconds), which replace `0` and `enforceFrom` in the formula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_epoch: Option<i64>,
}
