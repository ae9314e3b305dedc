//! `GET/DELETE /api/v1/knowledge-bases/{kb_id}/documents[/{doc_id}]`: the
//! documents of a knowledge base with their status (uploads themselves are
//! in `routes::knowledge::documents`).

use crate::auth::Auth;
use crate::db::kb_documents::{self, Document, DocumentStats};
use crate::db::{kb_chunks, kb_jobs, knowledge_bases};
use crate::error::{ApiError, ApiResult};
use crate::routes::SuccessMessage;
use crate::routes::knowledge::kb_missing;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};

/// A document of a knowledge base.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbDocumentOut {
    #[schema(example = 7)]
    pub id: i64,
    /// The file name, the ingest's `source_name`, or the page URL (the chunks' `source`).
    #[schema(example = "handbook.pdf")]
    pub name: String,
    /// `txt`, `md`, `csv`, `json`, `pdf`, `docx` or `html`.
    #[schema(example = "pdf")]
    pub kind: String,
    /// `document` (upload), `ingest` (raw text) or `web` (a crawled page).
    #[schema(example = "document")]
    pub origin: String,
    /// `indexing`, `ready`, `no_text_layer` (a PDF whose pages carry no
    /// text, e.g. a scan: nothing to search) or `error`.
    pub status: KbDocumentStatus,
    /// Why the status is `no_text_layer` or `error`.
    pub error: Option<String>,
    /// Pages of a PDF.
    #[schema(example = 12)]
    pub page_count: Option<i32>,
    #[schema(example = 31)]
    pub chunk_count: i64,
    #[schema(example = 14200)]
    pub char_count: i64,
    /// The web source of a crawled page.
    pub source_id: Option<i64>,
    pub url: Option<String>,
    pub title: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl KbDocumentOut {
    /// A document row with its chunk figures.
    pub fn new(doc: Document, chunk_count: i64, char_count: i64) -> Self {
        Self {
            id: doc.id,
            name: doc.name,
            kind: doc.kind,
            origin: doc.origin,
            status: doc.status,
            error: doc.error,
            page_count: doc.page_count,
            chunk_count,
            char_count,
            source_id: doc.source_id,
            url: doc.url,
            title: doc.title,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        }
    }
}

impl From<DocumentStats> for KbDocumentOut {
    fn from(s: DocumentStats) -> Self {
        Self::new(s.doc, s.chunk_count, s.char_count)
    }
}

/// `{"documents": […], "total", "page", "total_pages"}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbDocumentList {
    pub documents: Vec<KbDocumentOut>,
    #[schema(example = 3)]
    pub total: i64,
    #[schema(example = 1)]
    pub page: i64,
    #[schema(example = 1)]
    pub total_pages: i64,
}

/// `{"document": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KbDocumentResponse {
    pub document: KbDocumentOut,
}

/// Query of the document list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KbDocumentQuery {
    /// Page number, from 1 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Results per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Only documents with this status.
    #[param(value_type = Option<KbDocumentStatus>)]
    pub status: Option<String>,
}

/// The statuses of a knowledge-base document (the `status` filter and field).
pub use crate::db::kb_documents::KbDocumentStatus;

fn doc_missing(e: diesel::result::Error) -> ApiError {
    match e {
        diesel::result::Error::NotFound => ApiError::not_found("Document"),
        other => other.into(),
    }
}

/// List a knowledge base's documents with their status, oldest first.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases/{kb_id}/documents", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1), KbDocumentQuery),
    responses(
        (status = 200, description = "A page of documents", body = KbDocumentList),
        (status = 400, description = "Invalid page, per_page or status", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_documents(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<KbDocumentQuery>,
) -> ApiResult<HttpResponse> {
    let pg = crate::validate::Page::parse(q.page, q.per_page, 20)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            KbDocumentStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_field(
                    "status",
                    "status must be indexing, ready, no_text_layer or error",
                )
            })
        })
        .transpose()?;
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, *id)
        .await
        .map_err(kb_missing)?;
    let (docs, total) =
        kb_documents::page(&mut conn, kb.id, status, pg.offset(), pg.per_page).await?;
    Ok(HttpResponse::Ok().json(KbDocumentList {
        documents: docs.into_iter().map(Into::into).collect(),
        total,
        page: pg.page,
        total_pages: pg.total_pages(total),
    }))
}

/// A document with its status.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases/{kb_id}/documents/{doc_id}", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("doc_id" = i64, Path, description = "Document id", example = 7),
    ),
    responses(
        (status = 200, description = "The document", body = KbDocumentResponse),
        (status = 404, description = "No such knowledge base or document", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_document(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (kb_id, doc_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, kb_id)
        .await
        .map_err(kb_missing)?;
    let doc = kb_documents::find(&mut conn, kb.id, doc_id)
        .await
        .map_err(doc_missing)?;
    Ok(HttpResponse::Ok().json(KbDocumentResponse {
        document: doc.into(),
    }))
}

/// Delete a document with its chunks (a crawled page is fetched and indexed
/// again at its source's next crawl; delete the source to stop that).
#[utoipa::path(
    delete, path = "/api/v1/knowledge-bases/{kb_id}/documents/{doc_id}", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("doc_id" = i64, Path, description = "Document id", example = 7),
    ),
    responses(
        (status = 200, description = "Deleted", body = SuccessMessage),
        (status = 404, description = "No such knowledge base or document", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_document(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (kb_id, doc_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, kb_id)
        .await
        .map_err(kb_missing)?;
    let doc = kb_documents::find(&mut conn, kb.id, doc_id)
        .await
        .map_err(doc_missing)?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        kb_jobs::supersede(conn, kb.id, &doc.doc.name).await?;
        crate::rag::indexer::lock_source(conn, kb.id, &doc.doc.name).await?;
        kb_chunks::delete_source(conn, kb.id, &doc.doc.name).await?;
        kb_documents::delete(conn, kb.id, doc_id).await?;
        if let Some(source_id) = doc.doc.source_id {
            // The next crawl indexes the page again, even if it did not change.
            crate::knowledge::sources::store::forget_content(conn, source_id, &doc.doc.name)
                .await?;
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(SuccessMessage {
        success: true,
        message: "Document deleted".into(),
    }))
}
