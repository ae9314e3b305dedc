//! Document kinds and how each becomes chunks ([`Piece`]s: text with the
//! page and the headings it sits under). Structure first, size last: plain
//! text by paragraphs and sentences; Markdown split on headings first; CSV
//! with whole rows under their header; JSON flattened to `path: value`
//! lines; PDF, DOCX and HTML (read by [`super::extract`]) cut into sections
//! at headings and, for PDF, at page breaks, each section then packed by
//! paragraphs and sentences.

use super::chunking::{ChunkParams, chunk_lines, chunk_text};
use super::extract::{Block, Format};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a document is, from its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Txt,
    Md,
    Csv,
    Json,
    Pdf,
    Docx,
    Html,
}

impl Kind {
    /// The kind of a file name (`.txt`, `.md`, `.csv`, `.json`, `.pdf`,
    /// `.docx`, `.html`/`.htm`, any case).
    pub fn from_file_name(name: &str) -> Option<Self> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" => Kind::Txt,
            "md" | "markdown" => Kind::Md,
            "csv" => Kind::Csv,
            "json" => Kind::Json,
            "pdf" => Kind::Pdf,
            "docx" => Kind::Docx,
            "html" | "htm" => Kind::Html,
            _ => return None,
        })
    }

    /// The name stored with a document and a queued job.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Txt => "txt",
            Kind::Md => "md",
            Kind::Csv => "csv",
            Kind::Json => "json",
            Kind::Pdf => "pdf",
            Kind::Docx => "docx",
            Kind::Html => "html",
        }
    }

    /// The inverse of [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "txt" => Kind::Txt,
            "md" => Kind::Md,
            "csv" => Kind::Csv,
            "json" => Kind::Json,
            "pdf" => Kind::Pdf,
            "docx" => Kind::Docx,
            "html" => Kind::Html,
            _ => return None,
        })
    }

    /// The parser of a binary or markup kind (None: read as UTF-8 text).
    pub fn format(self) -> Option<Format> {
        match self {
            Kind::Pdf => Some(Format::Pdf),
            Kind::Docx => Some(Format::Docx),
            Kind::Html => Some(Format::Html),
            _ => None,
        }
    }
}

/// A chunk to store: its text, the page it is on (PDF) and the headings it
/// sits under, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heading_path: Vec<String>,
}

impl Piece {
    fn plain(content: String) -> Self {
        Self {
            content,
            page: None,
            heading_path: Vec::new(),
        }
    }
}

/// The text embedded for a chunk: the headings it sits under (those its
/// first line does not already name), joined by ` > `, on a line before its
/// content. A section's later chunks, and sections whose headings say which
/// product or policy they belong to, are found by questions that name it;
/// the stored content stays as it was cut.
pub fn embedding_text(heading_path: &[String], content: &str) -> String {
    let first = content.lines().next().unwrap_or("");
    let context: Vec<&str> = heading_path
        .iter()
        .map(String::as_str)
        .filter(|h| !first.contains(h))
        .collect();
    if context.is_empty() {
        return content.to_owned();
    }
    format!("{}\n{content}", context.join(" > "))
}

/// Chunks a text document of a kind; `Err` says why the content is not of it.
pub fn chunk_document(kind: Kind, text: &str, p: ChunkParams) -> Result<Vec<Piece>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let plain = |v: Vec<String>| v.into_iter().map(Piece::plain).collect();
    Ok(match kind {
        Kind::Md => markdown_pieces(text, p),
        Kind::Csv => plain(chunk_csv(text, p)),
        Kind::Json => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| format!("the file is not valid JSON: {e}"))?;
            let mut lines = Vec::new();
            flatten("", &value, &mut lines);
            plain(chunk_lines(lines.iter().map(String::as_str), p))
        }
        Kind::Txt | Kind::Pdf | Kind::Docx | Kind::Html => plain(chunk_text(text, p)),
    })
}

/// Markdown sections (split before each heading) chunked, each chunk under
/// the headings of its section.
fn markdown_pieces(text: &str, p: ChunkParams) -> Vec<Piece> {
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::new();
    for section in markdown_sections(text) {
        if let Some((level, title)) = atx_heading(section.lines().next().unwrap_or("")) {
            path.retain(|(l, _)| *l < level);
            path.push((level, title));
        }
        let heading_path: Vec<String> = path.iter().map(|(_, t)| t.clone()).collect();
        out.extend(chunk_text(section, p).into_iter().map(|content| Piece {
            content,
            page: None,
            heading_path: heading_path.clone(),
        }));
    }
    out
}

/// The level and text of an ATX heading line.
fn atx_heading(line: &str) -> Option<(usize, String)> {
    let t = line.trim_start();
    let hashes = t.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&hashes) || !t[hashes..].starts_with([' ', '\t']) {
        return None;
    }
    let title = t[hashes..].trim().trim_end_matches('#').trim();
    (!title.is_empty()).then(|| (hashes, title.to_owned()))
}

/// Chunks a structured document: a section per heading (and per page), its
/// heading line first, packed by paragraphs and sentences.
pub fn chunk_blocks(blocks: &[Block], p: ChunkParams) -> Vec<Piece> {
    struct Section {
        heading: Option<String>,
        body: Vec<String>,
        page: Option<u32>,
    }
    let mut out = Vec::new();
    let mut path: Vec<(u8, String)> = Vec::new();
    let mut cur = Section {
        heading: None,
        body: Vec::new(),
        page: None,
    };
    let emit = |s: &mut Section, path: &[(u8, String)], out: &mut Vec<Piece>| {
        if s.body.is_empty() {
            return;
        }
        let mut text = s.heading.take().map(|h| h + "\n").unwrap_or_default();
        text.push_str(&s.body.join("\n\n"));
        s.body.clear();
        let heading_path: Vec<String> = path.iter().map(|(_, t)| t.clone()).collect();
        let page = s.page.and_then(|p| i32::try_from(p).ok());
        out.extend(chunk_text(&text, p).into_iter().map(|content| Piece {
            content,
            page,
            heading_path: heading_path.clone(),
        }));
    };
    for block in blocks {
        match block {
            Block::Heading { level, text, page } => {
                emit(&mut cur, &path, &mut out);
                path.retain(|(l, _)| l < level);
                path.push((*level, text.clone()));
                cur.heading = Some(text.clone());
                cur.page = *page;
            }
            Block::Para { text, page } => {
                if *page != cur.page && !cur.body.is_empty() {
                    emit(&mut cur, &path, &mut out);
                }
                cur.page = *page;
                cur.body.push(text.clone());
            }
        }
    }
    emit(&mut cur, &path, &mut out);
    out
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

    fn contents(pieces: Vec<Piece>) -> Vec<String> {
        pieces.into_iter().map(|p| p.content).collect()
    }

    #[test]
    fn kinds_from_names() {
        assert_eq!(Kind::from_file_name("FAQ.MD"), Some(Kind::Md));
        assert_eq!(Kind::from_file_name("a.b.json"), Some(Kind::Json));
        assert_eq!(Kind::from_file_name("x.PDF"), Some(Kind::Pdf));
        assert_eq!(Kind::from_file_name("page.htm"), Some(Kind::Html));
        assert_eq!(Kind::from_file_name("x.doc"), None);
        assert_eq!(Kind::from_file_name("noext"), None);
    }

    #[test]
    fn markdown_splits_on_headings_first() {
        let md = "# Billing\nWe bill monthly.\n\n```\n# not a heading\n```\n## Refunds\nRefunds take 5 days.\n";
        let pieces = chunk_document(
            Kind::Md,
            md,
            ChunkParams {
                size: 1000,
                overlap: 0,
            },
        )
        .unwrap();
        assert_eq!(pieces[1].heading_path, vec!["Billing", "Refunds"]);
        let chunks = contents(pieces);
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
        let chunks = contents(chunk_document(Kind::Csv, &csv, P).unwrap());
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(c.starts_with("question,answer\n"));
            assert_eq!(c.matches("\"Q").count(), c.matches("line two").count());
        }
    }

    #[test]
    fn json_is_flattened_to_paths() {
        let json = r#"{"faq": [{"q": "Hours?", "a": "9 to 5"}], "open": true}"#;
        let chunks = contents(
            chunk_document(
                Kind::Json,
                json,
                ChunkParams {
                    size: 500,
                    overlap: 0,
                },
            )
            .unwrap(),
        );
        assert_eq!(
            chunks,
            vec!["faq[0].q: Hours?\nfaq[0].a: 9 to 5\nopen: true"]
        );
        assert!(chunk_document(Kind::Json, "{nope", P).is_err());
    }

    #[test]
    fn structured_documents_are_cut_at_headings_and_pages_first() {
        let para = |t: &str, page| Block::Para {
            text: t.into(),
            page,
        };
        let heading = |level, t: &str, page| Block::Heading {
            level,
            text: t.into(),
            page,
        };
        let blocks = vec![
            heading(1, "Guide", Some(1)),
            heading(2, "Install", Some(1)),
            para("Run the installer.", Some(1)),
            para("Then restart.", Some(2)),
            heading(2, "Upgrade", Some(2)),
            para("Upgrades are automatic.", Some(2)),
            heading(1, "Appendix", Some(3)),
            para("Nothing here.", Some(3)),
        ];
        let pieces = chunk_blocks(
            &blocks,
            ChunkParams {
                size: 1000,
                overlap: 0,
            },
        );
        let got: Vec<(String, Option<i32>, Vec<String>)> = pieces
            .into_iter()
            .map(|p| (p.content, p.page, p.heading_path))
            .collect();
        let path = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (
                    "Install\nRun the installer.".into(),
                    Some(1),
                    path(&["Guide", "Install"])
                ),
                ("Then restart.".into(), Some(2), path(&["Guide", "Install"])),
                (
                    "Upgrade\nUpgrades are automatic.".into(),
                    Some(2),
                    path(&["Guide", "Upgrade"])
                ),
                (
                    "Appendix\nNothing here.".into(),
                    Some(3),
                    path(&["Appendix"])
                ),
            ]
        );
    }
}
