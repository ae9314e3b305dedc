//! The web-source worker: claims a due source (a lease, not a held lock),
//! reads the site's `robots.txt` (and sitemap when asked), then fetches the
//! seed page and, for a crawl, the same-site pages it links to, breadth
//! first, within the source's depth and page limits. Pages known from
//! earlier crawls are fetched again with their validators (`If-None-Match`,
//! `If-Modified-Since`): a 304, or a body with the same SHA-256 as before,
//! leaves the page's chunks as they are; only changed pages are re-embedded.
//! Every fetch runs with no transaction open; each page's outcome is one
//! statement, and indexing uses the documents service's own transactions.

use super::fetch::{Fetched, Fetcher, Validators};
use super::robots::{AGENT, Robots};
use super::sitemap;
use super::store::{self, KbPageStatus, KbSourceStatus, PageOutcome, Source};
use crate::db::kb_documents;
use crate::db::knowledge_bases::{self, KnowledgeBase};
use crate::error::ApiError;
use crate::knowledge::documents::service::{self, Origin, Outcome};
use crate::rag::documents::Kind;
use crate::rag::extract::{self, Block, ExtractError, Extracted, Format, html};
use crate::rag::indexer;
use crate::state::AppState;
use diesel_async::AsyncConnection;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use url::Url;

/// How long a claim holds a source; renewed after every page.
const LEASE_SECS: i64 = 300;
/// How often an idle worker looks for due sources.
const POLL: Duration = Duration::from_secs(5);
/// Sitemaps read per crawl (an index and the sitemaps it names).
const MAX_SITEMAPS: usize = 5;

/// Spawns `kb_crawl_concurrency` crawl loops (none without an embedding
/// model: pages wait for a process that has one).
pub fn spawn(state: AppState) -> Vec<tokio::task::JoinHandle<()>> {
    if state.rag.embedder().is_err() {
        return Vec::new();
    }
    let fetcher = match fetcher(&state) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "web sources: no HTTP client; crawling is off");
            return Vec::new();
        }
    };
    (0..state.settings.kb_crawl_concurrency)
        .map(|_| {
            let (state, fetcher) = (state.clone(), fetcher.clone());
            tokio::spawn(async move {
                loop {
                    match run_one(&state, &fetcher).await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "web sources: crawl failed"),
                    }
                    let _ = tokio::time::timeout(POLL, state.rag.crawl_wakeup.notified()).await;
                }
            })
        })
        .collect()
}

/// The fetcher of the settings: the webhook SSRF policy, the fetch limits.
pub fn fetcher(state: &AppState) -> anyhow::Result<Fetcher> {
    Fetcher::new(
        state.webhook_allow(),
        Duration::from_millis(state.settings.kb_fetch_timeout_ms),
        state.settings.kb_fetch_max_bytes,
    )
}

/// Crawls one due source; false when none was due.
pub async fn run_one(state: &AppState, fetcher: &Fetcher) -> anyhow::Result<bool> {
    let (source, kb) = {
        let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(source) = store::claim(&mut conn, LEASE_SECS).await? else {
            return Ok(false);
        };
        let kb =
            knowledge_bases::find(&mut conn, source.project_id, source.knowledge_base_id).await?;
        (source, kb)
    };
    tracing::info!(source_id = source.id, url = %source.url, "web source: crawling");
    let crawl = Crawl {
        state,
        fetcher,
        kb: &kb,
        source: &source,
    };
    let (status, error) = crawl.run().await;
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    store::finish(&mut conn, source.id, status, error.as_deref()).await?;
    tracing::info!(source_id = source.id, status = %status, error = ?error, "web source: crawled");
    Ok(true)
}

struct Crawl<'a> {
    state: &'a AppState,
    fetcher: &'a Fetcher,
    kb: &'a KnowledgeBase,
    source: &'a Source,
}

/// The pages of one crawl: what to fetch, at which depth.
struct Frontier {
    queue: VecDeque<(Url, i32)>,
    seen: HashSet<String>,
}

impl Frontier {
    fn push(&mut self, url: Url, depth: i32) {
        if !self.seen.contains(url.as_str()) {
            self.seen.insert(url.as_str().to_owned());
            self.queue.push_back((url, depth));
        }
    }
}

impl Crawl<'_> {
    /// The crawl; the source's status and error.
    async fn run(&self) -> (KbSourceStatus, Option<String>) {
        let Ok(seed) = Url::parse(&self.source.url) else {
            return (
                KbSourceStatus::Error,
                Some("the source URL is not valid".into()),
            );
        };
        let known: HashMap<String, store::Page> = match self.state.pool.get().await {
            Ok(mut c) => store::pages(&mut c, self.source.id)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.url.clone(), p))
                .collect(),
            Err(e) => {
                return (
                    KbSourceStatus::Error,
                    Some(format!("database unavailable: {e}")),
                );
            }
        };
        let (robots, robots_error) = self.robots(&seed).await;
        let crawl = self.source.mode == "crawl";
        let mut frontier = Frontier {
            queue: VecDeque::new(),
            seen: HashSet::new(),
        };
        frontier.push(seed.clone(), 0);
        if crawl {
            if self.source.use_sitemap {
                for url in self.sitemap_pages(&seed, &robots).await {
                    frontier.push(url, 1);
                }
            }
            let mut earlier: Vec<&store::Page> = known.values().collect();
            earlier.sort_by_key(|p| (p.depth, p.id));
            for p in earlier {
                if let Ok(url) = Url::parse(&p.url) {
                    frontier.push(url, p.depth);
                }
            }
        }
        let max_pages = usize::try_from(self.source.max_pages).unwrap_or(1);
        let (mut fetched, mut failed) = (0usize, 0usize);
        let mut seed_error: Option<String> = None;
        while let Some((url, depth)) = frontier.queue.pop_front() {
            if fetched >= max_pages {
                break;
            }
            let (outcome, links) = if robots.allowed(&path_of(&url)) {
                fetched += 1;
                self.page(&url, depth, known.get(url.as_str())).await
            } else {
                let why = robots_error
                    .clone()
                    .unwrap_or_else(|| "disallowed by robots.txt".into());
                let blocked = PageOutcome {
                    depth,
                    status: KbPageStatus::Blocked,
                    error: Some(why),
                    ..PageOutcome::default()
                };
                (blocked, Vec::new())
            };
            if outcome.status == KbPageStatus::Error {
                failed += 1;
            }
            if depth == 0 && matches!(outcome.status, KbPageStatus::Error | KbPageStatus::Blocked) {
                seed_error = outcome.error.clone();
            }
            match self.record(&url, &outcome).await {
                Ok(true) => {}
                Ok(false) => return (KbSourceStatus::Error, Some("the source was deleted".into())),
                Err(e) => {
                    return (
                        KbSourceStatus::Error,
                        Some(format!("could not record a page: {e}")),
                    );
                }
            }
            if crawl && depth < self.source.max_depth {
                for link in same_site_links(&seed, &url, &links) {
                    frontier.push(link, depth + 1);
                }
            }
        }
        match (seed_error, failed) {
            (Some(e), _) => (KbSourceStatus::Error, Some(e)),
            (None, 0) => (KbSourceStatus::Ready, None),
            (None, n) => (
                KbSourceStatus::Ready,
                Some(format!("{n} of {fetched} pages failed")),
            ),
        }
    }

    /// Records a page and renews the lease; false when the source is gone.
    async fn record(&self, url: &Url, o: &PageOutcome) -> anyhow::Result<bool> {
        let mut conn = self
            .state
            .pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let kept = store::record(&mut conn, self.source.id, url.as_str(), o).await?;
        Ok(kept && store::renew(&mut conn, self.source.id, LEASE_SECS).await?)
    }

    /// The site's robots.txt, and why it blocks everything when it does.
    async fn robots(&self, seed: &Url) -> (Robots, Option<String>) {
        let Ok(url) = seed.join("/robots.txt") else {
            return (Robots::allow_all(), None);
        };
        match self.fetcher.get(&url, &Validators::default()).await {
            Ok(Fetched::Body(b)) => {
                let text = extract::decode_text(&b.bytes, None);
                (Robots::parse(&text, AGENT), None)
            }
            Ok(Fetched::Status(s)) if (400..500).contains(&s) => (Robots::allow_all(), None),
            Ok(Fetched::NotModified) => (Robots::allow_all(), None),
            Ok(Fetched::Status(s)) => (
                Robots::disallow_all(),
                Some(format!(
                    "robots.txt answered HTTP {s}; nothing is crawled until it can be read"
                )),
            ),
            Err(e) => (
                Robots::disallow_all(),
                Some(format!(
                    "robots.txt could not be fetched ({e}); nothing is crawled until it can be read"
                )),
            ),
        }
    }

    /// Same-site page URLs of the site's sitemaps (those robots.txt names,
    /// else `/sitemap.xml`).
    async fn sitemap_pages(&self, seed: &Url, robots: &Robots) -> Vec<Url> {
        let max = usize::try_from(self.source.max_pages).unwrap_or(1);
        let mut maps: VecDeque<String> = robots.sitemaps.iter().cloned().collect();
        if maps.is_empty()
            && let Ok(u) = seed.join("/sitemap.xml")
        {
            maps.push_back(u.to_string());
        }
        let (mut pages, mut read) = (Vec::new(), 0);
        while let Some(map) = maps.pop_front() {
            if read >= MAX_SITEMAPS || pages.len() >= max {
                break;
            }
            read += 1;
            // Relative sitemap URLs (against the RFC, but seen) are read on the site.
            let Some(url) = seed.join(&map).ok().filter(|u| same_site(seed, u)) else {
                continue;
            };
            if !robots.allowed(&path_of(&url)) {
                continue;
            }
            if let Ok(Fetched::Body(b)) = self.fetcher.get(&url, &Validators::default()).await {
                let parsed = sitemap::parse(&extract::decode_text(&b.bytes, None), max);
                maps.extend(parsed.sitemaps);
                pages.extend(
                    parsed
                        .pages
                        .iter()
                        .filter_map(|p| Url::parse(p).ok())
                        .filter(|u| same_site(seed, u))
                        .map(without_fragment),
                );
            }
        }
        pages.truncate(max);
        pages
    }

    /// Fetches one page and indexes it when it changed; the outcome and the
    /// page's links.
    async fn page(
        &self,
        url: &Url,
        depth: i32,
        prev: Option<&store::Page>,
    ) -> (PageOutcome, Vec<String>) {
        let base = PageOutcome {
            depth,
            fetched: true,
            ..PageOutcome::default()
        };
        let indexed_before =
            prev.filter(|p| matches!(p.status, KbPageStatus::Indexed | KbPageStatus::Unchanged));
        let validators = indexed_before
            .map(|p| Validators {
                etag: p.etag.clone(),
                last_modified: p.last_modified.clone(),
            })
            .unwrap_or_default();
        let body = match self.fetcher.get(url, &validators).await {
            Err(e) => {
                let error = Some(e);
                return (
                    PageOutcome {
                        status: KbPageStatus::Error,
                        error,
                        ..base
                    },
                    Vec::new(),
                );
            }
            Ok(Fetched::NotModified) => {
                let o = PageOutcome {
                    status: KbPageStatus::Unchanged,
                    http_status: Some(304),
                    ..base
                };
                return (o, Vec::new());
            }
            Ok(Fetched::Status(s @ (404 | 410))) => {
                let error = match self.remove(url).await {
                    Ok(()) => Some(format!(
                        "HTTP {s}: the page is gone; its chunks were removed"
                    )),
                    Err(e) => Some(format!("HTTP {s}; removing its chunks failed: {e}")),
                };
                let o = PageOutcome {
                    status: KbPageStatus::Gone,
                    http_status: Some(i32::from(s)),
                    error,
                    chunk_count: Some(0),
                    ..base
                };
                return (o, Vec::new());
            }
            Ok(Fetched::Status(s)) => {
                let o = PageOutcome {
                    status: KbPageStatus::Error,
                    http_status: Some(i32::from(s)),
                    error: Some(format!("HTTP {s}")),
                    ..base
                };
                return (o, Vec::new());
            }
            Ok(Fetched::Body(b)) => b,
        };
        let sha = hex::encode(Sha256::digest(&body.bytes));
        let base = PageOutcome {
            http_status: Some(i32::from(body.status)),
            etag: body.etag.clone(),
            last_modified: body.last_modified.clone(),
            sha256: Some(sha.clone()),
            ..base
        };
        let kind = kind_of(body.content_type.as_deref(), &body.bytes);
        let limits = service::limits(self.state);
        let label = charset(body.content_type.as_deref());
        let bytes = body.bytes;
        let read: Result<(Kind, Extracted, Vec<String>), ExtractError> = match kind {
            Some(Kind::Html) => {
                extract::guarded(limits.timeout, move || {
                    let (mut doc, links) =
                        html::extract(&extract::decode_text(&bytes, label.as_deref()));
                    extract::clean(&mut doc);
                    Ok((Kind::Html, doc, links))
                })
                .await
            }
            Some(Kind::Pdf) => extract::extract_guarded(Format::Pdf, bytes, limits)
                .await
                .map(|d| (Kind::Pdf, d, Vec::new())),
            Some(_) => Ok((
                Kind::Txt,
                plain_text(&extract::decode_text(&bytes, label.as_deref())),
                Vec::new(),
            )),
            None => {
                let o = PageOutcome {
                    status: KbPageStatus::Skipped,
                    error: Some(format!(
                        "unsupported content type {}",
                        body.content_type.as_deref().unwrap_or("(none)")
                    )),
                    ..base
                };
                return (o, Vec::new());
            }
        };
        let (kind, doc, links) = match read {
            Ok(r) => r,
            Err(e) => {
                return (
                    PageOutcome {
                        status: KbPageStatus::Error,
                        error: Some(e.to_string()),
                        ..base
                    },
                    Vec::new(),
                );
            }
        };
        let title = doc.title.clone();
        let base = PageOutcome { title, ..base };
        if indexed_before.is_some_and(|p| p.content_sha256.as_deref() == Some(sha.as_str())) {
            // Same bytes as the indexed version: nothing to re-embed.
            return (
                PageOutcome {
                    status: KbPageStatus::Unchanged,
                    ..base
                },
                links,
            );
        }
        (self.index(url, kind, doc, base).await, links)
    }

    /// Indexes a changed page as a document of the source.
    async fn index(&self, url: &Url, kind: Kind, doc: Extracted, base: PageOutcome) -> PageOutcome {
        let params = indexer::params(self.kb);
        let from = Origin {
            origin: "web",
            source_id: Some(self.source.id),
            url: Some(url.as_str()),
        };
        let indexed = async {
            let prepared = service::prepare_extracted(url.to_string(), kind, doc, params).await?;
            service::index(self.state, self.kb, prepared, from).await
        }
        .await;
        match indexed {
            Ok((Outcome::Indexed { chunks, .. }, _)) => PageOutcome {
                status: KbPageStatus::Indexed,
                chunk_count: i32::try_from(chunks).ok(),
                indexed: true,
                ..base
            },
            Ok((Outcome::Queued, _)) => PageOutcome {
                status: KbPageStatus::Indexed,
                indexed: true,
                ..base
            },
            Ok((Outcome::NoTextLayer, _)) => PageOutcome {
                status: KbPageStatus::Skipped,
                error: Some(service::NO_TEXT_LAYER.into()),
                chunk_count: Some(0),
                ..base
            },
            Err(ApiError::BadRequest { message, .. }) => PageOutcome {
                status: KbPageStatus::Skipped,
                error: Some(message),
                ..base
            },
            Err(e) => PageOutcome {
                status: KbPageStatus::Error,
                error: Some(format!("indexing failed: {e}")),
                ..base
            },
        }
    }

    /// Removes a page's document and chunks.
    async fn remove(&self, url: &Url) -> anyhow::Result<()> {
        let mut conn = self
            .state
            .pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (kb, source) = (self.kb.id, self.source.id);
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            indexer::lock_source(conn, kb, url.as_str()).await?;
            kb_documents::delete_page(conn, kb, source, url.as_str()).await?;
            Ok(())
        })
        .await?;
        Ok(())
    }
}

/// The path and query of a URL (what robots.txt rules match).
fn path_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

fn same_site(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

fn without_fragment(mut u: Url) -> Url {
    u.set_fragment(None);
    u
}

/// Links of a page that stay on the seed's site, resolved, without
/// fragments, files that are not pages left out.
fn same_site_links(seed: &Url, page: &Url, links: &[String]) -> Vec<Url> {
    const FILES: &[&str] = &[
        ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip", ".gz",
        ".mp3", ".mp4", ".wav", ".ogg", ".woff", ".woff2", ".exe", ".dmg",
    ];
    links
        .iter()
        .filter_map(|href| page.join(href.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && same_site(seed, u))
        .map(without_fragment)
        .filter(|u| {
            let p = u.path().to_ascii_lowercase();
            !FILES.iter().any(|ext| p.ends_with(ext))
        })
        .collect()
}

/// The charset a Content-Type names.
fn charset(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?.to_ascii_lowercase();
    let at = ct.find("charset=")? + "charset=".len();
    Some(
        ct[at..]
            .trim_matches(['"', '\'', ' '])
            .split(';')
            .next()?
            .to_owned(),
    )
}

/// How a fetched body is read: by its Content-Type, else by sniffing.
fn kind_of(content_type: Option<&str>, bytes: &[u8]) -> Option<Kind> {
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match ct.as_str() {
        "text/html" | "application/xhtml+xml" => Some(Kind::Html),
        "application/pdf" => Some(Kind::Pdf),
        "text/plain" | "text/markdown" => Some(Kind::Txt),
        "" if bytes.starts_with(b"%PDF-") => Some(Kind::Pdf),
        "" if String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
            .to_ascii_lowercase()
            .contains("<html") =>
        {
            Some(Kind::Html)
        }
        _ => None,
    }
}

/// Plain text as paragraphs.
fn plain_text(text: &str) -> Extracted {
    let blocks = text
        .split("\n\n")
        .map(extract::squash)
        .filter(|p| !p.is_empty())
        .map(|text| Block::Para { text, page: None })
        .collect();
    let mut doc = Extracted {
        blocks,
        ..Extracted::default()
    };
    extract::clean(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_on_the_site_and_lose_their_fragments() {
        let seed = Url::parse("http://127.0.0.1:8080/docs/").expect("url");
        let page = Url::parse("http://127.0.0.1:8080/docs/a").expect("url");
        let links: Vec<String> = [
            "b#top",
            "/other",
            "http://127.0.0.1:9999/x",
            "https://example.com/",
            "mailto:a@b.c",
            "logo.PNG",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got: Vec<String> = same_site_links(&seed, &page, &links)
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            got,
            vec![
                "http://127.0.0.1:8080/docs/b",
                "http://127.0.0.1:8080/other"
            ]
        );
        assert_eq!(
            path_of(&Url::parse("http://h/a?b=1").expect("url")),
            "/a?b=1"
        );
        assert_eq!(
            charset(Some("text/html; charset=\"ISO-8859-1\"")).as_deref(),
            Some("iso-8859-1")
        );
        assert_eq!(
            kind_of(Some("text/html; charset=utf-8"), b""),
            Some(Kind::Html)
        );
        assert_eq!(kind_of(None, b"%PDF-1.4"), Some(Kind::Pdf));
        assert_eq!(kind_of(Some("image/png"), b""), None);
    }
}
