//! The public API, as a list checked into the repository (`tests/public_api.txt`), so that a
//! change to it shows as a diff in review. Regenerate it with
//! `UPDATE_PUBLIC_API=1 cargo test --test public_api` and read the diff before committing.
//!
//! Every `pub` item of the runtime is listed with the file it is in and, for a method, the
//! `impl` it belongs to. The crate denies `unreachable_pub`, so an item declared `pub` is
//! reachable from outside: the list is the surface.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const SNAPSHOT: &str = "tests/public_api.txt";

#[test]
fn the_public_api_is_the_one_checked_in() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = public_items(&root.join("runtime/src"));
    let snapshot = root.join(SNAPSHOT);
    if std::env::var_os("UPDATE_PUBLIC_API").is_some() {
        std::fs::write(&snapshot, &listed).expect("write the snapshot");
        return;
    }
    let checked_in = std::fs::read_to_string(&snapshot).unwrap_or_default();
    if listed != checked_in {
        let added: Vec<&str> = listed
            .lines()
            .filter(|l| !checked_in.lines().any(|c| c == *l))
            .collect();
        let removed: Vec<&str> = checked_in
            .lines()
            .filter(|c| !listed.lines().any(|l| l == *c))
            .collect();
        panic!(
            "the public API changed; if that is meant, run UPDATE_PUBLIC_API=1 cargo test --test \
             public_api and commit {SNAPSHOT}\nadded:\n  {}\nremoved:\n  {}",
            added.join("\n  "),
            removed.join("\n  ")
        );
    }
}

/// One line per public item of the sources under `dir`, sorted by file.
fn public_items(dir: &Path) -> String {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    let mut out = String::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read a source file");
        let name = file.strip_prefix(dir).unwrap().display().to_string();
        for item in items(&source) {
            writeln!(out, "{name}: {item}").unwrap();
        }
    }
    out
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The public declarations of one file, outside its test module, each with the `impl` or
/// `trait` it is in, and its signature up to the body.
fn items(source: &str) -> Vec<String> {
    let code = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or(source);
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    let mut context = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if line.starts_with("impl") || line.starts_with("pub trait") || line.starts_with("}") {
            context = if line.starts_with('}') {
                String::new()
            } else {
                signature(&lines, i).0
            };
        }
        let is_pub = trimmed.starts_with("pub ") && !trimmed.starts_with("pub use crate::__");
        if is_pub {
            let (sig, end) = signature(&lines, i);
            let indented = line.len() != trimmed.len();
            if indented && !context.is_empty() && !trimmed.starts_with("pub use") {
                found.push(format!("{context} :: {sig}"));
            } else {
                found.push(sig);
            }
            i = end;
        }
        i += 1;
    }
    found
}

/// The declaration starting at line `start`, joined onto one line and cut before its body or
/// its `where` clause; and the line it ends on.
fn signature(lines: &[&str], start: usize) -> (String, usize) {
    let mut sig = String::new();
    let mut end = start;
    // A `use` keeps its braces: they list what it exports.
    let stops: &[char] = if lines[start].trim_start().starts_with("pub use") {
        &[';']
    } else {
        &['{', ';']
    };
    for (i, line) in lines.iter().enumerate().skip(start) {
        end = i;
        let part = line.trim();
        let cut = part.find(stops).map_or(part, |at| &part[..at]);
        if !sig.is_empty() && !sig.ends_with('(') && !cut.starts_with(')') {
            sig.push(' ');
        }
        sig.push_str(cut.trim_end());
        if cut.len() < part.len() || part.starts_with("where") {
            break;
        }
    }
    let sig = sig.split(" where ").next().unwrap_or(&sig);
    (sig.trim().trim_end_matches(',').to_owned(), end)
}
