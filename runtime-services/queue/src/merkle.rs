//! The pre-queue draw's member commitment: a Merkle tree over the members
//! present at open, sorted ascending by user id, as RFC 6962 (Certificate
//! Transparency) builds it — leaf `SHA-256(0x00 ‖ userId)`, node
//! `SHA-256(0x01 ‖ left ‖ right)`, the left subtree the largest power of two
//! smaller than the count. Its root is published on `/queue/audit` beside
//! the seed commitment; each buyer can fetch an inclusion proof of their
//! id, so an outsider checks both who was in the draw and, with the seed,
//! the order.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf(member: &str) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(member.as_bytes());
    h.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn subtree_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node(&subtree_root(&leaves[..k]), &subtree_root(&leaves[k..]))
        }
    }
}

/// The root over `members` (already sorted); the empty tree's is SHA-256("").
pub fn root(members: &[String]) -> Hash {
    let leaves: Vec<Hash> = members.iter().map(|m| leaf(m)).collect();
    subtree_root(&leaves)
}

/// The audit path of leaf `index` among `leaves` (RFC 6962 2.1.1), bottom up.
fn path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if index < k {
        let mut p = path(index, &leaves[..k]);
        p.push(subtree_root(&leaves[k..]));
        p
    } else {
        let mut p = path(index - k, &leaves[k..]);
        p.push(subtree_root(&leaves[..k]));
        p
    }
}

/// The inclusion proof of `members[index]`.
pub fn proof(members: &[String], index: usize) -> Vec<Hash> {
    let leaves: Vec<Hash> = members.iter().map(|m| leaf(m)).collect();
    path(index, &leaves)
}

/// Checks an inclusion proof as an outsider would (RFC 9162 2.1.3.2).
pub fn verify(member: &str, index: usize, count: usize, proof: &[Hash], root: &Hash) -> bool {
    if index >= count {
        return false;
    }
    let (mut fn_, mut sn) = (index, count - 1);
    let mut r = leaf(member);
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        let mut m: Vec<String> = (0..n).map(|i| format!("user-{i:04}")).collect();
        m.sort();
        m
    }

    #[test]
    fn every_member_of_every_size_has_a_proof_that_verifies_and_no_one_else_does() {
        for n in [1, 2, 3, 5, 8, 13, 100] {
            let all = members(n);
            let r = root(&all);
            for (i, m) in all.iter().enumerate() {
                let p = proof(&all, i);
                assert!(verify(m, i, n, &p, &r), "n={n} i={i}");
                assert!(!verify("intruder", i, n, &p, &r), "n={n} i={i}");
                if n > 1 {
                    assert!(
                        !verify(m, (i + 1) % n, n, &p, &r),
                        "wrong index n={n} i={i}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_root_binds_the_member_list() {
        let all = members(10);
        let mut other = all.clone();
        other[3] = "user-9999".to_owned();
        assert_ne!(root(&all), root(&other));
        assert_ne!(root(&all), root(&all[..9]));
    }
}
