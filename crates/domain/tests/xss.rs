//! Every vector in `xss_vectors.txt` (the OWASP filter-evasion cases and Markdown's own), as
//! Markdown, through `markdown::to_safe_html`: no element that runs or loads anything survives,
//! no event handler or `style` attribute, no URL with a scheme outside the harmless few, and
//! every link carries `rel="nofollow ugc noopener"`.
//!
//! The checker reads the output as ammonia writes it (html5ever's serializer): text has `<` and
//! `&` escaped, every attribute value is double-quoted with `"` and `&` escaped. So each `<` starts
//! a tag, and the tag's name and attributes can be read off plainly.

use conduit_domain::markdown::{LINK_REL, to_safe_html};

const SAFE_ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
    "sup",
    "sub",
    // Containers with no behaviour of their own (ammonia keeps them, without attributes).
    "div",
    "span",
    "details",
    "summary",
    "dl",
    "dt",
    "dd",
    "kbd",
    "q",
    "cite",
    "small",
    "mark",
    "ins",
    "u",
    "caption",
    "col",
    "colgroup",
    "tfoot",
    "figure",
    "figcaption",
];
const SAFE_SCHEMES: &[&str] = &["http", "https", "mailto"];

fn vectors() -> Vec<String> {
    include_str!("xss_vectors.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.replace("\\n", "\n"))
        .collect()
}

/// The problems in `html`, as words for a failure message; empty when it is safe.
fn problems(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = tag_end(after) else {
            found.push(format!("an unclosed tag: {after}"));
            break;
        };
        let tag = &after[..end];
        rest = &after[end + 1..];
        let closing = tag.starts_with('/');
        let tag = tag.strip_prefix('/').unwrap_or(tag);
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if !SAFE_ELEMENTS.contains(&name.to_ascii_lowercase().as_str()) {
            found.push(format!("element <{name}>"));
        }
        for (attribute, value) in attributes(&tag[name.len()..]) {
            let attribute = attribute.to_ascii_lowercase();
            if attribute.starts_with("on") || attribute == "style" {
                found.push(format!("attribute {attribute}"));
            }
            if matches!(attribute.as_str(), "href" | "src" | "action" | "formaction" | "background" | "xlink:href") {
                let url = decode(&value);
                if let Some((scheme, _)) = url.split_once(':')
                    && !scheme.contains('/')
                    && !SAFE_SCHEMES.contains(&scheme.trim().to_ascii_lowercase().as_str())
                {
                    found.push(format!("url {url}"));
                }
            }
        }
        if name == "a" && !closing && !tag.contains(&format!("rel=\"{LINK_REL}\"")) {
            found.push("a link without rel".into());
        }
    }
    found
}

/// Where a tag ends: the first `>` outside a double-quoted value.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quoted = false;
    tag.char_indices().find_map(|(i, c)| {
        if c == '"' {
            quoted = !quoted;
        }
        (c == '>' && !quoted).then_some(i)
    })
}

/// `name="value"` pairs (and bare names) of a serialized tag.
fn attributes(mut rest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '/']);
        if rest.is_empty() {
            return out;
        }
        let name_end = rest.find(['=', ' ']).unwrap_or(rest.len());
        let name = rest[..name_end].to_owned();
        rest = &rest[name_end..];
        if let Some(value) = rest.strip_prefix("=\"") {
            let end = value.find('"').unwrap_or(value.len());
            out.push((name, value[..end].to_owned()));
            rest = value.get(end + 1..).unwrap_or("");
        } else {
            out.push((name, String::new()));
        }
    }
}

/// An attribute value as a browser reads it: entities decoded, control characters and spaces
/// (which browsers skip inside a scheme) gone.
fn decode(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect()
}

#[test]
fn no_published_xss_vector_survives_rendering() {
    let vectors = vectors();
    assert!(vectors.len() >= 100, "the corpus is there: {}", vectors.len());
    let mut failures = Vec::new();
    for vector in &vectors {
        let html = to_safe_html(vector);
        let problems = problems(&html);
        if !problems.is_empty() {
            failures.push(format!("{vector}\n  -> {html}\n  {problems:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors survived:\n{}", failures.len(), vectors.len(), failures.join("\n"));
}

#[test]
fn the_checker_sees_what_it_must() {
    // A checker that passes everything would prove nothing: unsanitized HTML fails it.
    assert!(!problems(r#"<img src="x" onerror="alert(1)">"#).is_empty());
    assert!(!problems(r#"<a href="javascript:alert(1)" rel="nofollow ugc noopener">x</a>"#).is_empty());
    assert!(!problems(r#"<a href=" java&#x09;script:x">x</a>"#).is_empty());
    assert!(!problems("<script>alert(1)</script>").is_empty());
    assert!(!problems(r#"<p style="x">y</p>"#).is_empty());
    assert!(!problems(r#"<a href="https://example.com">x</a>"#).is_empty(), "no rel");
    assert!(problems(r#"<p>a <a href="https://example.com" rel="nofollow ugc noopener">b</a></p>"#).is_empty());
}
