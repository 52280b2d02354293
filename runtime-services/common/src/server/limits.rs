//! Per-request limits: how long a request may take and how large its body
//! may be, each over-limit answer a problem (`application/problem+json`)
//! like every other error of the services.
//!
//! The ecosystem's layers do the limiting: tower-http's `TimeoutLayer`
//! answers 408 with an empty body, `RequestBodyLimitLayer` answers 413 as
//! text when `Content-Length` is too large, and a streamed body that grows
//! past the limit fails the handler's extractor with axum's 413 text
//! rejection. [`problem_for_limits`] turns all of those into problems, so
//! the body shape does not depend on which of them noticed.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::ServerSettings;
use crate::problem::Problem;

/// 1 MiB: the largest body any route takes (a hold with its seats, a
/// payment intent, a provider webhook) is a few KiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Problem type slugs of the limits, part of the API.
pub const REQUEST_TIMEOUT: &str = "request-timeout";
pub const BODY_TOO_LARGE: &str = "body-too-large";

/// `app` with the request timeout and the body limit of `settings`.
pub fn apply(app: Router, settings: &ServerSettings) -> Router {
    app
        // axum's own default (2 MB) would otherwise cut bodies below a larger
        // configured limit; one knob sets both.
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(RequestBodyLimitLayer::new(settings.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(axum::middleware::map_response(problem_for_limits))
}

/// Problem type slugs of the framework's own refusals, part of the API.
pub const METHOD_NOT_ALLOWED: &str = "method-not-allowed";
pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported-media-type";
pub const UNPROCESSABLE: &str = "unprocessable";

/// The longest rejection text kept as a problem's `detail`.
const MAX_DETAIL: usize = 1024;

/// Replaces an error answer that is not a problem yet (the layers' and
/// axum's own: a 408 or 413 of a limit, a 400 of a path segment that is not
/// UTF-8, a 405, a 415 or 422 of an unreadable body) with the matching
/// problem, the framework's reason as its detail; every other response
/// passes. A handler's own JSON answers are left alone.
pub async fn problem_for_limits(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(b"application/problem+json") || v.starts_with(b"application/json")
        });
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    match status {
        StatusCode::REQUEST_TIMEOUT => Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
            "The request took too long",
            "the request was not answered within the server's request timeout; retry it",
        )
        .into_response(),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            BODY_TOO_LARGE,
            "The request body is too large",
            "the request body is larger than the server accepts",
        )
        .into_response(),
        StatusCode::BAD_REQUEST
        | StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => {
            let allow = response.headers().get(header::ALLOW).cloned();
            let reason = axum::body::to_bytes(response.into_body(), MAX_DETAIL)
                .await
                .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
                .unwrap_or_default();
            let (slug, title, fallback) = match status {
                StatusCode::METHOD_NOT_ALLOWED => (
                    METHOD_NOT_ALLOWED,
                    "Method not allowed",
                    "this route does not take that method",
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                    UNSUPPORTED_MEDIA_TYPE,
                    "Unsupported media type",
                    "send the body as application/json",
                ),
                StatusCode::UNPROCESSABLE_ENTITY => (
                    UNPROCESSABLE,
                    "The request body cannot be used",
                    "the body does not have the fields this route needs",
                ),
                _ => (
                    "bad-request",
                    "The request is malformed",
                    "the request could not be read",
                ),
            };
            let detail = if reason.is_empty() {
                fallback.to_owned()
            } else {
                reason
            };
            let mut response = Problem::new(status, slug, title, detail).into_response();
            if let Some(allow) = allow {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            response
        }
        _ => response,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use axum::body::{Body, Bytes};
    use axum::http::Request;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    fn settings(body_limit: usize, request_timeout: Duration) -> ServerSettings {
        ServerSettings {
            body_limit,
            request_timeout,
            ..ServerSettings::default()
        }
    }

    fn router() -> Router {
        Router::new()
            .route("/echo", post(|body: Bytes| async move { body }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "late"
                }),
            )
    }

    /// The `type` of a problem+json response (asserting it is one); shared
    /// by the server's test modules.
    pub(crate) async fn problem_type(response: Response) -> String {
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        json["type"].as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_declared_body_over_the_limit_is_a_413_problem() {
        let app = apply(router(), &settings(16, Duration::from_secs(5)));
        let response = app
            .oneshot(
                Request::post("/echo")
                    .header(header::CONTENT_LENGTH, "17")
                    .body(Body::from(vec![b'x'; 17]))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/body-too-large"
        );
    }

    #[tokio::test]
    async fn a_streamed_body_growing_past_the_limit_is_a_413_problem() {
        let app = apply(router(), &settings(16, Duration::from_secs(5)));
        // No Content-Length: the limit is only noticed while reading.
        let chunks = futures::stream::iter(
            [vec![b'x'; 10], vec![b'y'; 10]].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        let response = app
            .oneshot(
                Request::post("/echo")
                    .body(Body::from_stream(chunks))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/body-too-large"
        );
    }

    #[tokio::test]
    async fn a_body_within_the_limit_passes() {
        let app = apply(router(), &settings(16, Duration::from_secs(5)));
        let response = app
            .oneshot(
                Request::post("/echo")
                    .body(Body::from(vec![b'x'; 16]))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_over_axums_default_passes_when_the_limit_allows_it() {
        let size = 3 << 20; // past axum's 2 MB default
        let app = apply(router(), &settings(4 << 20, Duration::from_secs(5)));
        let response = app
            .oneshot(
                Request::post("/echo")
                    .body(Body::from(vec![b'x'; size]))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_timeout_is_a_408_problem() {
        let app = apply(router(), &settings(16, Duration::from_secs(2)));
        let response = app
            .oneshot(Request::get("/slow").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/request-timeout"
        );
    }

    #[tokio::test]
    async fn the_frameworks_refusals_are_problems_with_their_reason() {
        let app = apply(
            Router::new().route(
                "/v1/events/{event}",
                get(|axum::extract::Path(event): axum::extract::Path<String>| async move { event })
                    .post(
                        |axum::Json(body): axum::Json<serde_json::Value>| async move {
                            body.to_string()
                        },
                    ),
            ),
            &ServerSettings::default(),
        );
        let send = |request: Request<Body>| app.clone().oneshot(request);
        // A path segment that is not UTF-8.
        let response = send(
            Request::get("/v1/events/%FF")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/bad-request"
        );
        // A method the route does not take keeps its Allow header.
        let response = send(
            Request::delete("/v1/events/e")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(response.headers().contains_key(header::ALLOW));
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/method-not-allowed"
        );
        // A body without its content type, and one that is not JSON.
        let response = send(
            Request::post("/v1/events/e")
                .body(Body::from("{}"))
                .expect("request"),
        )
        .await
        .expect("response");
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/unsupported-media-type"
        );
        let response = send(
            Request::post("/v1/events/e")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{nope"))
                .expect("request"),
        )
        .await
        .expect("response");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/bad-request"
        );
    }

    #[tokio::test]
    async fn a_handlers_own_problem_is_left_alone() {
        let app = apply(
            Router::new().route(
                "/",
                get(|| async {
                    Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-many-seats", "t", "d")
                }),
            ),
            &ServerSettings::default(),
        );
        let response = app
            .oneshot(Request::get("/").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(
            problem_type(response).await,
            "https://urr.dev/problems/too-many-seats"
        );
    }
}
