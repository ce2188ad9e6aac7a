//! The explorer page: one HTML document with its CSS, its script and its data inline.
//!
//! The assets live in `assets/` as plain files (no build step) and are compiled into the binary.
//! The page carries a Content-Security-Policy that allows only its own inline script and style
//! (by hash) and requests to its own origin (the server's `/analyze`), so it cannot load
//! anything from elsewhere, not even a font; the data sits in a `<script
//! type="application/json">` element, which never runs.

use std::sync::OnceLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::api::PageData;

const TEMPLATE: &str = include_str!("assets/explorer.html");
const STYLE: &str = include_str!("assets/explorer.css");
const SCRIPT: &str = include_str!("assets/explorer.js");

/// `Content-Type` of [`render_page`]'s output.
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";
/// `Content-Type` of [`PageData::to_json`]'s output.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The page's Content-Security-Policy: no source at all by default; the inline script and style
/// by their SHA-256; `fetch` to the page's own origin only; no base URI, no forms. A server
/// sends it as a header too, adding `frame-ancestors 'none'` (which a `<meta>` cannot carry).
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; img-src data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'",
            sha256_source(SCRIPT),
            sha256_source(STYLE)
        )
    })
}

/// A CSP hash source (`sha256-<base64>`) of `text`.
fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_slice())
    )
}

/// The explorer page for `data`.
pub fn render_page(data: &PageData) -> String {
    let title = if data.source.is_empty() {
        "metric-gate explorer".to_owned()
    } else {
        format!("{} · metric-gate explorer", data.source)
    };
    fill(
        TEMPLATE,
        &[
            ("csp", &escape_html(content_security_policy())),
            ("title", &escape_html(&title)),
            ("style", STYLE),
            ("script", SCRIPT),
            ("data", &embed_json(data)),
        ],
    )
}

/// `template` with every `{{key}}` replaced by its value, in one pass (a value is never
/// searched for placeholders itself). Unknown placeholders are left as written.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let extra: usize = values.iter().map(|(_, v)| v.len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after
            .find("}}")
            .and_then(|close| values.iter().find(|(k, _)| *k == &after[..close]))
            .map(|(k, v)| (k.len(), *v));
        match value {
            Some((klen, v)) => {
                out.push_str(v);
                rest = &after[klen + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `data` as JSON that can stand inside `<script type="application/json">`: `<`, `>` and `&`
/// are written as `\u003c`... (the same string to `JSON.parse`), so no `</script>` or `<!--`
/// in a label value can end the element.
fn embed_json(data: &PageData) -> String {
    let json = String::from_utf8(data.to_json()).unwrap_or_default();
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for HTML element content or a quoted attribute.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explorer::{AnalyzeQuery, PageData};

    #[test]
    fn fill_is_one_pass() {
        assert_eq!(
            fill("a{{x}}b{{y}}c{{z}}{{", &[("x", "{{y}}"), ("y", "Y")]),
            "a{{y}}bYc{{z}}{{"
        );
    }

    #[test]
    fn data_cannot_break_out_of_its_element() {
        let q = AnalyzeQuery::parse("drop=%3C%2Fscript%3E%3C!--");
        let data = PageData::server(
            "</script><b>&",
            &q,
            None,
            Err(crate::explorer::ExplorerError::Timeout),
        );
        let html = render_page(&data);
        assert_eq!(
            html.matches("</script>").count(),
            2,
            "only the page's own two"
        );
        assert!(!html.contains("<b>&"));
        assert!(html.contains("\\u003c/script\\u003e"));
        // The embedded JSON still parses to the same data.
        let start = html.find("id=\"explorer-data\">").unwrap() + "id=\"explorer-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let v: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(v["query"]["drop"][0], "</script><!--");
        assert_eq!(v["source"], "</script><b>&");
    }

    #[test]
    fn page_is_self_contained() {
        let html = render_page(&PageData::server(
            "x",
            &AnalyzeQuery::default(),
            None,
            Err(crate::explorer::ExplorerError::Timeout),
        ));
        let csp = content_security_policy();
        assert!(html.contains(&format!("content=\"{}\"", escape_html(csp))));
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"));
        // The hashes are of exactly what the page inlines.
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
        // No reference to anything outside the page.
        for needle in [
            "http://",
            "https://",
            "//cdn",
            "@import",
            "url(",
            "src=\"",
            "href=\"http",
        ] {
            let outside_data =
                html.replace(&html[html.find("id=\"explorer-data\"").unwrap()..], "");
            assert!(!outside_data.contains(needle), "{needle}");
        }
    }
}
