//! SQL of web sources (`kb_sources`) and their pages (`kb_source_pages`).
//! Every statement here is short and makes no remote call: the crawler
//! claims a source with a lease, fetches with no transaction open, and
//! records each outcome with one statement.

use crate::db::schema::{kb_source_pages, kb_sources};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

crate::db::text_enum::text_enum! {
    /// The status of a web source (`kb_sources.status`).
    #[derive(utoipa::ToSchema)]
    #[schema(example = "ready")]
    pub enum KbSourceStatus in ("kb_sources", "status") {
        /// Never crawled yet.
        Pending = "pending",
        /// A crawl holds it.
        Crawling = "crawling",
        /// Crawled (some pages may have failed).
        Ready = "ready",
        /// The URL itself could not be fetched or indexed.
        Error = "error",
    }
}

crate::db::text_enum::text_enum! {
    /// The status of a page of a web source (`kb_source_pages.status`).
    #[derive(Default, utoipa::ToSchema)]
    #[schema(example = "indexed")]
    pub enum KbPageStatus in ("kb_source_pages", "status") {
        /// Fetched and (re-)indexed.
        Indexed = "indexed",
        /// Not modified (304) or the same content: not re-embedded.
        Unchanged = "unchanged",
        /// No text, or a content type that is not a page.
        Skipped = "skipped",
        /// Disallowed by robots.txt.
        Blocked = "blocked",
        /// Could not be fetched or indexed (what an outcome is until it is known).
        #[default]
        Error = "error",
        /// 404/410: its chunks were removed.
        Gone = "gone",
    }
}

/// A row of `kb_sources`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = kb_sources)]
pub struct Source {
    pub id: i64,
    pub project_id: i64,
    pub knowledge_base_id: i64,
    pub url: String,
    pub mode: String,
    pub max_depth: i32,
    pub max_pages: i32,
    pub use_sitemap: bool,
    pub refresh_hours: Option<i32>,
    pub status: KbSourceStatus,
    pub last_error: Option<String>,
    pub last_crawled_at: Option<DateTime<Utc>>,
    pub next_crawl_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Values of a new source.
#[derive(Debug, Insertable)]
#[diesel(table_name = kb_sources)]
pub struct NewSource {
    pub project_id: i64,
    pub knowledge_base_id: i64,
    pub url: String,
    pub mode: String,
    pub max_depth: i32,
    pub max_pages: i32,
    pub use_sitemap: bool,
    pub refresh_hours: Option<i32>,
}

/// A row of `kb_source_pages`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = kb_source_pages)]
pub struct Page {
    pub id: i64,
    pub source_id: i64,
    pub url: String,
    pub depth: i32,
    pub status: KbPageStatus,
    pub http_status: Option<i32>,
    pub last_error: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_sha256: Option<String>,
    pub title: Option<String>,
    pub chunk_count: i32,
    pub fetched_at: Option<DateTime<Utc>>,
    pub indexed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The outcome of one page fetch, as recorded.
#[derive(Debug, Clone, Default)]
pub struct PageOutcome {
    pub depth: i32,
    pub status: KbPageStatus,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    /// Validators and content hash: `None` keeps the recorded ones.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub sha256: Option<String>,
    pub title: Option<String>,
    /// Chunks now stored (None keeps the recorded count).
    pub chunk_count: Option<i32>,
    /// Whether the page was fetched (not blocked before the request).
    pub fetched: bool,
    /// Whether its chunks were (re)written.
    pub indexed: bool,
}

/// Inserts a source (`UniqueViolation` when the knowledge base has the URL).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewSource) -> QueryResult<Source> {
    diesel::insert_into(kb_sources::table)
        .values(new)
        .returning(Source::as_returning())
        .get_result(conn)
        .await
}

/// The sources of a knowledge base, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, kb_id: i64) -> QueryResult<Vec<Source>> {
    kb_sources::table
        .filter(kb_sources::knowledge_base_id.eq(kb_id))
        .order(kb_sources::id.asc())
        .select(Source::as_select())
        .load(conn)
        .await
}

/// One source of a knowledge base (`NotFound` otherwise).
pub async fn find(conn: &mut AsyncPgConnection, kb_id: i64, id: i64) -> QueryResult<Source> {
    kb_sources::table
        .filter(kb_sources::knowledge_base_id.eq(kb_id))
        .filter(kb_sources::id.eq(id))
        .select(Source::as_select())
        .first(conn)
        .await
}

/// Page counts of sources by page status: (source, status, count).
pub async fn page_counts(
    conn: &mut AsyncPgConnection,
    source_ids: &[i64],
) -> QueryResult<Vec<(i64, KbPageStatus, i64)>> {
    kb_source_pages::table
        .filter(kb_source_pages::source_id.eq_any(source_ids))
        .group_by((kb_source_pages::source_id, kb_source_pages::status))
        .select((
            kb_source_pages::source_id,
            kb_source_pages::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)
        .await
}

/// Deletes a source row (pages and documents cascade); false when absent.
pub async fn delete(conn: &mut AsyncPgConnection, kb_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(
        kb_sources::table
            .filter(kb_sources::knowledge_base_id.eq(kb_id))
            .filter(kb_sources::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Makes a source due now, unless a crawl holds it; false when it does.
pub async fn make_due(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE kb_sources SET next_crawl_at = now(), updated_at = now() \
         WHERE id = $1 AND (lease_until IS NULL OR lease_until < now())",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Claims the most overdue source nobody holds, for `lease_secs`.
pub async fn claim(conn: &mut AsyncPgConnection, lease_secs: i64) -> QueryResult<Option<Source>> {
    diesel::sql_query(
        "UPDATE kb_sources SET status = 'crawling', updated_at = now(), \
           lease_until = now() + make_interval(secs => $1) \
         WHERE id = (SELECT id FROM kb_sources \
           WHERE next_crawl_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
           ORDER BY next_crawl_at, id FOR UPDATE SKIP LOCKED LIMIT 1) \
         RETURNING *",
    )
    .bind::<BigInt, _>(lease_secs)
    .get_result(conn)
    .await
    .optional()
}

/// Extends a crawl's lease; false when the source is gone.
pub async fn renew(conn: &mut AsyncPgConnection, id: i64, lease_secs: i64) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE kb_sources SET lease_until = now() + make_interval(secs => $2) WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(lease_secs)
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Ends a crawl: its status and error, and the next crawl `refresh_hours`
/// from now (none without a refresh).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: KbSourceStatus,
    error: Option<&str>,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE kb_sources SET status = $2, last_error = $3, last_crawled_at = now(), \
           updated_at = now(), lease_until = NULL, \
           next_crawl_at = now() + make_interval(hours => refresh_hours) \
         WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The pages of a source, by depth then URL.
pub async fn pages(conn: &mut AsyncPgConnection, source_id: i64) -> QueryResult<Vec<Page>> {
    kb_source_pages::table
        .filter(kb_source_pages::source_id.eq(source_id))
        .order((kb_source_pages::depth.asc(), kb_source_pages::url.asc()))
        .select(Page::as_select())
        .load(conn)
        .await
}

/// A page of a source's pages and the total.
pub async fn pages_page(
    conn: &mut AsyncPgConnection,
    source_id: i64,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Page>, i64)> {
    let total = kb_source_pages::table
        .filter(kb_source_pages::source_id.eq(source_id))
        .count()
        .get_result(conn)
        .await?;
    let rows = kb_source_pages::table
        .filter(kb_source_pages::source_id.eq(source_id))
        .order((kb_source_pages::depth.asc(), kb_source_pages::url.asc()))
        .offset(offset)
        .limit(limit)
        .select(Page::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// Records a page's outcome (one statement); false when the source is gone.
pub async fn record(
    conn: &mut AsyncPgConnection,
    source_id: i64,
    url: &str,
    o: &PageOutcome,
) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "INSERT INTO kb_source_pages (source_id, url, depth, status, http_status, last_error, \
           etag, last_modified, content_sha256, title, chunk_count, fetched_at, indexed_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce($11, 0), \
           CASE WHEN $12 THEN now() END, CASE WHEN $13 THEN now() END \
         WHERE EXISTS (SELECT 1 FROM kb_sources WHERE id = $1) \
         ON CONFLICT (source_id, url) DO UPDATE SET depth = least(kb_source_pages.depth, excluded.depth), \
           status = excluded.status, http_status = excluded.http_status, \
           last_error = excluded.last_error, \
           etag = coalesce(excluded.etag, kb_source_pages.etag), \
           last_modified = coalesce(excluded.last_modified, kb_source_pages.last_modified), \
           content_sha256 = coalesce(excluded.content_sha256, kb_source_pages.content_sha256), \
           title = coalesce(excluded.title, kb_source_pages.title), \
           chunk_count = coalesce($11, kb_source_pages.chunk_count), \
           fetched_at = coalesce(excluded.fetched_at, kb_source_pages.fetched_at), \
           indexed_at = coalesce(excluded.indexed_at, kb_source_pages.indexed_at), \
           updated_at = now()",
    )
    .bind::<BigInt, _>(source_id)
    .bind::<Text, _>(url)
    .bind::<Integer, _>(o.depth)
    .bind::<Text, _>(o.status)
    .bind::<Nullable<Integer>, _>(o.http_status)
    .bind::<Nullable<Text>, _>(o.error.as_deref())
    .bind::<Nullable<Text>, _>(o.etag.as_deref())
    .bind::<Nullable<Text>, _>(o.last_modified.as_deref())
    .bind::<Nullable<Text>, _>(o.sha256.as_deref())
    .bind::<Nullable<Text>, _>(o.title.as_deref())
    .bind::<Nullable<Integer>, _>(o.chunk_count)
    .bind::<diesel::sql_types::Bool, _>(o.fetched)
    .bind::<diesel::sql_types::Bool, _>(o.indexed)
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Forgets what a page held (validators, hash), so that its next fetch
/// indexes it whatever it answers (its document was deleted).
pub async fn forget_content(
    conn: &mut AsyncPgConnection,
    source_id: i64,
    url: &str,
) -> QueryResult<()> {
    diesel::update(
        kb_source_pages::table
            .filter(kb_source_pages::source_id.eq(source_id))
            .filter(kb_source_pages::url.eq(url)),
    )
    .set((
        kb_source_pages::etag.eq(None::<String>),
        kb_source_pages::last_modified.eq(None::<String>),
        kb_source_pages::content_sha256.eq(None::<String>),
        kb_source_pages::chunk_count.eq(0),
        kb_source_pages::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}
