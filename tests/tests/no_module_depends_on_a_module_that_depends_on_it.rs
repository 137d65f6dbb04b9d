//! The module tree shows the data flow: no module of a crate depends,
//! directly or through others, on a module that depends on it.
//!
//! How it is checked: every `.rs` file under a crate's `src/` is a module
//! (`a/b.rs` and `a/b/mod.rs` are `a::b`). A dependency is a path written in
//! the module's non-test code: `crate::a::b::Item` (also inside
//! `use crate::{..}` trees), `super::x`, or `crate::Item` for an item the
//! crate root re-exports (resolved to the module it is re-exported from).
//! A dependency between two modules counts between the two siblings under
//! their closest common parent (`node::telemetry` → `node::buffer` is an
//! edge between `telemetry` and `buffer` inside `node`); a parent and its
//! own children may use each other. Then every group of siblings must be
//! free of cycles.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

type Module = Vec<String>;

/// This workspace, or the one `SELFTRACE_CHECK_WORKSPACE` names (to check
/// another checkout, such as an older commit).
fn workspace() -> PathBuf {
    std::env::var_os("SELFTRACE_CHECK_WORKSPACE")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."), PathBuf::from)
}

/// Every module of the crate at `src` and its source (test modules cut).
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("readable src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
                parts.pop();
            }
            let text = fs::read_to_string(&path).expect("readable file");
            out.insert(parts, strip(&text));
        }
    }
    out
}

/// The source without comments and without `#[cfg(test)]` items that come
/// last (the test module).
fn strip(text: &str) -> String {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> Option<&str> {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The paths `crate::…` and `super::…` in `code`, as segment lists relative
/// to the crate root (`super` resolved against `module`).
fn paths(module: &Module, is_dir: bool, code: &str) -> Vec<Module> {
    let mut out = Vec::new();
    for (start, prefix) in [("crate::", None), ("super::", Some(()))] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            rest = &rest[at + start.len()..];
            if before.is_some_and(|c| c == '$' || c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let base: Module = match prefix {
                None => Vec::new(),
                // `super` of `a/b.rs` is `a`; of `a/b/mod.rs` it is `a` too
                // (its parent module).
                Some(()) => {
                    let mut m = module.clone();
                    m.pop();
                    let _ = is_dir;
                    m
                }
            };
            for tail in use_tree(rest) {
                let mut full = base.clone();
                full.extend(tail);
                out.push(full);
            }
        }
    }
    out
}

/// The paths a use tree (or a plain path) starting at `s` names.
fn use_tree(s: &str) -> Vec<Module> {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let body = &inner[..end];
        let mut out = Vec::new();
        let mut depth = 0;
        let mut item = String::new();
        for c in body.chars().chain([',']) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(use_tree(item.trim()));
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        return out;
    }
    let Some(first) = ident(s) else { return vec![] };
    let rest = &s[first.len()..];
    match rest.strip_prefix("::") {
        Some(rest) => use_tree(rest)
            .into_iter()
            .map(|mut tail| {
                tail.insert(0, first.to_owned());
                tail
            })
            .chain(std::iter::once(vec![first.to_owned()]))
            .collect(),
        None => vec![vec![first.to_owned()]],
    }
}

/// Which module the crate root re-exports each name from.
fn re_exports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = lib;
    while let Some(at) = rest.find("pub use ") {
        rest = &rest[at + 8..];
        let end = rest.find(';').unwrap_or(rest.len());
        let tree = &rest[..end];
        if let Some(module) = ident(tree) {
            for path in use_tree(tree) {
                if let Some(name) = path.last() {
                    out.entry(name.clone()).or_insert_with(|| module.to_owned());
                }
            }
        }
        rest = &rest[end..];
    }
    out
}

/// The cycles among the siblings of each parent module of the crate at `src`.
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let modules = modules(src);
    let root_exports = modules.get(&Vec::new()).map(|lib| re_exports(lib)).unwrap_or_default();
    let known: BTreeSet<&Module> = modules.keys().collect();
    // Edges between siblings, per parent.
    let mut edges: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, code) in &modules {
        if module.is_empty() {
            continue;
        }
        for mut target in paths(module, false, code) {
            // `crate::Item` re-exported by the root: the module it comes from.
            if target.len() == 1
                && !known.contains(&target)
                && let Some(from) = root_exports.get(&target[0])
            {
                target = vec![from.clone()];
            }
            // The longest prefix that is a module.
            while !target.is_empty() && !known.contains(&target) {
                target.pop();
            }
            let common = module.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == module.len() || common == target.len() {
                continue; // itself, a parent, or a child
            }
            edges
                .entry(module[..common].to_vec())
                .or_default()
                .entry(module[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    let mut found = Vec::new();
    for (parent, graph) in &edges {
        // Depth-first search for a back edge.
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            stack: &mut Vec<String>,
            done: &mut BTreeSet<String>,
            found: &mut Vec<Vec<String>>,
            parent: &Module,
        ) {
            if let Some(at) = stack.iter().position(|n| n == node) {
                let mut cycle: Vec<String> = stack[at..]
                    .iter()
                    .map(|n| parent.iter().chain([n]).cloned().collect::<Vec<_>>().join("::"))
                    .collect();
                cycle.push(cycle[0].clone());
                found.push(cycle);
                return;
            }
            if !done.insert(node.to_owned()) {
                return;
            }
            stack.push(node.to_owned());
            for next in graph.get(node).into_iter().flatten() {
                visit(next, graph, stack, done, found, parent);
            }
            stack.pop();
        }
        let mut done = BTreeSet::new();
        for start in graph.keys() {
            visit(start, graph, &mut Vec::new(), &mut done, &mut found, parent);
        }
    }
    found
}

#[test]
fn no_crate_has_a_module_cycle() {
    let mut report = Vec::new();
    for krate in ["layer", "bridge", "itr-plugin", "examples", "tests", "tests/support"] {
        let src = workspace().join(krate).join("src");
        // Another checkout (an older commit) may not have every crate.
        if std::env::var_os("SELFTRACE_CHECK_WORKSPACE").is_some() && !src.is_dir() {
            continue;
        }
        assert!(src.is_dir(), "{} exists", src.display());
        for cycle in cycles(&src) {
            report.push(format!("{krate}: {}", cycle.join(" -> ")));
        }
    }
    assert!(report.is_empty(), "module cycles:\n{}", report.join("\n"));
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let dir = std::env::temp_dir().join(format!("selftrace-cycle-{}", std::process::id()));
    let src = dir.join("src");
    fs::create_dir_all(src.join("node")).expect("temp dir");
    fs::write(src.join("lib.rs"), "mod a;\nmod node;\npub use a::Thing;\n").expect("write");
    fs::write(src.join("a.rs"), "use crate::node::buffer::Buffer;\npub struct Thing;\n").expect("write");
    fs::write(src.join("node/mod.rs"), "mod buffer;\nmod telemetry;\n").expect("write");
    fs::write(src.join("node/buffer.rs"), "use super::telemetry::X;\n").expect("write");
    // A root re-export, a use tree, and a sibling cycle inside `node`.
    fs::write(src.join("node/telemetry.rs"), "use crate::{Thing, node::buffer::{B, C}};\n").expect("write");
    let found = cycles(&src);
    fs::remove_dir_all(&dir).expect("cleanup");
    let mut found: Vec<String> = found.iter().map(|c| c.join(" -> ")).collect();
    found.sort();
    assert_eq!(found, ["a -> node -> a", "node::buffer -> node::telemetry -> node::buffer"]);
}
