//! The checker's top-level modules form layers: no module depends, directly or through others,
//! on itself. A dependency is a `crate::x` path (or a `super::` path that leaves a top-level
//! module) outside test code; `src/foo.rs`, `src/foo/mod.rs` and `src/foo/bar.rs` all belong to
//! `foo`, and a name re-exported by `lib.rs` (`crate::Report`) to the module it comes from.
//! `lib.rs` itself is the root, above every layer, and is no node. Test code is left out:
//! `#[cfg(test)]` items (`mod tests { .. }`, `mod testkit;`) and the files of such modules.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Where one dependency was seen: file and 1-based line.
type Site = (String, usize);

/// Module → module it depends on → the first place it does.
type Graph = BTreeMap<String, BTreeMap<String, Site>>;

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(graph.len() > 10, "found the modules of {}", src.display());
    let cycles: Vec<Vec<String>> = components(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| shortest_cycle(&graph, &c))
        .collect();
    if cycles.is_empty() {
        return;
    }
    let mut text = String::new();
    for (component, cycle) in components(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .zip(&cycles)
    {
        text += &format!(
            "\n{} modules import each other in a circle: {}\n  for instance:\n",
            component.len(),
            component.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for (i, from) in cycle.iter().enumerate() {
            let to = &cycle[(i + 1) % cycle.len()];
            let (file, line) = &graph[from][to];
            text += &format!("    {from} -> {to}  ({file}:{line})\n");
        }
        text += "  all its imports:\n";
        for from in &component {
            for (to, (file, line)) in graph[from].range::<String, _>(..) {
                if component.contains(to) {
                    text += &format!("    {from} -> {to}  ({file}:{line})\n");
                }
            }
        }
    }
    panic!("the checker's modules have import cycles:{text}");
}

/// The report types (`Report`, `KeyReport`, their counts, the redirect analysis's results) are
/// plain data: they use the data types and the history's, never a check or analysis that fills
/// them in.
#[test]
fn report_types_use_only_data_and_histories() {
    const BELOW_REPORT: [&str; 12] = [
        "validity",
        "anomaly",
        "search",
        "slot",
        "echo",
        "hash",
        "source",
        "history",
        "op",
        "explanation",
        "fault",
        "phase",
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let mut reached = BTreeSet::from(["report".to_string()]);
    let mut todo = vec!["report".to_string()];
    while let Some(m) = todo.pop() {
        for (to, (file, line)) in graph.get(&m).into_iter().flatten() {
            assert!(
                BELOW_REPORT.contains(&to.as_str()),
                "the report types reach `{to}` through `{m}` ({file}:{line})"
            );
            if reached.insert(to.clone()) {
                todo.push(to.clone());
            }
        }
    }
}

/// The dependencies between top-level modules of the crate whose sources are under `src`.
fn module_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let lib = code_of(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(src, f).first().cloned())
        .collect();
    let reexports = reexports(&lib, &modules);
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut parsed = Vec::new();
    for file in &files {
        let path = module_path(src, file);
        let code = code_of(&fs::read_to_string(file).unwrap());
        let (code, test_children) = without_test_items(&code);
        for child in test_children {
            let mut p = path.clone();
            p.push(child);
            test_only.insert(p);
        }
        parsed.push((file, path, code));
    }
    let mut graph = Graph::new();
    for (file, path, code) in parsed {
        let Some(from) = path.first() else { continue }; // lib.rs
        if test_only.iter().any(|t| path.starts_with(t)) {
            continue;
        }
        let deps = graph.entry(from.clone()).or_default();
        let name = file.strip_prefix(src).unwrap().display().to_string();
        for (line, first) in dependencies(&code, &path) {
            let to = if modules.contains(&first) {
                first
            } else if let Some(m) = reexports.get(&first) {
                m.clone()
            } else {
                continue; // a function or macro of lib.rs
            };
            if test_only.contains(&vec![to.clone()]) || &to == from {
                continue;
            }
            deps.entry(to)
                .or_insert_with(|| (format!("src/{name}"), line));
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// `src/foo/bar.rs` → `[foo, bar]`, `src/foo/mod.rs` → `[foo]`, `src/lib.rs` → `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source with comments, string and char literals blanked out (newlines kept, so that
/// line numbers still hold).
fn code_of(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len() {
                if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                blank(&mut out, c[j]);
                j += 1;
            }
            i = j;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{7f}'), or else a lifetime.
            let end = if next == Some('\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push(c[i]);
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The code without `#[cfg(test)]` items (each line of them blanked), and the names of the
/// child modules declared test-only (`#[cfg(test)] mod testkit;`).
fn without_test_items(code: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = code.lines().collect();
    let mut keep = vec![true; lines.len()];
    let mut children = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "#[cfg(test)]" {
            i += 1;
            continue;
        }
        keep[i] = false;
        let mut j = i + 1;
        while j < lines.len() && lines[j].trim().starts_with("#[") {
            keep[j] = false;
            j += 1;
        }
        let item = lines.get(j).map_or("", |l| l.trim());
        if let Some(name) = item
            .strip_prefix("mod ")
            .or_else(|| item.strip_prefix("pub mod "))
            .or_else(|| item.strip_prefix("pub(crate) mod "))
            .and_then(|rest| rest.strip_suffix(';'))
        {
            children.push(name.trim().to_string());
        }
        // Up to the end of the item: a `;` or the `}` that closes its first `{`.
        let mut depth = 0i32;
        let mut opened = false;
        while j < lines.len() {
            keep[j] = false;
            for ch in lines[j].chars() {
                match ch {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let line = lines[j].trim_end();
            j += 1;
            if (opened && depth <= 0) || (!opened && line.ends_with(';')) {
                break;
            }
        }
        i = j;
    }
    let text = lines
        .iter()
        .zip(keep)
        .map(|(l, k)| if k { *l } else { "" })
        .collect::<Vec<_>>()
        .join("\n");
    (text, children)
}

/// Names `lib.rs` re-exports (`pub use report::{Report, ..}`) → the module they come from.
fn reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in lib.split(';') {
        let Some(rest) = item.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest
            .trim_start_matches("crate::")
            .trim_start_matches("self::");
        let Some(module) = rest.split("::").next().filter(|m| modules.contains(*m)) else {
            continue;
        };
        for name in rest.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if name.chars().next().is_some_and(char::is_uppercase)
                || (!name.is_empty() && !modules.contains(name) && name != module)
            {
                out.entry(name.to_string())
                    .or_insert_with(|| module.to_string());
            }
        }
    }
    out
}

/// Every path leaving the file's module: (line, first segment under the crate root).
fn dependencies(code: &str, path: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = find_path_start(rest) {
            let (prefix_len, start) = at;
            let after = &rest[start + prefix_len..];
            // `super::` k times from module `[a, b, c]` is `[a, b, c][..3 - k]`; only an empty
            // rest (the root) leaves it for the next segment.
            let (segments, tail): (Vec<String>, &str) = if rest[start..].starts_with("crate::") {
                (Vec::new(), after)
            } else {
                let mut t = &rest[start..];
                let mut k = 0;
                while let Some(s) = t.strip_prefix("super::") {
                    t = s;
                    k += 1;
                }
                (path[..path.len().saturating_sub(k)].to_vec(), t)
            };
            let firsts: Vec<String> = if let Some(first) = segments.first() {
                vec![first.clone()]
            } else if let Some(group) = tail.strip_prefix('{') {
                group_heads(group)
            } else {
                vec![tail
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()]
            };
            for f in firsts.into_iter().filter(|f| !f.is_empty()) {
                out.push((n + 1, f));
            }
            rest = &tail[tail.len().min(1)..];
        }
    }
    out
}

/// Where the next `crate::` or `super::` path starts in `s` (not `$crate::`, not part of a
/// longer name): (length of the prefix to skip, its offset).
fn find_path_start(s: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    loop {
        let c = s[from..].find("crate::").map(|i| (7, from + i));
        let p = s[from..].find("super::").map(|i| (7, from + i));
        let at = match (c, p) {
            (Some(a), Some(b)) => Some(if a.1 <= b.1 { a } else { b }),
            (a, b) => a.or(b),
        }?;
        let before = s[..at.1].chars().next_back();
        if before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == '$' || b == ':') {
            from = at.1 + at.0;
            continue;
        }
        return Some(at);
    }
}

/// The first segment of each path of a `{a::b, c, d::{e, f}}` group (the text after `{`).
fn group_heads(group: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut at_head = true;
    let mut current = String::new();
    for ch in group.chars() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_head = true,
            c if at_head && depth == 0 && (c.is_alphanumeric() || c == '_') => current.push(c),
            c if at_head && !current.is_empty() && !c.is_whitespace() => {
                out.push(std::mem::take(&mut current));
                at_head = false;
            }
            c if at_head && !current.is_empty() && c.is_whitespace() => {
                out.push(std::mem::take(&mut current));
                at_head = false;
            }
            _ => {}
        }
        if ch == ',' && depth == 0 && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.retain(|s| s != "self");
    out
}

/// The strongly connected components of `graph` (Tarjan's algorithm, iterative).
fn components(graph: &Graph) -> Vec<BTreeSet<String>> {
    let nodes: Vec<&String> = graph.keys().collect();
    let index_of: BTreeMap<&String, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            graph[*n]
                .keys()
                .filter_map(|t| index_of.get(t).copied())
                .collect()
        })
        .collect();
    let n = nodes.len();
    let (mut index, mut low) = (vec![usize::MAX; n], vec![0; n]);
    let (mut on_stack, mut stack, mut next) = (vec![false; n], Vec::new(), 0);
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = succ[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.insert(nodes[w].clone());
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// A shortest cycle through the first module of `component` (breadth-first, inside it).
fn shortest_cycle(graph: &Graph, component: &BTreeSet<String>) -> Vec<String> {
    let start = component.iter().next().unwrap().clone();
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(v) = queue.pop_front() {
        for w in graph[&v].keys().filter(|w| component.contains(*w)) {
            if *w == start {
                let mut cycle = vec![v.clone()];
                while let Some(p) = parent.get(cycle.last().unwrap()) {
                    cycle.push(p.clone());
                }
                cycle.reverse();
                return cycle;
            }
            if !parent.contains_key(w) {
                parent.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    unreachable!("a strongly connected component of two or more has a cycle")
}

#[test]
fn the_parser_sees_paths_and_skips_tests() {
    let code = code_of(
        "use crate::{a::X, b, c::{d, e}};\n\
         // use crate::comment;\n\
         let s = \"crate::string\";\n\
         fn f() -> crate::f::T { $crate::m::x }\n\
         #[cfg(test)]\n\
         mod tests {\n    use crate::t;\n    fn g() { {} }\n}\n\
         use crate::after;\n",
    );
    let (code, _) = without_test_items(&code);
    let firsts: Vec<String> = dependencies(&code, &["me".to_string()])
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    assert_eq!(firsts, ["a", "b", "c", "f", "after"]);
    assert_eq!(
        dependencies("use super::super::z::Y;", &["p".into(), "q".into()]),
        [(1, "z".to_string())]
    );
    assert_eq!(
        dependencies("use super::z::Y;", &["p".into(), "q".into()]),
        [(1, "p".to_string())]
    );
}
