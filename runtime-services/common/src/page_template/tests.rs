use std::collections::BTreeMap;

use super::*;

/// Today's page, the default template: it must pass its own rules.
const DEFAULT_PAGE: &str = include_str!("../../../queue/static/waiting.html");
/// The example template of the docs.
const EXAMPLE: &str = include_str!("../../../../examples/waiting-page/template.html");

const HEAD: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{eventName}}</title>
<link rel="stylesheet" href="assets/waiting.css"><link rel="stylesheet" href="assets/brand.css">
<script src="assets/waiting-text.js" defer></script><script src="assets/waiting.js" defer></script></head>"#;

fn page(body: &str) -> String {
    format!("{HEAD}<body>{body}</body></html>")
}

fn branding() -> Branding {
    Branding::from_data(&BTreeMap::new(), "Aurora World Tour, Seoul").expect("defaults pass")
}

fn refused(template: &str) -> TemplateError {
    Template::parse(template).expect_err("refused")
}

#[test]
fn a_good_template_renders_its_values_and_the_live_slots() {
    let template = Template::parse(&page(
        r#"<img src="{{logoUrl}}" alt="{{eventName}}"><h1>{{eventName}}</h1>
        <p>You are number {{position}}, about {{ eta }} to go.</p>
        <svg viewBox="0 0 2 2"><rect width="2" height="2" fill="{{brandColor}}"/></svg>"#,
    ))
    .expect("good");
    assert_eq!(
        template.variables(),
        ["eventName", "logoUrl", "position", "eta", "brandColor"]
    );
    let mut data = BTreeMap::new();
    data.insert("logoUrl".to_owned(), "/brand/logo.svg".to_owned());
    data.insert("eventName".to_owned(), "Rock & <Roll> {{eta}}".to_owned());
    data.insert("brandColor".to_owned(), "#075".to_owned());
    let branding = Branding::from_data(&data, "ignored").expect("values");
    let html = template.render(&branding).expect("renders");
    assert!(html.contains(r#"<img src="/brand/logo.svg" alt="Rock &amp; &lt;Roll&gt; &#123;&#123;eta&#125;&#125;">"#), "{html}");
    assert!(html.contains(
        r#"number <span data-urr="position">—</span>, about <span data-urr="eta">—</span>"#
    ));
    assert!(html.contains(r##"fill="#075""##));
    assert!(!html.contains("{{") && !html.contains("}}"), "{html}");
}

#[test]
fn the_default_page_and_the_example_pass_their_own_rules() {
    let default = Template::parse(DEFAULT_PAGE).expect("today's page is a valid template");
    assert!(default.variables().is_empty());
    assert_eq!(default.render(&branding()).expect("renders"), DEFAULT_PAGE);
    let example = Template::parse(EXAMPLE).expect("the example is valid");
    let mut data = BTreeMap::new();
    data.insert("logoUrl".to_owned(), "/brand/logo.svg".to_owned());
    let html = example
        .render(&Branding::from_data(&data, "Aurora").expect("values"))
        .expect("renders");
    assert!(html.contains("Aurora") && !html.contains("{{"));
}

#[test]
fn too_large_is_refused_with_its_size() {
    let big = page(&"<p>queue</p>".repeat(MAX_TEMPLATE_BYTES / 10));
    let error = refused(&big);
    assert_eq!(error.reason(), "TemplateTooLarge");
    assert!(
        error.to_string().contains(&big.len().to_string()),
        "{error}"
    );
}

#[test]
fn unknown_variables_are_named() {
    let error = refused(&page("<p>{{eventName}} {{ticketPrice}}</p>"));
    assert_eq!(error.reason(), "UnknownVariable");
    assert!(error.to_string().contains("{{ticketPrice}}"), "{error}");
    assert!(error.to_string().contains("line 3"), "{error}");
    assert_eq!(
        refused(&page("<p>{{eventName</p>")).reason(),
        "MalformedTemplate"
    );
    assert_eq!(
        refused(&page("<p>a }} b</p>")).reason(),
        "MalformedTemplate"
    );
}

#[test]
fn foreign_and_inline_scripts_are_refused() {
    for (body, shows) in [
        (
            r#"<script src="https://cdn.example.com/x.js"></script>"#,
            "cdn.example.com",
        ),
        ("<script>alert(1)</script>", "inline"),
        ("<SCRIPT>alert(1)</SCRIPT>", "inline"),
        ("<svg><script>alert(1)</script></svg>", "inline"),
        (
            r#"<script src="assets/waiting.js">alert(1)</script>"#,
            "inline",
        ),
        (r#"<script src="{{eventName}}"></script>"#, "x"),
    ] {
        let error = refused(&page(body));
        assert_eq!(error.reason(), "ForeignScript", "{body}: {error}");
        assert!(error.to_string().contains(shows), "{body}: {error}");
    }
    let without = HEAD.replace(r#"<script src="assets/waiting.js" defer></script>"#, "");
    let error = refused(&format!("{without}<body></body>"));
    assert_eq!(error.reason(), "MissingPageScript");
    assert!(error.to_string().contains("assets/waiting.js"), "{error}");
}

#[test]
fn what_the_csp_would_block_is_refused_and_named() {
    for (body, shows) in [
        (r#"<button onclick="go()">Go</button>"#, "onclick"),
        (r#"<img src="x.png" ONERROR="go()" alt="">"#, "onerror"),
        (r#"<p style="color:red">x</p>"#, "style attribute"),
        ("<style>p{color:red}</style>", "<style>"),
        (r#"<a href="javascript:alert(1)">x</a>"#, "javascript"),
        (r#"<a href=" JaVa&#x53;cript:alert(1)">x</a>"#, "javascript"),
        (
            r#"<img src="https://cdn.example.com/logo.png" alt="">"#,
            "cdn.example.com",
        ),
        (
            r#"<img src="//cdn.example.com/logo.png" alt="">"#,
            "cdn.example.com",
        ),
        (
            r#"<img srcset="/a.png 1x, https://x.example/b.png 2x" alt="">"#,
            "x.example",
        ),
        (r#"<img src="data:text/html,hi" alt="">"#, "text/html"),
        (
            r#"<link rel="stylesheet" href="https://fonts.example.com/a.css">"#,
            "fonts.example.com",
        ),
        (r#"<iframe src="/x"></iframe>"#, "<iframe>"),
        (r#"<object data="/x"></object>"#, "<object>"),
        (r#"<base href="https://evil.example/">"#, "<base>"),
        (
            r#"<meta http-equiv="Content-Security-Policy" content="default-src *">"#,
            "Content-Security-Policy",
        ),
        (
            r#"<meta http-equiv="refresh" content="0;url=https://evil.example/">"#,
            "refresh",
        ),
        (
            r#"<svg><a xlink:href="javascript:alert(1)">x</a></svg>"#,
            "xlink:href",
        ),
    ] {
        let error = refused(&page(body));
        assert_eq!(error.reason(), "BreaksCsp", "{body}: {error}");
        assert!(error.to_string().contains(shows), "{body}: {error}");
    }
}

#[test]
fn same_origin_and_data_images_and_navigation_links_pass() {
    Template::parse(&page(
        r#"<img src="/brand/logo.png" alt=""><img src="logo.png" alt="">
        <img src="data:image/png;base64,iVBORw0KGgo=" alt="">
        <a href="https://tickets.example.com/help">Help</a>
        <link rel="canonical" href="https://tickets.example.com/">
        <noscript><meta http-equiv="refresh" content="30"></noscript>"#,
    ))
    .expect("allowed");
}

#[test]
fn live_variables_stand_only_in_text() {
    for (body, place) in [
        (r#"<p title="{{position}}">x</p>"#, "attribute title of <p>"),
        ("<textarea>{{eta}}</textarea>", "<textarea>"),
    ] {
        let error = refused(&page(body));
        assert_eq!(error.reason(), "MisplacedVariable", "{body}");
        assert!(error.to_string().contains(place), "{error}");
    }
    let in_title = HEAD.replace("<title>{{eventName}}", "<title>{{position}}");
    assert_eq!(
        refused(&format!("{in_title}<body></body>")).reason(),
        "MisplacedVariable"
    );
}

#[test]
fn values_are_checked() {
    let cases = [
        ("brandColor", "red", "not a colour"),
        ("brandColor", "#ffeeaa", "contrast"),
        ("accentColor", "#12345", "not a colour"),
        (
            "logoUrl",
            "https://cdn.example.com/logo.png",
            "another site",
        ),
        ("logoUrl", "javascript:alert(1)", "another site"),
        ("eventName", "", "1 to 200"),
    ];
    for (key, value, shows) in cases {
        let mut data = BTreeMap::new();
        data.insert(key.to_owned(), value.to_owned());
        let error = Branding::from_data(&data, "Event").expect_err(value);
        assert_eq!(error.reason(), "InvalidValue");
        assert!(error.to_string().starts_with(key), "{error}");
        assert!(error.to_string().contains(shows), "{value}: {error}");
    }
    let template = Template::parse(&page(r#"<img src="{{logoUrl}}" alt="">"#)).expect("good");
    let error = template.render(&branding()).expect_err("no logo");
    assert!(error.to_string().contains("sets none"), "{error}");
}

#[test]
fn brand_css_carries_only_checked_colours() {
    let css = brand_css(&branding());
    assert!(
        css.contains("--accent: #4338ca; --accent-ink: #3730a3;"),
        "{css}"
    );
    let mut bad = branding();
    bad.brand_color = "red; } body { display: none".to_owned();
    assert!(!brand_css(&bad).contains("display"));
}
