//! The `kb_documents` table: one row per document of a knowledge base, keyed
//! by (knowledge base, name); its chunks are the `kb_chunks` rows whose
//! `source` is the name.

use super::schema::{kb_chunks, kb_documents};
use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

crate::db::text_enum::text_enum! {
    /// The status of a document (`kb_documents.status`).
    #[derive(utoipa::ToSchema)]
    #[schema(example = "ready")]
    pub enum KbDocumentStatus in ("kb_documents", "status") {
        /// Being chunked and embedded.
        Indexing = "indexing",
        /// Searchable.
        Ready = "ready",
        /// A PDF without a text layer (nothing to index).
        NoTextLayer = "no_text_layer",
        /// Indexing failed.
        Error = "error",
    }
}

/// A row of `kb_documents`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = kb_documents)]
pub struct Document {
    pub id: i64,
    pub project_id: i64,
    pub knowledge_base_id: i64,
    pub name: String,
    pub kind: String,
    pub origin: String,
    pub source_id: Option<i64>,
    pub url: Option<String>,
    pub title: Option<String>,
    pub status: KbDocumentStatus,
    pub error: Option<String>,
    pub page_count: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A document with its chunk figures (counted from its chunks).
#[derive(Debug, Clone)]
pub struct DocumentStats {
    pub doc: Document,
    pub chunk_count: i64,
    pub char_count: i64,
}

/// What to write for a document.
#[derive(Debug, Clone)]
pub struct DocumentIn<'a> {
    pub project_id: i64,
    pub knowledge_base_id: i64,
    pub name: &'a str,
    pub kind: &'a str,
    /// `document`, `ingest` or `web`.
    pub origin: &'a str,
    pub source_id: Option<i64>,
    pub url: Option<&'a str>,
    pub title: Option<&'a str>,
    pub status: KbDocumentStatus,
    pub error: Option<&'a str>,
    pub page_count: Option<i32>,
}

/// Inserts or replaces the document of a name. A name held by a crawled page
/// is replaced only by its own source, and a page never replaces an upload:
/// then nothing is written and the answer is `None` (a conflict).
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    d: &DocumentIn<'_>,
) -> QueryResult<Option<Document>> {
    diesel::sql_query(
        "INSERT INTO kb_documents (project_id, knowledge_base_id, name, kind, origin, source_id, \
           url, title, status, error, page_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (knowledge_base_id, name) DO UPDATE SET kind = excluded.kind, \
           origin = excluded.origin, url = excluded.url, title = excluded.title, \
           status = excluded.status, error = excluded.error, page_count = excluded.page_count, \
           updated_at = now() \
         WHERE (kb_documents.origin <> 'web' AND excluded.origin <> 'web') \
            OR kb_documents.source_id = excluded.source_id \
         RETURNING *",
    )
    .bind::<BigInt, _>(d.project_id)
    .bind::<BigInt, _>(d.knowledge_base_id)
    .bind::<Text, _>(d.name)
    .bind::<Text, _>(d.kind)
    .bind::<Text, _>(d.origin)
    .bind::<Nullable<BigInt>, _>(d.source_id)
    .bind::<Nullable<Text>, _>(d.url)
    .bind::<Nullable<Text>, _>(d.title)
    .bind::<Text, _>(d.status)
    .bind::<Nullable<Text>, _>(d.error)
    .bind::<Nullable<Integer>, _>(d.page_count)
    .get_result(conn)
    .await
    .optional()
}

/// Sets the status (and error) of a document by name.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    name: &str,
    status: KbDocumentStatus,
    error: Option<&str>,
) -> QueryResult<()> {
    diesel::update(
        kb_documents::table
            .filter(kb_documents::knowledge_base_id.eq(kb_id))
            .filter(kb_documents::name.eq(name)),
    )
    .set((
        kb_documents::status.eq(status),
        kb_documents::error.eq(error),
        kb_documents::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Chunk count and characters per document name, for some names of a
/// knowledge base.
async fn stats(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    names: Vec<String>,
) -> QueryResult<std::collections::HashMap<String, (i64, i64)>> {
    let rows: Vec<(String, i64, Option<i64>)> = kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .filter(kb_chunks::source.eq_any(names))
        .group_by(kb_chunks::source)
        .select((
            kb_chunks::source,
            count_star(),
            sql::<Nullable<BigInt>>("sum(char_length(content))::int8"),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(n, c, s)| (n, (c, s.unwrap_or(0))))
        .collect())
}

async fn with_stats(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    docs: Vec<Document>,
) -> QueryResult<Vec<DocumentStats>> {
    let figures = stats(conn, kb_id, docs.iter().map(|d| d.name.clone()).collect()).await?;
    Ok(docs
        .into_iter()
        .map(|doc| {
            let (chunk_count, char_count) = figures.get(&doc.name).copied().unwrap_or((0, 0));
            DocumentStats {
                doc,
                chunk_count,
                char_count,
            }
        })
        .collect())
}

/// A page of a knowledge base's documents (oldest first) and the total;
/// `status` filters.
pub async fn page(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    status: Option<KbDocumentStatus>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<DocumentStats>, i64)> {
    let mut q = kb_documents::table
        .filter(kb_documents::knowledge_base_id.eq(kb_id))
        .into_boxed();
    let mut count = kb_documents::table
        .filter(kb_documents::knowledge_base_id.eq(kb_id))
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(kb_documents::status.eq(s));
        count = count.filter(kb_documents::status.eq(s));
    }
    let total = count.count().get_result(conn).await?;
    let docs: Vec<Document> = q
        .order(kb_documents::id.asc())
        .offset(offset)
        .limit(limit)
        .select(Document::as_select())
        .load(conn)
        .await?;
    Ok((with_stats(conn, kb_id, docs).await?, total))
}

/// One document of a knowledge base (`NotFound` otherwise).
pub async fn find(conn: &mut AsyncPgConnection, kb_id: i64, id: i64) -> QueryResult<DocumentStats> {
    let doc = kb_documents::table
        .filter(kb_documents::knowledge_base_id.eq(kb_id))
        .filter(kb_documents::id.eq(id))
        .select(Document::as_select())
        .first(conn)
        .await?;
    with_stats(conn, kb_id, vec![doc])
        .await?
        .pop()
        .ok_or(diesel::result::Error::NotFound)
}

/// The document of a name, if any.
pub async fn by_name(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    name: &str,
) -> QueryResult<Option<Document>> {
    kb_documents::table
        .filter(kb_documents::knowledge_base_id.eq(kb_id))
        .filter(kb_documents::name.eq(name))
        .select(Document::as_select())
        .first(conn)
        .await
        .optional()
}

/// Deletes a document row (the caller deletes its chunks in the same
/// transaction); false when absent.
pub async fn delete(conn: &mut AsyncPgConnection, kb_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(
        kb_documents::table
            .filter(kb_documents::knowledge_base_id.eq(kb_id))
            .filter(kb_documents::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Deletes the chunks of every document of a web source (before the source
/// row, whose deletion cascades to the documents and pages); how many.
pub async fn delete_source_chunks(
    conn: &mut AsyncPgConnection,
    source_id: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM kb_chunks c USING kb_documents d \
         WHERE d.source_id = $1 AND c.knowledge_base_id = d.knowledge_base_id AND c.source = d.name",
    )
    .bind::<BigInt, _>(source_id)
    .execute(conn)
    .await
}

/// Deletes the document a web source holds under a name, with its chunks
/// (a page that is gone); false when there was none.
pub async fn delete_page(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    source_id: i64,
    name: &str,
) -> QueryResult<bool> {
    diesel::sql_query(
        "DELETE FROM kb_chunks WHERE knowledge_base_id = $1 AND source = $2 \
           AND EXISTS (SELECT 1 FROM kb_documents WHERE knowledge_base_id = $1 AND name = $2 \
             AND source_id = $3)",
    )
    .bind::<BigInt, _>(kb_id)
    .bind::<Text, _>(name)
    .bind::<BigInt, _>(source_id)
    .execute(conn)
    .await?;
    let n = diesel::delete(
        kb_documents::table
            .filter(kb_documents::knowledge_base_id.eq(kb_id))
            .filter(kb_documents::name.eq(name))
            .filter(kb_documents::source_id.eq(source_id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}
