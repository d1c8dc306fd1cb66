//! The text scanner of `tests/layout.rs`: Rust source with comments and literals blanked, the
//! functions and `crate::` paths found in it, and which code is test code.

use std::collections::BTreeSet;

/// A source file: its path from the repository root and its text.
pub type File = (String, String);

/// A function found in code: its name, 1-based `fn` line, and length in lines.
#[derive(Debug, PartialEq)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// Its `fn` line, 1-based.
    pub line: usize,
    /// Lines from its `fn` line to its closing brace.
    pub lines: usize,
}

/// Every function with a body in `code` (already blanked by [`code_of`]), nested ones too.
pub fn functions(code: &str) -> Vec<Function> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = code[at..].find("fn ") {
        let start = at + found;
        at = start + 3;
        if start > 0 && is_ident(bytes[start - 1]) {
            continue;
        }
        let name: String = code[at..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue; // a `fn(..)` pointer type
        }
        let Some(open) = body_start(bytes, at) else {
            continue; // a declaration without a body
        };
        let close = matching_brace(bytes, open);
        out.push(Function {
            name,
            line: line_of(code, start),
            lines: line_of(code, close) - line_of(code, start) + 1,
        });
    }
    out
}

/// The `{` that opens the body of the `fn` whose signature starts at `from`; `None` when a `;`
/// comes first.
pub fn body_start(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len())
        .find(|&i| bytes[i] == b'{' || bytes[i] == b';')
        .filter(|&i| bytes[i] == b'{')
}

/// The `}` that closes the `{` at `open` (the end of the code if none does).
pub fn matching_brace(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    bytes.len().saturating_sub(1)
}

pub fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// 1-based line of byte `at`.
pub fn line_of(code: &str, at: usize) -> usize {
    code[..at].matches('\n').count() + 1
}

/// The 1-based line from which `code` is test code (its first `#[cfg(test)]` line), or past
/// its end.
pub fn test_start(code: &str) -> usize {
    code.lines()
        .position(|l| l.trim() == "#[cfg(test)]")
        .map_or(usize::MAX, |i| i + 1)
}

/// The files of modules declared `#[cfg(test)] mod name;`.
pub fn test_files(files: &[File]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, text) in files {
        let code = code_of(text);
        let lines: Vec<&str> = code.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            let decl = pair[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if pair[0] != "#[cfg(test)]" || !decl.starts_with("mod ") || !decl.ends_with(';') {
                continue;
            }
            let name = decl["mod ".len()..decl.len() - 1].trim();
            let dir = module_dir(path);
            out.insert(format!("{dir}/{name}.rs"));
            out.insert(format!("{dir}/{name}/mod.rs"));
        }
    }
    out
}

/// The folder that holds the child modules of the file at `path`.
pub fn module_dir(path: &str) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    match file {
        "mod.rs" | "lib.rs" | "main.rs" => dir.to_string(),
        _ => format!("{dir}/{}", file.trim_end_matches(".rs")),
    }
}

/// Every `crate::x` path in `code` as (1-based line, `x`); a group `crate::{a::b, c}` gives each
/// head.
pub fn crate_imports(code: &str) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = code[at..].find("crate::") {
        let start = at + found;
        at = start + "crate::".len();
        if start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b'$') {
            continue;
        }
        let line = line_of(code, start);
        let rest = &code[at..];
        let heads = match rest.strip_prefix('{') {
            Some(group) => group_heads(group),
            None => vec![ident_at(rest)],
        };
        out.extend(
            heads
                .into_iter()
                .filter(|h| !h.is_empty())
                .map(|h| (line, h)),
        );
    }
    out
}

/// The first segment of each path of a `{a::b, c, d::{e, f}}` group (the text after `{`).
pub fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expecting = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting = true,
            c if expecting && depth == 0 && !c.is_whitespace() => {
                heads.push(ident_at(&group[i..]));
                expecting = false;
            }
            _ => {}
        }
    }
    heads
}

pub fn ident_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// `text` with comments, string and char literals blanked (each char a space, newlines kept),
/// so that braces and paths in them count for nothing and line numbers still hold.
pub fn code_of(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let end = literal_end(&chars, i);
        if end == i {
            out.push(chars[i]);
            i += 1;
        } else {
            out.extend(
                chars[i..end]
                    .iter()
                    .map(|&c| if c == '\n' { '\n' } else { ' ' }),
            );
            i = end;
        }
    }
    out
}

/// Where the comment or literal starting at `i` ends (exclusive); `i` when none starts there.
pub fn literal_end(chars: &[char], i: usize) -> usize {
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    match (at(i), at(i + 1)) {
        ('/', '/') => (i..chars.len())
            .find(|&k| chars[k] == '\n')
            .unwrap_or(chars.len()),
        ('/', '*') => block_comment_end(chars, i),
        ('"', _) => quoted_end(chars, i + 1, '"'),
        ('r', '"' | '#') if !after_ident => raw_string_end(chars, i + 1).unwrap_or(i),
        ('b', 'r') if !after_ident => raw_string_end(chars, i + 2).unwrap_or(i),
        ('\'', '\\') => quoted_end(chars, i + 1, '\''),
        ('\'', _) if at(i + 2) == '\'' => i + 3,
        _ => i,
    }
}

/// The end of a (nested) block comment opening at `i`.
pub fn block_comment_end(chars: &[char], i: usize) -> usize {
    let mut depth = 0;
    let mut k = i;
    while k + 1 < chars.len() {
        match (chars[k], chars[k + 1]) {
            ('/', '*') => {
                depth += 1;
                k += 2;
            }
            ('*', '/') => {
                depth -= 1;
                k += 2;
                if depth == 0 {
                    return k;
                }
            }
            _ => k += 1,
        }
    }
    chars.len()
}

/// The end of a literal closed by an unescaped `quote`, its body starting at `from`.
pub fn quoted_end(chars: &[char], from: usize, quote: char) -> usize {
    let mut k = from;
    while k < chars.len() {
        match chars[k] {
            '\\' => k += 2,
            c if c == quote => return k + 1,
            _ => k += 1,
        }
    }
    chars.len()
}

/// The end of a raw string whose `#`s (or `"`) start at `from`; `None` if it is no raw string.
pub fn raw_string_end(chars: &[char], from: usize) -> Option<usize> {
    let hashes = chars[from..].iter().take_while(|&&c| c == '#').count();
    if chars.get(from + hashes) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let body = from + hashes + 1;
    (body..chars.len())
        .find(|&k| chars[k..].starts_with(&close))
        .map(|k| k + close.len())
        .or(Some(chars.len()))
}
