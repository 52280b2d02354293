//! The waiting page: static files compiled into the binary and served at
//! `/waiting/{room}` and `/waiting/assets/{file}`. The same files work from
//! S3 behind CloudFront (the HTML is identical for every visitor and uses
//! relative asset URLs), which is how the edge serves it to a crowd. The
//! message catalogues (`static/i18n/{lang}.json`) are assets like the script,
//! `/waiting/assets/i18n.{lang}.json`, under the same CSP.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::QueueError;

const HTML: &str = include_str!("../static/waiting.html");
const JS: &str = include_str!("../static/waiting.js");
const TEXT_JS: &str = include_str!("../static/waiting-text.js");
const CSS: &str = include_str!("../static/waiting.css");
/// One catalogue per language, each with the same keys (checked below, and
/// with their placeholders by the browser tests' `i18n.test.mjs`).
const CATALOGUES: [(&str, &str); 3] = [
    ("i18n.en.json", include_str!("../static/i18n/en.json")),
    ("i18n.ko.json", include_str!("../static/i18n/ko.json")),
    ("i18n.ja.json", include_str!("../static/i18n/ja.json")),
];

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
        "waiting-text.js" => Ok(asset(
            TEXT_JS,
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        )),
        "waiting.css" => Ok(asset(CSS, "text/css; charset=utf-8", "public, max-age=300")),
        name => match CATALOGUES
            .iter()
            .find(|(asset_name, _)| *asset_name == name)
        {
            Some((_, body)) => Ok(asset(
                body,
                "application/json; charset=utf-8",
                "public, max-age=300",
            )),
            None => Err(QueueError::NoSuchAsset(file)),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(catalogue: &str) -> BTreeSet<String> {
        let value: serde_json::Value =
            serde_json::from_str(catalogue).expect("a catalogue is JSON");
        value
            .as_object()
            .expect("a catalogue is an object")
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn every_catalogue_has_exactly_the_keys_of_the_english_one() {
        let english = keys(CATALOGUES[0].1);
        assert!(english.len() > 50, "{} keys", english.len());
        for (name, body) in &CATALOGUES[1..] {
            let other = keys(body);
            let missing: Vec<_> = english.difference(&other).collect();
            let extra: Vec<_> = other.difference(&english).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{name}: missing {missing:?}, extra {extra:?}"
            );
        }
    }

    #[tokio::test]
    async fn every_asset_is_served_under_the_page_csp() {
        for name in ["waiting.js", "waiting-text.js", "waiting.css"]
            .into_iter()
            .chain(CATALOGUES.iter().map(|(name, _)| *name))
        {
            let response = assets(Path(name.to_owned())).await.expect(name);
            let headers = response.headers();
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                "{name}"
            );
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{name}");
            if name.ends_with(".json") {
                assert_eq!(
                    headers[header::CONTENT_TYPE],
                    "application/json; charset=utf-8"
                );
            }
        }
        assert!(assets(Path("i18n.xx.json".to_owned())).await.is_err());
    }
}
