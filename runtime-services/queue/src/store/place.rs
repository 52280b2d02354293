//! What a join or a read of one's place gives (`join.lua`), and what a join
//! brings with it: its rate limits and a verified invite code.

/// Where a user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Holds an entry until `expires_at_ms`.
    Admitted {
        expires_at_ms: i64,
    },
    /// `rank` users are ahead (0 = next), `total` are waiting.
    Waiting {
        rank: u64,
        total: u64,
    },
    Absent,
    /// A join limit was hit; retry after that many seconds.
    Limited {
        scope: &'static str,
        retry_after: u64,
    },
    /// A new join the room does not take.
    Refused(Refusal),
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user is in `spec.control.blockUsers`.
    Blocked,
    /// The queueing method is `reject`: the sale is closed.
    Closed,
    /// The room drains: nobody new.
    Draining,
    /// The invite code was redeemed by someone else.
    InviteUsed,
}

/// Score base of the joins with a priority code: below every other score
/// (join sequences count up from 1, the pre-queue draw down from -1), and
/// exact in a double.
pub const PRIORITY_BASE: i64 = -1_000_000_000_000_000;

/// A verified invite code presented with a join.
#[derive(Debug, Clone, Copy)]
pub struct InviteUse<'a> {
    pub code_id: &'a str,
    pub mode: urr_service_common::tokens::invite::InviteMode,
}

/// Join rate limits of one request (fixed one-minute windows).
#[derive(Debug, Clone)]
pub struct JoinLimits {
    pub address: String,
    /// Joins per address per window; 0 = unlimited.
    pub per_address: u32,
    /// Joins per user per window; 0 = unlimited.
    pub per_user: u32,
}

impl JoinLimits {
    /// No limits (tests, benchmarks, trusted callers); counts nothing.
    pub fn unlimited() -> Self {
        Self {
            address: "-".to_owned(),
            per_address: 0,
            per_user: 0,
        }
    }
}
