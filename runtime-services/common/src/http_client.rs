//! The HTTP client every URR component uses to call an URR service.
//!
//! The services close a keep-alive connection that has sat idle for their
//! header-read timeout (`URR_HEADER_READ_TIMEOUT_SECONDS`, 10 s by default,
//! see [`crate::server`]). A client that keeps a pooled connection longer
//! than that can pick it up in the instant the server closes it, and the
//! request fails with `IncompleteMessage` although nothing is wrong (CI
//! caught this once, a test call after a ten-second Kafka wait). So our
//! clients drop idle connections well before the server does, and the
//! server refuses a header-read timeout that would undercut them.

use std::time::Duration;

/// How long a client keeps an idle pooled connection to an URR service.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// A `reqwest` builder for calls to URR services: idle connections are
/// dropped after [`POOL_IDLE_TIMEOUT`]. Callers add their own timeouts and
/// pool sizes.
pub fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(POOL_IDLE_TIMEOUT)
}
