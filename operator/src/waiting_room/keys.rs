//! Which signing keys a room's edge entry accepts, through a rotation.
//!
//! The spec names the current key and, during a rotation, the previous one.
//! A key that leaves the spec cannot simply disappear from the edge: passes
//! signed with it are in browsers for up to `passTtlSeconds`, and removing it
//! would send all of them back to the end of the line. So it is *retired*:
//! still accepted, recorded in `status.retiredSigningKeys` with the time the
//! last pass signed with it expires, and removed from the edge after that.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use urr_crds::waiting_room::{Edge, RetiredSigningKey};

/// The keys a publication accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedKeys {
    /// Current first, then previous, then retired ones.
    pub kids: Vec<String>,
    pub retired: Vec<RetiredSigningKey>,
    /// When the first retired key expires (the reconcile comes back then).
    pub next_expiry: Option<Timestamp>,
}

/// The kids of the spec: current, then previous.
pub fn spec_kids(edge: &Edge) -> Vec<String> {
    std::iter::once(edge.signing_key_id.clone())
        .chain(edge.previous_signing_key.iter().map(|p| p.id.clone()))
        .collect()
}

/// `written`: the kids the last publication accepted; `retired`: as in the
/// status. Pure.
pub fn accepted(
    edge: &Edge,
    written: &[String],
    retired: &[RetiredSigningKey],
    now: Timestamp,
) -> AcceptedKeys {
    let in_spec = spec_kids(edge);
    // The last pass signed with a key just rotated out may be issued now, and
    // lives its TTL; the edge learns of the removal a propagation later.
    let lifetime = SignedDuration::from_secs(
        i64::from(edge.pass_ttl_seconds) + i64::from(edge.propagation_margin_seconds),
    );
    let mut kept: Vec<RetiredSigningKey> = retired
        .iter()
        .filter(|r| !in_spec.contains(&r.id) && r.passes_expire_at.0 > now)
        .cloned()
        .collect();
    for kid in written {
        let known = in_spec.contains(kid) || retired.iter().any(|r| &r.id == kid);
        if !known {
            kept.push(RetiredSigningKey {
                id: kid.clone(),
                passes_expire_at: Time(now.checked_add(lifetime).unwrap_or(now)),
            });
        }
    }
    let next_expiry = kept.iter().map(|r| r.passes_expire_at.0).min();
    let kids = in_spec
        .into_iter()
        .chain(kept.iter().map(|r| r.id.clone()))
        .collect();
    AcceptedKeys {
        kids,
        retired: kept,
        next_expiry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use urr_crds::SecretKeyRef;
    use urr_crds::waiting_room::SigningKey;

    fn edge(current: &str, previous: Option<&str>) -> Edge {
        let reference = |name: &str| SecretKeyRef {
            name: name.to_owned(),
            key: "key".to_owned(),
        };
        Edge {
            key_value_store_arn: None,
            key_value_store_name: Some("store".into()),
            signing_key_ref: reference(current),
            signing_key_id: current.to_owned(),
            previous_signing_key: previous.map(|id| SigningKey {
                key_ref: reference(id),
                id: id.to_owned(),
            }),
            pass_ttl_seconds: 3600,
            propagation_margin_seconds: 30,
            waiting_page_path: "/waiting/".into(),
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("valid")
    }

    #[test]
    fn a_rotation_keeps_the_old_key_until_its_last_pass_expires_then_drops_it() {
        // k2 is current, k1 previous: both accepted.
        let rotating = accepted(&edge("k2", Some("k1")), &["k1".into()], &[], at(1_000));
        assert_eq!(rotating.kids, vec!["k2", "k1"]);
        assert!(rotating.retired.is_empty());

        // k1 leaves the spec: retired until now + TTL + margin.
        let retired = accepted(&edge("k2", None), &rotating.kids, &[], at(2_000));
        assert_eq!(retired.kids, vec!["k2", "k1"]);
        assert_eq!(retired.retired[0].passes_expire_at.0, at(2_000 + 3_630));
        assert_eq!(retired.next_expiry, Some(at(5_630)));

        // Still accepted just before, gone at the expiry, and not re-retired
        // although the last publication still listed it.
        let before = accepted(
            &edge("k2", None),
            &retired.kids,
            &retired.retired,
            at(5_629),
        );
        assert_eq!(before.kids, vec!["k2", "k1"]);
        let after = accepted(
            &edge("k2", None),
            &retired.kids,
            &retired.retired,
            at(5_630),
        );
        assert_eq!(after.kids, vec!["k2"]);
        assert!(after.retired.is_empty());
        assert_eq!(after.next_expiry, None);
    }

    #[test]
    fn a_retired_key_brought_back_into_the_spec_is_no_longer_retired() {
        let retired = vec![RetiredSigningKey {
            id: "k1".into(),
            passes_expire_at: Time(at(9_000)),
        }];
        let back = accepted(
            &edge("k1", None),
            &["k2".into(), "k1".into()],
            &retired,
            at(1_000),
        );
        assert_eq!(back.kids, vec!["k1", "k2"]);
        assert_eq!(back.retired.len(), 1);
        assert_eq!(back.retired[0].id, "k2");
    }
}
