//! `/api/v1/knowledge-bases/{kb_id}/sources…`: web sources of a knowledge
//! base and their pages.

use super::service::{self, SourceSpec};
use super::store::{self, KbPageStatus, KbSourceStatus, Page, Source};
use crate::auth::Auth;
use crate::db::knowledge_bases::{self, KnowledgeBase};
use crate::error::{ApiError, ApiResult};
use crate::routes::SuccessMessage;
use crate::routes::knowledge::kb_missing;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Body of `POST /api/v1/knowledge-bases/{kb_id}/sources`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://docs.example.com/", "mode": "crawl", "max_depth": 2, "max_pages": 50, "use_sitemap": true, "refresh_hours": 24}))]
pub struct KbSourceIn {
    /// An http(s) URL (at most 2000 characters); addresses inside the
    /// server's network are refused as for webhooks.
    pub url: String,
    /// `page` (default: this URL only) or `crawl` (this URL and the pages of
    /// the same site it links to).
    pub mode: Option<String>,
    /// Crawl: links followed from the URL, 0–5 (default 2).
    pub max_depth: Option<i64>,
    /// Crawl: pages fetched per crawl, 1–500 (default 50).
    pub max_pages: Option<i64>,
    /// Crawl: also start from the site's sitemap (robots.txt's `Sitemap:`
    /// lines, else `/sitemap.xml`).
    pub use_sitemap: Option<bool>,
    /// Re-fetched every this many hours, 1–8760 (default 24); 0 = never.
    pub refresh_hours: Option<i64>,
}

/// Pages of a source by status.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct KbSourcePageCounts {
    pub total: i64,
    /// Fetched and (re-)indexed.
    pub indexed: i64,
    /// Not modified (304) or the same content: not re-embedded.
    pub unchanged: i64,
    /// No text, or a content type that is not a page.
    pub skipped: i64,
    /// Disallowed by robots.txt.
    pub blocked: i64,
    pub error: i64,
    /// 404/410: its chunks were removed.
    pub gone: i64,
}

/// A web source.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbSourceOut {
    #[schema(example = 3)]
    pub id: i64,
    #[schema(example = 1)]
    pub knowledge_base_id: i64,
    #[schema(example = "https://docs.example.com/")]
    pub url: String,
    #[schema(example = "crawl")]
    pub mode: String,
    #[schema(example = 2)]
    pub max_depth: i32,
    #[schema(example = 50)]
    pub max_pages: i32,
    pub use_sitemap: bool,
    /// Null: never refreshed.
    #[schema(example = 24)]
    pub refresh_hours: Option<i32>,
    /// `pending` (never crawled yet), `crawling`, `ready` or `error` (the
    /// URL itself could not be fetched or indexed).
    pub status: KbSourceStatus,
    /// Why the last crawl failed, or how many of its pages did.
    pub last_error: Option<String>,
    pub last_crawled_at: Option<DateTime<Utc>>,
    /// When the next crawl is due (null: not scheduled).
    pub next_crawl_at: Option<DateTime<Utc>>,
    pub pages: KbSourcePageCounts,
    pub created_at: DateTime<Utc>,
}

impl KbSourceOut {
    fn new(s: Source, pages: KbSourcePageCounts) -> Self {
        Self {
            id: s.id,
            knowledge_base_id: s.knowledge_base_id,
            url: s.url,
            mode: s.mode,
            max_depth: s.max_depth,
            max_pages: s.max_pages,
            use_sitemap: s.use_sitemap,
            refresh_hours: s.refresh_hours,
            status: s.status,
            last_error: s.last_error,
            last_crawled_at: s.last_crawled_at,
            next_crawl_at: s.next_crawl_at,
            pages,
            created_at: s.created_at,
        }
    }
}

/// `{"source": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbSourceResponse {
    pub source: KbSourceOut,
}

/// `{"sources": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbSourceList {
    pub sources: Vec<KbSourceOut>,
}

/// A page of a web source.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbSourcePageOut {
    #[schema(example = "https://docs.example.com/billing")]
    pub url: String,
    /// Links followed from the source's URL to reach it.
    #[schema(example = 1)]
    pub depth: i32,
    /// `indexed`, `unchanged`, `skipped`, `blocked`, `error` or `gone`.
    pub status: KbPageStatus,
    /// The last HTTP status (304: not modified).
    #[schema(example = 200)]
    pub http_status: Option<i32>,
    /// Why the page is not indexed (refused by the SSRF guard, robots.txt,
    /// HTTP error, no text…).
    pub last_error: Option<String>,
    pub title: Option<String>,
    #[schema(example = 4)]
    pub chunk_count: i32,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When it was last fetched, and last (re-)indexed.
    pub fetched_at: Option<DateTime<Utc>>,
    pub indexed_at: Option<DateTime<Utc>>,
}

impl From<Page> for KbSourcePageOut {
    fn from(p: Page) -> Self {
        Self {
            url: p.url,
            depth: p.depth,
            status: p.status,
            http_status: p.http_status,
            last_error: p.last_error,
            title: p.title,
            chunk_count: p.chunk_count,
            etag: p.etag,
            last_modified: p.last_modified,
            fetched_at: p.fetched_at,
            indexed_at: p.indexed_at,
        }
    }
}

/// `{"pages": […], "total", "page", "total_pages"}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbSourcePageList {
    pub pages: Vec<KbSourcePageOut>,
    #[schema(example = 12)]
    pub total: i64,
    #[schema(example = 1)]
    pub page: i64,
    #[schema(example = 1)]
    pub total_pages: i64,
}

/// Query of the page list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KbSourcePageQuery {
    /// Page number, from 1 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Results per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

fn source_missing(e: diesel::result::Error) -> ApiError {
    match e {
        diesel::result::Error::NotFound => ApiError::not_found("Source"),
        other => other.into(),
    }
}

async fn kb_of(state: &AppState, auth: &Auth, kb_id: i64) -> ApiResult<KnowledgeBase> {
    let mut conn = state.pool.get().await?;
    knowledge_bases::find(&mut conn, auth.project.id, kb_id)
        .await
        .map_err(kb_missing)
}

/// Sources with their page counts.
async fn with_counts(state: &AppState, sources: Vec<Source>) -> ApiResult<Vec<KbSourceOut>> {
    let mut conn = state.pool.get().await?;
    let ids: Vec<i64> = sources.iter().map(|s| s.id).collect();
    let mut counts: BTreeMap<i64, KbSourcePageCounts> = BTreeMap::new();
    for (id, status, n) in store::page_counts(&mut conn, &ids).await? {
        let c = counts.entry(id).or_default();
        c.total += n;
        match status {
            KbPageStatus::Indexed => c.indexed += n,
            KbPageStatus::Unchanged => c.unchanged += n,
            KbPageStatus::Skipped => c.skipped += n,
            KbPageStatus::Blocked => c.blocked += n,
            KbPageStatus::Gone => c.gone += n,
            KbPageStatus::Error => c.error += n,
        }
    }
    Ok(sources
        .into_iter()
        .map(|s| {
            let c = counts.remove(&s.id).unwrap_or_default();
            KbSourceOut::new(s, c)
        })
        .collect())
}

async fn one(state: &AppState, source: Source) -> ApiResult<KbSourceResponse> {
    let source = with_counts(state, vec![source])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("Source"))?;
    Ok(KbSourceResponse { source })
}

/// Add a web source: a page, or a same-site crawl, fetched in the background
/// through the SSRF guard (honouring robots.txt) and re-fetched every
/// `refresh_hours` with conditional requests; only changed pages are
/// re-embedded.
#[utoipa::path(
    post, path = "/api/v1/knowledge-bases/{kb_id}/sources", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    request_body = KbSourceIn,
    responses(
        (status = 202, description = "Created; the first crawl is queued", body = KbSourceResponse),
        (status = 400, description = "Invalid input, or a URL the SSRF guard refuses", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
        (status = 409, description = "The knowledge base already has this URL", body = crate::error::ErrorBody),
        (status = 503, description = "Embedding model not installed", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_source(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<KbSourceIn>,
) -> ApiResult<HttpResponse> {
    state.rag.embedder()?;
    let kb = kb_of(&state, &auth, *id).await?;
    let b = body.into_inner();
    let spec = SourceSpec {
        url: b.url,
        mode: b.mode,
        max_depth: b.max_depth,
        max_pages: b.max_pages,
        use_sitemap: b.use_sitemap,
        refresh_hours: b.refresh_hours,
    };
    let new = service::validate(&state, &kb, spec).await?;
    let source = service::create(&state, new).await?;
    Ok(HttpResponse::Accepted().json(one(&state, source).await?))
}

/// List a knowledge base's web sources with their page counts.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases/{kb_id}/sources", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    responses(
        (status = 200, description = "The sources", body = KbSourceList),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_sources(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let kb = kb_of(&state, &auth, *id).await?;
    let sources = {
        let mut conn = state.pool.get().await?;
        store::list(&mut conn, kb.id).await?
    };
    Ok(HttpResponse::Ok().json(KbSourceList {
        sources: with_counts(&state, sources).await?,
    }))
}

async fn find(state: &AppState, auth: &Auth, kb_id: i64, id: i64) -> ApiResult<Source> {
    let kb = kb_of(state, auth, kb_id).await?;
    let mut conn = state.pool.get().await?;
    store::find(&mut conn, kb.id, id)
        .await
        .map_err(source_missing)
}

/// A web source with its status and page counts.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases/{kb_id}/sources/{source_id}", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("source_id" = i64, Path, description = "Source id", example = 3),
    ),
    responses(
        (status = 200, description = "The source", body = KbSourceResponse),
        (status = 404, description = "No such knowledge base or source", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_source(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (kb_id, id) = path.into_inner();
    let source = find(&state, &auth, kb_id, id).await?;
    Ok(HttpResponse::Ok().json(one(&state, source).await?))
}

/// The pages of a web source with their status and last error.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases/{kb_id}/sources/{source_id}/pages", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("source_id" = i64, Path, description = "Source id", example = 3),
        KbSourcePageQuery,
    ),
    responses(
        (status = 200, description = "A page of the source's pages, by depth then URL", body = KbSourcePageList),
        (status = 400, description = "Invalid page or per_page", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base or source", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_source_pages(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    q: web::Query<KbSourcePageQuery>,
) -> ApiResult<HttpResponse> {
    let pg = crate::validate::Page::parse(q.page, q.per_page, 50)?;
    let (kb_id, id) = path.into_inner();
    let source = find(&state, &auth, kb_id, id).await?;
    let mut conn = state.pool.get().await?;
    let (pages, total) = store::pages_page(&mut conn, source.id, pg.offset(), pg.per_page).await?;
    Ok(HttpResponse::Ok().json(KbSourcePageList {
        pages: pages.into_iter().map(Into::into).collect(),
        total,
        page: pg.page,
        total_pages: pg.total_pages(total),
    }))
}

/// Crawl a web source again now (changed pages only are re-embedded).
#[utoipa::path(
    post, path = "/api/v1/knowledge-bases/{kb_id}/sources/{source_id}/refresh", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("source_id" = i64, Path, description = "Source id", example = 3),
    ),
    responses(
        (status = 202, description = "Due now; a crawler takes it", body = KbSourceResponse),
        (status = 404, description = "No such knowledge base or source", body = crate::error::ErrorBody),
        (status = 409, description = "A crawl of the source is running", body = crate::error::ErrorBody),
        (status = 503, description = "Embedding model not installed", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn refresh_source(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    state.rag.embedder()?;
    let (kb_id, id) = path.into_inner();
    let source = find(&state, &auth, kb_id, id).await?;
    let source = service::refresh(&state, &source).await?;
    Ok(HttpResponse::Accepted().json(one(&state, source).await?))
}

/// Delete a web source with its pages, their documents and chunks.
#[utoipa::path(
    delete, path = "/api/v1/knowledge-bases/{kb_id}/sources/{source_id}", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("source_id" = i64, Path, description = "Source id", example = 3),
    ),
    responses(
        (status = 200, description = "Deleted", body = SuccessMessage),
        (status = 404, description = "No such knowledge base or source", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_source(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (kb_id, id) = path.into_inner();
    let source = find(&state, &auth, kb_id, id).await?;
    if !service::delete(&state, source.knowledge_base_id, source.id).await? {
        return Err(ApiError::not_found("Source"));
    }
    Ok(HttpResponse::Ok().json(SuccessMessage {
        success: true,
        message: "Source deleted".into(),
    }))
}
