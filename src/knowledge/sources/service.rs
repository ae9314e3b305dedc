//! The rules of web sources: what a source may be (an http(s) URL the SSRF
//! guard accepts, a page or a same-site crawl within depth and page limits,
//! a refresh period), and creating, refreshing and deleting one. Fetching is
//! the crawler's ([`super::crawler`]); nothing here calls out except the
//! guard's early DNS check of a new URL, made before any transaction.

use super::store::{self, NewSource, Source};
use crate::db::kb_documents;
use crate::db::knowledge_bases::KnowledgeBase;
use crate::error::{ApiError, ApiResult};
use crate::events::ssrf;
use crate::state::AppState;
use diesel_async::AsyncConnection;

/// Longest source URL, in bytes.
pub const MAX_URL_LEN: usize = 2000;
/// Depth of a crawl, at most (links followed from the seed).
pub const MAX_DEPTH: i32 = 5;
/// Pages of a crawl, at most.
pub const MAX_PAGES: i32 = 500;

/// A source as asked for, before validation.
#[derive(Debug, Default)]
pub struct SourceSpec {
    pub url: String,
    pub mode: Option<String>,
    pub max_depth: Option<i64>,
    pub max_pages: Option<i64>,
    pub use_sitemap: Option<bool>,
    pub refresh_hours: Option<i64>,
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_field(field, message)
}

/// Validates a spec into a new source of a knowledge base (the URL checked
/// against the SSRF guard, its name resolved once).
pub async fn validate(
    state: &AppState,
    kb: &KnowledgeBase,
    spec: SourceSpec,
) -> ApiResult<NewSource> {
    crate::validate::no_nul("url", &spec.url)?;
    let raw = spec.url.trim();
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return Err(bad(
            "url",
            format!("url must be 1 to {MAX_URL_LEN} characters"),
        ));
    }
    let mut url = url::Url::parse(raw).map_err(|_| bad("url", "url is not a valid URL"))?;
    url.set_fragment(None);
    ssrf::check_url(url.as_str(), state.webhook_allow())
        .await
        .map_err(|why| bad("url", why))?;
    let mode = spec.mode.as_deref().unwrap_or("page");
    let crawl = match mode {
        "page" => false,
        "crawl" => true,
        _ => return Err(bad("mode", "mode must be page or crawl")),
    };
    let max_depth = match (crawl, spec.max_depth) {
        (false, None | Some(0)) => 0,
        (false, Some(_)) => return Err(bad("max_depth", "max_depth applies to mode crawl only")),
        (true, d) => {
            let d = d.unwrap_or(2);
            if !(0..=i64::from(MAX_DEPTH)).contains(&d) {
                return Err(bad(
                    "max_depth",
                    format!("max_depth must be between 0 and {MAX_DEPTH}"),
                ));
            }
            i32::try_from(d).unwrap_or(0)
        }
    };
    let max_pages = match (crawl, spec.max_pages) {
        (false, None | Some(1)) => 1,
        (false, Some(_)) => return Err(bad("max_pages", "max_pages applies to mode crawl only")),
        (true, p) => {
            let p = p.unwrap_or(50);
            if !(1..=i64::from(MAX_PAGES)).contains(&p) {
                return Err(bad(
                    "max_pages",
                    format!("max_pages must be between 1 and {MAX_PAGES}"),
                ));
            }
            i32::try_from(p).unwrap_or(1)
        }
    };
    if spec.use_sitemap == Some(true) && !crawl {
        return Err(bad("use_sitemap", "use_sitemap applies to mode crawl only"));
    }
    let refresh_hours = match spec.refresh_hours.unwrap_or(24) {
        0 => None,
        h @ 1..=8760 => i32::try_from(h).ok(),
        _ => {
            return Err(bad(
                "refresh_hours",
                "refresh_hours must be between 1 and 8760, or 0 for never",
            ));
        }
    };
    Ok(NewSource {
        project_id: kb.project_id,
        knowledge_base_id: kb.id,
        url: url.to_string(),
        mode: mode.to_owned(),
        max_depth,
        max_pages,
        use_sitemap: spec.use_sitemap.unwrap_or(false),
        refresh_hours,
    })
}

/// Creates a source, due at once, and wakes a crawler (409 when the
/// knowledge base already has the URL).
pub async fn create(state: &AppState, new: NewSource) -> ApiResult<Source> {
    let mut conn = state.pool.get().await?;
    let source = store::insert(&mut conn, &new).await.map_err(|e| match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => ApiError::conflict("This knowledge base already has a source with this URL"),
        other => other.into(),
    })?;
    state.rag.crawl_wakeup.notify_one();
    Ok(source)
}

/// Makes a source due now (409 while a crawl holds it).
pub async fn refresh(state: &AppState, source: &Source) -> ApiResult<Source> {
    let mut conn = state.pool.get().await?;
    if !store::make_due(&mut conn, source.id).await? {
        return Err(ApiError::conflict("The source is being crawled right now"));
    }
    state.rag.crawl_wakeup.notify_one();
    Ok(store::find(&mut conn, source.knowledge_base_id, source.id).await?)
}

/// Deletes a source with its pages, documents and chunks (a crawl holding
/// it stops at its next page).
pub async fn delete(state: &AppState, kb_id: i64, id: i64) -> ApiResult<bool> {
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        kb_documents::delete_source_chunks(conn, id).await?;
        Ok(store::delete(conn, kb_id, id).await?)
    })
    .await
}
