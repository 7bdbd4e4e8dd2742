//! The crate's import rules, checked on its source text: the rooms of `lib.rs` import one way
//! (down its table), and no files import each other, inside a room or across, directly or
//! round a longer circle.
//!
//! An import is any path a line names that starts with `crate::` (with `{a, b::c}` groups),
//! `super::`, or, in a file that declares child modules, a child's name (`use settings::X`).
//! `super::` on an indented line is taken to be inside an inline module (`mod tests`), where it
//! names the file itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The rooms, lowest first: a file may import its own room or any earlier one.
const ROOMS: &[&str] = &[
    "config", "error", "ops", "limits", "mail", "backup", "feeds", "notify", "state", "auth", "http", "routes",
    "console", "startup", "cli",
];

/// Every source file of this crate as its module path (`auth::extract`, `config` for
/// `config/mod.rs`) and text.
fn modules() -> BTreeMap<String, String> {
    modules_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// Every source file under `src` but the crate root and `main.rs`, by module path.
fn modules_in(src: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let module = parts.join("::");
            if !matches!(module.as_str(), "lib" | "main" | "layering") {
                found.insert(module, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    found
}

/// The paths named after `crate::` at each place in `line`, groups expanded: `crate::{a, b::c}`
/// gives `a` and `b::c`.
fn crate_paths(line: &str) -> Vec<String> {
    line.match_indices("crate::").flat_map(|(at, _)| expand(&line[at + "crate::".len()..])).collect()
}

/// `a::b::{c, d::e}` → `a::b::c`, `a::b::d::e` (the text after the path is ignored).
fn expand(text: &str) -> Vec<String> {
    let head: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    let rest = &text[head.len()..];
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut items = Vec::new();
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.into_iter().flat_map(|item| expand(item.trim())).map(|tail| format!("{head}{tail}")).collect()
    } else {
        vec![head.trim_end_matches(':').to_owned()]
    }
}

/// The module a path names: its longest prefix that is a file of the crate.
fn resolve(path: &str, modules: &BTreeMap<String, String>) -> Option<String> {
    let path = match path.split("::").next() {
        Some("AppState") => "state",
        Some("ApiError") => "error",
        _ => path,
    };
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty() && *p != "self").collect();
    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|candidate| modules.contains_key(candidate))
}

/// Which modules each module imports (itself left out).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, text) in modules {
        let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
        let children: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().trim_start_matches("pub ").strip_prefix("mod ")?.strip_suffix(';'))
            .collect();
        let mut named = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut paths = crate_paths(line);
            for (at, _) in line.match_indices("super::") {
                let base = if line.starts_with(char::is_whitespace) { module.as_str() } else { parent };
                paths.extend(expand(&line[at + "super::".len()..]).into_iter().map(|p| format!("{base}::{p}")));
            }
            let used = line.trim().trim_start_matches("pub ").strip_prefix("use ").unwrap_or_default();
            if children.iter().any(|c| used.starts_with(&format!("{c}::"))) {
                paths.extend(expand(used).into_iter().map(|p| format!("{module}::{p}")));
            }
            named.extend(paths.iter().filter_map(|p| resolve(p.trim_start_matches("::"), modules)));
        }
        named.remove(module);
        graph.insert(module.clone(), named);
    }
    graph
}

/// The import circles: each set of two or more modules that reach each other (Tarjan's strongly
/// connected components).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    #[derive(Default)]
    struct Walk<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(node: &'a str, graph: &'a BTreeMap<String, BTreeSet<String>>, walk: &mut Walk<'a>) {
        let n = walk.index.len();
        walk.index.insert(node, n);
        walk.low.insert(node, n);
        walk.stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if !walk.index.contains_key(next.as_str()) {
                visit(next, graph, walk);
                let low = walk.low[node].min(walk.low[next.as_str()]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&next.as_str()) {
                let low = walk.low[node].min(walk.index[next.as_str()]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let at = walk.stack.iter().position(|m| *m == node).unwrap();
            let component: Vec<String> = walk.stack.drain(at..).map(str::to_owned).collect();
            if component.len() > 1 {
                walk.found.push(component);
            }
        }
    }
    let mut walk = Walk::default();
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(node, graph, &mut walk);
        }
    }
    walk.found
}

fn room(module: &str) -> usize {
    let first = module.split("::").next().unwrap();
    ROOMS.iter().position(|r| *r == first).unwrap_or_else(|| panic!("{module} is in no room of lib.rs"))
}

#[test]
fn no_module_imports_a_room_above_its_own() {
    let modules = modules();
    assert!(modules.len() > 30, "read the sources: {:?}", modules.keys());
    let upward: Vec<String> = imports(&modules)
        .iter()
        .flat_map(|(module, named)| named.iter().map(move |n| (module, n)))
        .filter(|(module, named)| room(named) > room(module))
        .map(|(module, named)| format!("{module} imports {named}"))
        .collect();
    assert!(upward.is_empty(), "imports that run up: {upward:#?}");
}

#[test]
fn no_files_import_each_other() {
    let circles = circles(&imports(&modules()));
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

/// The other crates: no two files import each other, directly or round a longer circle. A
/// crate's root (`lib.rs`) is its facade, declaring modules and re-exporting their items, so
/// `crate::Item` paths are not edges; `crate::module::...`, `super::` and a child's `use` are.
/// The store's shared files are modules of both store crates, by `#[path]` in their roots.
#[test]
fn no_files_import_each_other_in_any_crate() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (mut circles_found, mut files) = (Vec::new(), 0);
    for name in ["domain", "store", "store-sqlite", "store-postgres", "python"] {
        let src = crates.join(name).join("src");
        let mut modules = modules_in(&src);
        // `#[path = "../../store/shared/x.rs"] mod x;` in the root: the shared file is module x.
        let root = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let mut lines = root.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(path) = line.trim().strip_prefix("#[path = \"").and_then(|p| p.strip_suffix("\"]")) else {
                continue;
            };
            let declared = lines.peek().and_then(|l| l.trim().trim_start_matches("pub ").strip_prefix("mod "));
            if let Some(module) = declared.and_then(|m| m.strip_suffix(';')) {
                modules.insert(module.to_owned(), std::fs::read_to_string(src.join(path)).unwrap());
            }
        }
        files += modules.len();
        circles_found.extend(circles(&imports(&modules)).into_iter().map(|c| format!("{name}: {c:?}")));
    }
    assert!(files > 40, "read the crates: {files} files");
    assert!(circles_found.is_empty(), "import circles: {circles_found:#?}");
}

/// The checks above see what they claim to: a group, a `super::` path, a child's `use`, and a
/// circle through three modules.
#[test]
fn the_checks_see_groups_super_paths_and_circles() {
    assert_eq!(crate_paths("use crate::{a, b::{c, d}};"), ["a", "b::c", "b::d"]);
    let modules: BTreeMap<String, String> = [
        ("x", "mod y;\nuse y::Thing;\n"),
        ("x::y", "use super::z::Other;\n"),
        ("x::z", "fn f() -> crate::x::Top { todo!() }\n    use super::*;\n"),
    ]
    .into_iter()
    .map(|(m, t)| (m.to_owned(), t.to_owned()))
    .collect();
    let graph = imports(&modules);
    assert_eq!(graph["x"], BTreeSet::from(["x::y".to_owned()]));
    assert_eq!(graph["x::y"], BTreeSet::from(["x::z".to_owned()]));
    assert_eq!(graph["x::z"], BTreeSet::from(["x".to_owned()]), "the indented `super::*` is x::z itself");
    assert_eq!(circles(&graph).len(), 1);
}
