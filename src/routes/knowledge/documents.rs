//! Adding text to a knowledge base: file upload, raw-text ingest, reindex.

use super::{MAX_DOCUMENT_BYTES, kb_missing};
use crate::auth::Auth;
use crate::db::kb_jobs::{self, NewJob};
use crate::db::sql_types::Embedding;
use crate::db::{kb_chunks, knowledge_bases};
use crate::error::{ApiError, ApiResult};
use crate::rag::documents::{Kind, chunk_document};
use crate::rag::indexer::{self, IndexError};
use crate::state::AppState;
use crate::validate;
use crate::validate::no_nul;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel_async::AsyncConnection;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What an upload did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentUploaded {
    pub success: bool,
    /// Chunks stored (0 while a large document is indexed in the background).
    #[schema(example = 15)]
    pub chunks_created: usize,
    #[schema(example = "faq.md")]
    pub source_file: String,
    /// `ready` when indexed within the request, `indexing` when queued.
    #[schema(example = "ready")]
    pub indexing_status: String,
}

/// Body of `POST /api/v1/knowledge-bases/{kb_id}/ingest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": "Your company was founded in 2020...", "source_name": "about-page"}))]
pub struct IngestIn {
    /// Raw text (at most 10 MB).
    pub content: String,
    /// Source label (default `api_ingest`); ingesting under the same label replaces its chunks.
    pub source_name: Option<String>,
}

/// What an ingest did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ingested {
    pub success: bool,
    #[schema(example = 3)]
    pub chunks_created: usize,
    #[schema(example = "about-page")]
    pub source_name: String,
    #[schema(example = "ready")]
    pub indexing_status: String,
}

/// `{"success": true, "chunks_reindexed": n}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reindexed {
    pub success: bool,
    #[schema(example = 42)]
    pub chunks_reindexed: usize,
}

struct Outcome {
    chunks: usize,
    status: &'static str,
    queued: bool,
}

/// Chunks and indexes a document: within the request when it is small,
/// queued for the background indexer otherwise.
async fn index(
    state: &AppState,
    project_id: i64,
    kb_id: i64,
    source: String,
    kind: Kind,
    text: String,
    origin: &'static str,
) -> ApiResult<Outcome> {
    let embedder = state.rag.embedder()?.clone();
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, project_id, kb_id)
        .await
        .map_err(kb_missing)?;
    let params = indexer::params(&kb);
    let (text, chunked) = tokio::task::spawn_blocking(move || {
        let chunked = chunk_document(kind, &text, params);
        (text, chunked)
    })
    .await
    .map_err(ApiError::internal)?;
    let chunks = chunked.map_err(|e| ApiError::invalid_field("file", e))?;
    if chunks.is_empty() {
        return Err(ApiError::invalid_field(
            "file",
            "The document contains no text",
        ));
    }
    // A small document is indexed here, unless a worker is indexing an
    // earlier upload of the same source: then it queues behind it, so the
    // newer text wins without this request waiting for the worker.
    let inline = text.len() <= state.settings.kb_inline_index_max_bytes
        && !kb_jobs::supersede(&mut conn, kb.id, &source).await?;
    if !inline {
        conn.transaction::<_, ApiError, _>(async |conn| {
            let job = NewJob {
                project_id,
                knowledge_base_id: kb.id,
                source: &source,
                kind: kind.as_str(),
                origin,
                content: &text,
            };
            kb_jobs::enqueue(conn, &job).await?;
            knowledge_bases::set_status(conn, kb.id, "indexing", None).await?;
            Ok(())
        })
        .await?;
        state.rag.wakeup.notify_one();
        return Ok(Outcome {
            chunks: 0,
            status: "indexing",
            queued: true,
        });
    }
    let (chunks, status) = conn
        .transaction::<_, IndexError, _>(async |conn| {
            // An upload queued meanwhile is older than this one.
            kb_jobs::supersede(conn, kb.id, &source).await?;
            let n =
                indexer::store_chunks(conn, &embedder, &kb, &source, chunks, indexer::Graph::Now)
                    .await?;
            let status = knowledge_bases::mark_indexed(conn, kb.id).await?;
            let event = indexer::uploaded_event(kb.id, &source, n, origin);
            indexer::emit(conn, project_id, "knowledge.document_uploaded", event).await?;
            Ok((n, status))
        })
        .await?;
    Ok(Outcome {
        chunks,
        status,
        queued: false,
    })
}

fn status_of(o: &Outcome) -> actix_web::HttpResponseBuilder {
    if o.queued {
        HttpResponse::Accepted()
    } else {
        HttpResponse::Created()
    }
}

/// Reads the multipart field `file`: (file name, bytes). Bodies over the
/// limit are read to the end (so the client sees the answer) and refused.
async fn read_file(req: &HttpRequest, payload: web::Payload) -> ApiResult<(String, Vec<u8>)> {
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_DOCUMENT_BYTES,
    };
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be multipart/form-data with the document in the field `file`".into(),
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > 4 * MAX_DOCUMENT_BYTES) {
        return Err(too_large);
    }
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut over = false;
    while let Some(field) = form.next().await {
        let mut field =
            field.map_err(|e| ApiError::bad_request(format!("Invalid multipart body: {e}")))?;
        let is_file = field.name() == Some("file") && file.is_none();
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned);
        let mut buf = Vec::new();
        while let Some(bytes) = field.next().await {
            let bytes =
                bytes.map_err(|e| ApiError::bad_request(format!("Invalid multipart body: {e}")))?;
            if is_file && !over {
                if buf.len() + bytes.len() > MAX_DOCUMENT_BYTES {
                    over = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&bytes);
                }
            }
        }
        if is_file {
            let name =
                name.ok_or_else(|| ApiError::invalid_field("file", "The file needs a file name"))?;
            file = Some((name, buf));
        }
    }
    if over {
        return Err(too_large);
    }
    file.ok_or_else(|| {
        ApiError::invalid_field("file", "Send the document in the multipart field `file`")
    })
}

/// The stored name of an uploaded file: its last path segment.
fn source_file(name: &str) -> ApiResult<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    validate::text("file", base, 255)
}

/// Upload a document (.txt, .md, .csv, .json; at most 10 MB; UTF-8) as the
/// multipart field `file`. Re-uploading a file name replaces its chunks.
/// Documents over `kb_inline_index_max_bytes` answer 202 at once and are
/// indexed in the background.
#[utoipa::path(
    post, path = "/api/v1/knowledge-bases/{kb_id}/documents", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    request_body(content = String, content_type = "multipart/form-data", description = "Field `file`: the document"),
    responses(
        (status = 201, description = "Indexed", body = DocumentUploaded),
        (status = 202, description = "Queued for background indexing", body = DocumentUploaded),
        (status = 400, description = "Unsupported type, not UTF-8, invalid JSON, or no text", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
        (status = 413, description = "Larger than 10 MB", body = crate::error::ErrorBody),
        (status = 503, description = "Embedding model not installed", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upload_document(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.rag.embedder()?;
    let (name, bytes) = read_file(&req, payload).await?;
    let source = source_file(&name)?;
    let kind = Kind::from_file_name(&source).ok_or_else(|| {
        ApiError::invalid_field(
            "file",
            "Unsupported file type: upload .txt, .md, .csv or .json",
        )
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::invalid_field("file", "The file is not valid UTF-8 text"))?;
    no_nul("file", &text)?;
    let o = index(
        &state,
        auth.project.id,
        *id,
        source.clone(),
        kind,
        text,
        "document",
    )
    .await?;
    Ok(status_of(&o).json(DocumentUploaded {
        success: true,
        chunks_created: o.chunks,
        source_file: source,
        indexing_status: o.status.into(),
    }))
}

/// Ingest raw text. Re-ingesting a `source_name` replaces its chunks.
#[utoipa::path(
    post, path = "/api/v1/knowledge-bases/{kb_id}/ingest", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    request_body = IngestIn,
    responses(
        (status = 201, description = "Indexed", body = Ingested),
        (status = 202, description = "Queued for background indexing", body = Ingested),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
        (status = 413, description = "Larger than 10 MB", body = crate::error::ErrorBody),
        (status = 503, description = "Embedding model not installed", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn ingest_text(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<IngestIn>,
) -> ApiResult<HttpResponse> {
    state.rag.embedder()?;
    let IngestIn {
        content,
        source_name,
    } = body.into_inner();
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    no_nul("content", &content)?;
    if content.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "content",
            "content must not be empty",
        ));
    }
    let source = validate::text(
        "source_name",
        source_name.as_deref().unwrap_or("api_ingest"),
        255,
    )?;
    let o = index(
        &state,
        auth.project.id,
        *id,
        source.clone(),
        Kind::Txt,
        content,
        "ingest",
    )
    .await
    .map_err(|e| match e {
        ApiError::BadRequest { message, .. } => ApiError::invalid_field("content", message),
        other => other,
    })?;
    Ok(status_of(&o).json(Ingested {
        success: true,
        chunks_created: o.chunks,
        source_name: source,
        indexing_status: o.status.into(),
    }))
}

/// Re-embeds every chunk of a knowledge base, page by page; the status stays
/// `indexing` (refreshed each page, so a crashed run is noticed, see
/// [`knowledge_bases::heal_stale_indexing`]) until it is done.
async fn reindex(
    state: std::sync::Arc<AppState>,
    embedder: std::sync::Arc<crate::rag::embedder::Embedder>,
    kb: knowledge_bases::KnowledgeBase,
) -> ApiResult<usize> {
    let mut conn = state.pool.get().await?;
    knowledge_bases::set_status(&mut conn, kb.id, "indexing", None).await?;
    let mut after = 0;
    let mut done = 0;
    let result: Result<(), IndexError> = async {
        loop {
            let page = kb_chunks::contents_after(&mut conn, kb.id, after, 256).await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            let texts: Vec<String> = page.iter().map(|(_, c)| c.clone()).collect();
            let vectors = embedder.embed(&texts).await.map_err(IndexError::Embed)?;
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                for ((id, _), v) in page.iter().zip(vectors) {
                    kb_chunks::set_embedding(conn, *id, &Embedding(v)).await?;
                }
                knowledge_bases::set_status(conn, kb.id, "indexing", None).await
            })
            .await?;
            done += page.len();
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        knowledge_bases::set_status(&mut conn, kb.id, "error", Some(&e.to_string())).await?;
        return Err(e.into());
    }
    crate::events::rings_after(&state.events_wake, async {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            knowledge_bases::mark_indexed(conn, kb.id).await?;
            let event = json!({ "knowledge_base_id": kb.id, "chunks_reindexed": done });
            indexer::emit(conn, kb.project_id, "knowledge.reindexed", event).await
        })
        .await
    })
    .await?;
    // The re-embedded rows wait outside the HNSW graph for the worker.
    state.rag.wakeup.notify_one();
    Ok(done)
}

/// Regenerate the embeddings of every chunk (active or not).
#[utoipa::path(
    post, path = "/api/v1/knowledge-bases/{kb_id}/reindex", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    responses(
        (status = 200, description = "Re-embedded", body = Reindexed),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
        (status = 503, description = "Embedding model not installed", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn reindex_knowledge_base(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let embedder = state.rag.embedder()?.clone();
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, *id)
        .await
        .map_err(kb_missing)?;
    // The work runs in its own task: a client that gives up waiting does not
    // leave the knowledge base half re-embedded and `indexing` for good.
    drop(conn);
    let task = actix_web::rt::spawn(reindex(state.into_inner(), embedder, kb));
    let done = task.await.map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(Reindexed {
        success: true,
        chunks_reindexed: done,
    }))
}
