//! The document cannot lie about names: utoipa keys component schemas by
//! name, so two Rust types publishing the same name silently replace one
//! another (the login once documented as returning a call session).

use super::document_json;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The schema name each `ToSchema` type of a source file publishes: the
/// type's name, or the `#[schema(as = …)]` override, with its line.
fn published_schemas(source: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut attrs = String::new();
    // Open brackets of an attribute spanning several lines.
    let mut depth = 0i32;
    for (no, line) in source.lines().enumerate() {
        let t = line.trim();
        if depth > 0 || t.starts_with("#[") || t.starts_with("//") {
            if !t.starts_with("//") {
                depth += t.matches(['[', '(']).count() as i32;
                depth -= t.matches([']', ')']).count() as i32;
            }
            attrs.push_str(t);
            attrs.push('\n');
            continue;
        }
        // A hand-written implementation publishes the type's name too.
        if let Some(rest) = t
            .strip_prefix("impl utoipa::ToSchema for ")
            .or_else(|| t.strip_prefix("impl ToSchema for "))
        {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((ident, no + 1));
            attrs.clear();
            continue;
        }
        let item = [
            "pub struct ",
            "pub enum ",
            "struct ",
            "enum ",
            "pub(crate) struct ",
            "pub(crate) enum ",
        ]
        .iter()
        .find_map(|p| t.strip_prefix(p));
        if let Some(rest) = item
            && attrs.contains("ToSchema")
        {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let name = attrs
                .split("as = ")
                .nth(1)
                .map(|s| {
                    s.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect::<String>()
                })
                .map(|s| s.rsplit("::").next().unwrap_or_default().to_string())
                .unwrap_or(ident);
            out.push((name, no + 1));
        }
        if !t.is_empty() {
            attrs.clear();
        }
    }
    out
}

#[test]
fn every_schema_name_is_published_by_one_type() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (name, line) in published_schemas(&text) {
            let at = format!("{}:{line}", file.strip_prefix(&src).unwrap().display());
            seen.entry(name).or_default().push(at);
        }
    }
    assert!(seen.len() > 50, "the scan found too few ToSchema types");
    let dupes: Vec<String> = seen
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(name, at)| format!("{name}: {}", at.join(", ")))
        .collect();
    assert!(
        dupes.is_empty(),
        "schema names published by more than one type (rename one or use #[schema(as = …)]):\n{}",
        dupes.join("\n")
    );
    // Every schema of the document comes from one of the scanned types (or
    // utoipa's generics), so the scan cannot miss a collision.
    let doc: Value = serde_json::from_str(document_json()).unwrap();
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            seen.contains_key(name),
            "component {name} comes from no scanned type"
        );
    }
}

#[test]
fn the_scan_sees_a_collision_and_an_override() {
    let src = "#[derive(\n  Serialize,\n  utoipa::ToSchema,\n)]\npub struct A {}\n\n\
               /// doc\n#[derive(utoipa::ToSchema)]\n#[schema(as = B)]\nstruct A2(i64);\n\
               #[derive(Debug)]\npub struct NotASchema;\n";
    let names: Vec<String> = published_schemas(src).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["A", "B"]);
}

#[test]
fn operation_ids_are_unique_and_refs_resolve() {
    let doc: Value = serde_json::from_str(document_json()).unwrap();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
        }
    }
    let text = document_json();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for piece in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}

#[test]
fn login_and_project_document_their_own_types() {
    let doc: Value = serde_json::from_str(document_json()).unwrap();
    let schema_of = |path: &str, method: &str, status: &str| {
        let r = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        doc["components"]["schemas"][&r].clone()
    };
    let login = schema_of("/api/v1/auth/login", "post", "200");
    assert!(login["properties"]["access_token"].is_object(), "{login}");
    let project = schema_of("/api/v1/project", "get", "200");
    let inner = project["properties"]["project"]["$ref"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let inner = &doc["components"]["schemas"][inner];
    assert!(inner["properties"]["role"].is_null(), "{inner}");
    let verify = &doc["paths"]["/api/v1/auth/verify-email"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"];
    assert!(
        verify.as_str().unwrap().ends_with("/EmailTokenIn"),
        "{verify}"
    );
}
