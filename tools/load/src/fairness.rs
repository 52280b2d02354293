//! Fairness: does admission order follow join order? Kendall's tau between
//! the two orders (1 = exactly first come, first served; 0 = no relation),
//! counted in O(n log n) by merge-sort inversions; and the pre-queue draw
//! verified from its published audit ([`verify_draw`]).

use serde::Serialize;
use serde_json::Value;
use urr_queue::fairness::{commitment, shuffled};

use crate::stats::LineRecord;

/// What the load generator could verify of the pre-queue draw.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrawCheck {
    /// SHA-256 of the revealed seed equals the commitment published before
    /// the draw (`None`: nothing to check, no buyer was in the pre-queue).
    pub commitment_matches: Option<bool>,
    /// Buyers known to have been in line at the draw, whose admission order
    /// was recomputed from the seed.
    pub buyers_checked: usize,
    /// Of those, buyers admitted in an earlier batch than someone the draw
    /// put ahead of them.
    pub admitted_out_of_draw_order: usize,
    pub participants: Option<u64>,
}

/// Verifies the audit `GET …/queue/audit` published against what the buyers
/// saw: the seed must hash to the commitment, and the buyers who were in
/// line when the draw ran must have been admitted in the order the queue's
/// own draw function gives for that seed. Returns the figures and the
/// violations.
pub fn verify_draw(audit: &Value, lines: &[LineRecord]) -> (DrawCheck, Vec<String>) {
    let mut check = DrawCheck {
        participants: audit["participants"].as_u64(),
        ..DrawCheck::default()
    };
    let mut violations = Vec::new();
    if !lines.iter().any(|l| l.pre_queue) {
        return (check, violations);
    }
    let (Some(seed), Some(committed), Some(drawn_at_ms)) = (
        audit["seed"].as_str(),
        audit["seedCommitment"].as_str(),
        audit["shuffledAtMs"].as_i64(),
    ) else {
        violations.push(format!(
            "pre-queue draw: buyers joined before the open but the audit reveals no seed, commitment and draw time ({audit})"
        ));
        return (check, violations);
    };
    let matches = commitment(seed).eq_ignore_ascii_case(committed);
    check.commitment_matches = Some(matches);
    if !matches {
        violations.push(format!(
            "pre-queue draw: SHA-256 of the revealed seed is {}, the commitment was {committed}",
            commitment(seed)
        ));
    }
    // In line at the draw: the join was answered before the draw's clock
    // reading (same machine, same clock), and the place was never lost, so
    // the admitter ordered this member by its drawn score. Buyers without a
    // known admission batch cannot be placed and are left out.
    let in_draw: Vec<&LineRecord> = lines
        .iter()
        .filter(|l| !l.rejoined && l.joined_ms < drawn_at_ms && l.entry_expires_at > 0)
        .collect();
    check.buyers_checked = in_draw.len();
    if let Some(participants) = check.participants
        && in_draw.len() as u64 > participants
    {
        violations.push(format!(
            "pre-queue draw: {} buyers were in line at the draw, the audit says {participants} took part",
            in_draw.len()
        ));
    }
    let batch: std::collections::HashMap<&str, i64> = in_draw
        .iter()
        .map(|l| (l.user.as_str(), l.entry_expires_at))
        .collect();
    // The draw over a subset keeps the subset's relative order (a sort by
    // per-member keys), so the buyers' part of the full order is recomputable.
    let mut latest = i64::MIN;
    for user in shuffled(seed, batch.keys().copied()) {
        let at = batch.get(user).copied().unwrap_or_default();
        if at < latest {
            check.admitted_out_of_draw_order += 1;
        }
        latest = latest.max(at);
    }
    if check.admitted_out_of_draw_order != 0 {
        violations.push(format!(
            "pre-queue draw: {} of {} drawn buyers admitted before someone drawn ahead of them",
            check.admitted_out_of_draw_order, check.buyers_checked
        ));
    }
    (check, violations)
}

/// Kendall's tau-a of `order` against its sorted self: `order[i]` is the
/// admission rank of the buyer who joined `i`-th.
pub fn kendall_tau(order: &[u64]) -> Option<f64> {
    let n = order.len();
    if n < 2 {
        return None;
    }
    let mut values = order.to_vec();
    let inversions = count_inversions(&mut values);
    let pairs = (n as f64) * (n as f64 - 1.0) / 2.0;
    Some(1.0 - 2.0 * inversions as f64 / pairs)
}

fn count_inversions(values: &mut [u64]) -> u64 {
    let n = values.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut inversions =
        count_inversions(&mut values[..mid]) + count_inversions(&mut values[mid..]);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if values[i] <= values[j] {
            merged.push(values[i]);
            i += 1;
        } else {
            merged.push(values[j]);
            inversions += (mid - i) as u64;
            j += 1;
        }
    }
    merged.extend_from_slice(&values[i..mid]);
    merged.extend_from_slice(&values[j..]);
    values.copy_from_slice(&merged);
    inversions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_of_known_orders() {
        assert_eq!(kendall_tau(&[0, 1, 2, 3]), Some(1.0));
        assert_eq!(kendall_tau(&[3, 2, 1, 0]), Some(-1.0));
        // One swapped pair among six: 1 - 2/6.
        let tau = kendall_tau(&[1, 0, 2, 3]).expect("tau");
        assert!((tau - (1.0 - 2.0 / 6.0)).abs() < 1e-9);
        assert_eq!(kendall_tau(&[7]), None);
    }

    const USERS: [&str; 10] = [
        "buyer-000001",
        "buyer-000002",
        "buyer-000003",
        "buyer-000004",
        "buyer-000005",
        "buyer-000006",
        "buyer-000007",
        "buyer-000008",
        "buyer-000009",
        "buyer-000010",
    ];

    fn line(user: &str, joined_ms: i64, entry_expires_at: i64) -> LineRecord {
        LineRecord {
            user: user.to_owned(),
            joined_ms,
            admitted_ms: 0,
            pre_queue: true,
            rejoined: false,
            entry_expires_at,
        }
    }

    /// Lines for `users` admitted one batch each, in the order `seed` draws them.
    fn drawn_lines(seed: &str, users: &[&str]) -> Vec<LineRecord> {
        shuffled(seed, users.iter().copied())
            .into_iter()
            .enumerate()
            .map(|(i, u)| line(u, 100, 1_000 + i as i64))
            .collect()
    }

    fn audit(seed: &str, committed: &str) -> Value {
        serde_json::json!({"seed": seed, "seedCommitment": committed, "shuffledAtMs": 500, "participants": USERS.len()})
    }

    #[test]
    fn a_draw_that_follows_the_seed_verifies() {
        let users = USERS;
        let seed = "00ff".repeat(16);
        let (check, violations) = verify_draw(
            &audit(&seed, &commitment(&seed)),
            &drawn_lines(&seed, &users),
        );
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(check.commitment_matches, Some(true));
        assert_eq!(check.buyers_checked, USERS.len());
    }

    #[test]
    fn a_wrong_commitment_an_unrevealed_seed_or_another_order_is_a_violation() {
        let users = USERS;
        let seed = "00ff".repeat(16);
        let lines = drawn_lines(&seed, &users);
        let (_, violations) = verify_draw(&audit(&seed, &commitment("another seed")), &lines);
        assert!(
            violations.iter().any(|v| v.contains("SHA-256")),
            "{violations:?}"
        );
        let (_, violations) = verify_draw(&serde_json::json!({"seedCommitment": "x"}), &lines);
        assert!(
            violations.iter().any(|v| v.contains("no seed")),
            "{violations:?}"
        );
        // Admitted in the order of another seed's draw.
        let other = drawn_lines(&"11ee".repeat(16), &users);
        let (check, violations) = verify_draw(&audit(&seed, &commitment(&seed)), &other);
        assert!(check.admitted_out_of_draw_order > 0, "{check:?}");
        assert!(
            violations.iter().any(|v| v.contains("drawn ahead")),
            "{violations:?}"
        );
        // More buyers in line than the audit says took part.
        let mut crowded = lines.clone();
        crowded.push(line("buyer-000011", 100, 2_000));
        let (_, violations) = verify_draw(&audit(&seed, &commitment(&seed)), &crowded);
        assert!(
            violations.iter().any(|v| v.contains("took part")),
            "{violations:?}"
        );
    }

    #[test]
    fn inversions_match_the_quadratic_count() {
        let values: Vec<u64> = vec![5, 1, 4, 2, 8, 0, 3, 9, 7, 6];
        let mut brute = 0;
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                if values[i] > values[j] {
                    brute += 1;
                }
            }
        }
        assert_eq!(count_inversions(&mut values.clone()), brute);
    }
}
