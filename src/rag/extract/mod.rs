//! Text out of binary and markup documents — PDF (the text layer, page by
//! page, headings told by their font size), DOCX (paragraphs, heading
//! styles, tables) and HTML (the main content, headings kept, scripts,
//! navigation and page chrome dropped) — as a sequence of [`Block`]s that
//! chunking cuts along their structure.
//!
//! Files come from clients and web servers, so parsing is bounded: sizes,
//! pages and zip entries have limits ([`Limits`]) checked while reading, and
//! [`extract_guarded`] runs a parser on a blocking thread, turns a panic into
//! an error and gives up after a time limit, so a hostile file is a clear
//! error and never a crashed worker or a request that hangs.

pub mod docx;
pub mod html;
pub mod pdf;

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// A piece of a document's structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Block {
    /// A heading of level 1 (highest) to 6; 0 is a document's title (a
    /// DOCX "Title" paragraph), above its level-1 headings.
    Heading {
        level: u8,
        text: String,
        page: Option<u32>,
    },
    /// A paragraph (a list item, a table row, a block of text).
    Para { text: String, page: Option<u32> },
}

impl Block {
    /// The block's text.
    pub fn text(&self) -> &str {
        match self {
            Block::Heading { text, .. } | Block::Para { text, .. } => text,
        }
    }
}

/// What was read out of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub blocks: Vec<Block>,
    /// Pages of a paged document (PDF).
    pub pages: Option<u32>,
    /// The document's own title, when it states one (HTML `<title>`).
    pub title: Option<String>,
}

impl Extracted {
    /// Characters of text in all blocks.
    pub fn text_chars(&self) -> usize {
        self.blocks.iter().map(|b| b.text().chars().count()).sum()
    }
}

/// Bounds on what a document may cost to read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Pages of a PDF.
    pub max_pages: u32,
    /// Bytes of extracted text.
    pub max_text_bytes: usize,
    /// Bytes one PDF stream (or a page's content) may decompress to.
    pub max_stream_bytes: usize,
    /// Entries in a DOCX (zip) archive.
    pub max_zip_entries: usize,
    /// Bytes one DOCX part may decompress to.
    pub max_part_bytes: u64,
    /// Wall-clock time for one document.
    pub timeout: Duration,
}

impl Limits {
    /// The limits for a page budget and a time budget, the rest fixed.
    pub fn new(max_pages: u32, timeout: Duration) -> Self {
        Self {
            max_pages,
            max_text_bytes: 10 * 1024 * 1024,
            max_stream_bytes: 32 * 1024 * 1024,
            max_zip_entries: 2_000,
            max_part_bytes: 32 * 1024 * 1024,
            timeout,
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// Not a readable file of its type.
    #[error("{0}")]
    Corrupt(String),
    /// Protected by a password.
    #[error("{0}")]
    Encrypted(String),
    /// More pages than allowed.
    #[error("The PDF has {pages} pages; at most {limit} are accepted")]
    TooManyPages { pages: u32, limit: u32 },
    /// Expands past a limit (a zip bomb, a huge stream, too much text).
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: u64 },
    /// Took longer than allowed.
    #[error("The document took longer than {0} ms to read")]
    Timeout(u128),
    /// The parser failed unexpectedly (a panic, caught).
    #[error("The document could not be parsed")]
    Failed,
}

impl ExtractError {
    /// A short machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ExtractError::Corrupt(_) => "corrupt",
            ExtractError::Encrypted(_) => "encrypted",
            ExtractError::TooManyPages { .. } => "too_many_pages",
            ExtractError::TooLarge { .. } => "too_large",
            ExtractError::Timeout(_) => "timeout",
            ExtractError::Failed => "unparseable",
        }
    }
}

impl From<ExtractError> for ApiError {
    fn from(e: ExtractError) -> Self {
        match &e {
            ExtractError::TooManyPages { pages, limit } => ApiError::ContentTooLarge {
                message: e.to_string(),
                details: json!({"field": "file", "reason": e.reason(), "pages": pages, "limit_pages": limit}),
            },
            ExtractError::TooLarge { limit, .. } => ApiError::ContentTooLarge {
                message: e.to_string(),
                details: json!({"field": "file", "reason": e.reason(), "limit": limit}),
            },
            _ => ApiError::BadRequest {
                message: e.to_string(),
                details: Some(json!({"field": "file", "reason": e.reason()})),
            },
        }
    }
}

/// Which parser reads a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Html,
}

/// Runs the parser of `format` on a blocking thread within `limits.timeout`;
/// a panic inside the parser is an error, not a crash (see [`guarded`]).
pub async fn extract_guarded(
    format: Format,
    bytes: Vec<u8>,
    limits: Limits,
) -> Result<Extracted, ExtractError> {
    guarded(limits.timeout, move || extract(format, &bytes, &limits)).await
}

/// Runs a parser on a blocking thread within `timeout`, a panic caught as
/// [`ExtractError::Failed`]. (A parser past its time keeps its thread until
/// it returns; the caller has its answer.)
pub async fn guarded<T: Send + 'static>(
    timeout: Duration,
    parse: impl FnOnce() -> Result<T, ExtractError> + Send + 'static,
) -> Result<T, ExtractError> {
    let task = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).unwrap_or_else(|_| {
            tracing::warn!("document parser panicked");
            Err(ExtractError::Failed)
        })
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ExtractError::Failed),
        Err(_) => Err(ExtractError::Timeout(timeout.as_millis())),
    }
}

/// Runs the parser of `format` on this thread (see [`extract_guarded`]).
pub fn extract(format: Format, bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    let mut out = match format {
        Format::Pdf => pdf::extract(bytes, limits)?,
        Format::Docx => docx::extract(bytes, limits)?,
        Format::Html => html::extract(&decode_text(bytes, None)).0,
    };
    clean(&mut out);
    let bytes: usize = out.blocks.iter().map(|b| b.text().len()).sum();
    if bytes > limits.max_text_bytes {
        return Err(ExtractError::TooLarge {
            what: "The extracted text",
            limit: limits.max_text_bytes as u64,
        });
    }
    Ok(out)
}

/// Drops control characters (Postgres refuses NUL in text) and blocks left empty.
pub fn clean(doc: &mut Extracted) {
    for b in &mut doc.blocks {
        let (Block::Heading { text, .. } | Block::Para { text, .. }) = b;
        if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
            *text = squash(&text.replace(|c: char| c.is_control() && !c.is_whitespace(), ""));
        }
    }
    doc.blocks.retain(|b| !b.text().is_empty());
    if let Some(t) = &mut doc.title {
        t.retain(|c| !c.is_control());
    }
}

/// Text of bytes: UTF-8 when valid, else the charset named by `label` or a
/// `<meta charset>` near the start, else windows-1252.
pub fn decode_text(bytes: &[u8], label: Option<&str>) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    let meta = || {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).to_ascii_lowercase();
        let at = head.find("charset=")? + "charset=".len();
        let rest = head[at..].trim_start_matches(['"', '\'']);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    };
    let encoding = label
        .map(str::to_owned)
        .or_else(meta)
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::WINDOWS_1252);
    encoding.decode(bytes).0.into_owned()
}

/// Collapses runs of whitespace to one space and trims.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_decoded_from_utf8_or_the_named_charset() {
        assert_eq!(decode_text("héllo".as_bytes(), None), "héllo");
        assert_eq!(decode_text(b"caf\xe9", None), "café");
        assert_eq!(decode_text(b"\xEF\xBB\xBFhi", None), "hi");
        let latin2 = b"<meta charset=\"iso-8859-2\"><p>\xb1</p>";
        assert!(decode_text(latin2, None).contains('ą'));
    }

    #[tokio::test]
    async fn a_hostile_file_is_an_error_never_a_panic() {
        let limits = Limits::new(10, Duration::from_secs(5));
        for format in [Format::Pdf, Format::Docx] {
            for bytes in [
                &b""[..],
                b"%PDF-1.7\n%%EOF",
                b"PK\x03\x04garbage",
                &[0xff; 300],
            ] {
                let r = extract_guarded(format, bytes.to_vec(), limits).await;
                assert!(
                    matches!(r, Err(ExtractError::Corrupt(_))),
                    "{format:?} {bytes:?}: {r:?}"
                );
            }
        }
    }
}
