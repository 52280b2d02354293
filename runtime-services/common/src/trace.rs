//! W3C trace context (`traceparent`), shared by the services so one buyer's
//! request can be followed across them: a payment keeps the trace of the
//! request that created it; the ticket service's confirm (header), the
//! `payment-events` message (`PaymentEvent.traceparent`) and the
//! `reservation-events` message it causes all carry the same trace id, and
//! every log line of a request has it as the span field `trace_id`.
//!
//! Format: `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`; an
//! all-zero id is invalid. An invalid header is replaced, never forwarded:
//! it travels into another service's headers and logs.

/// The caller's `traceparent` if it is valid, otherwise a fresh one.
pub fn from_header(value: Option<&str>) -> String {
    value
        .map(str::trim)
        .filter(|v| is_valid(v))
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(fresh)
}

/// A new trace, sampled.
pub fn fresh() -> String {
    format!("00-{}-{}-01", hex_id(16), hex_id(8))
}

/// The same trace with a new parent span: what one outgoing call carries.
/// An invalid input yields a fresh trace.
pub fn child(traceparent: &str) -> String {
    if !is_valid(traceparent) {
        return fresh();
    }
    format!(
        "00-{}-{}-{}",
        &traceparent[3..35],
        hex_id(8),
        &traceparent[53..55]
    )
}

/// The 32-hex trace id of a valid `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    is_valid(traceparent).then(|| &traceparent[3..35])
}

/// The span of one HTTP request, for `TraceLayer::make_span_with`: method,
/// path (never the query, which may carry a token) and the trace id of the
/// caller's `traceparent`, so every line logged while serving it can be
/// joined with the caller's own lines. No valid header: `trace_id` is empty.
pub fn http_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let trace_id = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| trace_id(v.trim()))
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        trace_id,
    )
}

pub fn is_valid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b.to_ascii_lowercase()))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [version, trace, span, flags]
        if *version == "00" && hex(trace, 32) && nonzero(trace) && hex(span, 16) && nonzero(span) && hex(flags, 2))
}

fn hex_id(bytes: usize) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..bytes * 2].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_is_kept_and_an_invalid_one_replaced() {
        assert_eq!(from_header(Some(VALID)), VALID);
        for bad in [
            "",
            "00-xyz",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nx: y",
        ] {
            let got = from_header(Some(bad));
            assert_ne!(got, bad);
            assert!(is_valid(&got), "{got}");
        }
        assert!(is_valid(&from_header(None)));
    }

    #[test]
    fn the_trace_id_is_read_only_from_a_valid_header() {
        assert_eq!(trace_id(VALID), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(trace_id("00-xyz"), None);
        assert_eq!(trace_id(&child(VALID)), trace_id(VALID));
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_a_new_span() {
        let child = child(VALID);
        assert!(is_valid(&child));
        assert_eq!(&child[..36], &VALID[..36]);
        assert_ne!(&child[36..52], &VALID[36..52]);
        assert_eq!(&child[52..], "-01");
    }
}
