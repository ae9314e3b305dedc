//! Retrieval-augmented generation: chunking documents, embedding them
//! in-process, storing them in pgvector, indexing large ones in the
//! background, and searching.

pub mod chunking;
pub mod documents;
pub mod embedder;
pub mod extract;
pub mod fusion;
pub mod indexer;
pub mod snippet;

use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use embedder::{Embedder, EmbedderConfig};
use std::sync::Arc;

/// The RAG state of a process: the embedder (or why there is none) and the
/// bell that wakes the background indexer.
#[derive(Debug)]
pub struct Rag {
    embedder: Result<Arc<Embedder>, String>,
    /// Rung when a document is queued for background indexing.
    pub wakeup: tokio::sync::Notify,
    /// Rung when a web source is due (created or refreshed).
    pub crawl_wakeup: tokio::sync::Notify,
}

impl Rag {
    /// Loads the model named by the settings (once per process); a missing
    /// model is remembered, not fatal.
    pub fn from_settings(settings: &Settings) -> Self {
        let embedder = Embedder::shared(&EmbedderConfig::from(settings));
        if let Err(e) = &embedder {
            tracing::warn!(error = %e, "embedding model unavailable; knowledge-base writes and search answer 503 (run `make setup`)");
        }
        Self {
            embedder,
            wakeup: tokio::sync::Notify::new(),
            crawl_wakeup: tokio::sync::Notify::new(),
        }
    }

    /// The embedder, or 503 naming `make setup`.
    pub fn embedder(&self) -> ApiResult<&Arc<Embedder>> {
        self.embedder.as_ref().map_err(|e| {
            ApiError::Unavailable(format!(
                "The embedding model is not available ({e}); run `make setup` to install it"
            ))
        })
    }

    /// `ok`, or why the model is unavailable (for `/ready`).
    pub fn status(&self) -> String {
        match &self.embedder {
            Ok(_) => "ok".into(),
            Err(e) => format!("unavailable: {e} (run `make setup`)"),
        }
    }
}

impl From<&Settings> for EmbedderConfig {
    fn from(s: &Settings) -> Self {
        EmbedderConfig {
            model_dir: s.embedding_model_dir.clone(),
            onnxruntime_path: s.onnxruntime_path.clone(),
            workers: s.embedding_workers,
            threads: s.embedding_threads,
            batch_size: s.embedding_batch_size,
            query_threads: s.embedding_query_threads,
        }
    }
}
