//! The admission policy contract lives in `urr-service-common` (the operator
//! writes it, this service reads it); re-exported here for the queue's code.

pub use urr_service_common::policy::*;
