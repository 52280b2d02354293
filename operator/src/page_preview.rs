//! `urr-operator page-preview`: the waiting page of a template, rendered for
//! one state with sample figures into a folder an operator opens offline
//! (`index.html` and the page's own `assets/`). The template is checked by
//! the same code as the operator's `PageTemplateValid` condition, so a
//! refusal here reads as the condition would.

use std::collections::BTreeMap;
use std::path::Path;

use urr_service_common::page_template::{self, Branding, Template, TemplateError};

/// Today's page: the default template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../runtime-services/queue/static/waiting.html");
/// The page's own assets, as the queue serves them.
const ASSETS: [(&str, &str); 6] = [
    (
        "waiting.js",
        include_str!("../../runtime-services/queue/static/waiting.js"),
    ),
    (
        "waiting-text.js",
        include_str!("../../runtime-services/queue/static/waiting-text.js"),
    ),
    (
        "waiting.css",
        include_str!("../../runtime-services/queue/static/waiting.css"),
    ),
    (
        "i18n.en.json",
        include_str!("../../runtime-services/queue/static/i18n/en.json"),
    ),
    (
        "i18n.ko.json",
        include_str!("../../runtime-services/queue/static/i18n/ko.json"),
    ),
    (
        "i18n.ja.json",
        include_str!("../../runtime-services/queue/static/i18n/ja.json"),
    ),
];

/// The states a preview shows (the page's screens).
pub const STATES: [&str; 6] = [
    "before-open",
    "waiting",
    "your-turn",
    "paused",
    "sold-out",
    "closed",
];
/// The languages of the page.
pub const LANGS: [&str; 3] = ["en", "ko", "ja"];

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error("unknown state {0:?}; one of {states}", states = STATES.join(", "))]
    State(String),
    #[error("unknown language {0:?}; one of {langs}", langs = LANGS.join(", "))]
    Lang(String),
    #[error("the template has no <head> to put the preview's state in")]
    NoHead,
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The files of the preview: (path in the folder, contents).
pub fn render(
    template: Option<&str>,
    values: &BTreeMap<String, String>,
    event_name: &str,
    state: &str,
    lang: &str,
) -> Result<Vec<(String, String)>, PreviewError> {
    if !STATES.contains(&state) {
        return Err(PreviewError::State(state.to_owned()));
    }
    let catalogue = ASSETS
        .iter()
        .find(|(name, _)| *name == format!("i18n.{lang}.json"))
        .map(|(_, body)| *body)
        .ok_or_else(|| PreviewError::Lang(lang.to_owned()))?;
    let template = Template::parse(template.unwrap_or(DEFAULT_TEMPLATE))?;
    let branding = Branding::from_data(values, event_name)?;
    let html = template.render(&branding)?;
    // After the <head> start tag: the state and the catalogue, as a data
    // block the page's script reads instead of asking the queue.
    let lower = html.to_ascii_lowercase();
    let head = lower
        .match_indices("<head")
        .find(|(at, _)| {
            matches!(
                lower.as_bytes().get(at + 5),
                Some(b'>' | b' ' | b'\t' | b'\n' | b'\r')
            )
        })
        .and_then(|(at, _)| lower[at..].find('>').map(|end| at + end + 1))
        .ok_or(PreviewError::NoHead)?;
    // `</` cannot close the block early: the catalogue is JSON, so escaped.
    let data = catalogue.replace("</", "<\\/");
    let block = format!(
        "\n<script type=\"application/json\" id=\"urr-preview\" data-state=\"{state}\" data-lang=\"{lang}\">{data}</script>"
    );
    let mut page = html;
    page.insert_str(head, &block);
    let mut files = vec![("index.html".to_owned(), page)];
    files.push((
        "assets/brand.css".to_owned(),
        page_template::brand_css(&branding),
    ));
    for (name, body) in ASSETS {
        files.push((format!("assets/{name}"), body.to_owned()));
    }
    Ok(files)
}

/// Writes `files` under `out`.
pub fn write(out: &Path, files: &[(String, String)]) -> Result<(), PreviewError> {
    for (name, body) in files {
        let path = out.join(name);
        let failed = |source| PreviewError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::write(&path, body).map_err(failed)?;
    }
    Ok(())
}

/// The values of a ConfigMap manifest: its template and its other data.
pub fn from_config_map(
    yaml: &str,
) -> Result<(Option<String>, BTreeMap<String, String>), serde_yaml::Error> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        data: BTreeMap<String, String>,
    }
    let mut manifest: Manifest = serde_yaml::from_str(yaml)?;
    let template = manifest.data.remove(page_template::TEMPLATE_KEY);
    Ok((template, manifest.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/waiting-page/template.html");

    fn values() -> BTreeMap<String, String> {
        [("logoUrl", "/brand/logo.svg"), ("brandColor", "#075")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_preview_is_the_rendered_page_with_its_state_and_assets() {
        let files = render(Some(EXAMPLE), &values(), "Aurora", "sold-out", "ko").expect("preview");
        let index = &files[0].1;
        assert!(index.contains(r#"id="urr-preview" data-state="sold-out" data-lang="ko">"#));
        assert!(
            index.contains("\"soldOutTitle\""),
            "the Korean catalogue is in"
        );
        assert!(index.contains("<span class=\"brand-name\">Aurora</span>"));
        assert!(!index.contains("{{"));
        let css = files
            .iter()
            .find(|(n, _)| n == "assets/brand.css")
            .expect("brand.css");
        assert!(css.1.contains("--accent: #075;"));
        assert!(files.iter().any(|(n, _)| n == "assets/waiting.js"));
    }

    #[test]
    fn a_bad_template_is_refused_with_the_conditions_words() {
        let bad = EXAMPLE.replace(
            "</head>",
            "<script src=\"https://cdn.example.com/a.js\"></script></head>",
        );
        let error = render(Some(&bad), &values(), "Aurora", "waiting", "en").expect_err("refused");
        let condition = crate::waiting_room::page_step::check(
            "brand",
            Some(&{
                let mut data = values();
                data.insert("template.html".to_owned(), bad.clone());
                data
            }),
            "Aurora",
        );
        let crate::waiting_room::page_step::PageCheck::Refused { reason, message } = condition
        else {
            panic!("the condition accepted it");
        };
        assert_eq!(reason, "ForeignScript");
        assert!(message.ends_with(&error.to_string()), "{message} / {error}");
        assert!(render(None, &values(), "A", "waiting", "xx").is_err());
        assert!(render(None, &values(), "A", "queued", "en").is_err());
    }

    #[test]
    fn without_a_template_the_default_page_previews() {
        let files = render(None, &BTreeMap::new(), "Aurora", "waiting", "en").expect("preview");
        assert!(files[0].1.contains("URR Tickets"));
    }
}
