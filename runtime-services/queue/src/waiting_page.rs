//! The waiting page: static files compiled into the binary and served at
//! `/waiting/{room}` and `/waiting/assets/{file}`. The same files work from
//! S3 behind CloudFront (the HTML is identical for every visitor and uses
//! relative asset URLs), which is how the edge serves it to a crowd.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::QueueError;

const HTML: &str = include_str!("../static/waiting.html");
const JS: &str = include_str!("../static/waiting.js");
const CSS: &str = include_str!("../static/waiting.css");

fn asset(body: &'static str, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /waiting/{room}`; the room is read by the page's script from the URL.
pub async fn page(Path(_room): Path<String>) -> Response {
    asset(HTML, "text/html; charset=utf-8", "public, max-age=60")
}

/// `GET /waiting/assets/{file}`.
pub async fn assets(Path(file): Path<String>) -> Result<Response, QueueError> {
    match file.as_str() {
        "waiting.js" => Ok(asset(
            JS,
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        )),
        "waiting.css" => Ok(asset(CSS, "text/css; charset=utf-8", "public, max-age=300")),
        _ => Err(QueueError::NoSuchAsset(file)),
    }
}
