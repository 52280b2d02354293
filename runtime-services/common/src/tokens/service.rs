//! The service token: the bearer secret of the internal routes (the payment
//! service's calls to `/internal/holds/*`, the organiser's refunds), shared
//! through a Secret rather than signed.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

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
