//! Branded waiting pages: a template (HTML with a small, fixed set of
//! `{{variables}}`) checked against the page's own Content-Security-Policy,
//! then rendered with the room's values. One implementation for the three
//! places that need it: the operator refuses a bad template with a condition,
//! the queue serves the rendered page (and checks again, so a template that
//! reached Redis some other way never shows), and `urr-operator page-preview`
//! renders it offline with the same error text.
//!
//! Why a template and not a set of knobs: operators bring their own page
//! (layout, words, imagery); why so few variables: every one is a value the
//! page must escape and check, and the live figures stay with the page's
//! script, which already renders them in the visitor's language.
//!
//! | variable | filled by | value |
//! | --- | --- | --- |
//! | `{{eventName}}` | the server | the Event's `displayName`, or the ConfigMap's `eventName` |
//! | `{{logoUrl}}` | the server | the ConfigMap's `logoUrl`: a same-origin path or a `data:image/…` URL |
//! | `{{brandColor}}` | the server | `#rgb`/`#rrggbb`, default `#4338ca`; buttons, white text on it |
//! | `{{accentColor}}` | the server | `#rgb`/`#rrggbb`, default `#3730a3`; figures and links |
//! | `{{position}}` | the page's script, live | the visitor's number or place in line |
//! | `{{eta}}` | the page's script, live | the estimated wait |
//!
//! The live ones render as `<span data-urr="position">—</span>` (and `eta`),
//! which `waiting.js` fills on every update; so they may stand only in text,
//! never in an attribute or the `<title>`. The page's stylesheet
//! `assets/brand.css` carries the two colours as its `--accent` variables.

mod html;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use html::PAGE_SCRIPTS;

/// The largest template accepted, in bytes: a page, not a site (a logo as a
/// `data:` URL counts, in the ConfigMap, towards the same budget).
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// The largest `logoUrl`, so a `data:` logo stays a logo.
pub const MAX_LOGO_URL_BYTES: usize = 32 * 1024;
/// The largest `eventName`, in characters.
pub const MAX_EVENT_NAME_CHARS: usize = 200;
/// The ConfigMap key of the template.
pub const TEMPLATE_KEY: &str = "template.html";
/// Default `{{brandColor}}`: today's page's accent.
pub const DEFAULT_BRAND_COLOR: &str = "#4338ca";
/// Default `{{accentColor}}`: today's page's accent ink.
pub const DEFAULT_ACCENT_COLOR: &str = "#3730a3";

/// Every variable a template may use, in the order of the docs.
pub const VARIABLES: [&str; 6] = [
    "eventName",
    "logoUrl",
    "brandColor",
    "accentColor",
    "position",
    "eta",
];
/// The variables the page's script fills in live.
pub const LIVE_VARIABLES: [&str; 2] = ["position", "eta"];

/// The Redis hash the operator writes a validated template and its values
/// to, and the queue serves from (`template`, `eventName`, `logoUrl`,
/// `brandColor`, `accentColor`, `digest`); absent: the default page.
pub fn page_key(event: &str) -> String {
    format!("urr:{{{event}}}:page")
}

/// Why a template or one of its values is refused. The message names the
/// problem (the variable, the tag, the attribute); [`TemplateError::reason`]
/// is the condition's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "unknown variable {{{{{name}}}}} (line {line}); the variables are {}",
        known()
    )]
    UnknownVariable { name: String, line: usize },
    #[error("{what} (line {line})")]
    Malformed { what: String, line: usize },
    #[error("{what} (line {line}): the page runs only its own scripts, {}", PAGE_SCRIPTS.join(" and "))]
    ForeignScript { what: String, line: usize },
    #[error("{what} (line {line}) breaks the page's Content-Security-Policy: {why}")]
    BreaksCsp {
        what: String,
        why: String,
        line: usize,
    },
    #[error(
        "{{{{{name}}}}} (line {line}) is filled in live by the page's script, so it may stand only in text, not in {place}"
    )]
    MisplacedVariable {
        name: String,
        place: String,
        line: usize,
    },
    #[error(
        "the template does not load the page's own script {src}, which fills in the live parts and takes the visitor on"
    )]
    MissingPageScript { src: String },
    #[error("{key}: {why}")]
    InvalidValue { key: String, why: String },
}

fn known() -> String {
    VARIABLES.map(|v| format!("{{{{{v}}}}}")).join(", ")
}

impl TemplateError {
    /// The reason of the `PageTemplateValid` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "TemplateTooLarge",
            Self::UnknownVariable { .. } => "UnknownVariable",
            Self::Malformed { .. } => "MalformedTemplate",
            Self::ForeignScript { .. } => "ForeignScript",
            Self::BreaksCsp { .. } => "BreaksCsp",
            Self::MisplacedVariable { .. } => "MisplacedVariable",
            Self::MissingPageScript { .. } => "MissingPageScript",
            Self::InvalidValue { .. } => "InvalidValue",
        }
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(&'static str),
}

/// A template that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// The server-side values of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    pub event_name: String,
    pub logo_url: Option<String>,
    pub brand_color: String,
    pub accent_color: String,
}

impl Branding {
    /// The values of a ConfigMap's data (`eventName`, `logoUrl`,
    /// `brandColor`, `accentColor`), each checked; `event_name` when the
    /// ConfigMap names none.
    pub fn from_data(
        data: &BTreeMap<String, String>,
        event_name: &str,
    ) -> Result<Self, TemplateError> {
        let branding = Self {
            event_name: data
                .get("eventName")
                .map_or(event_name, String::as_str)
                .trim()
                .to_owned(),
            logo_url: data.get("logoUrl").map(|u| u.trim().to_owned()),
            brand_color: data
                .get("brandColor")
                .map_or(DEFAULT_BRAND_COLOR, String::as_str)
                .trim()
                .to_owned(),
            accent_color: data
                .get("accentColor")
                .map_or(DEFAULT_ACCENT_COLOR, String::as_str)
                .trim()
                .to_owned(),
        };
        branding.check()?;
        Ok(branding)
    }

    /// The values as the Redis hash fields the queue reads back.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("eventName", self.event_name.clone()),
            ("brandColor", self.brand_color.clone()),
            ("accentColor", self.accent_color.clone()),
        ];
        if let Some(logo) = &self.logo_url {
            fields.push(("logoUrl", logo.clone()));
        }
        fields
    }

    /// Each value against its rules.
    pub fn check(&self) -> Result<(), TemplateError> {
        let invalid = |key: &str, why: String| TemplateError::InvalidValue {
            key: key.to_owned(),
            why,
        };
        let chars = self.event_name.chars().count();
        if chars == 0 || chars > MAX_EVENT_NAME_CHARS {
            return Err(invalid(
                "eventName",
                format!("must be 1 to {MAX_EVENT_NAME_CHARS} characters, is {chars}"),
            ));
        }
        if self.event_name.chars().any(char::is_control) {
            return Err(invalid(
                "eventName",
                "must not hold control characters".to_owned(),
            ));
        }
        if let Some(logo) = &self.logo_url {
            html::check_image_url(logo).map_err(|why| invalid("logoUrl", why.0))?;
            if logo.len() > MAX_LOGO_URL_BYTES {
                return Err(invalid(
                    "logoUrl",
                    format!("is {} bytes, over {MAX_LOGO_URL_BYTES}", logo.len()),
                ));
            }
        }
        // Contrast as the page uses the colours (WCAG 2.1 AA, 4.5:1): white
        // button text on brandColor, accentColor figures on the light
        // ticket (#eef0ff), so a branded page still passes axe-core.
        for (key, value, against, on) in [
            (
                "brandColor",
                &self.brand_color,
                [255, 255, 255],
                "white text on it",
            ),
            (
                "accentColor",
                &self.accent_color,
                [0xee, 0xf0, 0xff],
                "the light ticket (#eef0ff)",
            ),
        ] {
            let rgb = parse_color(value).ok_or_else(|| {
                invalid(
                    key,
                    format!("{value:?} is not a colour like #4338ca or #43c"),
                )
            })?;
            let ratio = contrast(rgb, against);
            if ratio < 4.5 {
                return Err(invalid(
                    key,
                    format!(
                        "{value} has a contrast of {ratio:.2}:1 with {on}, under the 4.5:1 of WCAG AA"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `#rgb` or `#rrggbb`.
fn parse_color(value: &str) -> Option<[u8; 3]> {
    let hex = value.strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize, width: usize| u8::from_str_radix(hex.get(i..i + width)?, 16).ok();
    match hex.len() {
        3 => Some([digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17]),
        6 => Some([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?]),
        _ => None,
    }
}

/// The WCAG contrast ratio of two sRGB colours.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    fn luminance(rgb: [u8; 3]) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
    }
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(1, |head| head.matches('\n').count() + 1)
}

impl Template {
    /// Parses and checks `source`: its size, its variables, and its HTML
    /// against the page's CSP (see [`html`]).
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::TooLarge {
                size: source.len(),
                limit: MAX_TEMPLATE_BYTES,
            });
        }
        if let Some(at) = source.find(html::MARKER) {
            return Err(TemplateError::Malformed {
                what: "the private-use character U+E000".to_owned(),
                line: line_of(source, at),
            });
        }
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let line = line_of(source, offset + open);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError::Malformed {
                    what: "a {{ without its }}".to_owned(),
                    line,
                });
            };
            let name = after[..close].trim();
            let Some(known) = VARIABLES.iter().find(|v| **v == name) else {
                // A name that runs on to the next line is a stray `{{`.
                if name.contains(['\n', '{', '<']) {
                    return Err(TemplateError::Malformed {
                        what: "a {{ without its }}".to_owned(),
                        line,
                    });
                }
                return Err(TemplateError::UnknownVariable {
                    name: name.to_owned(),
                    line,
                });
            };
            pieces.push(Piece::Var(known));
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        if let Some(stray) = pieces.iter().find_map(|p| match p {
            Piece::Text(text) => text.find("}}").map(|at| (text, at)),
            Piece::Var(_) => None,
        }) {
            return Err(TemplateError::Malformed {
                what: format!("a }} without its {{{{ near {:?}", excerpt(stray.0, stray.1)),
                line: line_of(source, source.find(stray.0.as_str()).unwrap_or(0) + stray.1),
            });
        }
        let template = Self { pieces };
        // The markup with each variable as a marker the checks can place.
        html::check(&template.with_markers())?;
        Ok(template)
    }

    /// The variables the template uses, each once.
    pub fn variables(&self) -> Vec<&'static str> {
        let mut used: Vec<&'static str> = Vec::new();
        for piece in &self.pieces {
            if let Piece::Var(name) = piece
                && !used.contains(name)
            {
                used.push(name);
            }
        }
        used
    }

    fn with_markers(&self) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Var(name) => {
                    let _ = write!(out, "{}{name}{}", html::MARKER, html::MARKER);
                }
            }
        }
        out
    }

    /// The page: server-side values escaped in, live ones as the slots the
    /// page's script fills. Checked again as rendered, so no value can
    /// break out of its place, and no `{{` reaches a browser.
    pub fn render(&self, branding: &Branding) -> Result<String, TemplateError> {
        branding.check()?;
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Var("eventName") => escape_into(&mut out, &branding.event_name),
                Piece::Var("logoUrl") => match &branding.logo_url {
                    Some(url) => escape_into(&mut out, url),
                    None => {
                        return Err(TemplateError::InvalidValue {
                            key: "logoUrl".to_owned(),
                            why: "the template uses {{logoUrl}}, and the ConfigMap sets none"
                                .to_owned(),
                        });
                    }
                },
                Piece::Var("brandColor") => escape_into(&mut out, &branding.brand_color),
                Piece::Var("accentColor") => escape_into(&mut out, &branding.accent_color),
                Piece::Var(live) => {
                    let _ = write!(out, "<span data-urr=\"{live}\">—</span>");
                }
            }
        }
        html::check(&out)?;
        if out.contains("{{") || out.contains("}}") {
            return Err(TemplateError::Malformed {
                what: "a variable left in the rendered page".to_owned(),
                line: line_of(&out, out.find("{{").or_else(|| out.find("}}")).unwrap_or(0)),
            });
        }
        Ok(out)
    }
}

fn excerpt(text: &str, at: usize) -> String {
    let start = text.floor_char_boundary(at.saturating_sub(20));
    let end = text.ceil_char_boundary((at + 22).min(text.len()));
    text[start..end].to_owned()
}

/// HTML-escapes `value`, braces too, so a value never forms a `{{`.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '{' => out.push_str("&#123;"),
            '}' => out.push_str("&#125;"),
            c => out.push(c),
        }
    }
}

/// The page's stylesheet of the brand colours, served as `assets/brand.css`.
/// In the light scheme only: the dark one keeps the page's own palette,
/// whose contrast is checked there.
pub fn brand_css(branding: &Branding) -> String {
    // Unchecked values never reach CSS: the defaults stand in for them.
    let (brand, accent) = if branding.check().is_ok() {
        (
            branding.brand_color.as_str(),
            branding.accent_color.as_str(),
        )
    } else {
        (DEFAULT_BRAND_COLOR, DEFAULT_ACCENT_COLOR)
    };
    format!(
        "@media (prefers-color-scheme: light) {{\n  :root {{ --accent: {}; --accent-ink: {}; }}\n}}\n",
        brand, accent
    )
}

#[cfg(test)]
mod tests;
