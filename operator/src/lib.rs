#![forbid(unsafe_code)]
//! # urr-operator
//!
//! The Event controller's pure core, reconcile as a pipeline
//! (read → validate → build desired objects → apply → status):
//!
//! * [`lifecycle`]: the phase of an Event at a time (`Scheduled → Prewarming →
//!   OnSale → SoldOut | Closed`) and when it next changes, so the controller
//!   requeues at the boundary instead of polling.
//! * [`scaling`]: replicas per service from the phase and the queue's load,
//!   bounded by the spec and stabilized against flapping.
//! * [`children`]: the Deployment, Service, ConfigMap and PodDisruptionBudget
//!   of each runtime service, with owner references and labels.
//! * [`page_preview`]: a branded waiting page rendered offline for one state
//!   (`urr-operator page-preview`).
//! * [`render`]: the same objects as YAML, with no cluster (`urr-operator render`).
//! * [`invite`]: a room's invite and presale codes (`urr-operator invite`).
//! * [`controller`] and [`waiting_room`]: the two controllers (kube-runtime,
//!   server-side apply, status), run by `urr-operator run` under [`lease`]
//!   leader election. There is no other provisioning path: the local flash
//!   sale runs them against a real API server too.

pub mod children;
pub mod controller;
#[cfg(test)]
pub(crate) mod fixtures;
/// The edge contract lives beside its Redis twin (the policy) in
/// `urr-service-common`; re-exported where the operator's callers found it.
pub use urr_service_common::edge;
pub mod invite;
pub mod kvs;
pub mod lease;
pub mod lifecycle;
pub mod metrics;
pub mod page_preview;
pub mod render;
pub mod scaling;
pub mod stats;
pub mod waiting_room;
