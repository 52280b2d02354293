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

/// The tree over the members, every level kept, so a proof is a walk up
/// (log n) rather than a rehash of every member; built once per replica
/// after the draw. Pairing neighbours level by level and carrying an odd
/// last node up unchanged gives exactly RFC 6962's tree (its left subtree
/// is always the largest power of two), which the tests check against the
/// RFC's recursive definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// `levels[0]` the leaves, the last level the root alone.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The tree over `members` (already sorted).
    pub fn new(members: &[String]) -> Self {
        let mut levels = vec![members.iter().map(|m| leaf(m)).collect::<Vec<Hash>>()];
        while let Some(level) = levels.last().filter(|l| l.len() > 1) {
            let next = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node(left, right),
                    // The odd last node goes up unchanged.
                    carried => carried[0],
                })
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// The root; the empty tree's is SHA-256("").
    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|top| top.first().copied())
            .unwrap_or_else(|| Sha256::digest([]).into())
    }

    /// The audit path of leaf `index` (RFC 6962 2.1.1), bottom up: the
    /// sibling at each level, none where the node is carried up alone.
    pub fn proof(&self, mut index: usize) -> Vec<Hash> {
        let mut path = Vec::new();
        for level in &self.levels[..self.levels.len().saturating_sub(1)] {
            if let Some(sibling) = level.get(index ^ 1) {
                path.push(*sibling);
            }
            index >>= 1;
        }
        path
    }
}

/// The root over `members` (already sorted).
pub fn root(members: &[String]) -> Hash {
    Tree::new(members).root()
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

    /// RFC 6962's definition: MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])),
    /// k the largest power of two smaller than n.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves {
            [] => Sha256::digest([]).into(),
            [one] => *one,
            _ => {
                let mut k = 1;
                while k * 2 < leaves.len() {
                    k *= 2;
                }
                node(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_level_tree_is_rfc_6962s_tree_at_every_size() {
        for n in 0..=100 {
            let all = members(n);
            let leaves: Vec<Hash> = all.iter().map(|m| leaf(m)).collect();
            assert_eq!(root(&all), reference_root(&leaves), "n={n}");
        }
    }

    #[test]
    fn every_member_of_every_size_has_a_proof_that_verifies_and_no_one_else_does() {
        for n in [1, 2, 3, 5, 8, 13, 100] {
            let all = members(n);
            let tree = Tree::new(&all);
            let r = tree.root();
            for (i, m) in all.iter().enumerate() {
                let p = tree.proof(i);
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
