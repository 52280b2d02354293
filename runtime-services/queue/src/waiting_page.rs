//! The waiting page: static files compiled into the binary and served at
//! `/waiting/{room}` and `/waiting/assets/{file}`. The same files work from
//! S3 behind CloudFront (the HTML is identical for every visitor and uses
//! relative asset URLs), which is how the edge serves it to a crowd. The
//! message catalogues (`static/i18n/{lang}.json`) are assets like the script,
//! `/waiting/assets/i18n.{lang}.json`, under the same CSP.
//!
//! A room with a branded page (`spec.page`) has it in the Redis hash the
//! operator writes once it has checked it ([`page_template::page_key`]); the
//! queue reads it at most every [`PAGE_MAX_AGE`], checks and renders it again
//! with the same code (so nothing that bypassed the operator reaches a
//! browser), and serves it with the same CSP as the default page, which it
//! falls back to, or to the last good page, whenever a read or a check fails.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use urr_service_common::page_template::{self, Branding, Template};

use crate::error::QueueError;
use crate::routes::AppState;

/// How long a replica serves a page before reading the hash again: a
/// template edit shows within this plus the page's own max-age.
pub const PAGE_MAX_AGE: Duration = Duration::from_secs(5);

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

/// The page being served: rendered HTML and its brand stylesheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub html: String,
    pub brand_css: String,
    /// The operator's digest of the template and values; `None`: default.
    pub digest: Option<String>,
}

impl Served {
    fn default_page() -> Self {
        Self {
            html: HTML.to_owned(),
            brand_css: page_template::brand_css(&default_branding()),
            digest: None,
        }
    }
}

fn default_branding() -> Branding {
    Branding {
        event_name: String::new(),
        logo_url: None,
        brand_color: page_template::DEFAULT_BRAND_COLOR.to_owned(),
        accent_color: page_template::DEFAULT_ACCENT_COLOR.to_owned(),
    }
}

/// The page from the hash's fields: the default page when there are none;
/// `Err` when the fields do not make a good page.
pub fn served_from(
    fields: &HashMap<String, String>,
) -> Result<Served, page_template::TemplateError> {
    let Some(source) = fields.get("template") else {
        return Ok(Served::default_page());
    };
    let data = fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "template" | "digest"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let branding = Branding::from_data(&data, "")?;
    let html = Template::parse(source)?.render(&branding)?;
    Ok(Served {
        html,
        brand_css: page_template::brand_css(&branding),
        digest: fields.get("digest").cloned(),
    })
}

/// Each replica's current page and when it was read.
#[derive(Debug, Default)]
pub struct PageCache {
    current: RwLock<Option<(Instant, Arc<Served>)>>,
}

impl PageCache {
    fn cached(&self) -> Option<(Instant, Arc<Served>)> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn store(&self, served: Arc<Served>) -> Arc<Served> {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), served.clone()));
        served
    }

    /// The page to serve now.
    pub async fn get(&self, state: &AppState) -> Arc<Served> {
        let cached = self.cached();
        if let Some((at, served)) = &cached
            && at.elapsed() < PAGE_MAX_AGE
        {
            return served.clone();
        }
        let last_good = cached.map(|(_, served)| served);
        let fields = match state
            .store
            .hash(&page_template::page_key(&state.event))
            .await
        {
            Ok(fields) => fields,
            Err(error) => {
                tracing::warn!(%error, "reading the waiting page; serving the last one");
                return self.store(last_good.unwrap_or_else(|| Arc::new(Served::default_page())));
            }
        };
        if let Some(last) = &last_good
            && last.digest.is_some()
            && last.digest.as_ref() == fields.get("digest")
        {
            return self.store(last.clone());
        }
        match served_from(&fields) {
            Ok(served) => self.store(Arc::new(served)),
            Err(error) => {
                tracing::warn!(%error, reason = error.reason(), "the room's waiting page is refused; serving the last good one");
                self.store(last_good.unwrap_or_else(|| Arc::new(Served::default_page())))
            }
        }
    }
}

fn asset(body: impl Into<String>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = body.into().into_response();
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

/// `GET /waiting/{room}`: the waiting page (the room's branded template
/// once the operator checked it, else the default page).
#[utoipa::path(
    get,
    path = "/waiting/{room}",
    tag = "waiting page",
    operation_id = "waitingPage",
    params(("room" = String, Path, description = "The waiting room's name (the page reads it from its own URL).")),
    responses((status = 200, description = "The page (HTML; its script polls the APIs above).", body = String, content_type = "text/html"))
)]
pub async fn page(State(state): State<AppState>, Path(_room): Path<String>) -> Response {
    let served = state.page.get(&state).await;
    asset(
        served.html.clone(),
        "text/html; charset=utf-8",
        "public, max-age=60",
    )
}

/// `GET /waiting/assets/brand.css`: the page's colours (the default ones
/// for the default page).
#[utoipa::path(
    get,
    path = "/waiting/assets/brand.css",
    tag = "waiting page",
    operation_id = "waitingPageBrandCss",
    responses((status = 200, description = "The page's colours.", body = String, content_type = "text/css"))
)]
pub async fn brand_css(State(state): State<AppState>) -> Response {
    let served = state.page.get(&state).await;
    asset(
        served.brand_css.clone(),
        "text/css; charset=utf-8",
        "public, max-age=60",
    )
}

/// `GET /waiting/assets/{file}`.
#[utoipa::path(
    get,
    path = "/waiting/assets/{file}",
    tag = "waiting page",
    operation_id = "waitingPageAsset",
    params(("file" = String, Path, description = "`waiting.js`, `waiting-text.js`, `waiting.css` or a message catalogue `i18n.<lang>.json`.")),
    responses(
        (status = 200, description = "The asset.", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "application/json"),
        )),
        (status = 404, description = "`not-found`: no such asset.", body = urr_service_common::problem::Problem, content_type = "application/problem+json"),
    )
)]
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
                *body,
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

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const EXAMPLE: &str = include_str!("../../../examples/waiting-page/template.html");

    #[test]
    fn the_hash_makes_the_page_and_a_bad_one_is_refused() {
        assert_eq!(
            served_from(&HashMap::new()).expect("default"),
            Served::default_page()
        );
        let good = served_from(&fields(&[
            ("template", EXAMPLE),
            ("eventName", "Aurora {{eta}}"),
            ("logoUrl", "/brand/logo.svg"),
            ("brandColor", "#075"),
            ("digest", "abc"),
        ]))
        .expect("good");
        assert!(
            good.html.contains("Aurora &#123;&#123;eta"),
            "values are escaped"
        );
        assert!(!good.html.contains("{{") && !good.html.contains("}}"));
        assert!(good.brand_css.contains("--accent: #075;"));
        for bad in [
            fields(&[("template", "<p>{{price}}</p>"), ("eventName", "A")]),
            fields(&[("template", EXAMPLE), ("eventName", "A")]), // no logo for {{logoUrl}}
            fields(&[
                (
                    "template",
                    &EXAMPLE.replace("</head>", "<script>x()</script></head>"),
                ),
                ("eventName", "A"),
                ("logoUrl", "/l.svg"),
            ]),
        ] {
            assert!(served_from(&bad).is_err(), "{bad:?}");
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
