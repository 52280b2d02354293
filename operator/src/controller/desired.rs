//! Step 3, **desired state**: how many pods each service runs (the phase and
//! the load, through the stabilizer's memory) and the children that follow,
//! built without a client ([`crate::children::build`] is pure).

use urr_crds::Event;

use super::Context;
use super::read::{Observed, Target};
use crate::children::{self, BuildError, Defaults, QueueRoom, ServiceChildren, ServiceKind};
use crate::scaling;

/// One service as it should be.
#[derive(Debug)]
pub(super) struct Desired {
    pub(super) service: ServiceKind,
    pub(super) replicas: i32,
    pub(super) children: ServiceChildren,
}

/// The replicas of every service, in [`ServiceKind::ALL`] order: the
/// recommendation for this phase and load, stabilized against flapping by
/// the memory the context keeps per service.
pub(super) fn replicas(
    ctx: &Context,
    event: &Event,
    target: &Target,
    observed: &Observed,
) -> [(ServiceKind, i32); 3] {
    ServiceKind::ALL.map(|service| {
        let key = (target.namespace.clone(), target.name.clone(), service);
        let recommendation = scaling::recommend(
            &event.spec,
            service,
            target.now,
            observed.sold_out,
            observed.load.as_ref(),
            ctx.last_replicas(&key),
        );
        (
            service,
            ctx.stabilize(key, target.now, recommendation.replicas),
        )
    })
}

/// The children of every service at `replicas`, behind `room`: pure.
pub(super) fn children(
    event: &Event,
    replicas: [(ServiceKind, i32); 3],
    defaults: &Defaults,
    room: Option<&QueueRoom>,
) -> Result<Vec<Desired>, BuildError> {
    replicas
        .into_iter()
        .map(|(service, replicas)| {
            Ok(Desired {
                service,
                replicas,
                children: children::build(event, service, replicas, defaults, room)?,
            })
        })
        .collect()
}
