//! Single flight of seat-lock attempts within one replica.
//!
//! In a hot-seat stampede a thousand buyers ask for the same few seats in
//! the same instant. Only one attempt per seat set can win, and every
//! attempt that arrives while that one is at Redis would get the same
//! answer from Redis ("taken"): so the first attempt on a seat set goes to
//! Redis (the *leader*) and the others wait for its answer instead of
//! queueing a thousand Lua calls behind each other (the *followers*).
//!
//! This only ever refuses: a follower is told "taken" exactly when Redis
//! would have told it so at that moment (the leader holds the locks now, or
//! Redis found one of these very seats locked). A leader that fails, is
//! cancelled or gets an answer that says nothing about the seats (a retry's
//! replay) sends nothing, and its followers ask Redis themselves. Safety
//! never rests here: Redis, PostgreSQL and the fencing token still decide.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// What a leader's Redis call found, as its followers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flight {
    /// The leader locked the seats; `idempotency` is its idempotency
    /// key's Redis key, if it sent one (a follower with the same key is the
    /// leader's own retry, still in flight).
    Won { idempotency: Option<String> },
    /// These seats of the set were already locked or sold.
    Lost(Vec<String>),
}

type Slot = watch::Receiver<Option<Flight>>;

/// The attempts in flight, by sorted seat set.
#[derive(Debug, Default)]
pub struct LockFlights {
    in_flight: Mutex<HashMap<Vec<String>, Slot>>,
}

/// The role of one attempt.
#[derive(Debug)]
pub enum Role {
    /// Go to Redis, then [`Leader::finish`] with what it said.
    Leader(Leader),
    /// Another attempt on the same seats is at Redis: wait for it.
    Follower(Slot),
}

impl LockFlights {
    /// Joins the flight of `seats` (sorted, as [`crate::holds::HoldDesk::check`]
    /// returns them), or starts it.
    pub fn join(self: &Arc<Self>, seats: &[String]) -> Role {
        let mut in_flight = self.lock();
        if let Some(slot) = in_flight.get(seats) {
            return Role::Follower(slot.clone());
        }
        let (sender, receiver) = watch::channel(None);
        in_flight.insert(seats.to_vec(), receiver.clone());
        Role::Leader(Leader {
            flights: self.clone(),
            seats: seats.to_vec(),
            sender,
            receiver,
        })
    }

    /// Number of seat sets with an attempt at Redis (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<String>, Slot>> {
        // A poisoned map is still a valid map of channels.
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn leave(&self, seats: &[String], receiver: &Slot) {
        let mut in_flight = self.lock();
        // Only our own entry: a later leader may have started a new flight.
        if in_flight
            .get(seats)
            .is_some_and(|slot| slot.same_channel(receiver))
        {
            in_flight.remove(seats);
        }
    }
}

/// The attempt that goes to Redis for its seat set.
#[derive(Debug)]
pub struct Leader {
    flights: Arc<LockFlights>,
    seats: Vec<String>,
    sender: watch::Sender<Option<Flight>>,
    receiver: Slot,
}

impl Leader {
    /// Tells the followers what Redis said. New attempts from here on go to
    /// Redis themselves (the answer is only true for this instant).
    pub fn finish(self, flight: Flight) {
        self.flights.leave(&self.seats, &self.receiver);
        // No receivers left is fine: nobody was waiting.
        let _ = self.sender.send(Some(flight));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Finished, failed or cancelled: leave the map. Without a `finish`,
        // the sender drops with nothing sent and followers ask Redis.
        self.flights.leave(&self.seats, &self.receiver);
    }
}

/// Waits for the leader; `None` when it ended without an answer.
pub async fn wait(mut slot: Slot) -> Option<Flight> {
    slot.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|flight| flight.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn followers_get_the_leaders_answer_and_the_flight_ends_with_it() {
        let flights = Arc::new(LockFlights::default());
        let set = seats(&["a:1:1"]);
        let Role::Leader(leader) = flights.join(&set) else {
            panic!("first is the leader");
        };
        let Role::Follower(slot) = flights.join(&set) else {
            panic!("second follows");
        };
        // Another seat set flies on its own.
        assert!(matches!(flights.join(&seats(&["a:1:2"])), Role::Leader(_)));
        let waiting = tokio::spawn(wait(slot));
        leader.finish(Flight::Won { idempotency: None });
        assert_eq!(
            waiting.await.expect("task"),
            Some(Flight::Won { idempotency: None })
        );
        assert!(flights.is_empty(), "finished flights leave the map");
        assert!(matches!(flights.join(&set), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_leader_that_ends_without_an_answer_sends_followers_to_redis() {
        let flights = Arc::new(LockFlights::default());
        let set = seats(&["a:1:1", "a:1:2"]);
        let Role::Leader(leader) = flights.join(&set) else {
            panic!("leader");
        };
        let Role::Follower(slot) = flights.join(&set) else {
            panic!("follower");
        };
        drop(leader); // a Redis error, or the request was cancelled
        assert_eq!(wait(slot).await, None);
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn an_old_leader_does_not_remove_a_newer_flight() {
        let flights = Arc::new(LockFlights::default());
        let set = seats(&["a:1:1"]);
        let Role::Leader(old) = flights.join(&set) else {
            panic!("leader");
        };
        // The old flight ends in the map's eyes (finish removes it first),
        // a new leader starts, then the old guard drops.
        flights.leave(&old.seats, &old.receiver);
        let Role::Leader(_new) = flights.join(&set) else {
            panic!("new leader");
        };
        drop(old);
        assert_eq!(flights.len(), 1, "the new flight stays");
    }
}
