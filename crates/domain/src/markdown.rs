//! Markdown to safe HTML, once, when an article or comment is written: the stores keep the result
//! beside the Markdown (`bodyHtml`), so a reader costs nothing extra and every client shows the
//! same, already sanitized, HTML.
//!
//! CommonMark with GFM tables and strikethrough (`pulldown-cmark`), then `ammonia` with its
//! default allow-list: no `script`, `style`, `iframe`, `form` or `svg`, no event handler or
//! `style` attribute, only URL schemes known to be harmless (no `javascript:`, `vbscript:` or
//! `data:`). Links get `rel="nofollow ugc noopener"`: the text is the users', not the site's.
//! `tests/xss.rs` runs the OWASP filter-evasion vectors through it.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser};

/// What links in users' text carry: no ranking credit (`nofollow`, `ugc`), no `window.opener`.
pub const LINK_REL: &str = "nofollow ugc noopener";

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder.link_rel(Some(LINK_REL));
    builder
});

/// The Markdown `text` as sanitized HTML.
pub fn to_safe_html(text: &str) -> String {
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    // Rendered HTML is usually a little longer than its Markdown.
    let mut raw = String::with_capacity(text.len() + text.len() / 4 + 16);
    pulldown_cmark::html::push_html(&mut raw, parser);
    SANITIZER.clean(&raw).to_string()
}

/// Appends `raw` to `out` as HTML (or XML) text: markup and quotes escaped, so it is safe as
/// element content and inside a quoted attribute. The search snippets and the feeds use it.
pub fn escape_into(out: &mut String, raw: &str) {
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// How many web addresses `text` names: each `http://`, `https://` or `www.` (a `www.` right
/// after a scheme is the same address), in a Markdown link or bare, in any letter case. It reads
/// the text as written rather than the rendered links: a bare address is a link in most readers'
/// clients, and what is measured is how much of a post points elsewhere.
pub fn web_addresses(text: &str) -> usize {
    let bytes = text.as_bytes();
    let at = |i: usize, word: &[u8]| bytes.get(i..i + word.len()).is_some_and(|b| b.eq_ignore_ascii_case(word));
    let (mut count, mut i) = (0, 0);
    while i < bytes.len() {
        let scheme = [&b"https://"[..], b"http://"].into_iter().find(|scheme| at(i, scheme));
        if let Some(scheme) = scheme {
            count += 1;
            i += scheme.len();
            if at(i, b"www.") {
                i += 4;
            }
        } else if at(i, b"www.") {
            count += 1;
            i += 4;
        } else {
            i += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_html_with_tables_and_strikethrough() {
        assert_eq!(to_safe_html("Hello *world*"), "<p>Hello <em>world</em></p>\n");
        let table = to_safe_html("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(table.contains("<table>") && table.contains("<td>1</td>"), "{table}");
        assert_eq!(to_safe_html("~~gone~~"), "<p><del>gone</del></p>\n");
    }

    #[test]
    fn links_carry_rel_and_scripts_go() {
        let html = to_safe_html("[site](https://example.com) <script>alert(1)</script>");
        assert!(html.contains(r#"<a href="https://example.com" rel="nofollow ugc noopener">site</a>"#), "{html}");
        assert!(!html.contains("script"), "{html}");
        let html = to_safe_html("[x](javascript:alert(1))");
        assert!(!html.contains("javascript"), "{html}");
    }

    #[test]
    fn web_addresses_are_counted_once_each_however_written() {
        assert_eq!(web_addresses("no links here, just www and http"), 0);
        assert_eq!(web_addresses("[a](https://www.example.com) and <HTTP://b.example> and www.c.example"), 3);
        assert_eq!(web_addresses("https://a.example/https://b.example"), 2);
        assert_eq!(web_addresses("ünïcode https://x.example wwW.y.example"), 2);
        assert_eq!(web_addresses("ends in http:/"), 0);
    }
}
