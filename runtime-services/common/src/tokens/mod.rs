//! The three token kinds (DESIGN.md, Tokens).
//!
//! | token | who signs | who checks | form |
//! |---|---|---|---|
//! | user JWT | the identity provider | queue, ticket, payment | HS256 or RS256 (JWKS) |
//! | `urr-vwr-token` | queue (tier 1) | the CloudFront edge function | HMAC-SHA256, see [`vwr`] |
//! | `urr-entry-token` | queue (tier 2 admission) | ticket | HS256 JWT bound to user + event |
//! | invite code | `urr-operator invite` | the edge function, queue | the `urr-vwr-token`'s HMAC, see [`invite`] |

pub mod entry;
pub mod invite;
pub mod key_length;
pub mod service;
pub mod user;
pub mod vwr;
