#![forbid(unsafe_code)]
//! # urr-crds: the `Event` and `WaitingRoom` custom resources
//!
//! URR is driven by two namespaced custom resources in the API group
//! [`GROUP`] (`urr.dev`), version [`VERSION`] (`v1alpha1`):
//!
//! * [`Event`]: what is sold (seat map, prices), when (sale window) and what runs
//!   it (the `queue`, `ticket` and `payment` services and their scaling).
//! * [`WaitingRoom`]: how the crowd in front of an `Event` is held back
//!   (activation rule, admission rate, concurrent-user threshold, edge gate).
//!
//! Both kinds are in the `urr` category (`kubectl get urr` lists both) and have
//! short names (`uev`, `urrevent`; `wr`, `wroom`) so an `Event` is never confused
//! with the core `events` resource.
//!
//! Every rule that can be wrong is enforced twice, with the same wording: the
//! rule's own message for CEL rules, the API server's for schema checks:
//!
//! 1. by the API server, from the generated schema (types, ranges, formats,
//!    enums) and CEL `x-kubernetes-validations` for cross-field rules;
//! 2. by [`Validate::validate`] in Rust, which the operator runs before it acts,
//!    so an object stored before a rule existed (or applied with validation
//!    off) still gets a `Ready=False` condition with every violation listed.
//!
//! [`manifest`] checks a raw manifest the way the API server would (structural
//! schema + CEL) without a cluster; the tests use it to prove that the two
//! layers agree on every example in `examples/`, and `tests/apiserver.rs`
//! that it predicts a real API server's answers.
//!
//! The generated CRD YAML lives next to this crate (`crds/generated/`) and is
//! written by the `crdgen` binary; a test fails when it drifts from the types.

pub mod client_address;
pub mod common;
pub mod conditions;
pub mod event;
pub mod generate;
pub mod limits;
pub mod manifest;
pub mod payment_provider;
pub mod refund_policy;
pub mod validation;
pub mod waiting_room;

pub use common::{ObjectReference, SecretKeyRef};
pub use event::{Event, EventPhase, EventSpec, EventStatus};
pub use validation::{Validate, Violation};
pub use waiting_room::{ActivationMode, WaitingRoom, WaitingRoomSpec, WaitingRoomStatus};

/// The API group of every URR resource.
pub const GROUP: &str = "urr.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// The `kubectl get <category>` name that lists both kinds.
pub const CATEGORY: &str = "urr";

/// Every CRD this crate defines, in the order they are written to disk.
pub fn all_crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![Event::crd(), WaitingRoom::crd()]
}
