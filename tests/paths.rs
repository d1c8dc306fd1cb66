//! No file of the repository names an absolute path into someone's home or work directory
//! (issue 24: a test read its server's configuration from one developer's source tree, and failed
//! on every other machine). Every tracked text file is read — code, scripts, manifests, docs and
//! fixtures alike — since a path in any of them is one that only works here. Other absolute paths
//! (`/usr/bin`, `/tmp`, `/proc`) are the system's and stay allowed.
//!
//! The banned directories are spelled in parts below so that this file does not name them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Top-level directories that hold a person's or a machine's own files, never the project's.
const PRIVATE_ROOTS: [&str; 4] = ["home", "root", "work", "Users"];

/// Where `text` names a path under one of [`PRIVATE_ROOTS`]: `(line, path)`, lines from 1. A
/// match must start a path (at the line's start or after a character that cannot be part of a
/// path segment), so `src/work/` or `docs/home/` are not absolute paths and do not count.
fn private_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for root in PRIVATE_ROOTS {
            let needle = format!("/{root}/");
            for (at, _) in line.match_indices(&needle) {
                let before = line[..at].chars().next_back();
                let starts_path =
                    before.is_none_or(|c| !(c.is_alphanumeric() || "_-.~/".contains(c)));
                if starts_path {
                    let path: String = line[at..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && !"\"'`)],;".contains(*c))
                        .collect();
                    found.push((n + 1, path));
                }
            }
        }
    }
    found
}

/// The repository's tracked files (`git ls-files`); outside a git checkout, every file under
/// the root but `target/` and hidden directories.
fn tracked_files(root: &Path) -> Vec<PathBuf> {
    let git = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output();
    match git {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(|p| root.join(p))
            .collect(),
        _ => walk(root),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                files.extend(walk(&path));
            }
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn no_absolute_path_into_a_home_or_work_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = tracked_files(root);
    assert!(files.len() > 100, "found only {} files", files.len());
    let mut offences = Vec::new();
    for file in files {
        // Binary files and files deleted from the work tree but still tracked are skipped.
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (line, path) in private_paths(&text) {
            let rel = file.strip_prefix(root).unwrap_or(&file);
            offences.push(format!("{}:{line}: {path}", rel.display()));
        }
    }
    assert!(
        offences.is_empty(),
        "absolute paths into a home or work directory (use a path relative to the repository, \
         a temporary directory, or an environment variable):\n{}",
        offences.join("\n")
    );
}

#[test]
fn what_counts_as_a_private_path() {
    let (h, r, w, u) = ("home", "root", "work", "Users");
    let cases: [(String, usize); 9] = [
        (format!("read(\"/{w}/pika/conf\")"), 1),
        (format!("/{h}/alice/x and /{w}/y/z"), 2),
        (format!("cd /{h}/bob"), 1),
        (format!("see [/{u}/carol/x](/{u}/carol/x)"), 2),
        (format!("src/{w}/mod.rs and docs/{h}/index.md"), 0),
        (format!("./{w}/x ~/{w}/x"), 0),
        ("/usr/bin/redis-server /tmp/x /proc/self".to_string(), 0),
        (format!("`/{h}`"), 0),
        (format!("'/{r}/.cargo/bin'"), 1),
    ];
    for (text, want) in cases {
        assert_eq!(private_paths(&text).len(), want, "{text}");
    }
}
