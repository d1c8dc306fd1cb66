//! Issue 22's acceptance limits on the source tree, checked on every test run so they cannot
//! come back: (a) no `.rs` file over 600 lines; (b) no non-test function over 80 lines; (c) the
//! floors of `src/` (a module imports only from lower floors, or from its own floor without a
//! cycle); (d) the README's "Layout" section names every folder under `src/`, `checker/src/` and
//! `workloads/src/`, and no folder that does not exist.
//!
//! The files are read as text: comments, strings and char literals are blanked first (lines
//! kept), so a brace or a `crate::` inside them counts for nothing. Test code is left out of (b)
//! and (c): everything from a file's first `#[cfg(test)]` line on, and the files of modules
//! declared `#[cfg(test)] mod name;`. Each check is a function over (path, text) pairs, tested on
//! small synthetic trees at the bottom of this file; the scanner is `tests/layout/scan.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The source roots the limits hold for.
const ROOTS: [&str; 3] = ["src", "checker/src", "workloads/src"];
/// Most lines a `.rs` file may have.
const FILE_LINES_MAX: usize = 600;
/// Most lines a non-test function may have, from its `fn` line to its closing brace.
const FN_LINES_MAX: usize = 80;

/// One floor of `src/`: its height, its modules (`src/<m>.rs` or `src/<m>/`), and why it sits
/// there.
struct Floor {
    level: u8,
    modules: &'static [&'static str],
    why: &'static str,
}

/// The floors of `src/`, bottom to top (the table of issue 22's brief).
const FLOORS: [Floor; 8] = [
    Floor {
        level: 0,
        modules: &["term", "interrupt"],
        why: "status lines and signals: anything may print or stop, they need nothing",
    },
    Floor {
        level: 1,
        modules: &["harness"],
        why: "processes, ports, proxies and the network: what every fault and run stands on",
    },
    Floor {
        level: 2,
        modules: &["nemesis", "verify"],
        why: "schedules, verbs and placement checks act on a running cluster",
    },
    Floor {
        level: 3,
        modules: &["pika", "scenario", "config"],
        why: "a server family's own parts and what a run is asked to do, over faults and checks",
    },
    Floor {
        level: 4,
        modules: &["detect", "export", "report", "input"],
        why: "what is made of a run's results: read, judged, exported and shown",
    },
    Floor {
        level: 5,
        modules: &["run"],
        why: "the one run pipeline composes every stage below it",
    },
    Floor {
        level: 6,
        modules: &["soak", "bench", "clients", "cases"],
        why: "commands built on the run pipeline",
    },
    Floor {
        level: 7,
        modules: &["main", "cli"],
        why: "the binary: clap's Cli, dispatch and one file per command; may import anything",
    },
];

#[path = "layout/scan.rs"]
mod scan;

use scan::{code_of, crate_imports, functions, is_ident, test_files, test_start, File};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `root` (relative to the repository), sorted.
fn rust_files(root: &str) -> Vec<File> {
    let mut out = Vec::new();
    for dir in folders_under(&repo().join(root), true) {
        for entry in std::fs::read_dir(&dir).expect("a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((relative(&path), text));
            }
        }
    }
    out.sort();
    out
}

/// `dir` (when `with_self`) and every folder below it.
fn folders_under(dir: &Path, with_self: bool) -> Vec<PathBuf> {
    let mut out = if with_self {
        vec![dir.to_path_buf()]
    } else {
        Vec::new()
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries.into_iter().filter(|p| p.is_dir()) {
        out.extend(folders_under(&path, true));
    }
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn all_files() -> Vec<File> {
    ROOTS.iter().flat_map(|r| rust_files(r)).collect()
}

/// Fails with every offender, one a line, under `what`.
fn assert_none(what: &str, offenders: Vec<String>) {
    assert!(
        offenders.is_empty(),
        "{what} ({} offenders):\n{}",
        offenders.len(),
        offenders.join("\n")
    );
}

#[test]
fn a_no_file_is_over_600_lines() {
    let files = all_files();
    assert!(files.len() > 50, "found the sources");
    assert_none(
        &format!("files over {FILE_LINES_MAX} lines: split each by concern into a folder of files"),
        long_files(&files),
    );
}

#[test]
fn b_no_non_test_function_is_over_80_lines() {
    assert_none(
        &format!(
            "non-test functions over {FN_LINES_MAX} lines: cut each into named steps \
             (helpers or a small struct of the state they share)"
        ),
        long_functions(&all_files()),
    );
}

#[test]
fn c_src_modules_import_only_their_floor_or_below() {
    let files = rust_files("src");
    assert!(files.len() > 20, "found the sources of src/");
    assert_none(
        "imports against the floors of src/ (tests/layout.rs's FLOORS)",
        floor_offences(&files),
    );
}

#[test]
fn d_the_readme_layout_names_every_folder_and_only_existing_ones() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let folders: Vec<String> = ROOTS
        .iter()
        .flat_map(|r| folders_under(&repo().join(r), false))
        .map(|p| relative(&p))
        .collect();
    assert!(folders.len() > 5, "found the folders");
    let exists = |name: &str| repo().join(name).is_dir();
    assert_none(
        "README.md's Layout section against the tree",
        layout_offences(&readme, &folders, &exists),
    );
}

// ---- (a) and (b) ----

fn long_files(files: &[File]) -> Vec<String> {
    files
        .iter()
        .filter(|(_, text)| text.lines().count() > FILE_LINES_MAX)
        .map(|(path, text)| {
            format!(
                "{path}:1: {} lines (limit {FILE_LINES_MAX}); split it",
                text.lines().count()
            )
        })
        .collect()
}

fn long_functions(files: &[File]) -> Vec<String> {
    let tests = test_files(files);
    let mut out = Vec::new();
    for (path, text) in files.iter().filter(|(p, _)| !tests.contains(p)) {
        let code = code_of(text);
        let test_from = test_start(&code);
        for f in functions(&code) {
            if f.line < test_from && f.lines > FN_LINES_MAX {
                out.push(format!(
                    "{path}:{}: fn {} is {} lines (limit {FN_LINES_MAX}); cut it into steps",
                    f.line, f.name, f.lines
                ));
            }
        }
    }
    out
}

// ---- (c) ----

/// The floor of top-level module `module`, if it is in [`FLOORS`].
fn floor_of(module: &str) -> Option<&'static Floor> {
    FLOORS.iter().find(|f| f.modules.contains(&module))
}

/// `src/foo.rs` and `src/foo/...` → `foo`; `src/lib.rs` (the root, above every floor) → `None`.
fn top_module(path: &str) -> Option<String> {
    let rest = path.strip_prefix("src/")?;
    let head = rest.split('/').next()?.trim_end_matches(".rs");
    (head != "lib").then(|| head.to_string())
}

/// Every import of `src/` against the floors, as `file:line: what is wrong; what to do`.
fn floor_offences(files: &[File]) -> Vec<String> {
    let tests = test_files(files);
    let mut out = BTreeSet::new();
    // module → module on the same floor → the first place it imports it
    let mut same_floor: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (path, text) in files.iter().filter(|(p, _)| !tests.contains(p)) {
        let Some(module) = top_module(path) else {
            continue;
        };
        let Some(floor) = floor_of(&module) else {
            out.insert(format!(
                "{path}:1: module `{module}` is on no floor; move it under one (a command goes \
                 to src/cli/) or add it to FLOORS with its reason"
            ));
            continue;
        };
        if floor.level == 7 {
            continue; // the binary may import anything
        }
        let code = code_of(text);
        let test_from = test_start(&code);
        for (line, head) in crate_imports(&code) {
            let Some(to) = floor_of(&head).filter(|_| line < test_from && head != module) else {
                continue;
            };
            let site = format!("{path}:{line}");
            if to.level > floor.level {
                out.insert(format!(
                    "{site}: `{module}` (floor {}) imports `{head}` (floor {}, higher: {}); move \
                     what it needs down to floor {} or below, or pass it in",
                    floor.level, to.level, to.why, floor.level
                ));
            } else if to.level == floor.level {
                let edges = same_floor.entry(module.clone()).or_default();
                edges.entry(head).or_insert(site);
            }
        }
    }
    for (from, edges) in &same_floor {
        for (to, site) in edges {
            if reaches(&same_floor, to, from) {
                out.insert(format!(
                    "{site}: `{from}` imports `{to}`, which imports `{from}` back (same floor, a \
                     cycle); move what both need down a floor"
                ));
            }
        }
    }
    out.into_iter().collect()
}

/// Whether `to` is reachable from `from` along `edges`.
fn reaches(edges: &BTreeMap<String, BTreeMap<String, String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(at) = stack.pop() {
        if at == to {
            return true;
        }
        if seen.insert(at.clone()) {
            stack.extend(edges.get(&at).into_iter().flat_map(|e| e.keys().cloned()));
        }
    }
    false
}

// ---- (d) ----

/// The README's Layout section against the tree's `folders` (paths from the repository root);
/// `exists` says whether a path from the root is a folder.
fn layout_offences(readme: &str, folders: &[String], exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    let Some((first, section)) = layout_section(readme) else {
        return vec!["README.md:1: no `## Layout` section; add one that names every folder".into()];
    };
    let mut out = Vec::new();
    for folder in folders {
        let leaf = folder.rsplit('/').next().unwrap_or(folder);
        if !section.iter().any(|l| names_folder(l, leaf)) {
            out.push(format!(
                "README.md:{first}: the Layout section does not name `{folder}/`; add a line \
                 with `{leaf}/` saying what it holds"
            ));
        }
    }
    for (i, line) in section.iter().enumerate() {
        for named in named_folders(line) {
            let known = exists(&named) || folders.iter().any(|f| ends_with_path(f, &named));
            if !known {
                out.push(format!(
                    "README.md:{}: the Layout section names `{named}/`, which is no folder; \
                     fix or drop it",
                    first + i
                ));
            }
        }
    }
    out
}

/// The lines of the `Layout` section and the 1-based line of its first one.
fn layout_section(readme: &str) -> Option<(usize, Vec<&str>)> {
    let lines: Vec<&str> = readme.lines().collect();
    let heading = lines
        .iter()
        .position(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == "Layout")?;
    let level = lines[heading].chars().take_while(|c| *c == '#').count();
    let body = &lines[heading + 1..];
    let end = body
        .iter()
        .position(|l| l.starts_with('#') && l.chars().take_while(|c| *c == '#').count() <= level)
        .unwrap_or(body.len());
    Some((heading + 2, body[..end].to_vec()))
}

/// Whether `line` names a folder `leaf` as `leaf/` (alone or at the end of a longer path).
fn names_folder(line: &str, leaf: &str) -> bool {
    let pattern = format!("{leaf}/");
    line.match_indices(&pattern)
        .any(|(i, _)| i == 0 || !is_ident(line.as_bytes()[i - 1]))
}

/// The folders `line` names in backticks (`` `src/verify/` `` → `src/verify`).
fn named_folders(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| span.strip_suffix('/'))
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || "_/-".contains(c)))
        .map(str::to_string)
        .collect()
}

/// Whether folder `path` is `named` or ends with `/named`.
fn ends_with_path(path: &str, named: &str) -> bool {
    path == named || path.ends_with(&format!("/{named}"))
}

// ---- the checks on synthetic trees ----

fn file(path: &str, text: &str) -> File {
    (path.to_string(), text.to_string())
}

/// A function of `n` lines named `name`.
fn fn_of(name: &str, n: usize) -> String {
    let body: String = (0..n - 2)
        .map(|i| format!("    let _x{i} = {i};\n"))
        .collect();
    format!("fn {name}() {{\n{body}}}\n")
}

#[test]
fn the_scanner_blanks_comments_and_literals_and_keeps_lines() {
    let text = "let a = \"{ crate::x }\"; // crate::y {\n/* { /* } */ */ let c = '{';\n\
                let r = r#\"}\"#; let l: &'static str = \"\\\"}\";\nfn f<'a>() {}\n";
    let code = code_of(text);
    assert_eq!(code.lines().count(), text.lines().count());
    assert!(!code.contains("crate::"), "{code}");
    assert_eq!(code.matches('{').count(), 1, "{code}");
    assert_eq!(code.matches('}').count(), 1, "{code}");
    assert!(code.contains("&'static str"), "a lifetime is code: {code}");
    assert!(code.contains("fn f<'a>()"), "{code}");
}

#[test]
fn a_file_over_the_limit_is_named_and_one_at_it_passes() {
    let at_limit = "x\n".repeat(FILE_LINES_MAX);
    let over = "x\n".repeat(FILE_LINES_MAX + 1);
    let found = long_files(&[file("src/ok.rs", &at_limit), file("src/big.rs", &over)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("src/big.rs:1: 601 lines"), "{found:?}");
}

#[test]
fn a_long_function_is_named_and_test_code_is_not() {
    let text = format!(
        "{}{}\n#[cfg(test)]\nmod tests {{\n{}}}\n",
        fn_of("short", FN_LINES_MAX),
        fn_of("long", FN_LINES_MAX + 1),
        fn_of("long_test", 200)
    );
    let found = long_functions(&[file("src/a.rs", &text)]);
    assert_eq!(found.len(), 1, "{found:?}");
    let line = FN_LINES_MAX + 1;
    assert!(
        found[0].starts_with(&format!("src/a.rs:{line}: fn long is 81 lines")),
        "{found:?}"
    );
    // A test-only module's own file is test code too; a declaration has no body.
    let parent = "#[cfg(test)]\nmod testkit;\ntrait T { fn f(&self); }\n";
    let found = long_functions(&[
        file("src/b/mod.rs", parent),
        file("src/b/testkit.rs", &fn_of("helper", 200)),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn imports_up_a_floor_or_in_a_circle_are_named_and_others_pass() {
    let files = [
        file("src/lib.rs", "pub mod run; use crate::run::x;\n"),
        file("src/main.rs", "use crate::run::Run; use crate::term;\n"),
        file("src/term.rs", "// crate::run in a comment\n"),
        file("src/harness/mod.rs", "use crate::{term, nemesis::proxy};\n"),
        file(
            "src/nemesis/mod.rs",
            "use crate::verify::check;\nuse crate::harness::Cluster;\n",
        ),
        file("src/verify/mod.rs", "fn f() { crate::nemesis::g(); }\n"),
        file("src/report/mod.rs", "use crate::detect;\n"),
        file("src/detect.rs", "use crate::export;\n"),
        file(
            "src/cases.rs",
            "use crate::run;\n#[cfg(test)]\nmod tests { use crate::cli; }\n",
        ),
        file("src/stray.rs", "use crate::term;\n"),
    ];
    let found = floor_offences(&files);
    let sites: Vec<&str> = found.iter().map(|o| o.split(' ').next().unwrap()).collect();
    assert_eq!(
        sites,
        [
            "src/harness/mod.rs:1:",
            "src/nemesis/mod.rs:1:",
            "src/stray.rs:1:",
            "src/verify/mod.rs:1:"
        ],
        "{found:#?}"
    );
    assert!(found[0].contains("`harness` (floor 1) imports `nemesis` (floor 2"));
    assert!(found[1].contains("cycle"), "{found:#?}");
    assert!(found[2].contains("on no floor"), "{found:#?}");
}

#[test]
fn the_layout_section_must_name_every_folder_and_only_real_ones() {
    let folders = [
        "src/harness".to_string(),
        "src/nemesis/migrate".to_string(),
        "checker/src/elle".to_string(),
    ];
    let exists = |p: &str| ["clients", "src"].contains(&p);
    let good = "# x\n## Layout\n- `src/` — the binary.\n- `harness/` — servers.\n\
                - `src/nemesis/migrate/` — its variants.\n- `elle/` — graphs.\n\
                - `clients/` — adapters.\n## Next\n- `gone/` is not in the section.\n";
    assert_eq!(
        layout_offences(good, &folders, &exists),
        Vec::<String>::new()
    );
    let bad = "## Layout\n- `src/` — the binary.\n- `src/nemesis/migrate/` — variants.\n\
               - `pika/` — gone.\n- `myelle/` — not elle.\n";
    let found = layout_offences(bad, &folders, &exists);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(
        found[0].contains("does not name `src/harness/`"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("does not name `checker/src/elle/`"),
        "{found:#?}"
    );
    assert!(found[2].starts_with("README.md:4:") && found[2].contains("`pika/`"));
    assert!(found[3].starts_with("README.md:5:") && found[3].contains("`myelle/`"));
    assert!(found[3].contains("no folder"), "{found:#?}");
    assert_eq!(layout_offences("# x\n", &folders, &exists).len(), 1);
}

#[test]
fn a_tree_that_obeys_passes_every_check() {
    let files = [
        file("src/lib.rs", "pub mod term;\npub mod run;\n"),
        file("src/main.rs", &fn_of("main", FN_LINES_MAX)),
        file("src/term.rs", "pub fn line() {}\n"),
        file("src/harness/mod.rs", "use crate::term;\n"),
        file("src/run/mod.rs", "use crate::{harness, term::line};\n"),
        file("src/cli/test.rs", "use crate::run;\n"),
    ];
    assert!(long_files(&files).is_empty());
    assert!(long_functions(&files).is_empty());
    assert!(floor_offences(&files).is_empty());
    let readme = "## Layout\n- `src/` — the binary: `harness/`, `run/` and `cli/`.\n";
    let folders = ["src/harness", "src/run", "src/cli"].map(String::from);
    assert!(layout_offences(readme, &folders, &|p: &str| p == "src").is_empty());
}
