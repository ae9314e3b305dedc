//! DOCX: `word/document.xml` out of the zip container, read with quick-xml.
//! Paragraphs become blocks; a paragraph styled as a heading (its style's
//! outline level, or a style named "heading N", or "Title": level 0, above
//! the headings) becomes a heading;
//! a table row becomes one paragraph of its cells joined by `|`.
//!
//! A zip bomb is refused while reading: the entry count is read from the
//! archive's end record before the directory is parsed, and each part is
//! decompressed through a reader that stops one byte past
//! [`Limits::max_part_bytes`], whatever sizes the archive declares.

use super::{Block, ExtractError, Extracted, Limits, decode_text, squash};
use quick_xml::events::Event;
use std::collections::HashMap;
use std::io::{Cursor, Read};

/// The OLE compound-file signature: password-protected Office files (and
/// legacy `.doc`) are stored in it instead of a zip.
const OLE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Reads a DOCX document.
pub fn extract(bytes: &[u8], limits: &Limits) -> Result<Extracted, ExtractError> {
    if bytes.starts_with(OLE) {
        return Err(ExtractError::Encrypted(
            "The file is a password-protected (or legacy .doc) Word document; \
             save it as an unprotected .docx"
                .into(),
        ));
    }
    if !bytes.starts_with(b"PK") {
        return Err(not_docx());
    }
    if declared_entries(bytes).is_some_and(|n| n > limits.max_zip_entries) {
        return Err(too_many_entries(limits));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| not_docx())?;
    if zip.len() > limits.max_zip_entries {
        return Err(too_many_entries(limits));
    }
    let document = part(&mut zip, "word/document.xml", limits)?.ok_or_else(not_docx)?;
    let styles = match part(&mut zip, "word/styles.xml", limits)? {
        Some(xml) => heading_styles(&xml),
        None => HashMap::new(),
    };
    Ok(Extracted {
        blocks: blocks(&document, &styles)?,
        pages: None,
        title: None,
    })
}

fn not_docx() -> ExtractError {
    ExtractError::Corrupt("The file is not a readable DOCX document".into())
}

fn too_many_entries(limits: &Limits) -> ExtractError {
    ExtractError::TooLarge {
        what: "The number of entries in the DOCX archive",
        limit: limits.max_zip_entries as u64,
    }
}

/// The entry count of the zip's end-of-central-directory record (None when
/// not found, or when it defers to a zip64 record).
fn declared_entries(bytes: &[u8]) -> Option<usize> {
    let tail_start = bytes.len().saturating_sub(22 + 65_535);
    let tail = &bytes[tail_start..];
    let at = tail.windows(4).rposition(|w| w == b"PK\x05\x06")?;
    let field = tail.get(at + 10..at + 12)?;
    let n = u16::from_le_bytes([field[0], field[1]]);
    (n != u16::MAX).then_some(usize::from(n))
}

/// One part of the archive as text, decompressed within the limit; None when
/// absent.
fn part(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limits: &Limits,
) -> Result<Option<String>, ExtractError> {
    let entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(zip::result::ZipError::UnsupportedArchive(why)) if why.contains("assword") => {
            return Err(ExtractError::Encrypted(
                "The DOCX document is encrypted; upload an unprotected copy".into(),
            ));
        }
        Err(_) => return Err(not_docx()),
    };
    let mut data = Vec::new();
    entry
        .take(limits.max_part_bytes + 1)
        .read_to_end(&mut data)
        .map_err(|_| not_docx())?;
    if data.len() as u64 > limits.max_part_bytes {
        return Err(ExtractError::TooLarge {
            what: "A part of the DOCX document, decompressed,",
            limit: limits.max_part_bytes,
        });
    }
    Ok(Some(decode_text(&data, None)))
}

/// The value of a `w:val` attribute.
fn val(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.local_name().as_ref() == b"val")
            .then(|| String::from_utf8_lossy(&a.value).into_owned())
    })
}

/// The heading level of a style's name ("heading 2" → 2, "Title" → 0).
fn level_of_name(name: &str) -> Option<u8> {
    let n = name.trim().to_ascii_lowercase().replace(' ', "");
    if n == "title" {
        return Some(0);
    }
    n.strip_prefix("heading")?
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=9).contains(l))
        .map(|l| l.min(6))
}

/// Style id → heading level, from `styles.xml`.
fn heading_styles(xml: &str) -> HashMap<String, u8> {
    let mut out = HashMap::new();
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut id, mut name, mut outline): (Option<String>, Option<String>, Option<u8>) =
        (None, None, None);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"style" => {
                    id = e.attributes().flatten().find_map(|a| {
                        (a.key.local_name().as_ref() == b"styleId")
                            .then(|| String::from_utf8_lossy(&a.value).into_owned())
                    });
                    (name, outline) = (None, None);
                }
                b"name" => name = val(&e),
                b"outlineLvl" => {
                    outline = val(&e).and_then(|v| v.parse::<u8>().ok()).map(|l| l + 1);
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.local_name().as_ref() == b"style" => {
                let level = name
                    .as_deref()
                    .and_then(level_of_name)
                    .or(outline.filter(|l| *l <= 6));
                if let (Some(id), Some(level)) = (id.take(), level) {
                    out.insert(id, level);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// The paragraphs and headings of `document.xml`.
fn blocks(xml: &str, styles: &HashMap<String, u8>) -> Result<Vec<Block>, ExtractError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut text = String::new();
    let mut style: Option<String> = None;
    let mut outline: Option<u8> = None;
    let mut in_text = false;
    // Inside a table row: its cells, joined when the row ends.
    let mut row: Option<Vec<String>> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ExtractError::Corrupt(format!("The DOCX document is damaged: {e}")))?;
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"p" => {
                    text.clear();
                    (style, outline) = (None, None);
                }
                b"pStyle" => style = val(&e),
                b"outlineLvl" => {
                    outline = val(&e).and_then(|v| v.parse::<u8>().ok()).map(|l| l + 1);
                }
                b"t" => in_text = true,
                b"tab" => text.push(' '),
                b"br" | b"cr" => text.push('\n'),
                b"tr" => row = Some(Vec::new()),
                b"tc" => {
                    if let Some(cells) = row.as_mut() {
                        cells.push(String::new());
                    }
                }
                _ => {}
            },
            Event::Text(t) if in_text => {
                text.push_str(&t.decode().unwrap_or_default());
            }
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else if let Ok(name) = r.decode()
                    && let Some(s) = quick_xml::escape::resolve_predefined_entity(&name)
                {
                    text.push_str(s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => {
                    let para = squash(&text);
                    text.clear();
                    if para.is_empty() {
                        continue;
                    }
                    if let Some(cell) = row.as_mut().and_then(|cells| cells.last_mut()) {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(&para);
                        continue;
                    }
                    let level = style
                        .as_deref()
                        .and_then(|s| styles.get(s).copied().or_else(|| level_of_name(s)))
                        .or(outline.filter(|l| *l <= 6));
                    out.push(match level {
                        Some(level) => Block::Heading {
                            level,
                            text: para,
                            page: None,
                        },
                        None => Block::Para {
                            text: para,
                            page: None,
                        },
                    });
                }
                b"tr" => {
                    let cells: Vec<String> = row
                        .take()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|c| !c.is_empty())
                        .collect();
                    if !cells.is_empty() {
                        out.push(Block::Para {
                            text: cells.join(" | "),
                            page: None,
                        });
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_headings_and_tables() {
        let styles = r#"<w:styles xmlns:w="x"><w:style w:styleId="Kop1"><w:name w:val="heading 1"/></w:style>
            <w:style w:styleId="Body"><w:name w:val="Normal"/></w:style></w:styles>"#;
        let doc = r#"<w:document xmlns:w="x"><w:body>
            <w:p><w:pPr><w:pStyle w:val="Kop1"/></w:pPr><w:r><w:t>Returns</w:t></w:r></w:p>
            <w:p><w:r><w:t xml:space="preserve">Send it back </w:t></w:r><w:r><w:t>within 30 days &amp; keep the receipt.</w:t></w:r></w:p>
            <w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Fees</w:t></w:r></w:p>
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>Item</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Fee</w:t></w:r></w:p></w:tc></w:tr>
            <w:tr><w:tc><w:p><w:r><w:t>Phone</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>5 EUR</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
            <w:p/></w:body></w:document>"#;
        let b = blocks(doc, &heading_styles(styles)).expect("blocks");
        let texts: Vec<(&str, bool)> = b
            .iter()
            .map(|b| (b.text(), matches!(b, Block::Heading { .. })))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("Returns", true),
                ("Send it back within 30 days & keep the receipt.", false),
                ("Fees", true),
                ("Item | Fee", false),
                ("Phone | 5 EUR", false),
            ]
        );
        assert!(matches!(b[2], Block::Heading { level: 2, .. }));
    }

    #[test]
    fn the_end_record_gives_the_entry_count() {
        let mut z = b"PK\x03\x04junk".to_vec();
        z.extend_from_slice(b"PK\x05\x06\0\0\0\0\x10\x27\x10\x27\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(declared_entries(&z), Some(10_000));
        assert_eq!(declared_entries(b"PK\x03\x04"), None);
    }
}
