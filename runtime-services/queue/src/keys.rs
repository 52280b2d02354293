//! Redis key names. Every key of one event carries the hash tag `{event}`, so
//! in Redis Cluster they all live in one slot and the Lua scripts, which touch
//! several of them at once, stay legal (DESIGN.md, Redis keys).

/// The keys of one event.
#[derive(Debug, Clone)]
pub struct EventKeys {
    prefix: String,
}

impl EventKeys {
    pub fn new(event: &str) -> Self {
        Self {
            prefix: format!("urr:{{{event}}}"),
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    /// Hash written by the operator: admission policy (see [`crate::policy`]).
    pub fn policy(&self) -> String {
        self.key("policy")
    }
    /// Hash written by the operator: tier-1 serving parameters.
    pub fn edge(&self) -> String {
        self.key("edge")
    }
    /// Tier-1 number counter.
    pub fn tier1_next(&self) -> String {
        self.key("t1:next")
    }
    /// Tier-2 join sequence.
    pub fn sequence(&self) -> String {
        self.key("seq")
    }
    /// Tier-2 queue: ZSET user → join sequence (FIFO order).
    pub fn queue(&self) -> String {
        self.key("q")
    }
    /// ZSET user → last heartbeat (ms), for reaping abandoned places.
    pub fn heartbeats(&self) -> String {
        self.key("hb")
    }
    /// ZSET user → entry expiry (ms): the admitted, active users.
    pub fn active(&self) -> String {
        self.key("active")
    }
    /// Counter of users admitted so far.
    pub fn admitted_total(&self) -> String {
        self.key("admitted")
    }
    /// List of recent admitter ticks, `"<ms>:<admitted>"`, newest first.
    pub fn rate_samples(&self) -> String {
        self.key("rate")
    }
    /// ZSET tick time (member, ms) → join sequence at that time, to date the
    /// head of the queue without storing a join time per waiter.
    pub fn sequence_clock(&self) -> String {
        self.key("seqclock")
    }
    /// Admitter lease (`"<instance>:<fence>"`) and its fencing counter.
    pub fn admitter_lease(&self) -> String {
        self.key("admitter:lease")
    }
    pub fn admitter_fence(&self) -> String {
        self.key("admitter:fence")
    }
    /// Hash: pre-queue shuffle seed, its commitment, when it was applied.
    pub fn shuffle(&self) -> String {
        self.key("shuffle")
    }
    /// Fixed-window rate-limit counter.
    pub fn rate_limit(&self, scope: &str, id: &str, window: i64) -> String {
        self.key(&format!("rl:{scope}:{id}:{window}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_the_event_hash_tag() {
        let keys = EventKeys::new("aurora");
        for key in [
            keys.policy(),
            keys.queue(),
            keys.active(),
            keys.rate_limit("ip", "1.2.3.4", 7),
        ] {
            assert!(key.starts_with("urr:{aurora}:"), "{key}");
        }
    }
}
