//! Storing a document's chunks (embedding one group while the previous one
//! is inserted), and the background worker that indexes queued documents.

use super::chunking::ChunkParams;
use super::documents::{Kind, Piece, chunk_document, embedding_text};
use super::embedder::Embedder;
use crate::db::kb_chunks::{self, NewChunk};
use crate::db::kb_documents::KbDocumentStatus;
use crate::db::knowledge_bases::{self, KbIndexingStatus, KnowledgeBase};
use crate::db::sql_types::Embedding;
use crate::db::{kb_documents, kb_jobs};
use crate::error::ApiError;
use crate::state::AppState;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use std::time::Duration;

/// Chunks per insert statement (and per embedding request of the pipeline).
const GROUP: usize = 64;
/// Chunks moved into the HNSW graph per transaction (~2 ms each): between
/// two batches the worker looks for a queued document again.
const MERGE_BATCH: i64 = 256;
/// Attempts before a queued document is given up and the KB marked `error`.
const MAX_ATTEMPTS: i32 = 3;
/// How often an idle worker looks for jobs queued by other nodes.
const POLL: Duration = Duration::from_secs(2);
/// How often knowledge bases left `indexing` by a dead re-index are healed.
const HEAL_EVERY: Duration = Duration::from_secs(60);
/// A re-index refreshes its status every page (seconds); one silent for
/// this long is dead.
const STALE_AFTER_SECS: i64 = 120;

/// Why a document could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("embedding: {0}")]
    Embed(String),
    #[error("{0}")]
    Invalid(String),
    /// The document's name belongs to a document of another origin.
    #[error("the name {0} belongs to another document")]
    Conflict(String),
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Db(e) => e.into(),
            IndexError::Embed(e) => ApiError::Unavailable(format!("Embedding failed: {e}")),
            IndexError::Invalid(e) => ApiError::invalid_field("file", e),
            IndexError::Conflict(name) => ApiError::conflict(format!(
                "A document named {name} belongs to a web source of this knowledge base"
            )),
        }
    }
}

/// The chunking parameters of a knowledge base.
pub fn params(kb: &KnowledgeBase) -> ChunkParams {
    ChunkParams {
        size: usize::try_from(kb.chunk_size).unwrap_or(500),
        overlap: usize::try_from(kb.chunk_overlap).unwrap_or(0),
    }
}

/// Inside a transaction: serialises writers of one (knowledge base, source).
pub async fn lock_source(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    source: &str,
) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($2, $1))")
        .bind::<BigInt, _>(kb_id)
        .bind::<Text, _>(source)
        .execute(conn)
        .await?;
    Ok(())
}

/// Where new chunks go: into the HNSW graph at once (a small document,
/// indexed while its request waits), or beside it until the worker moves
/// them in (a queued document: the graph's upkeep would take CPU from the
/// model the whole document waits for; see the `kb_hnsw_tail` migration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graph {
    Now,
    Later,
}

/// Inside a transaction: replaces the chunks of `source` with `pieces`,
/// embedding each group while the previous one is written (`url`: the page
/// a crawled document came from). Returns how many chunks were stored.
pub async fn store_chunks(
    conn: &mut AsyncPgConnection,
    embedder: &Embedder,
    kb: &KnowledgeBase,
    source: &str,
    pieces: Vec<Piece>,
    graph: Graph,
    url: Option<&str>,
) -> Result<usize, IndexError> {
    lock_source(conn, kb.id, source).await?;
    kb_chunks::delete_source(conn, kb.id, source).await?;
    let mut pending: Vec<NewChunk> = Vec::new();
    let mut next_index = 0i32;
    for group in pieces.chunks(GROUP) {
        let texts: Vec<String> = group
            .iter()
            .map(|p| embedding_text(&p.heading_path, &p.content))
            .collect();
        let embed = embedder.embed(&texts);
        let vectors = if pending.is_empty() {
            embed.await
        } else {
            let (vectors, written) = tokio::join!(embed, kb_chunks::insert_many(conn, &pending));
            written?;
            vectors
        }
        .map_err(IndexError::Embed)?;
        pending = group
            .iter()
            .zip(vectors)
            .map(|(piece, v)| {
                let row = NewChunk {
                    project_id: kb.project_id,
                    knowledge_base_id: kb.id,
                    source: source.to_owned(),
                    chunk_index: next_index,
                    content: piece.content.clone(),
                    embedding: Embedding(v),
                    hnsw_pending: graph == Graph::Later,
                    page: piece.page,
                    heading_path: piece.heading_path.clone(),
                    url: url.map(str::to_owned),
                };
                next_index += 1;
                row
            })
            .collect();
    }
    kb_chunks::insert_many(conn, &pending).await?;
    Ok(pieces.len())
}

/// Writes an outbox event in the caller's transaction.
pub async fn emit(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    event_type: &str,
    data: serde_json::Value,
) -> diesel::QueryResult<()> {
    crate::events::emit(conn, project_id, event_type, data)
        .await
        .map(|_| ())
}

/// The `knowledge.document_uploaded` payload.
pub fn uploaded_event(kb_id: i64, source: &str, chunks: usize, origin: &str) -> serde_json::Value {
    json!({
        "knowledge_base_id": kb_id,
        "source": source,
        "origin": origin,
        "chunks_created": chunks,
    })
}

/// Spawns the background indexer (nothing to do without a model: queued
/// documents wait for a process that has one).
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    state.rag.embedder().ok()?;
    Some(tokio::spawn(async move {
        let mut last_heal: Option<tokio::time::Instant> = None;
        loop {
            if last_heal.is_none_or(|t| t.elapsed() >= HEAL_EVERY) {
                last_heal = Some(tokio::time::Instant::now());
                heal(&state).await;
            }
            match run_one(&state).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "knowledge indexer: could not run a job"),
            }
            match merge_some(&state).await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::warn!(error = %e, "knowledge indexer: could not merge chunks"),
            }
            let _ = tokio::time::timeout(POLL, state.rag.wakeup.notified()).await;
        }
    }))
}

/// Moves one batch of waiting chunks into the HNSW graph; how many.
async fn merge_some(state: &AppState) -> anyhow::Result<usize> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(kb_chunks::merge_pending(&mut conn, MERGE_BATCH).await?)
}

async fn heal(state: &AppState) {
    let healed = match state.pool.get().await {
        Ok(mut conn) => knowledge_bases::heal_stale_indexing(&mut conn, STALE_AFTER_SECS)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    match healed {
        Ok(0) => {}
        Ok(n) => tracing::info!(knowledge_bases = n, "healed knowledge bases left indexing"),
        Err(e) => tracing::warn!(error = %e, "knowledge indexer: could not heal stale statuses"),
    }
}

/// The chunks of a queued document: text kinds are chunked here, parsed
/// kinds (PDF, DOCX, HTML) were cut at upload and carry their pieces as JSON.
fn job_pieces(job: &kb_jobs::Job, kb: &KnowledgeBase) -> Result<Vec<Piece>, IndexError> {
    let kind = Kind::parse(&job.kind).ok_or_else(|| IndexError::Invalid("unknown kind".into()))?;
    if kind.format().is_some() {
        return serde_json::from_str(&job.content)
            .map_err(|e| IndexError::Invalid(format!("queued pieces: {e}")));
    }
    chunk_document(kind, &job.content, params(kb)).map_err(IndexError::Invalid)
}

/// Indexes one queued document; false when none was due.
pub async fn run_one(state: &AppState) -> anyhow::Result<bool> {
    let embedder = state
        .rag
        .embedder()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .clone();
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut claimed: Option<kb_jobs::Job> = None;
    let outcome = conn
        .transaction::<_, IndexError, _>(async |conn| {
            let Some(job) = kb_jobs::claim(conn).await? else {
                return Ok(false);
            };
            claimed = Some(job.clone());
            let kb = knowledge_bases::find(conn, job.project_id, job.knowledge_base_id).await?;
            let pieces = job_pieces(&job, &kb)?;
            // A crawled page's chunks cite its URL.
            let url = kb_documents::by_name(conn, kb.id, &job.source).await?.and_then(|d| d.url);
            let n = store_chunks(conn, &embedder, &kb, &job.source, pieces, Graph::Later, url.as_deref())
                .await?;
            kb_jobs::finish(conn, job.id).await?;
            kb_documents::set_status(conn, kb.id, &job.source, KbDocumentStatus::Ready, None).await?;
            knowledge_bases::mark_indexed(conn, kb.id).await?;
            let event = uploaded_event(kb.id, &job.source, n, &job.origin);
            emit(conn, kb.project_id, "knowledge.document_uploaded", event).await?;
            tracing::info!(kb_id = kb.id, source = %job.source, chunks = n, "indexed queued document");
            Ok(true)
        })
        .await;
    match (outcome, claimed) {
        (Ok(done), _) => {
            if done {
                state.events_wake.committed();
            }
            Ok(done)
        }
        (Err(e), Some(job)) => {
            let why = e.to_string();
            let retry = 5_i64 << job.attempts.clamp(0, 8);
            let attempts = kb_jobs::record_failure(&mut conn, job.id, &why, retry).await?;
            if attempts >= MAX_ATTEMPTS {
                kb_jobs::abandon(&mut conn, job.id).await?;
                knowledge_bases::set_status(
                    &mut conn,
                    job.knowledge_base_id,
                    KbIndexingStatus::Error,
                    Some(&why),
                )
                .await?;
                kb_documents::set_status(
                    &mut conn,
                    job.knowledge_base_id,
                    &job.source,
                    KbDocumentStatus::Error,
                    Some(&why),
                )
                .await?;
            }
            Err(anyhow::anyhow!("job {} ({}): {why}", job.id, job.source))
        }
        (Err(e), None) => Err(e.into()),
    }
}
