//! Sitemaps (sitemaps.org): the `<loc>` URLs of a `<urlset>`, or the nested
//! sitemaps of a `<sitemapindex>`.

use quick_xml::events::Event;

/// What a sitemap lists.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sitemap {
    /// Page URLs (`<urlset>`).
    pub pages: Vec<String>,
    /// Further sitemaps (`<sitemapindex>`).
    pub sitemaps: Vec<String>,
}

/// Reads a sitemap, keeping at most `max` URLs of each kind.
pub fn parse(xml: &str, max: usize) -> Sitemap {
    let mut out = Sitemap::default();
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_index = false;
    let mut in_loc = false;
    let mut loc = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"sitemapindex" => in_index = true,
                b"loc" => {
                    in_loc = true;
                    loc.clear();
                }
                _ => {}
            },
            Ok(Event::Text(t)) if in_loc => loc.push_str(&t.decode().unwrap_or_default()),
            Ok(Event::CData(t)) if in_loc => loc.push_str(&t.decode().unwrap_or_default()),
            Ok(Event::GeneralRef(r)) if in_loc => {
                if let Ok(name) = r.decode()
                    && let Some(s) = quick_xml::escape::resolve_predefined_entity(&name)
                {
                    loc.push_str(s);
                }
            }
            Ok(Event::End(e)) if e.local_name().as_ref() == b"loc" => {
                in_loc = false;
                let list = if in_index {
                    &mut out.sitemaps
                } else {
                    &mut out.pages
                };
                let url = loc.trim();
                if !url.is_empty() && list.len() < max {
                    list.push(url.to_owned());
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlsets_and_indexes() {
        let set = r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc> https://a.example/x?a=1&amp;b=2 </loc></url><url><loc>https://a.example/y</loc></url></urlset>"#;
        assert_eq!(
            parse(set, 10).pages,
            vec!["https://a.example/x?a=1&b=2", "https://a.example/y"]
        );
        assert_eq!(parse(set, 1).pages.len(), 1);
        let index =
            "<sitemapindex><sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>";
        assert_eq!(
            parse(index, 10),
            Sitemap {
                pages: vec![],
                sitemaps: vec!["https://a.example/s1.xml".into()]
            }
        );
        assert_eq!(parse("<<<not xml", 10), Sitemap::default());
    }
}
