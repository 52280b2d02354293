//! The service token: the bearer secret of the internal routes (the payment
//! service's calls to `/internal/holds/*`, the organiser's refunds), shared
//! through a Secret rather than signed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// A service state that holds the service token its internal routes take.
pub trait ServiceTokenState {
    fn service_token(&self) -> &str;
}

/// A caller of an internal route that presented the service token, as an
/// extractor: the payment service's calls to the ticket service's
/// `/internal/holds/*`, the organiser's calls to the payment service's
/// `/internal/*`. Anything else gets 401 `unauthorized`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceCaller;

impl<S> FromRequestParts<S> for ServiceCaller
where
    S: ServiceTokenState + Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if presented(&parts.headers, state.service_token()) {
            Ok(ServiceCaller)
        } else {
            Err(Problem::unauthorized(
                "the internal API needs the service token",
            ))
        }
    }
}

/// True when `headers` carry `Authorization: Bearer <expected>`, compared in
/// constant time. An empty `expected` (no token configured) matches nothing,
/// so a service started without its Secret refuses instead of opening up.
pub fn presented(headers: &HeaderMap, expected: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_matches() {
        assert!(presented(&with("Bearer s3cret"), "s3cret"));
        assert!(!presented(&with("Bearer s3cre"), "s3cret"));
        assert!(!presented(&with("s3cret"), "s3cret"));
        assert!(!presented(&HeaderMap::new(), "s3cret"));
        assert!(
            !presented(&with("Bearer "), ""),
            "no token configured: nothing matches"
        );
    }
}
