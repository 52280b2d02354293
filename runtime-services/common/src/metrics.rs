//! Prometheus text exposition from a `prometheus-client` registry.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// Registers fields of a service's metrics struct, one line a metric:
/// its name (under the registry's prefix), the field, its help text.
///
/// ```ignore
/// register_metrics!(registry, metrics, {
///     "joins" => joins: "Tier-2 joins accepted",
/// });
/// ```
#[macro_export]
macro_rules! register_metrics {
    ($registry:expr, $metrics:expr, { $($name:literal => $field:ident: $help:literal),* $(,)? }) => {
        $( $registry.register($name, $help, $metrics.$field.clone()); )*
    };
}

/// Renders `registry` as the `/metrics` response.
pub fn render(registry: &Registry) -> Response {
    let mut body = String::new();
    if encode(&mut body, registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Labels of [`RequestMetrics`]: the route as declared (`/v1/payments/{id}`,
/// never the raw path, so ids do not make new series), the method, and the
/// status class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: &'static str,
}

/// The durations of a service's requests, by route: what the service spent
/// on them, from the moment the router had the request to the response head,
/// so a buyer's latency can be split into the service's time and the queueing
/// in front of it (load balancer, connection limits).
#[derive(Clone, Debug)]
pub struct RequestMetrics {
    durations: prometheus_client::metrics::family::Family<
        RequestLabels,
        prometheus_client::metrics::histogram::Histogram,
        fn() -> prometheus_client::metrics::histogram::Histogram,
    >,
}

/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

fn request_histogram() -> prometheus_client::metrics::histogram::Histogram {
    // 0.5 ms to ~16 s.
    prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16),
    )
}

impl RequestMetrics {
    /// Registered in `registry` as `http_request_duration_seconds` (with the
    /// registry's prefix: `urr_queue_http_request_duration_seconds`, …).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            durations: prometheus_client::metrics::family::Family::new_with_constructor(
                request_histogram,
            ),
        };
        registry.register(
            "http_request_duration_seconds",
            "Time the service spent on a request, by route, method and status class",
            metrics.durations.clone(),
        );
        metrics
    }

    /// Records `duration` of a request to `route`.
    pub fn observe(&self, method: &str, route: &str, status: StatusCode, duration: f64) {
        let status = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.durations
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .observe(duration);
    }

    /// The middleware: add with `Router::layer` (it then runs after routing,
    /// where the matched route is known).
    pub async fn record(
        axum::extract::State(metrics): axum::extract::State<RequestMetrics>,
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> Response {
        let started = std::time::Instant::now();
        let method = request.method().as_str().to_owned();
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or(UNMATCHED_ROUTE, |path| path.as_str())
            .to_owned();
        let response = next.run(request).await;
        metrics.observe(
            &method,
            &route,
            response.status(),
            started.elapsed().as_secs_f64(),
        );
        response
    }
}
