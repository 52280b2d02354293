//! Step 1, **read**: what one reconcile starts from (the Event's identity,
//! the time, its last status) and what its services report (seats sold,
//! the queue's load), folded into the phase the Event is in.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use urr_crds::event::{EventStatus, SeatCounts};
use urr_crds::{Event, EventPhase};

use super::{Context, Error};
use crate::lifecycle;
use crate::scaling::Load;

/// The Event a reconcile works on, read once.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) now: Timestamp,
    pub(super) generation: Option<i64>,
    /// The status as the watch delivered it: the base every new status is
    /// built on, and what decides whether a write is needed.
    pub(super) previous: EventStatus,
}

impl Target {
    pub(super) fn of(event: &Event, ctx: &Context) -> Result<Self, Error> {
        Ok(Self {
            namespace: event.namespace().ok_or(Error::MissingNamespace)?,
            name: event.name_any(),
            now: ctx.clock.now(),
            generation: event.metadata.generation,
            previous: event.status.clone().unwrap_or_default(),
        })
    }
}

/// What the Event's services report, and the phase that follows from it.
#[derive(Debug)]
pub(super) struct Observed {
    /// The seat counts just read, or the last ones reported.
    pub(super) seats: Option<SeatCounts>,
    pub(super) sold_out: bool,
    pub(super) phase: EventPhase,
    pub(super) load: Option<Load>,
    /// The phase needs the queue's load and it could not be read.
    pub(super) degraded: bool,
}

/// Reads the services' stats; a service that does not answer leaves the
/// last reported figures in place.
pub(super) async fn observe(ctx: &Context, event: &Event, target: &Target) -> Observed {
    let observed = ctx.stats.observe(&target.namespace, &target.name).await;
    let previous = &target.previous;
    let sold_out = match observed.seats {
        Some(SeatCounts { total, sold, .. }) => total > 0 && sold >= total,
        None => previous.phase == Some(EventPhase::SoldOut),
    };
    let phase = lifecycle::phase_at(&event.spec, target.now, sold_out);
    let needs_load = matches!(phase, EventPhase::OnSale | EventPhase::Prewarming);
    Observed {
        seats: observed.seats.or(previous.seats),
        sold_out,
        phase,
        degraded: needs_load && observed.load.is_none(),
        load: observed.load,
    }
}
