//! Document kinds and how each becomes chunks: plain text and Markdown
//! (split on headings first) by paragraphs and sentences, CSV with whole rows
//! under their header, JSON flattened to `path: value` lines.

use super::chunking::{ChunkParams, chunk_lines, chunk_text};
use serde_json::Value;

/// What a document is, from its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Txt,
    Md,
    Csv,
    Json,
}

impl Kind {
    /// The kind of a file name (`.txt`, `.md`, `.csv`, `.json`, any case).
    pub fn from_file_name(name: &str) -> Option<Self> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" => Kind::Txt,
            "md" | "markdown" => Kind::Md,
            "csv" => Kind::Csv,
            "json" => Kind::Json,
            _ => return None,
        })
    }

    /// The name stored with a queued job.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Txt => "txt",
            Kind::Md => "md",
            Kind::Csv => "csv",
            Kind::Json => "json",
        }
    }

    /// The inverse of [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "txt" => Kind::Txt,
            "md" => Kind::Md,
            "csv" => Kind::Csv,
            "json" => Kind::Json,
            _ => return None,
        })
    }
}

/// Chunks a document of a kind; `Err` says why the content is not of it.
pub fn chunk_document(kind: Kind, text: &str, p: ChunkParams) -> Result<Vec<String>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(match kind {
        Kind::Txt => chunk_text(text, p),
        Kind::Md => markdown_sections(text)
            .into_iter()
            .flat_map(|s| chunk_text(s, p))
            .collect(),
        Kind::Csv => chunk_csv(text, p),
        Kind::Json => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| format!("the file is not valid JSON: {e}"))?;
            let mut lines = Vec::new();
            flatten("", &value, &mut lines);
            chunk_lines(lines.iter().map(String::as_str), p)
        }
    })
}

/// Markdown split before each ATX heading outside code fences.
fn markdown_sections(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
        }
        let hashes = t.chars().take_while(|c| *c == '#').count();
        let heading = !fenced && (1..=6).contains(&hashes) && t[hashes..].starts_with([' ', '\t']);
        if heading && pos > start {
            out.push(&text[start..pos]);
            start = pos;
        }
        pos += line.len();
    }
    out.push(&text[start..]);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// CSV records (a quoted field may hold line breaks), without empty ones.
fn csv_records(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '\n' if !quoted => {
                out.push(text[start..i].trim_end_matches('\r'));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim_end_matches('\r'));
    out.into_iter().filter(|r| !r.trim().is_empty()).collect()
}

/// Rows are kept whole, each chunk starting with the header line; a row
/// longer than a chunk makes a chunk of its own. No overlap: rows are units.
fn chunk_csv(text: &str, p: ChunkParams) -> Vec<String> {
    let records = csv_records(text);
    let Some((header, rows)) = records.split_first() else {
        return Vec::new();
    };
    if rows.is_empty() {
        return vec![(*header).to_string()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    let header_len = header.chars().count();
    for row in rows {
        let rlen = row.chars().count();
        if !cur.is_empty() && cur_len + 1 + rlen > p.size {
            out.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            cur.push_str(header);
            cur_len = header_len;
        }
        cur.push('\n');
        cur.push_str(row);
        cur_len += 1 + rlen;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `path: value` lines of a JSON value (`a.b[0].c: text`).
fn flatten(path: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(&p, child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), child, out);
            }
        }
        scalar => {
            let text = match scalar {
                Value::String(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
                other => other.to_string(),
            };
            if path.is_empty() {
                out.push(text);
            } else {
                out.push(format!("{path}: {text}"));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const P: ChunkParams = ChunkParams {
        size: 120,
        overlap: 0,
    };

    #[test]
    fn kinds_from_names() {
        assert_eq!(Kind::from_file_name("FAQ.MD"), Some(Kind::Md));
        assert_eq!(Kind::from_file_name("a.b.json"), Some(Kind::Json));
        assert_eq!(Kind::from_file_name("x.pdf"), None);
        assert_eq!(Kind::from_file_name("noext"), None);
    }

    #[test]
    fn markdown_splits_on_headings_first() {
        let md = "# Billing\nWe bill monthly.\n\n```\n# not a heading\n```\n## Refunds\nRefunds take 5 days.\n";
        let chunks = chunk_document(
            Kind::Md,
            md,
            ChunkParams {
                size: 1000,
                overlap: 0,
            },
        )
        .unwrap();
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        assert!(chunks[0].starts_with("# Billing") && chunks[0].contains("# not a heading"));
        assert!(chunks[1].starts_with("## Refunds"));
    }

    #[test]
    fn csv_rows_stay_whole_with_their_header() {
        let mut csv = String::from("question,answer\n");
        for i in 0..10 {
            csv.push_str(&format!("\"Q{i}, really?\",\"Line one\nline two {i}\"\n"));
        }
        let chunks = chunk_document(Kind::Csv, &csv, P).unwrap();
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(c.starts_with("question,answer\n"));
            assert_eq!(c.matches("\"Q").count(), c.matches("line two").count());
        }
    }

    #[test]
    fn json_is_flattened_to_paths() {
        let json = r#"{"faq": [{"q": "Hours?", "a": "9 to 5"}], "open": true}"#;
        let chunks = chunk_document(
            Kind::Json,
            json,
            ChunkParams {
                size: 500,
                overlap: 0,
            },
        )
        .unwrap();
        assert_eq!(
            chunks,
            vec!["faq[0].q: Hours?\nfaq[0].a: 9 to 5\nopen: true"]
        );
        assert!(chunk_document(Kind::Json, "{nope", P).is_err());
    }
}
