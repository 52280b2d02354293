//! The API reference for people: a service's OpenAPI document as Markdown
//! (`docs/api/<service>.md`), rendered from the same document that is
//! served and checked in, so the prose a storefront developer reads cannot
//! disagree with the contract.

use std::fmt::Write as _;

use serde_json::Value;
use utoipa::openapi::OpenApi;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `api` as a Markdown reference: the introduction, authentication, each
/// operation (parameters, body, answers) and each schema.
pub fn markdown(api: &OpenApi) -> String {
    let doc = serde_json::to_value(api).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {} {}\n",
        text(&doc["info"]["title"]),
        text(&doc["info"]["version"])
    );
    let _ = writeln!(
        out,
        "<!-- Generated from the OpenAPI document (docs/openapi/); do not edit: `URR_OPENAPI_WRITE=1 cargo test --test openapi`. -->\n"
    );
    let _ = writeln!(out, "{}\n", text(&doc["info"]["description"]).trim());
    authentication(&mut out, &doc);
    let _ = writeln!(out, "## Operations\n");
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    render_operation(&mut out, method, path, operation);
                }
            }
        }
    }
    if let Some(responses) = doc["components"]["responses"].as_object() {
        let _ = writeln!(out, "## Shared answers\n");
        let _ = writeln!(out, "| name | answer |\n|---|---|");
        for (name, response) in responses {
            let _ = writeln!(
                out,
                "| `{name}` | {} |",
                cell(text(&response["description"]))
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Schemas\n");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            render_schema(&mut out, name, schema);
        }
    }
    out
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Table cells cannot hold line breaks or bare pipes.
fn cell(value: &str) -> String {
    value.replace('\n', " ").replace('|', "\\|")
}

fn authentication(out: &mut String, doc: &Value) {
    let Some(schemes) = doc["components"]["securitySchemes"].as_object() else {
        return;
    };
    let _ = writeln!(out, "## Authentication\n");
    let _ = writeln!(out, "| scheme | sent as | what |\n|---|---|---|");
    for (name, scheme) in schemes {
        let sent_as = match text(&scheme["type"]) {
            "http" => format!(
                "`Authorization: Bearer <{}>`",
                text(&scheme["bearerFormat"])
            ),
            "apiKey" => format!("{} `{}`", text(&scheme["in"]), text(&scheme["name"])),
            other => other.to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{name}` | {sent_as} | {} |",
            cell(text(&scheme["description"]))
        );
    }
    out.push('\n');
}

/// The name of a `$ref`, or a short description of an inline schema.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[`{name}`](#{})", name.to_lowercase());
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", schema_name(items));
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let names: Vec<String> = parts.iter().map(schema_name).collect();
            return names.join(" or ");
        }
    }
    match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .map(|k| text(k).to_owned())
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    }
}

fn render_operation(out: &mut String, method: &str, path: &str, operation: &Value) {
    let _ = writeln!(out, "### `{} {path}`\n", method.to_uppercase());
    let summary = text(&operation["summary"]);
    if !summary.is_empty() {
        let _ = writeln!(out, "{summary}\n");
    }
    let description = text(&operation["description"]);
    if !description.is_empty() {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    if let Some(security) = operation["security"].as_array() {
        let needs: Vec<String> = security
            .iter()
            .filter_map(Value::as_object)
            .map(|requirement| {
                requirement
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect();
        if !needs.is_empty() {
            let _ = writeln!(out, "Authentication: {}\n", needs.join(", or "));
        }
    }
    if let Some(parameters) = operation["parameters"].as_array() {
        let _ = writeln!(
            out,
            "| parameter | in | required | type | what |\n|---|---|---|---|---|"
        );
        for parameter in parameters {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                text(&parameter["name"]),
                text(&parameter["in"]),
                if parameter["required"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "no"
                },
                schema_name(&parameter["schema"]),
                cell(text(&parameter["description"]))
            );
        }
        out.push('\n');
    }
    if let Some(content) = operation["requestBody"]["content"].as_object() {
        for (media, body) in content {
            let _ = writeln!(
                out,
                "Body ({media}{}): {}\n",
                if operation["requestBody"]["required"]
                    .as_bool()
                    .unwrap_or(false)
                {
                    ", required"
                } else {
                    ", optional"
                },
                schema_name(&body["schema"])
            );
        }
    }
    let _ = writeln!(out, "| status | answer | body |\n|---|---|---|");
    if let Some(responses) = operation["responses"].as_object() {
        for (status, response) in responses {
            let (description, body) = match response["$ref"].as_str() {
                Some(reference) => (
                    format!(
                        "see [{}](#shared-answers)",
                        reference.rsplit('/').next().unwrap_or(reference)
                    ),
                    "[`Problem`](#problem)".to_owned(),
                ),
                None => {
                    let body = response["content"]
                        .as_object()
                        .map(|content| {
                            content
                                .iter()
                                .map(|(media, c)| {
                                    format!("{} ({media})", schema_name(&c["schema"]))
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    let headers = response["headers"]
                        .as_object()
                        .map(|h| {
                            h.keys()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .filter(|h| !h.is_empty())
                        .map(|h| format!(" Headers: {h}."))
                        .unwrap_or_default();
                    (format!("{}{headers}", text(&response["description"])), body)
                }
            };
            let _ = writeln!(out, "| {status} | {} | {body} |", cell(&description));
        }
    }
    out.push('\n');
}

fn render_schema(out: &mut String, name: &str, schema: &Value) {
    let _ = writeln!(out, "### {name}\n");
    let description = text(&schema["description"]);
    if !description.is_empty() {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", text(v))).collect();
        let _ = writeln!(out, "One of {}.\n", values.join(", "));
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let _ = writeln!(out, "One of:\n");
            for part in parts {
                let _ = writeln!(out, "- {}", schema_name(part));
                render_properties(out, part);
            }
            out.push('\n');
        }
    }
    render_properties(out, schema);
    out.push('\n');
}

fn render_properties(out: &mut String, schema: &Value) {
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\n| field | type | required | what |\n|---|---|---|---|"
    );
    for (field, property) in properties {
        let mut what = text(&property["description"]).to_owned();
        if let Some(values) = property["enum"].as_array() {
            let values: Vec<String> = values.iter().map(|v| format!("`{}`", text(v))).collect();
            if values.len() <= 12 {
                what = format!("{what} One of {}.", values.join(", "));
            }
        }
        let _ = writeln!(
            out,
            "| `{field}` | {} | {} | {} |",
            schema_name(property),
            if required.contains(&field.as_str()) {
                "yes"
            } else {
                "no"
            },
            cell(what.trim())
        );
    }
    out.push('\n');
}
