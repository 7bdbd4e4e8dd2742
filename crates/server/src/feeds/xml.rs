//! The documents: RSS 2.0 (with Atom's `self` link and Dublin Core's `creator`, as feed
//! validators ask) and Atom 1.0, written by hand: two small fixed shapes, every text escaped
//! by [`text`], which also drops the characters XML 1.0 does not allow (a body may hold any
//! Unicode, a document may not).

use std::fmt::Write;

use chrono::{DateTime, Utc};
use conduit_domain::Article;

use super::{Format, Scope, last_modified};

/// The feed of `items` (newest first, with their `body_html`) as `format`, with links based
/// at `site` (the public URL, no trailing slash).
pub fn document(format: Format, scope: &Scope, site: &str, items: &[Article]) -> String {
    match format {
        Format::Rss => rss(scope, site, items),
        Format::Atom => atom(scope, site, items),
    }
}

/// Where a reader opens an article: the RealWorld front end's path.
fn article_link(site: &str, article: &Article) -> String {
    format!("{site}/article/{}", article.slug)
}

fn rss(scope: &Scope, site: &str, items: &[Article]) -> String {
    let mut out = String::with_capacity(4096 + items.len() * 2048);
    let title = text(&scope.title(site));
    let updated = last_modified(items).to_rfc2822();
    let this = text(&format!("{site}{}", scope.path(Format::Rss)));
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n\
         <channel>\n<title>{title}</title>\n<link>{site}/</link>\n<description>{title}</description>\n\
         <atom:link href=\"{this}\" rel=\"self\" type=\"application/rss+xml\"/>\n\
         <lastBuildDate>{updated}</lastBuildDate>\n<generator>Conduit</generator>\n",
        site = text(site),
    );
    for article in items {
        let link = text(&article_link(site, article));
        let _ = write!(
            out,
            "<item>\n<title>{}</title>\n<link>{link}</link>\n<guid isPermaLink=\"true\">{link}</guid>\n\
             <pubDate>{}</pubDate>\n<dc:creator>{}</dc:creator>\n",
            text(&article.title),
            article.created_at.to_rfc2822(),
            text(&article.author.username),
        );
        for tag in &article.tag_list {
            let _ = writeln!(out, "<category>{}</category>", text(tag));
        }
        let _ = write!(out, "<description>{}</description>\n</item>\n", text(&content(article)));
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

fn atom(scope: &Scope, site: &str, items: &[Article]) -> String {
    let mut out = String::with_capacity(4096 + items.len() * 2048);
    let this = text(&format!("{site}{}", scope.path(Format::Atom)));
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{}</title>\n<id>{this}</id>\n<updated>{}</updated>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"{this}\"/>\n<link rel=\"alternate\" href=\"{}/\"/>\n\
         <generator>Conduit</generator>\n",
        text(&scope.title(site)),
        atom_time(last_modified(items)),
        text(site),
    );
    for article in items {
        let link = text(&article_link(site, article));
        let _ = write!(
            out,
            "<entry>\n<title>{}</title>\n<id>{link}</id>\n<link rel=\"alternate\" href=\"{link}\"/>\n\
             <published>{}</published>\n<updated>{}</updated>\n<author><name>{}</name></author>\n",
            text(&article.title),
            atom_time(article.created_at),
            atom_time(article.updated_at),
            text(&article.author.username),
        );
        for tag in &article.tag_list {
            let _ = writeln!(out, "<category term=\"{}\"/>", text(tag));
        }
        let _ = write!(
            out,
            "<summary>{}</summary>\n<content type=\"html\">{}</content>\n</entry>\n",
            text(&article.description),
            text(&content(article)),
        );
    }
    out.push_str("</feed>\n");
    out
}

/// The article's HTML: its stored `bodyHtml`, else its description (an article older than the
/// column that the start-up pass has not reached is shown by its description, never unsanitized).
fn content(article: &Article) -> String {
    article.body_html.clone().unwrap_or_else(|| text(&article.description))
}

fn atom_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `raw` as XML character data or attribute value: markup escaped, and the characters XML 1.0
/// forbids (most C0 controls, U+FFFE, U+FFFF) left out.
pub fn text(raw: &str) -> String {
    let allowed =
        |c: &char| matches!(c, '\t' | '\n' | '\r') || !((*c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}'));
    let kept: String = raw.chars().filter(allowed).collect();
    let mut out = String::with_capacity(kept.len() + kept.len() / 8);
    conduit_domain::markdown::escape_into(&mut out, &kept);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_markup_and_drops_what_xml_forbids() {
        assert_eq!(text("a<b>&\"'\u{0}\u{1b}\u{FFFF}\tz"), "a&lt;b&gt;&amp;&quot;&#39;\tz");
    }
}
