//! A knowledge base's chunks: paged list, edit (re-embedded), delete.

use super::kb_missing;
use crate::auth::Auth;
use crate::db::kb_chunks::{self, ChunkRow};
use crate::db::knowledge_bases;
use crate::db::sql_types::Embedding;
use crate::error::{ApiError, ApiResult};
use crate::routes::SuccessMessage;
use crate::state::AppState;
use crate::validate::no_nul;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

/// Largest chunk content accepted by an edit, in characters.
const MAX_CHUNK_CHARS: usize = 20_000;

/// Query of the chunk list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChunkQuery {
    /// Page number, from 1 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Results per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Only active (true) or inactive (false) chunks.
    pub is_active: Option<bool>,
}

/// A chunk.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChunkOut {
    #[schema(example = 1)]
    pub id: i64,
    /// In lists, cut to 200 characters.
    #[schema(example = "Your company was founded...")]
    pub content: String,
    #[schema(example = "about-page")]
    pub source: String,
    #[schema(example = 0)]
    pub chunk_index: i32,
    pub is_active: bool,
}

impl From<ChunkRow> for ChunkOut {
    fn from(r: ChunkRow) -> Self {
        Self {
            id: r.id,
            content: r.content,
            source: r.source,
            chunk_index: r.chunk_index,
            is_active: r.is_active,
        }
    }
}

/// `{"chunks": […], "total", "page", "total_pages"}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChunkList {
    pub chunks: Vec<ChunkOut>,
    #[schema(example = 42)]
    pub total: i64,
    #[schema(example = 1)]
    pub page: i64,
    #[schema(example = 3)]
    pub total_pages: i64,
}

/// Body of `PUT …/chunks/{chunk_id}`: new content (re-embedded) and/or the active flag.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": "Updated text content here"}), min_properties = 1)]
pub struct ChunkIn {
    /// 1 to 20,000 characters (not only white space).
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 20000,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub content: Option<String>,
    /// Inactive chunks are kept but never returned by search.
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
}

/// `{"success": true, "chunk": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChunkUpdated {
    pub success: bool,
    pub chunk: ChunkOut,
}

fn chunk_missing(e: diesel::result::Error) -> ApiError {
    match e {
        diesel::result::Error::NotFound => ApiError::not_found("Chunk"),
        other => other.into(),
    }
}

/// List chunks with pagination; content is cut to 200 characters.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases/{kb_id}/chunks", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1), ChunkQuery),
    responses(
        (status = 200, description = "A page of chunks", body = ChunkList),
        (status = 400, description = "Invalid page or per_page", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_chunks(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<ChunkQuery>,
) -> ApiResult<HttpResponse> {
    let pg = crate::validate::Page::parse(q.page, q.per_page, 20)?;
    let (page, per_page) = (pg.page, pg.per_page);
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, *id)
        .await
        .map_err(kb_missing)?;
    let (rows, total) =
        kb_chunks::page(&mut conn, kb.id, q.is_active, pg.offset(), per_page).await?;
    Ok(HttpResponse::Ok().json(ChunkList {
        chunks: rows.into_iter().map(Into::into).collect(),
        total,
        page,
        total_pages: pg.total_pages(total),
    }))
}

/// Update a chunk's text (its embedding is regenerated) or active flag.
#[utoipa::path(
    put, path = "/api/v1/knowledge-bases/{kb_id}/chunks/{chunk_id}", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("chunk_id" = i64, Path, description = "Chunk id", example = 5),
    ),
    request_body = ChunkIn,
    responses(
        (status = 200, description = "Updated", body = ChunkUpdated),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base or chunk", body = crate::error::ErrorBody),
        (status = 503, description = "Embedding model not installed", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn update_chunk(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    body: web::Json<ChunkIn>,
) -> ApiResult<HttpResponse> {
    let (kb_id, chunk_id) = path.into_inner();
    let ChunkIn { content, is_active } = body.into_inner();
    if content.is_none() && is_active.is_none() {
        return Err(ApiError::invalid_field(
            "content",
            "Send content and/or is_active",
        ));
    }
    if let Some(c) = &content {
        no_nul("content", c)?;
        if c.trim().is_empty() || c.chars().count() > MAX_CHUNK_CHARS {
            return Err(ApiError::invalid_field(
                "content",
                format!("content must be 1 to {MAX_CHUNK_CHARS} characters"),
            ));
        }
    }
    let embedder = match &content {
        Some(_) => Some(state.rag.embedder()?.clone()),
        None => None,
    };
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, kb_id)
        .await
        .map_err(kb_missing)?;
    kb_chunks::find(&mut conn, kb.id, chunk_id)
        .await
        .map_err(chunk_missing)?;
    let new_content = match (content, embedder) {
        (Some(text), Some(embedder)) => {
            let text = text.trim().to_owned();
            let path = kb_chunks::heading_path(&mut conn, kb.id, chunk_id)
                .await
                .map_err(chunk_missing)?;
            let v = embedder
                .embed_one(&crate::rag::documents::embedding_text(&path, &text))
                .await
                .map_err(|e| ApiError::Unavailable(format!("Embedding failed: {e}")))?;
            Some((text, Embedding(v)))
        }
        _ => None,
    };
    if kb_chunks::update(&mut conn, kb.id, chunk_id, new_content, is_active).await? == 0 {
        return Err(ApiError::not_found("Chunk"));
    }
    let row = kb_chunks::find(&mut conn, kb.id, chunk_id)
        .await
        .map_err(chunk_missing)?;
    Ok(HttpResponse::Ok().json(ChunkUpdated {
        success: true,
        chunk: row.into(),
    }))
}

/// Delete a chunk and its embedding.
#[utoipa::path(
    delete, path = "/api/v1/knowledge-bases/{kb_id}/chunks/{chunk_id}", tag = "Knowledge Bases",
    params(
        ("kb_id" = i64, Path, description = "Knowledge base id", example = 1),
        ("chunk_id" = i64, Path, description = "Chunk id", example = 5),
    ),
    responses(
        (status = 200, description = "Deleted", body = SuccessMessage),
        (status = 404, description = "No such knowledge base or chunk", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_chunk(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (kb_id, chunk_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, kb_id)
        .await
        .map_err(kb_missing)?;
    if !kb_chunks::delete(&mut conn, kb.id, chunk_id).await? {
        return Err(ApiError::not_found("Chunk"));
    }
    Ok(HttpResponse::Ok().json(SuccessMessage {
        success: true,
        message: "Chunk deleted".into(),
    }))
}
