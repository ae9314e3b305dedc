//! HTML: the main content (`<main>`, else `[role=main]`, else the only
//! `<article>`, else `<body>`) as headings and paragraphs; scripts, styles,
//! navigation, forms, hidden elements and the page's header, footer and
//! sidebars are dropped. Table rows become paragraphs of cells joined by `|`.
//! The links of the whole page are returned for the crawler.

use super::{Block, Extracted, squash};
use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};

/// Elements whose content is never text of the page.
const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "aside", "form", "svg", "iframe", "button",
    "select", "textarea", "head", "dialog", "object", "canvas", "footer",
];
/// ARIA roles of page chrome.
const SKIP_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "menu",
];
/// Elements that end a paragraph.
const BREAKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "table",
    "thead",
    "tbody",
    "blockquote",
    "pre",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "hr",
    "address",
    "details",
    "summary",
    "header",
];

fn selector(s: &str) -> Option<Selector> {
    Selector::parse(s).ok()
}

/// Reads an HTML page: its blocks, and the `href` of every link not marked
/// `nofollow`, in page order.
pub fn extract(text: &str) -> (Extracted, Vec<String>) {
    let html = Html::parse_document(text);
    let title = selector("title")
        .and_then(|s| html.select(&s).next())
        .map(|t| squash(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let first = |s: &str| selector(s).and_then(|s| html.select(&s).next());
    let only_article = selector("article").and_then(|s| {
        let mut all = html.select(&s);
        let one = all.next();
        all.next().is_none().then_some(one).flatten()
    });
    let main = first("main")
        .or_else(|| first("[role=main]"))
        .or(only_article);
    let (root, page_level) = match main {
        Some(m) => (m, false),
        None => (first("body").unwrap_or_else(|| html.root_element()), true),
    };
    let blocks = walk(root, page_level);
    let links = selector("a[href]")
        .map(|s| {
            html.select(&s)
                .filter(|a| {
                    !a.attr("rel")
                        .is_some_and(|r| r.to_ascii_lowercase().contains("nofollow"))
                })
                .filter_map(|a| a.attr("href").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (
        Extracted {
            blocks,
            pages: None,
            title,
        },
        links,
    )
}

fn skipped(el: &scraper::node::Element, page_level: bool) -> bool {
    let name = el.name();
    SKIP.contains(&name)
        || (page_level && name == "header")
        || el.attr("hidden").is_some()
        || el
            .attr("aria-hidden")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || el
            .attr("role")
            .is_some_and(|r| SKIP_ROLES.contains(&r.to_ascii_lowercase().as_str()))
}

fn heading_level(name: &str) -> Option<u8> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(d - b'0'),
        _ => None,
    }
}

/// The blocks under `root`, walked without recursion (deeply nested pages
/// cannot exhaust the stack).
fn walk(root: ElementRef<'_>, page_level: bool) -> Vec<Block> {
    let mut out = Vec::new();
    let mut text = String::new();
    // Depth inside a skipped element, and the heading being read.
    let mut skip_depth = 0usize;
    let mut heading: Option<u8> = None;
    let mut in_row = false;
    let flush = |text: &mut String, heading: Option<u8>, out: &mut Vec<Block>| {
        let t = squash(text);
        text.clear();
        if t.is_empty() {
            return;
        }
        out.push(match heading {
            Some(level) => Block::Heading {
                level,
                text: t,
                page: None,
            },
            None => Block::Para {
                text: t,
                page: None,
            },
        });
    };
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    if skip_depth > 0 || skipped(el, page_level) {
                        skip_depth += 1;
                        continue;
                    }
                    let name = el.name();
                    if let Some(level) = heading_level(name) {
                        flush(&mut text, heading, &mut out);
                        heading = Some(level);
                    } else if name == "tr" {
                        flush(&mut text, heading, &mut out);
                        in_row = true;
                    } else if matches!(name, "td" | "th") && in_row {
                        if !text.trim().is_empty() {
                            text.push_str(" | ");
                        }
                    } else if BREAKS.contains(&name) && heading.is_none() && !in_row {
                        flush(&mut text, heading, &mut out);
                    } else if name == "br" || name == "img" {
                        text.push(' ');
                    }
                }
                Node::Text(t) if skip_depth == 0 => text.push_str(t),
                _ => {}
            },
            Edge::Close(node) => {
                let Node::Element(el) = node.value() else {
                    continue;
                };
                if skip_depth > 0 {
                    skip_depth -= 1;
                    continue;
                }
                let name = el.name();
                if heading_level(name).is_some() && heading.is_some() {
                    flush(&mut text, heading, &mut out);
                    heading = None;
                } else if name == "tr" {
                    flush(&mut text, None, &mut out);
                    in_row = false;
                } else if BREAKS.contains(&name) && heading.is_none() && !in_row {
                    flush(&mut text, heading, &mut out);
                } else if matches!(name, "td" | "th" | "li" | "span" | "a") {
                    text.push(' ');
                }
            }
        }
    }
    flush(&mut text, heading, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(b: &[Block]) -> Vec<String> {
        b.iter()
            .map(|b| match b {
                Block::Heading { level, text, .. } => format!("h{level}:{text}"),
                Block::Para { text, .. } => text.clone(),
            })
            .collect()
    }

    #[test]
    fn main_content_with_headings_and_no_chrome() {
        let page = r#"<!doctype html><html><head><title> Plans &amp; prices </title>
            <style>.x{}</style><script>var secret = 1;</script></head><body>
            <header><a href="/">Home</a></header>
            <nav><a href="/docs">Docs</a> <a href="/pricing" rel="nofollow">P</a></nav>
            <main><h1>Pricing</h1><p>The <b>basic</b> plan costs 10 EUR.<br>Billed monthly.</p>
              <div hidden>invisible</div>
              <h2>Enterprise</h2><ul><li>SSO</li><li>Audit log</li></ul>
              <table><tr><th>Seats</th><th>Price</th></tr><tr><td>10</td><td>90</td></tr></table>
              <script>track()</script>
            </main><footer>© 2026</footer></body></html>"#;
        let (doc, links) = extract(page);
        assert_eq!(doc.title.as_deref(), Some("Plans & prices"));
        assert_eq!(
            texts(&doc.blocks),
            vec![
                "h1:Pricing",
                "The basic plan costs 10 EUR. Billed monthly.",
                "h2:Enterprise",
                "SSO",
                "Audit log",
                "Seats | Price",
                "10 | 90",
            ]
        );
        assert_eq!(links, vec!["/", "/docs"]);
    }

    #[test]
    fn without_main_the_body_minus_its_header_is_read() {
        let page = "<body><header><h1>Site</h1></header><h2>Topic</h2><p>Body text.</p>\
                    <div role=navigation>menu</div></body>";
        let (doc, _) = extract(page);
        assert_eq!(texts(&doc.blocks), vec!["h2:Topic", "Body text."]);
        let deep = format!("{}deep{}", "<div>".repeat(5000), "</div>".repeat(5000));
        assert_eq!(texts(&extract(&deep).0.blocks), vec!["deep"]);
    }
}
