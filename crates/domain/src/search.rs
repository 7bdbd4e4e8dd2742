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

    /// Whether it looks for a phrase (checked article by article: the stores rank fewer of its
    /// matches, `conduit_store::PHRASE_CANDIDATES`).
    pub fn has_phrase(&self) -> bool {
        self.groups.iter().any(|g| g.all.iter().any(|t| t.0.len() > 1))
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

    /// The key of the title this query would be typed as (see [`title_key`]): its words in the
    /// order typed, when it is one part with nothing excluded. An article with exactly that title
    /// ranks above every other match, however old (the stores look it up by this key).
    pub fn title_key(&self) -> Option<String> {
        let [group] = self.groups.as_slice() else { return None };
        if !group.none.is_empty() {
            return None;
        }
        let words: Vec<&str> = group.all.iter().flat_map(|t| t.0.iter().map(String::as_str)).collect();
        Some(words.join(" "))
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
/// What an article's title is looked up by when a search is its exact words: its words,
/// lowercased, letters and digits only, one space apart (`"Rust: async, at last!"` is
/// `"rust async at last"`), as a query's words are parsed. Stored with the article.
pub fn title_key(title: &str) -> String {
    words(title).join(" ")
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The words of a snippet (see [`SearchQuery::snippet`]).
pub const SNIPPET_WORDS: usize = 24;

static STEMMER: std::sync::LazyLock<rust_stemmers::Stemmer> =
    std::sync::LazyLock::new(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English));

impl SearchQuery {
    /// The passage of `text` (an article's body) of [`SNIPPET_WORDS`] words with the most of the
    /// query's words, as HTML: those words in `<mark>`, everything else escaped, `…` where the
    /// text goes on. A word matches by its stem (Snowball English), so `running` marks `run`.
    /// Made here rather than by the engines: FTS5's `snippet()` looked each article up in the
    /// index again (1 ms an article at a million), and both backends now mark alike.
    pub fn snippet(&self, text: &str) -> String {
        let wanted: std::collections::HashSet<String> = self
            .groups
            .iter()
            .flat_map(|g| g.all.iter())
            .flat_map(|t| t.0.iter())
            .map(|w| STEMMER.stem(w).into_owned())
            .collect();
        let initials: std::collections::HashSet<char> = wanted.iter().filter_map(|w| w.chars().next()).collect();
        // Each word of the text: its byte range and whether it is one of the query's.
        let mut words: Vec<(usize, usize, bool)> = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    // Stemming is the snippet's cost (a microsecond a word): only a word whose
                    // first letter starts one of the query's stems can have that stem (Snowball
                    // changes endings; its few exceptions, like `dying` to `die`, go unmarked).
                    let word = &text[s..i];
                    let first = word.chars().next().into_iter().flat_map(char::to_lowercase).next();
                    let hit = first.is_some_and(|f| initials.contains(&f))
                        && wanted.contains(STEMMER.stem(&word.to_lowercase()).as_ref());
                    words.push((s, i, hit));
                    start = None;
                }
                _ => {}
            }
        }
        if words.is_empty() {
            return String::new();
        }
        // The window with the most hits, the first of equals: a running count.
        let width = SNIPPET_WORDS.min(words.len());
        let mut hits = words[..width].iter().filter(|w| w.2).count();
        let (mut best, mut best_hits) = (0, hits);
        for first in 1..=words.len() - width {
            hits = hits + usize::from(words[first + width - 1].2) - usize::from(words[first - 1].2);
            if hits > best_hits {
                (best, best_hits) = (first, hits);
            }
        }
        // Context before the first hit too: the window moved to start a third of its width before
        // it, when that keeps every hit.
        let count = |from: usize| words[from..from + width].iter().filter(|w| w.2).count();
        if let Some(first_hit) = words[best..best + width].iter().position(|w| w.2) {
            let earlier = (best + first_hit).saturating_sub(width / 3).min(words.len() - width);
            if count(earlier) >= best_hits {
                best = earlier;
            }
        }
        let window = &words[best..best + width];
        let mut out = String::with_capacity(text.len().min(400));
        if best > 0 {
            out.push('…');
        }
        let mut at = window[0].0;
        for &(s, e, hit) in window {
            crate::markdown::escape_into(&mut out, &text[at..s]);
            if hit {
                out.push_str("<mark>");
                crate::markdown::escape_into(&mut out, &text[s..e]);
                out.push_str("</mark>");
            } else {
                crate::markdown::escape_into(&mut out, &text[s..e]);
            }
            at = e;
        }
        if best + width < words.len() {
            out.push('…');
        } else {
            crate::markdown::escape_into(&mut out, &text[at..]);
        }
        out
    }
}

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
        assert!(q("go or \"rust async\"").has_phrase());
        assert!(!q("rust async -\"green threads\"").has_phrase());
    }

    #[test]
    fn the_phrase_of_a_query_is_its_words_together() {
        assert_eq!(q("rust async -java").phrase().map(|p| p.fts5()), Some(r#"("rust" + "async")"#.into()));
        assert_eq!(q("rust").phrase(), None);
        assert_eq!(q("\"rust async\"").phrase(), None);
        assert_eq!(q("rust or async").phrase(), None);
    }

    #[test]
    fn a_query_of_a_titles_words_has_its_key() {
        assert_eq!(title_key("Rust: async, at last!"), "rust async at last");
        assert_eq!(q("rust async AT last").title_key().as_deref(), Some(title_key("Rust: async, at last!").as_str()));
        assert_eq!(q("\"rust async\" at last").title_key().as_deref(), Some("rust async at last"));
        assert_eq!(q("rust -java").title_key(), None);
        assert_eq!(q("rust or go").title_key(), None);
        assert_eq!(title_key("Ünïcode Straße"), "ünïcode straße");
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
    fn snippets_mark_stems_escape_the_rest_and_pick_the_best_window() {
        let query = q("running fox");
        assert_eq!(
            query.snippet("A <b>fox</b> & \"runs\"."),
            "A &lt;b&gt;<mark>fox</mark>&lt;/b&gt; &amp; &quot;<mark>runs</mark>&quot;."
        );
        let long = format!("{} the fox runs while running {}", "word ".repeat(40), "tail ".repeat(40));
        let snippet = query.snippet(&long);
        assert!(snippet.starts_with('…') && snippet.ends_with('…'), "{snippet}");
        assert!(snippet.contains("<mark>fox</mark> <mark>runs</mark> while <mark>running</mark> tail"), "{snippet}");
        assert!(
            snippet.starts_with("…word word word word word word word  the <mark>"),
            "a third of context first: {snippet}"
        );
        assert_eq!(snippet.split_whitespace().count(), SNIPPET_WORDS, "{snippet}");
        assert_eq!(q("x").snippet(""), "");
        assert_eq!(q("x").snippet("no match here"), "no match here");
    }
}
