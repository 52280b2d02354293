//! What the controller reads from the running services: queue load (for
//! scaling and status) from the queue's `/internal/stats`, seat counters from
//! the ticket's. A trait, so reconcile tests use fixed figures and the real
//! operator uses HTTP inside the cluster.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use urr_crds::event::SeatCounts;
use urr_service_common::admission::AdmissionState;
use urr_service_common::contracts::TicketStats;

use crate::children::{INTERNAL_PORT, ServiceKind};
use crate::scaling::Load;

/// One read of an event's services. `None` fields could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Observed {
    pub load: Option<Load>,
    pub seats: Option<SeatCounts>,
    /// What the queue says of the room's admission (`status.admission`).
    pub room: Option<RoomFigures>,
}

/// The queue's view of the room's admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomFigures {
    pub admission: AdmissionState,
    pub places_left: Option<u64>,
}

pub trait StatsSource: Send + Sync {
    fn observe<'a>(&'a self, namespace: &'a str, event: &'a str) -> BoxFuture<'a, Observed>;
}

/// Fixed figures (tests, `render`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedStats(pub Observed);

impl StatsSource for FixedStats {
    fn observe<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Observed> {
        Box::pin(async move { self.0 })
    }
}

/// Reads the services' stats endpoints through their cluster Services.
#[derive(Debug, Clone)]
pub struct HttpStats {
    client: reqwest::Client,
    /// `svc.cluster.local` by default.
    cluster_domain: String,
}

impl HttpStats {
    pub fn new(cluster_domain: impl Into<String>) -> Self {
        Self {
            // Short: a slow stats endpoint must not hold a reconcile.
            client: urr_service_common::http_client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
            cluster_domain: cluster_domain.into(),
        }
    }

    fn url(&self, namespace: &str, event: &str, service: ServiceKind) -> String {
        // The internal port: the public one does not serve /internal/*.
        format!(
            "http://{}.{namespace}.{}:{INTERNAL_PORT}/internal/stats",
            service.child_name(event),
            self.cluster_domain
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueStats {
    depth: u64,
    active_users: u64,
    /// Absent from queue services older than the field.
    #[serde(default)]
    arrivals_per_second: f64,
    /// Absent from queue services older than room controls.
    #[serde(default)]
    admission: Option<AdmissionState>,
    #[serde(default)]
    places_left: Option<u64>,
}

impl StatsSource for HttpStats {
    fn observe<'a>(&'a self, namespace: &'a str, event: &'a str) -> BoxFuture<'a, Observed> {
        Box::pin(async move {
            let get = |service| {
                let url = self.url(namespace, event, service);
                async move {
                    let response = self
                        .client
                        .get(&url)
                        .send()
                        .await
                        .ok()?
                        .error_for_status()
                        .ok()?;
                    response.bytes().await.ok()
                }
            };
            let (queue, ticket) = futures::join!(get(ServiceKind::Queue), get(ServiceKind::Ticket));
            let queue = queue.and_then(|body| serde_json::from_slice::<QueueStats>(&body).ok());
            let room = queue.as_ref().and_then(|q| {
                q.admission.map(|admission| RoomFigures {
                    admission,
                    places_left: q.places_left,
                })
            });
            let load = queue.map(|q| Load {
                queue_depth: q.depth,
                active_users: q.active_users,
                arrivals_per_second: q.arrivals_per_second.round().max(0.0) as u64,
            });
            let seats = ticket
                .and_then(|body| serde_json::from_slice::<TicketStats>(&body).ok())
                .map(|t| SeatCounts {
                    total: t.total,
                    held: t.held,
                    sold: t.sold,
                });
            Observed { load, seats, room }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_read_from_the_internal_port() {
        let stats = HttpStats::new("svc.cluster.local");
        assert_eq!(
            stats.url("urr-demo", "aurora", ServiceKind::Queue),
            "http://aurora-queue.urr-demo.svc.cluster.local:9090/internal/stats"
        );
    }
}
