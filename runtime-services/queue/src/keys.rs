//! Redis key names. Every key of one event carries the hash tag `{event}`, so
//! in Redis Cluster they all live in one slot and the Lua scripts, which touch
//! several of them at once, stay legal (DESIGN.md, Redis keys).

/// The keys of one event, built once: every request names several of them.
#[derive(Debug, Clone)]
pub struct EventKeys {
    event: String,
    prefix: String,
    policy: String,
    edge: String,
    tier1_next: String,
    sequence: String,
    queue: String,
    heartbeats: String,
    active: String,
    admitted_total: String,
    rate_samples: String,
    sequence_clock: String,
    admitter_lease: String,
    admitter_fence: String,
    shuffle: String,
    random_queue: String,
    random_seed: String,
    drawn: String,
    admitted_at: String,
    session_ended: String,
    blocked_users: String,
    kick: String,
    inventory: String,
    invites: String,
    priority_sequence: String,
}

impl EventKeys {
    pub fn new(event: &str) -> Self {
        let prefix = format!("urr:{{{event}}}");
        let key = |suffix: &str| format!("{prefix}:{suffix}");
        Self {
            policy: urr_service_common::policy::policy_key(event),
            edge: urr_service_common::policy::serving_key(event),
            tier1_next: key("t1:next"),
            sequence: key("seq"),
            queue: key("q"),
            heartbeats: key("hb"),
            active: key("active"),
            admitted_total: key("admitted"),
            rate_samples: key("rate"),
            sequence_clock: key("seqclock"),
            admitter_lease: key("admitter:lease"),
            admitter_fence: key("admitter:fence"),
            shuffle: key("shuffle"),
            random_queue: key("rq"),
            random_seed: key("random"),
            drawn: key("drawn"),
            admitted_at: key("admitted-at"),
            session_ended: urr_service_common::policy::session_end_key(event),
            blocked_users: urr_service_common::policy::blocked_users_key(event),
            kick: urr_service_common::policy::kick_key(event),
            inventory: urr_service_common::policy::inventory_key(event),
            invites: urr_service_common::policy::invites_key(event),
            priority_sequence: key("prio-seq"),
            event: event.to_owned(),
            prefix,
        }
    }

    /// Hash code id → the user who redeemed it (each invite code once).
    pub fn invites(&self) -> &str {
        &self.invites
    }
    /// Sequence of the joins with a priority code, scored below every other.
    pub fn priority_sequence(&self) -> &str {
        &self.priority_sequence
    }
    /// Hash written by the operator: admission policy (see [`crate::policy`]).
    pub fn policy(&self) -> &str {
        &self.policy
    }
    /// Hash written by the operator: tier-1 serving parameters.
    pub fn edge(&self) -> &str {
        &self.edge
    }
    /// Tier-1 number counter.
    pub fn tier1_next(&self) -> &str {
        &self.tier1_next
    }
    /// Tier-2 join sequence.
    pub fn sequence(&self) -> &str {
        &self.sequence
    }
    /// Tier-2 queue: ZSET user → join sequence (FIFO order).
    pub fn queue(&self) -> &str {
        &self.queue
    }
    /// ZSET user → last heartbeat (ms), for reaping abandoned places.
    pub fn heartbeats(&self) -> &str {
        &self.heartbeats
    }
    /// ZSET user → entry expiry (ms): the admitted, active users.
    pub fn active(&self) -> &str {
        &self.active
    }
    /// Counter of users admitted so far.
    pub fn admitted_total(&self) -> &str {
        &self.admitted_total
    }
    /// List of recent admitter ticks, `"<ms>:<admitted>"`, newest first.
    pub fn rate_samples(&self) -> &str {
        &self.rate_samples
    }
    /// ZSET tick time (member, ms) → join sequence at that time, to date the
    /// head of the queue without storing a join time per waiter.
    pub fn sequence_clock(&self) -> &str {
        &self.sequence_clock
    }
    /// Admitter lease (`"<instance>:<fence>"`) and its fencing counter.
    pub fn admitter_lease(&self) -> &str {
        &self.admitter_lease
    }
    pub fn admitter_fence(&self) -> &str {
        &self.admitter_fence
    }
    /// Hash: pre-queue shuffle seed, its commitment, when it was applied.
    pub fn shuffle(&self) -> &str {
        &self.shuffle
    }
    /// The same waiters as [`Self::queue`], scored by SHA-1(seed ‖ user):
    /// the order of the `random` method. Kept beside the FIFO queue at every
    /// join, so the method can switch during a sale without a rescore.
    pub fn random_queue(&self) -> &str {
        &self.random_queue
    }
    /// Hash user → admission time (ms): where a session's maximum counts from.
    pub fn admitted_at(&self) -> &str {
        &self.admitted_at
    }
    /// Set of users whose order completed (the ticket service adds them):
    /// their sessions end at the next tick.
    pub fn session_ended(&self) -> &str {
        &self.session_ended
    }
    /// List of the pre-queue draw's members (its inclusion proofs).
    pub fn drawn(&self) -> &str {
        &self.drawn
    }
    /// Hash: the `random` method's seed, its commitment, when it was revealed.
    pub fn random_seed(&self) -> &str {
        &self.random_seed
    }
    /// Set of blocked user ids (the operator writes it).
    pub fn blocked_users(&self) -> &str {
        &self.blocked_users
    }
    /// Set of user ids to kick (the operator adds, the admitter empties).
    pub fn kick(&self) -> &str {
        &self.kick
    }
    /// Hash of the last inventory read: `placesLeft`, `atMs`.
    pub fn inventory(&self) -> &str {
        &self.inventory
    }
    /// When `user` left after admission: their entry tokens are revoked
    /// (read by the ticket service, so the name lives in the common crate).
    pub fn entry_revoked(&self, user: &str) -> String {
        urr_service_common::tokens::entry::revocation_key(&self.event, user)
    }
    /// Fixed-window rate-limit counter.
    pub fn rate_limit(&self, scope: &str, id: &str, window: i64) -> String {
        format!("{}:rl:{scope}:{id}:{window}", self.prefix)
    }

    /// An address's tier-1 number count in a limit window, when numbers
    /// come from leased blocks (store/numbers.rs). It is the one key of
    /// the event outside the event's hash slot, on purpose: one per
    /// visitor address and touched by no multi-key script, so in a Redis
    /// Cluster these counters spread over the shards instead of all
    /// landing on the event's.
    pub fn number_limit(&self, address: &str, window: i64) -> String {
        format!("urr:{{{}/n/{address}}}:rl:{window}", self.event)
    }

    /// New arrivals (joins, tier-1 numbers) in Unix second `second`; kept
    /// two minutes.
    pub fn arrivals(&self, second: i64) -> String {
        format!("{}:arrivals:{second}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_the_event_hash_tag() {
        let keys = EventKeys::new("aurora");
        let limit = keys.rate_limit("ip", "1.2.3.4", 7);
        let revoked = keys.entry_revoked("u1");
        for key in [
            keys.policy(),
            keys.queue(),
            keys.active(),
            keys.random_queue(),
            keys.random_seed(),
            keys.drawn(),
            keys.admitted_at(),
            keys.session_ended(),
            keys.blocked_users(),
            keys.kick(),
            keys.inventory(),
            limit.as_str(),
            revoked.as_str(),
        ] {
            assert!(key.starts_with("urr:{aurora}:"), "{key}");
        }
    }

    #[test]
    fn a_number_limit_has_its_address_hash_slot() {
        let keys = EventKeys::new("aurora");
        assert_eq!(
            keys.number_limit("198.51.100.7", 3),
            "urr:{aurora/n/198.51.100.7}:rl:3"
        );
        assert_ne!(
            keys.number_limit("198.51.100.7", 3),
            keys.number_limit("198.51.100.8", 3)
        );
    }
}
