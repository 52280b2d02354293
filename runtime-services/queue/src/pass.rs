//! Chained tiers: the tier-1 pass (`urr-vwr-token`) a tier-2 join needs
//! while the edge gates the room.
//!
//! The edge lets the queue API through (a browser that was served calls it
//! from the event page), so without this check a script with a user JWT
//! joins tier 2 ahead of every browser still waiting at the edge. The join
//! asks for what the edge asks for: a pass for this room, signed with the
//! room's current or previous key, unexpired, whose number the serving
//! counter has reached.

use axum::http::{HeaderMap, header};
use urr_service_common::serving::ServingParams;
use urr_service_common::tokens::vwr::{self, VwrClaims, VwrError, VwrKey};

/// The keys of a room's passes: the current one signs, it and the previous
/// one (during a rotation) verify. An Event without a WaitingRoom that has an
/// edge has no key: it has no tier 1, and [`PassKeys::none`] verifies nothing.
#[derive(Clone, Debug)]
pub struct PassKeys {
    current: Option<VwrKey>,
    accepted: Vec<VwrKey>,
}

impl PassKeys {
    pub fn new(current: VwrKey, previous: Option<VwrKey>) -> Self {
        let accepted = std::iter::once(current.clone()).chain(previous).collect();
        Self {
            current: Some(current),
            accepted,
        }
    }

    /// No tier 1: numbers are refused, and no pass verifies (the operator
    /// never asks for passes without an edge, which needs a key).
    pub fn none() -> Self {
        Self {
            current: None,
            accepted: Vec::new(),
        }
    }

    /// The key new passes are signed with; `None` without a tier 1.
    pub fn current(&self) -> Option<&VwrKey> {
        self.current.as_ref()
    }

    /// Every key a pass may be signed with, current first.
    pub fn accepted(&self) -> &[VwrKey] {
        &self.accepted
    }
}

/// Why a join was refused at the tier-1 check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassRefusal {
    /// No `urr-vwr-token` cookie.
    Missing,
    /// A pass that does not verify (the reason is logged, not told).
    Invalid(VwrError),
    /// A valid pass the counter has not reached yet.
    NotServed {
        number: u64,
        serving: u64,
        wait_seconds: u64,
    },
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The request's pass for `room`, if it carries a valid one (served or not).
pub fn valid_pass(keys: &[VwrKey], headers: &HeaderMap, room: &str, now: i64) -> Option<VwrClaims> {
    let token = cookie_value(headers, vwr::COOKIE_NAME)?;
    vwr::verify(keys, token, room, now).ok()
}

/// The served pass a join needs (see the module documentation).
pub fn served_pass(
    keys: &[VwrKey],
    headers: &HeaderMap,
    room: &str,
    serving: &ServingParams,
    now: i64,
) -> Result<VwrClaims, PassRefusal> {
    let token = cookie_value(headers, vwr::COOKIE_NAME).ok_or(PassRefusal::Missing)?;
    let claims = vwr::verify(keys, token, room, now).map_err(PassRefusal::Invalid)?;
    let counter = serving.serving_at(now);
    if claims.number > counter {
        return Err(PassRefusal::NotServed {
            number: claims.number,
            serving: counter,
            wait_seconds: serving.seconds_until_served(claims.number, now).max(1),
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "urr-demo/aurora";
    const NOW: i64 = 1_000;

    fn key(id: &str, byte: u8) -> VwrKey {
        VwrKey::new(id, vec![byte; 32])
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("theme=dark; {}={value}", vwr::COOKIE_NAME)
                .parse()
                .expect("cookie"),
        );
        headers
    }

    /// Serves 10 numbers every 10 s from `NOW`: number 10 now, 20 at NOW + 10.
    const SERVING: ServingParams = ServingParams {
        start: 10,
        per_interval: 10,
        interval_seconds: 10,
        epoch: NOW,
        paused_at: None,
    };

    #[test]
    fn a_served_pass_of_the_current_or_previous_key_is_accepted() {
        let keys = [key("k2", 2), key("k1", 1)];
        for signer in &keys {
            let token = vwr::sign(signer, ROOM, 7, NOW + 60);
            let claims =
                served_pass(&keys, &with_cookie(&token), ROOM, &SERVING, NOW).expect("served");
            assert_eq!(claims.number, 7);
        }
    }

    #[test]
    fn no_pass_a_forged_one_or_another_rooms_is_refused() {
        let keys = [key("k2", 2)];
        assert_eq!(
            served_pass(&keys, &HeaderMap::new(), ROOM, &SERVING, NOW),
            Err(PassRefusal::Missing)
        );
        let forged = vwr::sign(&key("k2", 9), ROOM, 1, NOW + 60);
        assert_eq!(
            served_pass(&keys, &with_cookie(&forged), ROOM, &SERVING, NOW),
            Err(PassRefusal::Invalid(VwrError::BadSignature))
        );
        let elsewhere = vwr::sign(&keys[0], "other/room", 1, NOW + 60);
        assert_eq!(
            served_pass(&keys, &with_cookie(&elsewhere), ROOM, &SERVING, NOW),
            Err(PassRefusal::Invalid(VwrError::WrongRoom))
        );
        let expired = vwr::sign(&keys[0], ROOM, 1, NOW - 1);
        assert_eq!(
            served_pass(&keys, &with_cookie(&expired), ROOM, &SERVING, NOW),
            Err(PassRefusal::Invalid(VwrError::Expired))
        );
    }

    #[test]
    fn a_pass_ahead_of_the_counter_waits_until_it_is_served() {
        let keys = [key("k2", 2)];
        let token = vwr::sign(&keys[0], ROOM, 15, NOW + 60);
        assert_eq!(
            served_pass(&keys, &with_cookie(&token), ROOM, &SERVING, NOW),
            Err(PassRefusal::NotServed {
                number: 15,
                serving: 10,
                wait_seconds: 10
            })
        );
        assert!(served_pass(&keys, &with_cookie(&token), ROOM, &SERVING, NOW + 10).is_ok());
    }
}
