//! Pre-queue fairness: everyone who joined before the sale opened is put in a
//! random order at open, so joining at 19:30 gives no edge over 19:59.
//!
//! Commit-reveal: the seed is drawn when the pre-queue opens and only its
//! SHA-256 (the commitment) is published; after the shuffle the seed itself is
//! published (`GET /v1/events/{event}/queue/audit`). Anyone can then check the
//! seed against the commitment and re-derive the order: members are sorted by
//! `SHA-256(seed bytes || user id)`, ascending, ties by user id.

use sha2::{Digest, Sha256};

/// A fresh 32-byte seed, hex encoded.
pub fn new_seed() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// SHA-256 of the seed's bytes, hex encoded: published before the draw.
pub fn commitment(seed_hex: &str) -> String {
    hex::encode(Sha256::digest(seed_hex.as_bytes()))
}

/// The sort key of one member.
pub fn draw_key(seed_hex: &str, user: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed_hex.as_bytes());
    hasher.update(user.as_bytes());
    hasher.finalize().into()
}

/// The members in drawn order.
pub fn shuffled<'a>(seed_hex: &str, members: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut keyed: Vec<([u8; 32], &str)> = members
        .into_iter()
        .map(|m| (draw_key(seed_hex, m), m))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_order_and_another_seed_another() {
        let members: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
        let a = shuffled("seed-a", members.iter().map(String::as_str));
        assert_eq!(
            a,
            shuffled("seed-a", members.iter().rev().map(String::as_str)),
            "input order must not matter"
        );
        assert_ne!(a, shuffled("seed-b", members.iter().map(String::as_str)));
        assert_ne!(
            a,
            members.iter().map(String::as_str).collect::<Vec<_>>(),
            "not join order"
        );
    }

    #[test]
    fn commitment_binds_the_seed() {
        let seed = new_seed();
        assert_eq!(seed.len(), 64);
        assert_eq!(commitment(&seed), commitment(&seed));
        assert_ne!(commitment(&seed), commitment(&new_seed()));
    }
}
