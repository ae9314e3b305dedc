//! Adding text to a knowledge base: file upload, raw-text ingest, reindex.

use super::{MAX_DOCUMENT_BYTES, kb_missing};
use crate::auth::Auth;
use crate::db::kb_documents::KbDocumentStatus;
use crate::db::knowledge_bases::KbIndexingStatus;
use crate::db::sql_types::Embedding;
use crate::db::{kb_chunks, knowledge_bases};
use crate::error::{ApiError, ApiResult};
use crate::knowledge::documents::http::KbDocumentOut;
use crate::knowledge::documents::service::{self, Outcome};
use crate::rag::documents::Kind;
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
    /// Chunks stored (0 while a large document is indexed in the background,
    /// and for a PDF without a text layer).
    #[schema(example = 15)]
    pub chunks_created: usize,
    #[schema(example = "faq.md")]
    pub source_file: String,
    /// `ready` when indexed within the request, `indexing` when queued,
    /// `no_text_layer` for a PDF whose pages carry no text (a scan: nothing
    /// to search; the document is recorded with that status).
    #[schema(example = "ready")]
    pub indexing_status: String,
    /// The document as recorded.
    pub document: KbDocumentOut,
}

/// Body of `POST /api/v1/knowledge-bases/{kb_id}/ingest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": "Your company was founded in 2020...", "source_name": "about-page"}))]
pub struct IngestIn {
    /// Raw text (at most 10 MB), not only white space.
    #[schema(min_length = 1, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub content: String,
    /// Source label (default `api_ingest`); ingesting under the same label replaces its chunks.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub source_name: Option<String>,
}

/// The multipart form of a document upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DocumentUploadForm {
    /// The document, with its file name (the extension names its type:
    /// .txt, .md, .csv, .json, .pdf, .docx or .html).
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
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

/// 201 when indexed (or recorded without text), 202 when queued.
fn respond(outcome: Outcome) -> (actix_web::HttpResponseBuilder, usize, &'static str) {
    match outcome {
        Outcome::Indexed { chunks, kb_status } => {
            (HttpResponse::Created(), chunks, kb_status.as_str())
        }
        Outcome::Queued => (
            HttpResponse::Accepted(),
            0,
            KbDocumentStatus::Indexing.as_str(),
        ),
        Outcome::NoTextLayer => (
            HttpResponse::Created(),
            0,
            KbDocumentStatus::NoTextLayer.as_str(),
        ),
    }
}

fn chunks_of(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Indexed { chunks, .. } => i64::try_from(chunks).unwrap_or(i64::MAX),
        _ => 0,
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

/// Upload a document as the multipart field `file` (at most 10 MB): .txt,
/// .md, .csv, .json (UTF-8), .pdf (the text layer; pages kept for citations;
/// at most `kb_max_document_pages` pages; encrypted PDFs refused), .docx, or
/// .html (the main content; headings kept, scripts and navigation dropped).
/// Chunks follow the document's structure (headings, pages, paragraphs)
/// before its size. Re-uploading a file name replaces its chunks. Documents
/// with more than `kb_inline_index_max_bytes` of text answer 202 at once and
/// are indexed in the background.
#[utoipa::path(
    post, path = "/api/v1/knowledge-bases/{kb_id}/documents", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    request_body(content = DocumentUploadForm, content_type = "multipart/form-data", description = "Field `file`: the document"),
    responses(
        (status = 201, description = "Indexed, or recorded as `no_text_layer` (a PDF without text)", body = DocumentUploaded),
        (status = 202, description = "Queued for background indexing", body = DocumentUploaded),
        (status = 400, description = "Unsupported type, not UTF-8, invalid JSON, a corrupt, encrypted or unreadable file (`details.reason`), or no text", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
        (status = 409, description = "The name belongs to a crawled page of a web source", body = crate::error::ErrorBody),
        (status = 413, description = "Larger than 10 MB, more pages than allowed, or a DOCX that expands past its limits", body = crate::error::ErrorBody),
        (status = 415, description = "Not a multipart/form-data body", body = crate::error::ErrorBody),
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
            "Unsupported file type: upload .txt, .md, .csv, .json, .pdf, .docx or .html",
        )
    })?;
    let kb = {
        let mut conn = state.pool.get().await?;
        knowledge_bases::find(&mut conn, auth.project.id, *id)
            .await
            .map_err(kb_missing)?
    };
    let prepared = service::prepare(&state, &kb, source.clone(), kind, bytes).await?;
    let chars: usize = prepared
        .pieces
        .iter()
        .map(|p| p.content.chars().count())
        .sum();
    let from = service::Origin {
        origin: "document",
        source_id: None,
        url: None,
    };
    let (outcome, doc) = service::index(&state, &kb, prepared, from).await?;
    let (mut res, chunks, status) = respond(outcome);
    Ok(res.json(DocumentUploaded {
        success: true,
        chunks_created: chunks,
        source_file: source,
        indexing_status: status.into(),
        document: KbDocumentOut::new(
            doc,
            chunks_of(outcome),
            if chunks_of(outcome) > 0 {
                i64::try_from(chars).unwrap_or(i64::MAX)
            } else {
                0
            },
        ),
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
    let kb = {
        let mut conn = state.pool.get().await?;
        knowledge_bases::find(&mut conn, auth.project.id, *id)
            .await
            .map_err(kb_missing)?
    };
    let as_content = |e: ApiError| match e {
        ApiError::BadRequest { message, .. } => ApiError::invalid_field("content", message),
        other => other,
    };
    let prepared = service::prepare_text(source.clone(), Kind::Txt, content, indexer::params(&kb))
        .await
        .map_err(as_content)?;
    let from = service::Origin {
        origin: "ingest",
        source_id: None,
        url: None,
    };
    let (outcome, _) = service::index(&state, &kb, prepared, from)
        .await
        .map_err(as_content)?;
    let (mut res, chunks, status) = respond(outcome);
    Ok(res.json(Ingested {
        success: true,
        chunks_created: chunks,
        source_name: source,
        indexing_status: status.into(),
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
    knowledge_bases::set_status(&mut conn, kb.id, KbIndexingStatus::Indexing, None).await?;
    let mut after = 0;
    let mut done = 0;
    let result: Result<(), IndexError> = async {
        loop {
            let page = kb_chunks::contents_after(&mut conn, kb.id, after, 256).await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            let texts: Vec<String> = page
                .iter()
                .map(|(_, c, path)| crate::rag::documents::embedding_text(path, c))
                .collect();
            let vectors = embedder.embed(&texts).await.map_err(IndexError::Embed)?;
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                for ((id, _, _), v) in page.iter().zip(vectors) {
                    kb_chunks::set_embedding(conn, *id, &Embedding(v)).await?;
                }
                knowledge_bases::set_status(conn, kb.id, KbIndexingStatus::Indexing, None).await
            })
            .await?;
            done += page.len();
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        knowledge_bases::set_status(
            &mut conn,
            kb.id,
            KbIndexingStatus::Error,
            Some(&e.to_string()),
        )
        .await?;
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
