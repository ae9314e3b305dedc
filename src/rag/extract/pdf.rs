//! PDF: the text layer, page by page (lopdf). Lines are rebuilt from the
//! content stream's text operators; a line set in a font clearly larger than
//! the document's body text is a heading (levels by size); the other lines
//! join into paragraphs, split where the vertical gap is larger than a line.
//!
//! Streams decompress within [`Limits::max_stream_bytes`]; a document locked
//! with a user password is [`ExtractError::Encrypted`] (one with only an
//! owner password opens with the empty user password, as readers do); a
//! document whose pages carry no text (a scan) extracts to no blocks, with
//! its page count, which the caller reports as "no text layer".

use super::{Block, ExtractError, Extracted, Limits, squash};
use lopdf::content::Content;
use lopdf::{DecompressError, Document, Encoding, LoadOptions, Object};
use std::collections::BTreeMap;

/// One line of text as laid out on the page.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    /// Effective font size.
    size: f32,
    /// Baseline (text space after the text matrix; larger is higher).
    y: f32,
    page: u32,
}

/// Reads a PDF's text layer.
pub fn extract(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    if !bytes[..bytes.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        return Err(ExtractError::Corrupt("The file is not a PDF".into()));
    }
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_stream_bytes),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(bytes, options).map_err(|e| match e {
        lopdf::Error::InvalidPassword
        | lopdf::Error::Decryption(_)
        | lopdf::Error::UnsupportedSecurityHandler(_) => encrypted(),
        lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. }) => {
            ExtractError::TooLarge {
                what: "A stream of the PDF",
                limit: limits.max_stream_bytes as u64,
            }
        }
        other => ExtractError::Corrupt(format!("The PDF could not be read: {other}")),
    })?;
    if doc.is_encrypted() {
        return Err(encrypted());
    }
    let pages = doc.get_pages();
    let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    if count > limits.max_pages {
        return Err(ExtractError::TooManyPages {
            pages: count,
            limit: limits.max_pages,
        });
    }
    if count == 0 {
        return Err(ExtractError::Corrupt("The PDF has no pages".into()));
    }
    let mut lines = Vec::new();
    let mut text_bytes = 0usize;
    for (number, id) in pages {
        let before = lines.len();
        page_lines(&doc, number, id, limits, &mut lines)?;
        text_bytes += lines[before..].iter().map(|l| l.text.len()).sum::<usize>();
        if text_bytes > limits.max_text_bytes {
            return Err(ExtractError::TooLarge {
                what: "The extracted text",
                limit: limits.max_text_bytes as u64,
            });
        }
    }
    Ok(Extracted {
        blocks: blocks(lines),
        pages: Some(count),
        title: None,
    })
}

fn encrypted() -> ExtractError {
    ExtractError::Encrypted(
        "The PDF is encrypted with a password; upload an unprotected copy".into(),
    )
}

fn number(o: &Object) -> Option<f32> {
    o.as_float().ok().filter(|f| f.is_finite())
}

/// The text lines of one page, in content order.
fn page_lines(
    doc: &Document,
    page: u32,
    id: lopdf::ObjectId,
    limits: &Limits,
    out: &mut Vec<Line>,
) -> Result<(), ExtractError> {
    let encodings: BTreeMap<Vec<u8>, Encoding> = doc
        .get_page_fonts(id)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, font)| {
            font.get_font_encoding_with_limit(doc, limits.max_stream_bytes)
                .ok()
                .map(|e| (name, e))
        })
        .collect();
    let content = match doc.get_page_content_with_limit(id, limits.max_stream_bytes) {
        Ok(c) => c,
        Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
            return Err(ExtractError::TooLarge {
                what: "A page of the PDF",
                limit: limits.max_stream_bytes as u64,
            });
        }
        // A page whose content cannot be read contributes no text.
        Err(_) => return Ok(()),
    };
    let mut font: Option<&Encoding> = None;
    let (mut size, mut scale, mut y, mut leading) = (12.0f32, 1.0f32, 0.0f32, 0.0f32);
    let mut cur = Line {
        text: String::new(),
        size: 0.0,
        y: 0.0,
        page,
    };
    let flush = |cur: &mut Line, out: &mut Vec<Line>| {
        let text = squash(&cur.text);
        if !text.is_empty() {
            out.push(Line {
                text,
                ..cur.clone()
            });
        }
        cur.text.clear();
    };
    for op in Content::decode_iter(&content) {
        // A damaged stream ends the page's text where it breaks.
        let Ok(op) = op else { break };
        let args = &op.operands;
        match op.operator.as_str() {
            "BT" => {
                flush(&mut cur, out);
                (scale, y) = (1.0, 0.0);
            }
            "Tf" => {
                font = args
                    .first()
                    .and_then(|n| n.as_name().ok())
                    .and_then(|n| encodings.get(n));
                size = args.get(1).and_then(number).unwrap_or(size).abs();
            }
            "TL" => leading = args.first().and_then(number).unwrap_or(leading),
            "Tm" if args.len() == 6 => {
                let (c, d) = (number(&args[2]), number(&args[3]));
                let f = number(&args[5]).unwrap_or(y);
                scale = c.zip(d).map_or(1.0, |(c, d)| c.hypot(d)).max(0.01);
                if (f - y).abs() > 0.5 {
                    flush(&mut cur, out);
                }
                y = f;
            }
            "Td" | "TD" => {
                let ty = args.get(1).and_then(number).unwrap_or(0.0);
                if op.operator == "TD" {
                    leading = -ty;
                }
                if ty.abs() > 0.01 {
                    flush(&mut cur, out);
                    y += ty * scale;
                }
            }
            "T*" => {
                flush(&mut cur, out);
                y -= leading * scale;
            }
            "Tj" | "TJ" | "'" | "\"" => {
                if matches!(op.operator.as_str(), "'" | "\"") {
                    flush(&mut cur, out);
                    y -= leading * scale;
                }
                if cur.text.is_empty() {
                    (cur.size, cur.y) = (size * scale, y);
                }
                let shown = if op.operator == "\"" {
                    args.get(2)
                } else {
                    args.first()
                };
                if let Some(shown) = shown {
                    show(&mut cur.text, font, shown);
                }
            }
            _ => {}
        }
    }
    flush(&mut cur, out);
    Ok(())
}

/// Appends the text of a `Tj` string or a `TJ` array (a large negative
/// adjustment inside a `TJ` array is a word space).
fn show(out: &mut String, font: Option<&Encoding>, shown: &Object) {
    let string =
        |out: &mut String, bytes: &[u8]| match font.map(|e| Document::decode_text(e, bytes)) {
            Some(Ok(s)) => out.push_str(&s),
            _ => out.extend(bytes.iter().map(|b| char::from(*b))),
        };
    match shown {
        Object::String(bytes, _) => string(out, bytes),
        Object::Array(items) => {
            for item in items {
                match item {
                    Object::String(bytes, _) => string(out, bytes),
                    other if number(other).is_some_and(|n| n < -200.0) => out.push(' '),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Headings and paragraphs out of the lines of every page.
fn blocks(lines: Vec<Line>) -> Vec<Block> {
    // The body size: the size that sets the most characters.
    let mut by_size: BTreeMap<i64, usize> = BTreeMap::new();
    for l in &lines {
        *by_size.entry(key(l.size)).or_default() += l.text.chars().count();
    }
    let body = by_size
        .iter()
        .max_by_key(|(k, n)| (**n, -**k))
        .map_or(0, |(k, _)| *k);
    let is_heading =
        |l: &Line| key(l.size) as f64 >= body as f64 * 1.15 && l.text.chars().count() <= 150;
    let mut heading_sizes: Vec<i64> = lines
        .iter()
        .filter(|l| is_heading(l))
        .map(|l| key(l.size))
        .collect();
    heading_sizes.sort_unstable_by(|a, b| b.cmp(a));
    heading_sizes.dedup();
    let level = |l: &Line| {
        let i = heading_sizes
            .iter()
            .position(|s| *s == key(l.size))
            .unwrap_or(0);
        u8::try_from(i + 1).unwrap_or(6).min(6)
    };
    let mut out = Vec::new();
    let mut para = String::new();
    let mut last: Option<&Line> = None;
    let flush = |para: &mut String, page: u32, out: &mut Vec<Block>| {
        if !para.trim().is_empty() {
            out.push(Block::Para {
                text: std::mem::take(para),
                page: Some(page),
            });
        }
        para.clear();
    };
    for l in &lines {
        if let Some(prev) = last {
            let new_page = prev.page != l.page;
            let gap = (prev.y - l.y).abs();
            let line_height = prev.size.max(l.size).max(1.0) * 1.6;
            if new_page || is_heading(l) || is_heading(prev) || gap > line_height {
                flush(&mut para, prev.page, &mut out);
            }
        }
        if is_heading(l) {
            out.push(Block::Heading {
                level: level(l),
                text: l.text.clone(),
                page: Some(l.page),
            });
        } else if para.is_empty() {
            para.push_str(&l.text);
        } else if para.ends_with('-') && l.text.starts_with(char::is_lowercase) {
            para.pop();
            para.push_str(&l.text);
        } else {
            para.push(' ');
            para.push_str(&l.text);
        }
        last = Some(l);
    }
    if let Some(prev) = last {
        flush(&mut para, prev.page, &mut out);
    }
    out
}

/// A font size in tenths of a point, for grouping.
fn key(size: f32) -> i64 {
    (size * 10.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, size: f32, y: f32, page: u32) -> Line {
        Line {
            text: text.into(),
            size,
            y,
            page,
        }
    }

    #[test]
    fn larger_lines_are_headings_and_gaps_split_paragraphs() {
        let lines = vec![
            line("Refund policy", 18.0, 750.0, 1),
            line("Money comes back within five", 11.0, 720.0, 1),
            line("business days of the request.", 11.0, 706.0, 1),
            line("A second para-", 11.0, 670.0, 1),
            line("graph starts here.", 11.0, 656.0, 1),
            line("Exceptions", 14.0, 620.0, 1),
            line("Sale items are final.", 11.0, 600.0, 1),
            line("Continued on page two.", 11.0, 750.0, 2),
        ];
        let b = blocks(lines);
        assert_eq!(
            b,
            vec![
                Block::Heading {
                    level: 1,
                    text: "Refund policy".into(),
                    page: Some(1)
                },
                Block::Para {
                    text: "Money comes back within five business days of the request.".into(),
                    page: Some(1)
                },
                Block::Para {
                    text: "A second paragraph starts here.".into(),
                    page: Some(1)
                },
                Block::Heading {
                    level: 2,
                    text: "Exceptions".into(),
                    page: Some(1)
                },
                Block::Para {
                    text: "Sale items are final.".into(),
                    page: Some(1)
                },
                Block::Para {
                    text: "Continued on page two.".into(),
                    page: Some(2)
                },
            ]
        );
    }
}
