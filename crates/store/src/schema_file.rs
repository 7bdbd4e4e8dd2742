//! Each backend crate keeps `schema.sql`: its schema as the migrations leave it, for a reader to
//! open. The crate's `tests/schema.rs` reads the schema of a freshly migrated database, renders
//! it here, and fails when the file differs (a migration changed the schema and the file was not
//! regenerated). `CONDUIT_BLESS_SCHEMA=1` rewrites the file instead.

use std::path::Path;

/// Set to rewrite `schema.sql` from the migrated database instead of comparing.
pub const BLESS_VAR: &str = "CONDUIT_BLESS_SCHEMA";

/// What a schema object is, in the order they are listed under their table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Table,
    Index,
    Trigger,
    /// A function (PostgreSQL), listed after every table.
    Function,
    /// A view, in a section of its own name.
    View,
}

/// One object of the schema: its table (`None` for a function), and its definition as the
/// database gives it.
#[derive(Debug, Clone)]
pub struct SchemaObject {
    pub table: Option<String>,
    pub kind: Kind,
    pub name: String,
    pub sql: String,
}

/// The file's text: `header` (comment lines), then one section per table, by name (the table,
/// its indexes, its triggers, each by name), then the functions, by name; one statement per
/// object, each ending in `;`.
pub fn render(header: &str, mut objects: Vec<SchemaObject>) -> String {
    objects.sort_by(|a, b| {
        (a.table.is_none(), &a.table, a.kind, &a.name).cmp(&(b.table.is_none(), &b.table, b.kind, &b.name))
    });
    let mut text = String::from(header.trim_end());
    text.push('\n');
    let mut section = None;
    for object in &objects {
        let heading = object.table.as_deref().unwrap_or("functions");
        if section != Some(heading) {
            text.push_str(&format!("\n-- {heading}\n"));
            section = Some(heading);
        }
        let sql = object.sql.trim().trim_end_matches(';').trim_end();
        let sql: Vec<&str> = sql.lines().map(str::trim_end).collect();
        text.push_str(&format!("\n{};\n", sql.join("\n")));
    }
    text
}

/// Compares `actual` (from [`render`]) with `schema.sql` in `manifest_dir` (the backend crate's
/// `CARGO_MANIFEST_DIR`); with [`BLESS_VAR`] set, writes it there instead. Panics on a
/// difference, naming the first differing line and how to regenerate the file.
pub fn assert_schema_sql(manifest_dir: &str, package: &str, actual: &str) {
    let path = Path::new(manifest_dir).join("schema.sql");
    let bless_command = format!("{BLESS_VAR}=1 cargo test -p {package} --test schema");
    assert_file(&path, actual, &bless_command);
}

fn assert_file(path: &Path, actual: &str, bless_command: &str) {
    if std::env::var_os(BLESS_VAR).is_some() {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    if kept == actual {
        return;
    }
    let (kept_lines, actual_lines): (Vec<&str>, Vec<&str>) = (kept.lines().collect(), actual.lines().collect());
    let first = kept_lines
        .iter()
        .zip(&actual_lines)
        .position(|(a, b)| a != b)
        .unwrap_or(kept_lines.len().min(actual_lines.len()));
    let around = |lines: &[&str]| lines.iter().skip(first).take(6).copied().collect::<Vec<_>>().join("\n");
    panic!(
        "{} is not the schema the migrations make (first difference at line {}).\n\
         In the file:\n{}\n\nIn the migrated database:\n{}\n\n\
         If the migrations are right, regenerate the file and commit it:\n    {bless_command}\n",
        path.display(),
        first + 1,
        around(&kept_lines),
        around(&actual_lines),
    );
}
