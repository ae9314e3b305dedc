//! Fetching web pages through the webhook SSRF guard
//! ([`crate::events::ssrf`]): the client resolves names with its
//! [`GuardedResolver`](crate::events::ssrf::GuardedResolver), IP-literal URLs
//! are checked with [`check_literal`](crate::events::ssrf::check_literal)
//! before every request, and redirects are followed here, hop by hop, so
//! that each hop's destination passes the same checks (a redirect to a
//! private or metadata address is refused like a direct request). Bodies are
//! read up to a size limit; conditional requests send the page's validators.

use crate::events::ssrf;
use std::time::Duration;
use url::Url;

/// Redirects followed per fetch.
const MAX_REDIRECTS: usize = 5;

/// A fetched response.
#[derive(Debug)]
pub enum Fetched {
    /// 304: unchanged since the validators sent.
    NotModified,
    /// Any other status than 2xx, with no body kept.
    Status(u16),
    /// A 2xx response and its body.
    Body(Body),
}

/// A 2xx response.
#[derive(Debug)]
pub struct Body {
    /// The URL answered (after redirects).
    pub url: Url,
    pub status: u16,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The validators of an earlier fetch.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A client for web sources.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    allow: ssrf::Allow,
    max_bytes: usize,
}

impl Fetcher {
    /// A fetcher applying `allow` (the webhook policy), with a time limit per
    /// fetch and a body size limit.
    pub fn new(allow: ssrf::Allow, timeout: Duration, max_bytes: usize) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .dns_resolver(ssrf::GuardedResolver::new(allow))
            .user_agent(concat!(
                "VoxplaneBot/",
                env!("CARGO_PKG_VERSION"),
                " (knowledge-base crawler)"
            ))
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            allow,
            max_bytes,
        })
    }

    /// GETs a URL, following redirects through the guard; `Err` says why
    /// nothing usable came back (refused, unreachable, too large).
    pub async fn get(&self, url: &Url, validators: &Validators) -> Result<Fetched, String> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            ssrf::check_literal(url.as_str(), self.allow)
                .map_err(|why| format!("refused by the SSRF guard: {why}"))?;
            let mut req = self.client.get(url.clone());
            if let Some(etag) = &validators.etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &validators.last_modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
            }
            let mut res = req.send().await.map_err(|e| describe(&e))?;
            let status = res.status();
            if status.is_redirection() && status.as_u16() != 304 {
                let location = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("HTTP {status} without a Location"))?;
                url = url
                    .join(location)
                    .map_err(|_| format!("redirect to an invalid URL: {location}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!("redirect to a non-HTTP URL: {url}"));
                }
                continue;
            }
            if status.as_u16() == 304 {
                return Ok(Fetched::NotModified);
            }
            if !status.is_success() {
                return Ok(Fetched::Status(status.as_u16()));
            }
            let header = |name: reqwest::header::HeaderName| {
                res.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_type = header(reqwest::header::CONTENT_TYPE);
            let etag = header(reqwest::header::ETAG);
            let last_modified = header(reqwest::header::LAST_MODIFIED);
            if res
                .content_length()
                .is_some_and(|n| n > self.max_bytes as u64)
            {
                return Err(self.too_large());
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = res.chunk().await.map_err(|e| describe(&e))? {
                if bytes.len() + chunk.len() > self.max_bytes {
                    return Err(self.too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            return Ok(Fetched::Body(Body {
                url,
                status: status.as_u16(),
                content_type,
                bytes,
                etag,
                last_modified,
            }));
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    fn too_large(&self) -> String {
        format!("the page is larger than {} bytes", self.max_bytes)
    }
}

/// Why a request failed, in words (the guard's refusal when it was one).
fn describe(e: &reqwest::Error) -> String {
    if let Some(refused) = ssrf::refused_in(e) {
        return format!("refused by the SSRF guard: {refused}");
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("request failed: {cause}")
}
