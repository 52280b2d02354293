//! Leader election on a `coordination.k8s.io/v1` Lease, so only one operator
//! replica writes. Every replica tries every `renew` interval; the holder
//! renews, others take over only once the holder has not renewed for the
//! lease duration. Writes carry the Lease's `resourceVersion`, so two
//! replicas racing for an expired lease cannot both win: the API server
//! refuses the second with a conflict.
//!
//! A replica that loses the lease stops (the process exits and restarts as a
//! standby): crash-only, no half-leading.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

/// What to do with the Lease as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Its holder stopped renewing: take it over.
    TakeOver,
    /// Someone else holds it.
    Follow,
}

/// Decides from the Lease's spec alone (pure, so every case is tested).
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    if spec.holder_identity.as_deref() == Some(identity) {
        return Decision::Renew;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    let last = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match (spec.holder_identity.as_deref(), last) {
        (None | Some(""), _) | (_, None) => Decision::TakeOver,
        (Some(_), Some(last)) if now > last + duration => Decision::TakeOver,
        _ => Decision::Follow,
    }
}

/// Settings of one elector.
#[derive(Debug, Clone)]
pub struct Elector {
    pub name: String,
    pub identity: String,
    pub duration: Duration,
}

impl Elector {
    fn spec(&self, now: Timestamp, previous: Option<&LeaseSpec>, transition: bool) -> LeaseSpec {
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.duration.as_secs()).unwrap_or(15)),
            acquire_time: if transition {
                Some(MicroTime(now))
            } else {
                previous.and_then(|p| p.acquire_time.clone())
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if transition {
                transitions + 1
            } else {
                transitions
            }),
            ..LeaseSpec::default()
        }
    }

    /// One attempt: true if we hold the lease afterwards.
    pub async fn try_hold(&self, api: &Api<Lease>, now: Timestamp) -> Result<bool, kube::Error> {
        let current = api.get_opt(&self.name).await?;
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.identity,
            now,
        );
        let result = match (decision, current) {
            (Decision::Follow, _) => return Ok(false),
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, None, true)),
                };
                api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            (decision, Some(mut lease)) => {
                // `replace` sends the resourceVersion we read: a racing writer gets a conflict.
                lease.spec =
                    Some(self.spec(now, lease.spec.as_ref(), decision == Decision::TakeOver));
                api.replace(&self.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("time")
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn every_case_of_the_lease() {
        assert_eq!(decide(None, "me", at(0)), Decision::Create);
        assert_eq!(
            decide(Some(&held_by("me", -100)), "me", at(0)),
            Decision::Renew,
            "ours, even if late"
        );
        assert_eq!(
            decide(Some(&held_by("other", -15)), "me", at(0)),
            Decision::Follow,
            "exactly at the duration: still theirs"
        );
        assert_eq!(
            decide(Some(&held_by("other", -16)), "me", at(0)),
            Decision::TakeOver
        );
        assert_eq!(
            decide(Some(&held_by("", 0)), "me", at(0)),
            Decision::TakeOver,
            "released"
        );
        assert_eq!(
            decide(Some(&LeaseSpec::default()), "me", at(0)),
            Decision::TakeOver
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let elector = Elector {
            name: "urr-operator".into(),
            identity: "me".into(),
            duration: Duration::from_secs(15),
        };
        let previous = LeaseSpec {
            lease_transitions: Some(3),
            ..held_by("other", 0)
        };
        assert_eq!(
            elector
                .spec(at(20), Some(&previous), true)
                .lease_transitions,
            Some(4)
        );
        let mine = LeaseSpec {
            lease_transitions: Some(4),
            acquire_time: Some(MicroTime(at(20))),
            ..held_by("me", 20)
        };
        let renewed = elector.spec(at(25), Some(&mine), false);
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(20))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(25))));
    }
}
