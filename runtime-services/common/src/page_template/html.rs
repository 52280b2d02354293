//! The template's markup against the page's CSP, which the queue sends
//! unchanged with every page (`default-src 'self'; script-src 'self';
//! style-src 'self'; img-src 'self' data:; frame-ancestors 'none'`). A
//! template the browser would run under that CSP only in part (an inline
//! handler that never fires, a logo that never loads) is refused here with
//! the element that breaks it, instead of failing silently in a visitor's
//! console. Tokenized by html5ever, the browser's own algorithm, so what is
//! checked is what a browser will see (entities decoded, any case of tag
//! and attribute names, `<svg>` inside).

use std::cell::{Cell, RefCell};

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use super::{LIVE_VARIABLES, TemplateError};

/// The page's own scripts, in the order they must load: the words, then the
/// page. The only scripts a template may (and must) have.
pub const PAGE_SCRIPTS: [&str; 2] = ["assets/waiting-text.js", "assets/waiting.js"];

/// Stands around a variable's name while the template is checked: a
/// private-use character, refused in templates themselves.
pub(super) const MARKER: char = '\u{E000}';

/// Attributes that hold a URL (`javascript:` in any of them runs script).
const URL_ATTRIBUTES: [&str; 10] = [
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "data",
    "xlink:href",
    "srcset",
    "background",
    "cite",
];
/// Elements that fetch an image from `src`, `srcset`, `poster` or `href`
/// (under `img-src`, or `media-src`/`default-src 'self'`, the same rule).
const IMAGE_ELEMENTS: [&str; 8] = [
    "img", "source", "input", "video", "audio", "track", "image", "use",
];
/// Elements that embed another document or plug-in, or move the page.
const REFUSED_ELEMENTS: [(&str, &str); 9] = [
    (
        "style",
        "inline style; style-src 'self' allows only stylesheets linked from this site",
    ),
    ("iframe", "embedded documents are not part of the page"),
    ("frame", "embedded documents are not part of the page"),
    ("frameset", "embedded documents are not part of the page"),
    ("object", "plug-in content is not part of the page"),
    ("embed", "plug-in content is not part of the page"),
    ("applet", "plug-in content is not part of the page"),
    ("portal", "embedded documents are not part of the page"),
    (
        "base",
        "a <base> moves the page's own assets and scripts to another address",
    ),
];

/// Checks `marked` (the template with each variable as
/// `MARKER name MARKER`, or a rendered page) tag by tag.
pub(super) fn check(marked: &str) -> Result<(), TemplateError> {
    let sink = Checker::default();
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(marked));
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let sink = tokenizer.sink;
    if let Some(error) = sink.error.into_inner() {
        return Err(error);
    }
    let scripts = sink.scripts.into_inner();
    for src in PAGE_SCRIPTS {
        if !scripts.iter().any(|s| s == src) {
            return Err(TemplateError::MissingPageScript {
                src: src.to_owned(),
            });
        }
    }
    if scripts != PAGE_SCRIPTS {
        return Err(TemplateError::ForeignScript {
            what: format!(
                "the scripts {} (each once, in this order)",
                scripts.join(", ")
            ),
            line: 1,
        });
    }
    if !sink.saw_head.get() {
        return Err(TemplateError::Malformed {
            what: "no <head>: a page needs one, for its title and stylesheets".to_owned(),
            line: 1,
        });
    }
    Ok(())
}

/// Why an address may not be loaded by the page (its CSP would block it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct AddressRefused(pub(super) String);

/// Whether `url` may be an image of the page: a same-origin address or a
/// `data:` image (`img-src 'self' data:`); the reason if not.
pub(super) fn check_image_url(url: &str) -> Result<(), AddressRefused> {
    let trimmed = url.trim();
    if trimmed
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
    {
        let media = trimmed[5..]
            .split([';', ','])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        return match media.as_str() {
            "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/avif"
            | "image/svg+xml" => Ok(()),
            _ => Err(AddressRefused(format!(
                "a data: URL of {media:?}, not an image (png, jpeg, gif, webp, avif, svg+xml)"
            ))),
        };
    }
    check_same_origin(trimmed)
}

/// A path on this site: no scheme, no `//host`; the reason if not.
fn check_same_origin(url: &str) -> Result<(), AddressRefused> {
    let shown: String = url.chars().take(80).collect();
    if url.is_empty() {
        return Err(AddressRefused("an empty address".to_owned()));
    }
    if url
        .chars()
        .any(|c| c.is_ascii_control() || c.is_whitespace())
    {
        return Err(AddressRefused(format!(
            "{shown:?} holds spaces or control characters"
        )));
    }
    let slashes = url.starts_with("//") || url.starts_with("/\\") || url.starts_with('\\');
    let before_path = url.split(['/', '?', '#']).next().unwrap_or("");
    if slashes || before_path.contains(':') {
        return Err(AddressRefused(format!(
            "{shown:?} is on another site; the page's CSP loads images and stylesheets only from this site (img-src 'self' data:), so host the file next to the page"
        )));
    }
    Ok(())
}

/// The scheme of a URL as a browser reads it (whitespace and control
/// characters dropped, any case).
fn scheme(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .filter(|c| !c.is_ascii_control() && !c.is_whitespace())
        .collect();
    cleaned
        .split(['/', '?', '#'])
        .next()
        .and_then(|head| head.split_once(':'))
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A live variable's name in `value`, if one stands there.
fn live_in(value: &str) -> Option<&'static str> {
    LIVE_VARIABLES
        .into_iter()
        .find(|name| value.contains(&format!("{MARKER}{name}{MARKER}")))
}

/// `value` with every variable as a sample of its kind, for the URL checks
/// (the values themselves are checked by `Branding::check`).
fn sampled(value: &str) -> String {
    let mut out = value.replace(&format!("{MARKER}logoUrl{MARKER}"), "/logo.png");
    for name in super::VARIABLES {
        out = out.replace(&format!("{MARKER}{name}{MARKER}"), "x");
    }
    out
}

#[derive(Default)]
struct Checker {
    error: RefCell<Option<TemplateError>>,
    scripts: RefCell<Vec<String>>,
    saw_head: Cell<bool>,
    /// Inside `<script>`, `<title>` or `<textarea>`: text is not markup.
    raw: RefCell<Option<String>>,
}

impl Checker {
    fn fail(&self, error: TemplateError) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    fn csp(&self, what: String, why: &str, line: usize) {
        self.fail(TemplateError::BreaksCsp {
            what,
            why: why.to_owned(),
            line,
        });
    }

    fn start_tag(&self, tag: &Tag, line: usize) -> TokenSinkResult<()> {
        let name: &str = &tag.name;
        let attr = |wanted: &str| {
            tag.attrs
                .iter()
                .find(|a| &*a.name.local == wanted)
                .map(|a| a.value.to_string())
        };
        if name == "head" {
            self.saw_head.set(true);
        }
        if let Some((_, why)) = REFUSED_ELEMENTS.iter().find(|(n, _)| *n == name) {
            self.csp(format!("<{name}>"), why, line);
        }
        for a in &tag.attrs {
            let attr_name: &str = &a.name.local;
            let value: &str = &a.value;
            if let Some(live) = live_in(value) {
                self.fail(TemplateError::MisplacedVariable {
                    name: live.to_owned(),
                    place: format!("the attribute {attr_name} of <{name}>"),
                    line,
                });
            }
            if attr_name.starts_with("on") {
                self.csp(
                    format!("the event handler {attr_name} on <{name}>"),
                    "script-src 'self' runs no inline handlers",
                    line,
                );
            } else if attr_name == "style" {
                self.csp(
                    format!("the style attribute on <{name}>"),
                    "style-src 'self' applies no inline style; use a stylesheet or SVG presentation attributes",
                    line,
                );
            } else if URL_ATTRIBUTES.contains(&attr_name)
                && matches!(scheme(value).as_str(), "javascript" | "vbscript" | "data")
                && !(IMAGE_ELEMENTS.contains(&name) && scheme(value) == "data")
            {
                self.csp(
                    format!("the {} URL in {attr_name} of <{name}>", scheme(value)),
                    "script-src 'self' runs no script from URLs",
                    line,
                );
            }
        }
        if IMAGE_ELEMENTS.contains(&name) {
            for attr_name in ["src", "poster", "href", "xlink:href", "srcset"] {
                let Some(value) = attr(attr_name) else {
                    continue;
                };
                let urls: Vec<String> = if attr_name == "srcset" {
                    value
                        .split(',')
                        .filter_map(|c| c.split_whitespace().next().map(sampled))
                        .collect()
                } else {
                    vec![sampled(&value)]
                };
                // An `<input>` fetches only as `type=image`; `<use href="#id">` is local.
                let fetches = name != "input"
                    || attr("type").is_some_and(|t| t.eq_ignore_ascii_case("image"));
                for url in urls.iter().filter(|u| fetches && !u.starts_with('#')) {
                    if let Err(why) = check_image_url(url) {
                        self.csp(format!("the {attr_name} of <{name}>"), &why.0, line);
                    }
                }
            }
        }
        match name {
            "link" => {
                let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
                let navigational = rel.split_whitespace().all(|r| {
                    matches!(r, "canonical" | "alternate" | "author" | "license" | "help")
                });
                if let Some(href) = attr("href").filter(|_| !navigational)
                    && let Err(why) = check_same_origin(sampled(&href).trim())
                {
                    self.csp(format!("<link rel=\"{rel}\">"), &why.0, line);
                }
            }
            "meta" => {
                if let Some(equiv) = attr("http-equiv") {
                    let content = attr("content").unwrap_or_default();
                    let reload = equiv.eq_ignore_ascii_case("refresh")
                        && !content.trim().is_empty()
                        && content.trim().bytes().all(|b| b.is_ascii_digit());
                    if !reload {
                        self.csp(
                            format!("<meta http-equiv=\"{equiv}\">"),
                            "only a plain reload (http-equiv=\"refresh\" content=\"SECONDS\") may stand in the page: others set policy or send the visitor away",
                            line,
                        );
                    }
                }
            }
            "script" => {
                match attr("src") {
                    Some(src) if PAGE_SCRIPTS.contains(&src.trim()) => {
                        self.scripts.borrow_mut().push(src.trim().to_owned());
                    }
                    Some(src) => self.fail(TemplateError::ForeignScript {
                        what: format!("<script src=\"{}\">", sampled(&src)),
                        line,
                    }),
                    None => self.fail(TemplateError::ForeignScript {
                        what: "an inline <script>".to_owned(),
                        line,
                    }),
                }
                *self.raw.borrow_mut() = Some("script".to_owned());
                return TokenSinkResult::RawData(RawKind::ScriptData);
            }
            "title" | "textarea" => {
                *self.raw.borrow_mut() = Some(name.to_owned());
                return TokenSinkResult::RawData(RawKind::Rcdata);
            }
            "xmp" | "noembed" | "noframes" | "style" | "iframe" => {
                *self.raw.borrow_mut() = Some(name.to_owned());
                return TokenSinkResult::RawData(RawKind::Rawtext);
            }
            "plaintext" => {
                self.fail(TemplateError::Malformed {
                    what: "<plaintext> turns the rest of the page into text".to_owned(),
                    line,
                });
                return TokenSinkResult::Plaintext;
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

impl TokenSink for Checker {
    type Handle = ();

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<()> {
        let line = usize::try_from(line_number).unwrap_or(usize::MAX);
        match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => {
                return self.start_tag(&tag, line);
            }
            Token::TagToken(_) => *self.raw.borrow_mut() = None,
            Token::CharacterTokens(text) => {
                let raw = self.raw.borrow().clone();
                match raw.as_deref() {
                    Some("script") if !text.trim().is_empty() => {
                        self.fail(TemplateError::ForeignScript {
                            what: "an inline <script>".to_owned(),
                            line,
                        });
                    }
                    Some(element) => {
                        if let Some(live) = live_in(&text) {
                            self.fail(TemplateError::MisplacedVariable {
                                name: live.to_owned(),
                                place: format!("the <{element}>"),
                                line,
                            });
                        }
                    }
                    None => {}
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}
