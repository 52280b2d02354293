//! OpenAPI 3.1 of the services' public APIs: what the three documents share.
//!
//! Each service describes its routes with `#[utoipa::path]` on the handlers
//! and registers them with `utoipa_axum::routes!`, so one line both serves a
//! route and documents it: a route cannot be served without being in the
//! document. [`finish`] then adds what every service has in common — the
//! security schemes, the `Problem` schema whose `type` lists every problem
//! the service can answer with, the answers any route can give (a
//! malformed request, the limits, an unreachable store), the probes and
//! `/openapi.json` itself — and [`serve`] puts the finished document on the
//! public router.
//!
//! The document is checked in under `docs/openapi/` and rendered for people
//! in `docs/api/` ([`markdown`]); each service's `tests/openapi.rs` fails
//! when either drifts from the code ([`check_or_write`]).

mod checks;
mod render;

pub use checks::{DriftError, check_or_write, lint};
pub use render::markdown;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::info::License;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{OpenApi as _, PartialSchema, ToSchema};

use crate::problem::{PROBLEM_BASE, Problem};
use crate::server::{limits, origin};

/// Content type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem `type` a service can answer with: documented in the
/// `Problem` schema's enum (so a client, and schemathesis, can tell a
/// documented problem from an accident) and in the API reference's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    /// The last segment of the `type` URI, e.g. `seat-taken`.
    pub slug: &'static str,
    pub status: u16,
    /// What the client did, or what it should do now.
    pub meaning: &'static str,
}

impl ProblemType {
    pub const fn new(slug: &'static str, status: u16, meaning: &'static str) -> Self {
        Self {
            slug,
            status,
            meaning,
        }
    }

    /// The full `type` URI.
    pub fn uri(&self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug)
    }
}

/// The problems of the shared frame (server limits, the framework's own
/// refusals, sign-in, stores): every service can answer with these.
pub const FRAMEWORK_PROBLEMS: &[ProblemType] = &[
    ProblemType::new(
        "bad-request",
        400,
        "the request cannot be read: a path segment or header that is not UTF-8, a body that is not the JSON the route takes; `detail` says what",
    ),
    ProblemType::new(
        "unauthorized",
        401,
        "no `Authorization: Bearer` user JWT, or one that is expired, forged or for another audience",
    ),
    ProblemType::new(
        origin::FORBIDDEN,
        403,
        "the request did not come through the CloudFront distribution (origin check)",
    ),
    ProblemType::new("not-found", 404, "no such route"),
    ProblemType::new(
        limits::METHOD_NOT_ALLOWED,
        405,
        "the route does not take this method (`Allow` lists those it takes)",
    ),
    ProblemType::new(
        limits::REQUEST_TIMEOUT,
        408,
        "the request was not answered within the server's request timeout; retry it",
    ),
    ProblemType::new(
        limits::BODY_TOO_LARGE,
        413,
        "the body is larger than the server takes (1 MiB by default)",
    ),
    ProblemType::new(
        limits::UNSUPPORTED_MEDIA_TYPE,
        415,
        "the body is not `application/json`",
    ),
    ProblemType::new(
        limits::UNPROCESSABLE,
        422,
        "the body is JSON without the fields the route needs",
    ),
    ProblemType::new(
        "internal",
        500,
        "the service failed; it was logged (never expected: report it)",
    ),
    ProblemType::new(
        "unavailable",
        503,
        "a store, the identity provider or a service behind this one is unreachable; retry after `Retry-After` seconds",
    ),
];

/// The problem body as the services send it (RFC 9457). [`finish`]
/// replaces this general schema with one whose `type` enumerates the
/// service's problems.
impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        problem_schema(None)
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }
}

fn problem_schema(types: Option<Vec<String>>) -> RefOr<Schema> {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "An error (RFC 9457 problem details). `type` is stable: branch on it, never on `title` or `detail`. Members beyond the four standard ones carry what the client needs to act (e.g. `numbersUrl`, `number`, `serving`, `reason`).",
        ))
        .property(
            "type",
            string()
                .format(Some(utoipa::openapi::schema::SchemaFormat::Custom("uri".into())))
                .enum_values(types),
        )
        .required("type")
        .property("title", string())
        .required("title")
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(400))
                .maximum(Some(599)),
        )
        .required("status")
        .property("detail", string())
        .required("detail")
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(true)))
        .into()
}

/// The security schemes a service's routes name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `userJwt`: the identity provider's JWT in `Authorization: Bearer`.
    UserJwt,
    /// `entryToken`: the queue's `urr-entry-token` header.
    EntryToken,
    /// `vwrPass`: the tier-1 pass cookie `urr-vwr-token`.
    VwrPass,
    /// `webhookSignature`: the provider's signature header.
    WebhookSignature,
}

impl Scheme {
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::UserJwt => "userJwt",
            Scheme::EntryToken => "entryToken",
            Scheme::VwrPass => "vwrPass",
            Scheme::WebhookSignature => "webhookSignature",
        }
    }

    fn scheme(self) -> SecurityScheme {
        match self {
            Scheme::UserJwt => SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The identity provider's user JWT (HS256 with the shared secret, or RS256 from its JWKS); `sub` is the user id, `exp` required, `iss`/`aud` checked when configured.",
                    ))
                    .build(),
            ),
            Scheme::EntryToken => SecurityScheme::ApiKey(ApiKey::Header(
                ApiKeyValue::with_description(
                    crate::tokens::entry::HEADER_NAME,
                    "The `entryToken` the queue hands out at admission (`GET /v1/events/{event}/queue/me` answers `status: admitted`): an HS256 JWT bound to the same user and event, short-lived.",
                ),
            )),
            Scheme::VwrPass => SecurityScheme::ApiKey(ApiKey::Cookie(
                ApiKeyValue::with_description(
                    crate::tokens::vwr::COOKIE_NAME,
                    "The tier-1 pass `POST /v1/rooms/{room}/numbers` sets as a cookie; while the edge gates the room, a join needs one whose number is served.",
                ),
            )),
            Scheme::WebhookSignature => SecurityScheme::ApiKey(ApiKey::Header(
                ApiKeyValue::with_description(
                    "Urr-Signature",
                    "The sandbox provider's `Urr-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of \"t.body\">` (Stripe: `Stripe-Signature`, as Stripe signs); 5-minute replay window.",
                ),
            )),
        }
    }
}

/// Answers every operation can give, added where the handler's own
/// annotation does not name the status: (status, component name, text).
const SHARED_ANSWERS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request cannot be read (`bad-request`).",
    ),
    (
        "408",
        "RequestTimeout",
        "Not answered within the request timeout (`request-timeout`).",
    ),
    (
        "413",
        "BodyTooLarge",
        "The body is over the server's limit (`body-too-large`).",
    ),
    (
        "503",
        "Unavailable",
        "A store or a service behind this one is unreachable (`unavailable`); retry after `Retry-After`.",
    ),
];

/// What a service's document says about itself.
#[derive(Debug, Clone, Copy)]
pub struct About {
    pub title: &'static str,
    /// Markdown: who calls the API and how.
    pub description: &'static str,
    pub schemes: &'static [Scheme],
    /// The service's own problem types ([`FRAMEWORK_PROBLEMS`] are added).
    pub problems: &'static [ProblemType],
}

/// The probes and the document itself, on every service's public port.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, document))]
struct Shared;

/// The process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    operation_id = "healthz",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain"))
)]
#[allow(dead_code)] // documents the route `service::frame` adds
async fn healthz() {}

/// The service's stores answer (the load balancer's readiness check).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    operation_id = "readyz",
    responses(
        (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "A store is unreachable (`unavailable`).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[allow(dead_code)] // documents the route `service::frame` adds
async fn readyz() {}

/// The OpenAPI 3.1 document of this service, as checked in under
/// `docs/openapi/`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "probes",
    operation_id = "openapi",
    responses((status = 200, description = "This document.", body = serde_json::Value, content_type = "application/json"))
)]
async fn document(json: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        json,
    )
        .into_response()
}

/// `api` (the routes `routes!` collected) finished with what every service
/// shares; see the module's documentation.
pub fn finish(mut api: OpenApi, about: &About) -> OpenApi {
    api.merge(Shared::openapi());
    api.info.title = about.title.to_owned();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api.info.description = Some(format!(
        "{}\n\n{}",
        about.description.trim(),
        problem_table(about)
    ));
    api.info.license = Some(License::new("Apache-2.0"));
    api.info.contact = None;
    let components = api.components.get_or_insert_with(Components::new);
    for scheme in about.schemes {
        components.add_security_scheme(scheme.name(), scheme.scheme());
    }
    components
        .schemas
        .insert("Problem".into(), problem_schema(Some(problem_uris(about))));
    for (_, name, text) in SHARED_ANSWERS {
        let mut response = ResponseBuilder::new().description(*text).content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if *name == "Unavailable" {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("Seconds to wait before retrying."))
                    .build(),
            );
        }
        components
            .responses
            .insert((*name).to_owned(), RefOr::T(response.build()));
    }
    components.responses.insert(
        "Unauthorized".into(),
        RefOr::T(
            ResponseBuilder::new()
                .description("No valid credentials (`unauthorized`).")
                .content(
                    PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        ),
    );
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let answers = &mut operation.responses.responses;
            for answer in answers.values_mut() {
                if let RefOr::T(answer) = answer {
                    answer.links.values_mut().for_each(camel_case_link);
                }
            }
            for (status, name, _) in SHARED_ANSWERS {
                answers
                    .entry((*status).to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
            }
            // Secured: some requirement, and none of them empty (an empty
            // one, `security: [{}]`, makes credentials optional).
            let secured = operation.security.as_ref().is_some_and(|requirements| {
                !requirements.is_empty()
                    && requirements.iter().all(|requirement| {
                        serde_json::to_value(requirement)
                            .ok()
                            .and_then(|v| v.as_object().map(|o| !o.is_empty()))
                            .unwrap_or(false)
                    })
            });
            if secured {
                answers
                    .entry("401".to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Unauthorized")));
            }
        }
    }
    api
}

/// utoipa 5.5 serializes a link's `operation_id`, `operation_ref` and
/// `request_body` under those Rust names, which no OpenAPI reader knows (a
/// link without `operationId` is invalid, and schemathesis refuses the
/// document): they are moved to the spec's names, which the link's
/// flattened extensions serialize as written.
fn camel_case_link(link: &mut RefOr<utoipa::openapi::link::Link>) {
    let RefOr::T(link) = link else {
        return;
    };
    let mut moved = Vec::new();
    if !link.operation_id.is_empty() {
        moved.push(("operationId", std::mem::take(&mut link.operation_id).into()));
    }
    if !link.operation_ref.is_empty() {
        moved.push((
            "operationRef",
            std::mem::take(&mut link.operation_ref).into(),
        ));
    }
    if let Some(body) = link.request_body.take() {
        moved.push(("requestBody", body));
    }
    if !moved.is_empty() {
        let extensions = link.extensions.get_or_insert_with(Default::default);
        for (name, value) in moved {
            extensions.insert(name.to_owned(), value);
        }
    }
}

fn problem_uris(about: &About) -> Vec<String> {
    let mut uris: Vec<String> = FRAMEWORK_PROBLEMS
        .iter()
        .chain(about.problems)
        .map(ProblemType::uri)
        .collect();
    uris.sort();
    uris.dedup();
    uris
}

/// The problem types as a Markdown table, in the document's description.
fn problem_table(about: &About) -> String {
    let mut all: Vec<&ProblemType> = FRAMEWORK_PROBLEMS.iter().chain(about.problems).collect();
    all.sort_by_key(|p| (p.status, p.slug));
    all.dedup_by_key(|p| (p.status, p.slug));
    let mut table = String::from(
        "## Problem types\n\nEvery error is `application/problem+json` with one of these `type`s (`https://urr.dev/problems/<slug>`):\n\n| status | type | meaning |\n|---|---|---|\n",
    );
    for problem in all {
        table.push_str(&format!(
            "| {} | `{}` | {} |\n",
            problem.status, problem.slug, problem.meaning
        ));
    }
    table
}

/// `router` with `GET /openapi.json` answering `api`.
pub fn serve<S>(router: Router<S>, api: &OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Serialized once; each answer shares the bytes. The handler holds them
    // itself, so no layer touches the service's other routes.
    let json = Bytes::from(to_json(api));
    router.route("/openapi.json", get(move || document(json.clone())))
}

/// The document as checked in: pretty JSON with a final newline.
pub fn to_json(api: &OpenApi) -> String {
    // Serializing plain data structures does not fail.
    let mut json = api.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// A route as a service documents one: a 404 of its own, no 400.
    #[utoipa::path(
        get,
        path = "/v1/things/{thing}",
        tag = "things",
        operation_id = "thing",
        params(("thing" = String, Path, description = "The thing.")),
        security(("userJwt" = [])),
        responses(
            (status = 200, description = "The thing.", body = String,
                links(("Again" = (operation_id = "thing", parameters(("thing" = "$request.path.thing")))))),
            (status = 404, description = "`no-thing`.", body = Problem, content_type = "application/problem+json"),
        )
    )]
    #[allow(dead_code)]
    async fn thing() {}

    /// A route that answers an error without a problem.
    #[utoipa::path(
        get,
        path = "/v1/bad",
        tag = "things",
        operation_id = "bad",
        responses((status = 409, description = "text", body = String))
    )]
    #[allow(dead_code)]
    async fn bad() {}

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(thing))]
    struct Things;

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(bad))]
    struct Bad;

    const ABOUT: About = About {
        title: "things",
        description: "Things.",
        schemes: &[Scheme::UserJwt],
        problems: &[ProblemType::new("no-thing", 404, "no such thing")],
    };

    #[test]
    fn finish_adds_the_shared_answers_schemes_and_problem_types() {
        let doc = serde_json::to_value(finish(Things::openapi(), &ABOUT)).expect("json");
        let answers = &doc["paths"]["/v1/things/{thing}"]["get"]["responses"];
        for status in ["400", "401", "408", "413", "503"] {
            assert!(answers[status]["$ref"].is_string(), "{status}: {answers}");
        }
        assert!(answers["404"]["content"][PROBLEM_JSON].is_object());
        let types = doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
            .as_array()
            .expect("an enum of types");
        for slug in ["no-thing", "bad-request", "body-too-large", "unavailable"] {
            assert!(
                types.contains(&Value::from(format!("{PROBLEM_BASE}{slug}"))),
                "{slug} is not documented"
            );
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["userJwt"]["scheme"],
            "bearer"
        );
        // The probes and the document itself are on every service.
        for path in ["/healthz", "/readyz", "/openapi.json"] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
        }
        assert!(lint(&finish(Things::openapi(), &ABOUT)).is_empty());
        let link = &answers["200"]["links"]["Again"];
        assert_eq!(link["operationId"], "thing", "{link}");
        assert!(link.get("operation_id").is_none(), "{link}");
    }

    #[test]
    fn lint_finds_an_error_answered_without_a_problem() {
        let findings = lint(&finish(Bad::openapi(), &ABOUT));
        assert_eq!(
            findings,
            ["GET /v1/bad: 409 is not answered with application/problem+json"]
        );
    }

    #[test]
    fn the_reference_lists_operations_and_problem_types() {
        let text = markdown(&finish(Things::openapi(), &ABOUT));
        assert!(text.contains("### `GET /v1/things/{thing}`"), "{text}");
        assert!(
            text.contains("| 404 | `no-thing` | no such thing |"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_document_is_served_as_checked_in() {
        use tower::ServiceExt;
        let api = finish(Things::openapi(), &ABOUT);
        let response = serve(Router::new(), &api)
            .oneshot(
                axum::http::Request::get("/openapi.json")
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=300"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(body, to_json(&api).as_bytes());
    }
}
