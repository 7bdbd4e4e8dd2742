//! What a person types into a search box, parsed once into [`SearchQuery`] and written out again
//! in each engine's own syntax: FTS5's query language for SQLite ([`SearchQuery::fts5`]) and
//! `websearch_to_tsquery`'s for PostgreSQL ([`SearchQuery::websearch`]).
//!
//! The syntax: words (all must match), `"a phrase"` (its words in that order), `or` between two
//! parts (either), `-word` or `-"a phrase"` (must not match). Nothing the user types reaches an
//! engine as an operator: each word is reduced to letters and digits and quoted, so FTS5's own
//! operators (`NEAR(`, `*`, `^`, `col:`, `AND`, a stray `"`) are searched as the words around
//! them, or dropped when there are none.
//!
//! Bounded: at most [`MAX_QUERY_CHARS`] characters and [`MAX_TERMS`] words; a query with no word
//! to look for, or a part with only excluded words (which would have to scan every article to
//! answer), is refused with a message for the `q` field.

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most words a query may hold, phrases' words included.
pub const MAX_TERMS: usize = 12;

/// A word or a phrase: its words, lowercased, letters and digits only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term(pub Vec<String>);

/// Terms that must all match, and terms that must not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub all: Vec<Term>,
    pub none: Vec<Term>,
}

/// A parsed search: any one of its groups matches (`or`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub groups: Vec<Group>,
}

impl SearchQuery {
    /// Parses `raw`; the error says what is wrong, for the `q` field.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("must be at most {MAX_QUERY_CHARS} characters"));
        }
        let mut groups = vec![Group::default()];
        let mut terms = 0;
        for token in tokens(raw) {
            let (negated, quoted, text) = token;
            let words = words(text);
            if !quoted && !negated && words.len() == 1 && words[0] == "or" && text.eq_ignore_ascii_case("or") {
                if groups.last().is_some_and(|g| !g.all.is_empty() || !g.none.is_empty()) {
                    groups.push(Group::default());
                }
                continue;
            }
            if words.is_empty() {
                continue;
            }
            terms += words.len();
            let group = groups.last_mut().expect("one group at least");
            if quoted {
                push(group, negated, Term(words));
            } else {
                // Unquoted text that held separators (`foo-bar`, `a:b`) is its words, each alone.
                for word in words {
                    push(group, negated, Term(vec![word]));
                }
            }
        }
        if terms > MAX_TERMS {
            return Err(format!("must have at most {MAX_TERMS} words"));
        }
        groups.retain(|g| !g.all.is_empty() || !g.none.is_empty());
        if groups.is_empty() {
            return Err("has no word to search for".into());
        }
        if groups.iter().any(|g| g.all.is_empty()) {
            return Err("needs a word to look for beside each excluded one (\"-word\")".into());
        }
        Ok(SearchQuery { groups })
    }

    /// Whether it has a phrase or an excluded term: the shapes an index cannot answer from its
    /// lists of articles alone (the words' positions, or every article of a word, must be
    /// checked), so the stores walk only the newest articles for them (`SEARCH_WINDOW`).
    pub fn checks_each_match(&self) -> bool {
        self.groups.iter().any(|g| !g.none.is_empty() || g.all.iter().any(|t| t.0.len() > 1))
    }

    /// The query's words as one phrase, for ranking the articles where they stand together
    /// above those where they are scattered: when it is one group of two words or more.
    pub fn phrase(&self) -> Option<SearchQuery> {
        let [group] = self.groups.as_slice() else { return None };
        let words: Vec<String> = group.all.iter().flat_map(|t| t.0.iter().cloned()).collect();
        (words.len() >= 2 && group.all.len() >= 2)
            .then(|| SearchQuery { groups: vec![Group { all: vec![Term(words)], none: Vec::new() }] })
    }

    /// The query in FTS5's syntax: every word quoted, so nothing the user typed is an operator.
    pub fn fts5(&self) -> String {
        let group = |g: &Group| {
            let all = g.all.iter().map(Term::fts5).collect::<Vec<_>>().join(" AND ");
            let none: String = g.none.iter().map(|t| format!(" NOT {}", t.fts5())).collect();
            format!("({all}{none})")
        };
        self.groups.iter().map(group).collect::<Vec<_>>().join(" OR ")
    }

    /// The query in `websearch_to_tsquery`'s syntax, rebuilt from the parsed words only.
    pub fn websearch(&self) -> String {
        let group = |g: &Group| {
            let all = g.all.iter().map(Term::websearch);
            let none = g.none.iter().map(|t| format!("-{}", t.websearch()));
            all.chain(none).collect::<Vec<_>>().join(" ")
        };
        self.groups.iter().map(group).collect::<Vec<_>>().join(" or ")
    }
}

impl Term {
    fn fts5(&self) -> String {
        // `"a" + "b"` is FTS5's phrase; the words hold no `"`, so quoting needs no escapes.
        self.0.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" + ")
    }

    fn websearch(&self) -> String {
        if self.0.len() == 1 { self.0[0].clone() } else { format!("\"{}\"", self.0.join(" ")) }
    }
}

fn push(group: &mut Group, negated: bool, term: Term) {
    let list = if negated { &mut group.none } else { &mut group.all };
    if !list.contains(&term) {
        list.push(term);
    }
}

/// The raw tokens: `(negated, quoted, text)`. A quote left open runs to the end.
fn tokens(raw: &str) -> Vec<(bool, bool, &str)> {
    let mut out = Vec::new();
    let mut rest = raw;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return out;
        }
        let negated = rest.starts_with('-');
        if negated {
            rest = &rest[1..];
        }
        if let Some(inner) = rest.strip_prefix('"') {
            let end = inner.find('"').unwrap_or(inner.len());
            out.push((negated, true, &inner[..end]));
            rest = inner.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(rest.len());
            out.push((negated, false, &rest[..end]));
            rest = &rest[end..];
        }
    }
}

/// The words in `text`: runs of letters and digits, lowercased.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// A highlighted snippet as the engines return it, with [`MARK_START`] and [`MARK_END`] around
/// the matched words, as HTML: everything escaped, then the marks made `<mark>` elements.
pub fn highlighted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 32);
    for c in raw.chars() {
        match c {
            MARK_START => out.push_str("<mark>"),
            MARK_END => out.push_str("</mark>"),
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

/// Characters from Unicode's private use area, which no engine gives a meaning to: the stores
/// ask for them around each matched word, then [`highlighted`] makes them markup after escaping.
pub const MARK_START: char = '\u{E000}';
pub const MARK_END: char = '\u{E001}';

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> SearchQuery {
        SearchQuery::parse(raw).unwrap()
    }

    #[test]
    fn words_phrases_or_and_exclusions() {
        assert_eq!(q("Rust async").fts5(), r#"("rust" AND "async")"#);
        assert_eq!(q(r#"rust "zero cost" -java"#).fts5(), r#"("rust" AND "zero" + "cost" NOT "java")"#);
        assert_eq!(q("rust or go").fts5(), r#"("rust") OR ("go")"#);
        assert_eq!(q(r#"rust "zero cost" -java or go"#).websearch(), r#"rust "zero cost" -java or go"#);
        assert_eq!(q("Straße").fts5(), r#"("straße")"#);
    }

    #[test]
    fn engine_syntax_typed_by_a_user_is_only_words() {
        for hostile in [
            r#"rust" OR "x"#,
            "NEAR(rust async)",
            "rust*",
            "^rust",
            "title:rust",
            "rust AND NOT x",
            "\"",
            "'; DROP TABLE articles; --",
        ] {
            let fts = SearchQuery::parse(hostile).map(|q| q.fts5());
            if let Ok(fts) = &fts {
                // Every run of text between quotes is letters and digits only.
                for (i, part) in fts.split('"').enumerate() {
                    if i % 2 == 1 {
                        assert!(part.chars().all(char::is_alphanumeric), "{hostile} -> {fts}");
                    } else {
                        assert!(part.chars().all(|c| "() ANDOT+".contains(c)), "{hostile} -> {fts}");
                    }
                }
            }
        }
        assert_eq!(q("NEAR(rust async)").fts5(), r#"("near" AND "rust" AND "async")"#);
    }

    #[test]
    fn phrases_and_exclusions_check_each_match() {
        assert!(!q("rust async or go").checks_each_match());
        assert!(q("rust -async").checks_each_match());
        assert!(q("go or \"rust async\"").checks_each_match());
    }

    #[test]
    fn the_phrase_of_a_query_is_its_words_together() {
        assert_eq!(q("rust async -java").phrase().map(|p| p.fts5()), Some(r#"("rust" + "async")"#.into()));
        assert_eq!(q("rust").phrase(), None);
        assert_eq!(q("\"rust async\"").phrase(), None);
        assert_eq!(q("rust or async").phrase(), None);
    }

    #[test]
    fn refuses_what_it_cannot_answer_cheaply() {
        assert!(SearchQuery::parse("").is_err());
        assert!(SearchQuery::parse("*** ^").is_err());
        assert!(SearchQuery::parse("-rust").is_err());
        assert!(SearchQuery::parse("go or -rust").is_err());
        assert!(SearchQuery::parse(&"a ".repeat(MAX_TERMS + 1)).is_err());
        assert!(SearchQuery::parse(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(SearchQuery::parse(&"a ".repeat(MAX_TERMS)).is_ok());
        // A leading or doubled `or` is no group of its own.
        assert_eq!(q("or rust or or go").groups.len(), 2);
    }

    #[test]
    fn highlights_escape_everything_but_the_marks() {
        let raw = format!("a <b>{MARK_START}rust{MARK_END}</b> & \"x\"");
        assert_eq!(highlighted(&raw), "a &lt;b&gt;<mark>rust</mark>&lt;/b&gt; &amp; &quot;x&quot;");
    }
}
