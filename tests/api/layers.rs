//! Arrows point down only (docs/ARCHITECTURE.md, "Layers"): nothing under
//! `livekit/`, `db/`, `events/` or `workers.rs` reaches the HTTP layer
//! (`crate::routes`, any `…::http` module), and the spine and the store
//! (`events/`, `db/`) do not depend on the process state (`crate::state`),
//! which is built on them. Checked on the source text: every `crate::…`
//! path, in `use` statements (groups expanded) and inline.

use std::path::{Path, PathBuf};

/// The modules below the HTTP layer and what each may not name.
const RULES: &[(&str, &[&str])] = &[
    ("livekit", &["routes", "http"]),
    ("db", &["routes", "http", "state"]),
    ("events", &["routes", "http", "state"]),
    ("workers.rs", &["routes", "http"]),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_owned());
        }
        return;
    }
    for entry in std::fs::read_dir(path).unwrap() {
        rust_files(&entry.unwrap().path(), out);
    }
}

/// The code of a file without its comments (line comments and doc
/// comments; block comments are not used in the crate).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate paths a piece of code names: each `crate::a::b::{c, d::e}`
/// as the segments it contains (groups flattened: `a`, `b`, `c`, `d`, `e`).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        // The path runs to the end of its group (braces balanced) or to
        // the first character that cannot be part of it.
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = i;
                    break;
                }
                '}' => depth -= 1,
                c if c.is_alphanumeric() || c == '_' || c == ':' || c == '*' => {}
                ',' | ' ' | '\n' if depth > 0 => {}
                _ => {
                    end = i;
                    break;
                }
            }
        }
        let segments = rest[..end]
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        paths.push(segments);
    }
    paths
}

/// The forbidden names a file's code uses, with the path naming them.
fn violations(code: &str, forbidden: &[&str]) -> Vec<String> {
    crate_paths(code)
        .into_iter()
        .filter(|segments| {
            // `crate::state` only as the first segment; the others anywhere.
            segments
                .iter()
                .enumerate()
                .any(|(i, s)| forbidden.contains(&s.as_str()) && (s != "state" || i == 0))
        })
        .map(|segments| format!("crate::{}", segments.join("::")))
        .collect()
}

#[test]
fn the_scanner_sees_imports_of_the_http_layer() {
    let forbidden = ["routes", "http", "state"];
    let code_of = |s: &str| violations(&code(s), &forbidden);
    assert_eq!(code_of("use crate::routes::sip::rules;").len(), 1);
    assert_eq!(code_of("use crate::{db, sip::http::list_trunks};").len(), 1);
    assert_eq!(
        code_of("use crate::{\n    db::schema,\n    routes::allow,\n};").len(),
        1
    );
    assert_eq!(
        code_of("let x = crate::routes::allow(&[\"GET\"]);").len(),
        1
    );
    assert_eq!(code_of("fn f(s: &crate::state::AppState) {}").len(), 1);
    assert!(code_of("use crate::db::schema::sessions; // crate::routes").is_empty());
    assert!(code_of("use crate::sip::store;\nuse crate::events::hub::Hub;").is_empty());
    assert!(code_of("let s = crate::limits::state_of(x);").is_empty());
}

#[test]
fn lower_layers_do_not_import_the_http_layer_or_the_state() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (module, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        assert!(!files.is_empty(), "no source under src/{module}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for v in violations(&code(&text), forbidden) {
                found.push(format!(
                    "{}: {v}",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "lower layers reach up:\n{}",
        found.join("\n")
    );
}
