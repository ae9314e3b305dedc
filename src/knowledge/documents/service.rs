//! The rules of adding a document to a knowledge base, shared by uploads,
//! raw-text ingest and crawled pages: read it (bounded, see
//! [`crate::rag::extract`]), cut it along its structure, then index it
//! within the request when it is small or queue it for the background
//! indexer, recording the document and its status in the same transaction
//! as its chunks (or its job).

use crate::db::kb_documents::{self, Document, DocumentIn, KbDocumentStatus};
use crate::db::kb_jobs::{self, NewJob};
use crate::db::knowledge_bases::{self, KbIndexingStatus, KnowledgeBase};
use crate::error::{ApiError, ApiResult};
use crate::rag::documents::{Kind, Piece, chunk_blocks, chunk_document};
use crate::rag::extract::{self, Extracted, Limits};
use crate::rag::indexer::{self, IndexError};
use crate::state::AppState;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use std::time::Duration;

/// The error of a PDF without a text layer.
pub const NO_TEXT_LAYER: &str =
    "The PDF has no text layer (scanned pages?); run OCR on it and upload the result";

/// A document read and chunked, ready to index.
#[derive(Debug)]
pub struct Prepared {
    /// The document's name (the chunks' `source`).
    pub name: String,
    pub kind: Kind,
    pub pieces: Vec<Piece>,
    /// The text of a text kind, queued as is (parsed kinds queue their pieces).
    pub text: Option<String>,
    /// Bytes of text: decides between indexing now and queueing.
    pub text_bytes: usize,
    pub pages: Option<u32>,
    pub title: Option<String>,
}

/// What happened to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Indexed within the request: chunks stored, the knowledge base's status.
    Indexed {
        chunks: usize,
        kb_status: KbIndexingStatus,
    },
    /// Queued for the background indexer.
    Queued,
    /// Recorded with no chunks: a PDF without a text layer.
    NoTextLayer,
}

/// The reading limits of the settings.
pub fn limits(state: &AppState) -> Limits {
    Limits::new(
        state.settings.kb_max_document_pages,
        Duration::from_millis(state.settings.kb_parse_timeout_ms),
    )
}

/// Reads a document of a kind from its bytes and chunks it with the
/// knowledge base's parameters. Text kinds must be UTF-8 without NUL.
pub async fn prepare(
    state: &AppState,
    kb: &KnowledgeBase,
    name: String,
    kind: Kind,
    bytes: Vec<u8>,
) -> ApiResult<Prepared> {
    let params = indexer::params(kb);
    match kind.format() {
        Some(format) => {
            let doc = extract::extract_guarded(format, bytes, limits(state)).await?;
            Ok(prepare_extracted(name, kind, doc, params).await?)
        }
        None => {
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::invalid_field("file", "The file is not valid UTF-8 text"))?;
            crate::validate::no_nul("file", &text)?;
            prepare_text(name, kind, text, params).await
        }
    }
}

/// Chunks read text (on a blocking thread: a 10 MB text takes a while).
pub async fn prepare_text(
    name: String,
    kind: Kind,
    text: String,
    params: crate::rag::chunking::ChunkParams,
) -> ApiResult<Prepared> {
    let (text, pieces) = tokio::task::spawn_blocking(move || {
        let pieces = chunk_document(kind, &text, params);
        (text, pieces)
    })
    .await
    .map_err(ApiError::internal)?;
    let pieces = pieces.map_err(|e| ApiError::invalid_field("file", e))?;
    Ok(Prepared {
        name,
        kind,
        pieces,
        text_bytes: text.len(),
        text: Some(text),
        pages: None,
        title: None,
    })
}

/// Chunks an extracted document along its structure.
pub async fn prepare_extracted(
    name: String,
    kind: Kind,
    doc: Extracted,
    params: crate::rag::chunking::ChunkParams,
) -> ApiResult<Prepared> {
    let text_bytes = doc.blocks.iter().map(|b| b.text().len()).sum();
    let (pages, title) = (doc.pages, doc.title.clone());
    let pieces = tokio::task::spawn_blocking(move || chunk_blocks(&doc.blocks, params))
        .await
        .map_err(ApiError::internal)?;
    Ok(Prepared {
        name,
        kind,
        pieces,
        text: None,
        text_bytes,
        pages,
        title,
    })
}

/// Where a document comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `document`, `ingest` or `web`.
    pub origin: &'static str,
    /// The web source of a crawled page, and its URL.
    pub source_id: Option<i64>,
    pub url: Option<&'a str>,
}

fn conflict(name: &str) -> ApiError {
    ApiError::conflict(format!(
        "A document named {name} belongs to a web source of this knowledge base"
    ))
}

/// Indexes a prepared document: within the request when small (chunks and
/// the document row in one transaction), else queued. A PDF with pages but
/// no text is recorded as `no_text_layer` (its earlier chunks removed); any
/// other document without text is a 400.
pub async fn index(
    state: &AppState,
    kb: &KnowledgeBase,
    doc: Prepared,
    from: Origin<'_>,
) -> ApiResult<(Outcome, Document)> {
    let mut conn = state.pool.get().await?;
    let page_count = doc.pages.and_then(|p| i32::try_from(p).ok());
    let row = |status: KbDocumentStatus, error: Option<&'static str>| DocumentIn {
        project_id: kb.project_id,
        knowledge_base_id: kb.id,
        name: &doc.name,
        kind: doc.kind.as_str(),
        origin: from.origin,
        source_id: from.source_id,
        url: from.url,
        title: doc.title.as_deref(),
        status,
        error,
        page_count,
    };
    if doc.pieces.is_empty() {
        if doc.kind != Kind::Pdf || doc.pages.is_none() {
            return Err(ApiError::invalid_field(
                "file",
                "The document contains no text",
            ));
        }
        let recorded = conn
            .transaction::<_, ApiError, _>(async |conn| {
                kb_jobs::supersede(conn, kb.id, &doc.name).await?;
                let d = kb_documents::upsert(
                    conn,
                    &row(KbDocumentStatus::NoTextLayer, Some(NO_TEXT_LAYER)),
                )
                .await?
                .ok_or_else(|| conflict(&doc.name))?;
                indexer::lock_source(conn, kb.id, &doc.name).await?;
                crate::db::kb_chunks::delete_source(conn, kb.id, &doc.name).await?;
                Ok(d)
            })
            .await?;
        return Ok((Outcome::NoTextLayer, recorded));
    }
    // A small document is indexed here, unless a worker is indexing an
    // earlier upload of the same name: then it queues behind it, so the
    // newer text wins without this request waiting for the worker.
    let inline = doc.text_bytes <= state.settings.kb_inline_index_max_bytes
        && !kb_jobs::supersede(&mut conn, kb.id, &doc.name).await?;
    if !inline {
        let content = match &doc.text {
            Some(text) => text.clone(),
            None => serde_json::to_string(&doc.pieces).map_err(ApiError::internal)?,
        };
        let recorded = conn
            .transaction::<_, ApiError, _>(async |conn| {
                let d = kb_documents::upsert(conn, &row(KbDocumentStatus::Indexing, None))
                    .await?
                    .ok_or_else(|| conflict(&doc.name))?;
                let job = NewJob {
                    project_id: kb.project_id,
                    knowledge_base_id: kb.id,
                    source: &doc.name,
                    kind: doc.kind.as_str(),
                    origin: job_origin(from.origin),
                    content: &content,
                };
                kb_jobs::enqueue(conn, &job).await?;
                knowledge_bases::set_status(conn, kb.id, KbIndexingStatus::Indexing, None).await?;
                Ok(d)
            })
            .await?;
        state.rag.wakeup.notify_one();
        return Ok((Outcome::Queued, recorded));
    }
    store_now(state, &mut conn, kb, doc, from).await
}

/// The `origin` a job records (its event's): a crawled page is a document.
fn job_origin(origin: &'static str) -> &'static str {
    match origin {
        "ingest" => "ingest",
        _ => "document",
    }
}

/// Embeds and stores a document's chunks with its row, in one transaction.
async fn store_now(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    kb: &KnowledgeBase,
    doc: Prepared,
    from: Origin<'_>,
) -> ApiResult<(Outcome, Document)> {
    let embedder = state.rag.embedder()?.clone();
    let page_count = doc.pages.and_then(|p| i32::try_from(p).ok());
    let (n, kb_status, recorded) = conn
        .transaction::<_, IndexError, _>(async |conn| {
            // An upload queued meanwhile is older than this one.
            kb_jobs::supersede(conn, kb.id, &doc.name).await?;
            let d = DocumentIn {
                project_id: kb.project_id,
                knowledge_base_id: kb.id,
                name: &doc.name,
                kind: doc.kind.as_str(),
                origin: from.origin,
                source_id: from.source_id,
                url: from.url,
                title: doc.title.as_deref(),
                status: KbDocumentStatus::Ready,
                error: None,
                page_count,
            };
            let Some(recorded) = kb_documents::upsert(conn, &d).await? else {
                return Err(IndexError::Conflict(doc.name.clone()));
            };
            let n = indexer::store_chunks(
                conn,
                &embedder,
                kb,
                &doc.name,
                doc.pieces,
                indexer::Graph::Now,
                from.url,
            )
            .await?;
            let status = knowledge_bases::mark_indexed(conn, kb.id).await?;
            let event = indexer::uploaded_event(kb.id, &doc.name, n, from.origin);
            indexer::emit(conn, kb.project_id, "knowledge.document_uploaded", event).await?;
            Ok((n, status, recorded))
        })
        .await
        .map_err(|e| match e {
            IndexError::Conflict(name) => conflict(&name),
            other => other.into(),
        })?;
    state.events_wake.committed();
    Ok((
        Outcome::Indexed {
            chunks: n,
            kb_status,
        },
        recorded,
    ))
}
