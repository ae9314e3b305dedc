//! Real PDF, DOCX and HTML files built from text for the tests: PDFs with
//! lopdf (Helvetica, headings set larger, lines wrapped, pages broken as a
//! word processor would), DOCX as a zip of WordprocessingML with heading
//! styles, HTML pages with the navigation, scripts and footers that real
//! pages carry. Also the hostile ones: a scan (an image, no text), an
//! encrypted PDF, zip bombs named `.docx`.

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use std::io::Write;

/// A section: a heading and its paragraphs (separated by blank lines).
pub type Section<'a> = (&'a str, &'a str);

const PAGE_TOP: f32 = 760.0;
const PAGE_BOTTOM: f32 = 60.0;
const WRAP: usize = 88;

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Lines of a PDF: (font size, text, blank space before).
struct PdfLines {
    pages: Vec<Vec<Operation>>,
    y: f32,
}

impl PdfLines {
    fn line(&mut self, size: f32, text: &str, gap: f32) {
        let height = size * 1.35;
        if self.pages.is_empty() || self.y - gap - height < PAGE_BOTTOM {
            self.pages.push(Vec::new());
            self.y = PAGE_TOP;
        } else {
            self.y -= gap;
        }
        self.y -= height;
        let ops = self.pages.last_mut().expect("a page");
        ops.push(Operation::new("BT", vec![]));
        ops.push(Operation::new("Tf", vec!["F1".into(), size.into()]));
        ops.push(Operation::new("Td", vec![72.into(), self.y.into()]));
        ops.push(Operation::new(
            "Tj",
            vec![Object::string_literal(text.as_bytes().to_vec())],
        ));
        ops.push(Operation::new("ET", vec![]));
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = PAGE_TOP;
    }
}

/// Pages of operations as a PDF document (lopdf, Helvetica, WinAnsi).
fn pdf_document(
    pages: Vec<Vec<Operation>>,
    extra_resources: impl FnOnce(&mut Document) -> Option<lopdf::Dictionary>,
) -> Document {
    let mut doc = Document::with_version("1.5");
    let extra_resources = extra_resources(&mut doc);
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let mut resources = dictionary! { "Font" => dictionary! { "F1" => font_id } };
    if let Some(extra) = extra_resources {
        for (k, v) in extra {
            resources.set(k, v);
        }
    }
    let resources_id = doc.add_object(resources);
    let mut kids = Vec::new();
    for ops in pages {
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(
            dictionary! {},
            content.encode().expect("content"),
        ));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set(
        "ID",
        vec![
            Object::string_literal(b"voxplane-test-id".to_vec()),
            Object::string_literal(b"voxplane-test-id".to_vec()),
        ],
    );
    doc
}

fn save(mut doc: Document) -> Vec<u8> {
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save pdf");
    out
}

/// A PDF: a title, then each section's heading (larger) and paragraphs;
/// `page_per_section` starts each section on a new page.
pub fn pdf(title: &str, sections: &[Section<'_>], page_per_section: bool) -> Vec<u8> {
    let mut l = PdfLines {
        pages: Vec::new(),
        y: PAGE_TOP,
    };
    l.line(20.0, title, 0.0);
    for (i, (heading, body)) in sections.iter().enumerate() {
        if page_per_section && i > 0 {
            l.new_page();
        }
        l.line(15.0, heading, 14.0);
        for para in body.split("\n\n") {
            for (j, line) in wrap(para, WRAP).iter().enumerate() {
                l.line(10.5, line, if j == 0 { 8.0 } else { 0.0 });
            }
        }
    }
    save(pdf_document(l.pages, |_| None))
}

/// A PDF of `n` pages with one line each.
pub fn pdf_pages(n: usize) -> Vec<u8> {
    let pages = (0..n)
        .map(|i| {
            let mut l = PdfLines {
                pages: Vec::new(),
                y: PAGE_TOP,
            };
            l.line(
                11.0,
                &format!("This is page {} of the long manual.", i + 1),
                0.0,
            );
            l.pages.remove(0)
        })
        .collect();
    save(pdf_document(pages, |_| None))
}

/// A scanned PDF: each page only draws an image (no text operators).
pub fn scanned_pdf(pages: usize) -> Vec<u8> {
    let (w, h) = (64u32, 64u32);
    let pixels: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
    let image = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => i64::from(w),
            "Height" => i64::from(h),
            "ColorSpace" => "DeviceGray",
            "BitsPerComponent" => 8,
        },
        pixels,
    );
    let ops = || {
        vec![
            Operation::new("q", vec![]),
            Operation::new(
                "cm",
                vec![
                    500.into(),
                    0.into(),
                    0.into(),
                    700.into(),
                    50.into(),
                    50.into(),
                ],
            ),
            Operation::new("Do", vec!["Im1".into()]),
            Operation::new("Q", vec![]),
        ]
    };
    let doc = pdf_document((0..pages).map(|_| ops()).collect(), |doc| {
        let image_id = doc.add_object(image);
        Some(dictionary! { "XObject" => dictionary! { "Im1" => image_id } })
    });
    save(doc)
}

/// A PDF encrypted with a user password (RC4, 128-bit).
pub fn encrypted_pdf(text: &str) -> Vec<u8> {
    let mut l = PdfLines {
        pages: Vec::new(),
        y: PAGE_TOP,
    };
    l.line(11.0, text, 0.0);
    let mut doc = pdf_document(l.pages, |_| None);
    let version = lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner-secret",
        user_password: "user-secret",
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    };
    let state = lopdf::EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypt");
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save pdf");
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/></Types>"#;
const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style><w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style><w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style></w:styles>"#;

fn para(style: Option<&str>, text: &str) -> String {
    let ppr = style
        .map(|s| format!("<w:pPr><w:pStyle w:val=\"{s}\"/></w:pPr>"))
        .unwrap_or_default();
    // Runs split mid-sentence, as Word writes them.
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let (a, b) = text.split_at(mid);
    format!(
        "<w:p>{ppr}<w:r><w:t xml:space=\"preserve\">{}</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
        xml_escape(a),
        xml_escape(b)
    )
}

/// A zip of (name, bytes) entries, deflated.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).expect("zip entry");
        w.write_all(bytes).expect("zip write");
    }
    w.finish().expect("zip").into_inner()
}

/// A DOCX: a title, then each section as a Heading 1 and its paragraphs.
pub fn docx(title: &str, sections: &[Section<'_>]) -> Vec<u8> {
    let mut body = para(Some("Title"), title);
    for (heading, text) in sections {
        body.push_str(&para(Some("Heading1"), heading));
        for p in text.split("\n\n") {
            body.push_str(&para(None, p));
        }
    }
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}<w:sectPr/></w:body></w:document>"#
    );
    zip(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", RELS.as_bytes()),
        ("word/document.xml", document.as_bytes()),
        ("word/styles.xml", STYLES.as_bytes()),
    ])
}

/// A zip bomb named like a DOCX: `word/document.xml` inflates to `mb`
/// megabytes of spaces.
pub fn docx_bomb(mb: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("[Content_Types].xml", opts).expect("entry");
    w.write_all(CONTENT_TYPES.as_bytes()).expect("write");
    w.start_file("word/document.xml", opts).expect("entry");
    w.write_all(b"<?xml version=\"1.0\"?><w:document xmlns:w=\"x\"><w:body><w:p><w:r><w:t>")
        .expect("write");
    let block = vec![b' '; 1024 * 1024];
    for _ in 0..mb {
        w.write_all(&block).expect("write");
    }
    w.write_all(b"</w:t></w:r></w:p></w:body></w:document>")
        .expect("write");
    w.finish().expect("zip").into_inner()
}

/// A zip named like a DOCX with `n` tiny entries.
pub fn docx_with_entries(n: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        w.start_file(format!("word/media/{i}.xml"), opts)
            .expect("entry");
        w.write_all(b"x").expect("write");
    }
    w.finish().expect("zip").into_inner()
}

/// An HTML page: navigation, a script and a footer around the main content
/// (an `<h1>` title, each section an `<h2>` and its paragraphs).
pub fn html(title: &str, sections: &[Section<'_>]) -> String {
    let mut main = format!("<h1>{}</h1>", xml_escape(title));
    for (heading, text) in sections {
        main.push_str(&format!("<section><h2>{}</h2>", xml_escape(heading)));
        for p in text.split("\n\n") {
            main.push_str(&format!("<p>{}</p>", xml_escape(p)));
        }
        main.push_str("</section>");
    }
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <script>window.analytics = {{track: function() {{}}}}; var navigationSecret = 'zzqq';</script>\
         <style>body {{ font-family: sans-serif }}</style></head><body>\
         <header><a href=\"/\">Home</a> <a href=\"/about\">About us</a></header>\
         <nav><ul><li><a href=\"/pricing\">Pricing</a></li><li><a href=\"/careers\">Careers</a></li></ul></nav>\
         <main>{main}</main>\
         <aside>Subscribe to our newsletter for weekly tips.</aside>\
         <footer>Copyright 2026. All rights reserved. Privacy policy.</footer></body></html>",
        t = xml_escape(title)
    )
}
