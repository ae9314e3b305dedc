//! `POST /api/v1/knowledge/search`: hybrid, vector or keyword search.
//!
//! Scores (higher is better, results best first):
//! - `vector`: cosine similarity of the query and chunk embeddings, in [-1, 1].
//! - `keyword`: Postgres `ts_rank_cd` over the question's terms (OR-ed),
//!   normalised to rank / (rank + 1), in [0, 1).
//! - `hybrid` (default): reciprocal rank fusion of the vector ranking and a
//!   full-text ranking of the chunks sharing at least two of the question's
//!   terms: Σ 1 / (60 + rank) over the lists a chunk appears in, scaled so
//!   that 1.0 means first in both; ~0.5 is first in one list only.

use super::{kb_missing, no_nul};
use crate::auth::Auth;
use crate::db::kb_chunks::{self, Hit};
use crate::db::knowledge_bases;
use crate::db::sql_types::Embedding;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

/// Body of the search.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"knowledge_base_id": 1, "query": "What are your business hours?", "top_k": 3}))]
pub struct SearchIn {
    /// Knowledge base to search.
    pub knowledge_base_id: i64,
    /// Search query text (at most 2000 characters).
    pub query: String,
    /// Number of results, 1–50 (default 5).
    pub top_k: Option<i64>,
    /// `hybrid` (default), `vector` or `keyword`.
    pub mode: Option<String>,
    /// Drop results scoring below this (the score of the chosen mode).
    pub min_score: Option<f64>,
}

/// A matching chunk.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    #[schema(example = 12)]
    pub id: i64,
    #[schema(example = "Our support line is open Monday to Friday, 9am to 6pm CET.")]
    pub content: String,
    #[schema(example = "faq.md")]
    pub source: String,
    #[schema(example = 3)]
    pub chunk_index: i32,
    #[schema(example = 0.83)]
    pub score: f64,
}

/// Results, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchOut {
    #[schema(example = 1)]
    pub knowledge_base_id: i64,
    #[schema(example = "What are your business hours?")]
    pub query: String,
    #[schema(example = "hybrid")]
    pub mode: String,
    pub results: Vec<SearchHit>,
}

const MAX_QUERY_CHARS: usize = 2000;

/// Semantic search across a knowledge base; returns the most relevant active chunks.
#[utoipa::path(
    post, path = "/api/v1/knowledge/search", tag = "Knowledge Bases",
    request_body = SearchIn,
    responses(
        (status = 200, description = "Matching chunks, best first", body = SearchOut),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
        (status = 503, description = "Embedding model not installed (vector and hybrid modes)", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn search_knowledge(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<SearchIn>,
) -> ApiResult<HttpResponse> {
    let q = body.into_inner();
    let query = q.query.trim().to_owned();
    no_nul("query", &query)?;
    if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid_field(
            "query",
            format!("query must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let top_k = q.top_k.unwrap_or(5);
    if !(1..=50).contains(&top_k) {
        return Err(ApiError::invalid_field(
            "top_k",
            "top_k must be between 1 and 50",
        ));
    }
    let mode = q.mode.as_deref().unwrap_or("hybrid");
    if !matches!(mode, "hybrid" | "vector" | "keyword") {
        return Err(ApiError::invalid_field(
            "mode",
            "mode must be hybrid, vector or keyword",
        ));
    }
    if q.min_score.is_some_and(|s| !s.is_finite()) {
        return Err(ApiError::invalid_field(
            "min_score",
            "min_score must be a number",
        ));
    }
    let embedder = match mode {
        "keyword" => None,
        _ => Some(state.rag.embedder()?.clone()),
    };
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, q.knowledge_base_id)
        .await
        .map_err(kb_missing)?;
    let vector = match embedder {
        Some(e) => {
            Some(Embedding(e.embed_one(&query).await.map_err(|e| {
                ApiError::Unavailable(format!("Embedding failed: {e}"))
            })?))
        }
        None => None,
    };
    let mut hits: Vec<Hit> = match (mode, vector) {
        ("keyword", _) => kb_chunks::search_keyword(&mut conn, kb.id, &query, top_k).await?,
        ("vector", Some(v)) => kb_chunks::search_vector(&mut conn, kb.id, &v, top_k).await?,
        (_, Some(v)) => {
            let candidates = (top_k * 4).max(40);
            let terms = kb_chunks::query_terms(&mut conn, &query, 8).await?;
            let tsquery = kb_chunks::pair_query(&terms);
            kb_chunks::search_hybrid(&mut conn, kb.id, &v, &tsquery, top_k, candidates).await?
        }
        (_, None) => return Err(ApiError::internal(anyhow::anyhow!("no query vector"))),
    };
    // Iterative HNSW scans may return neighbours slightly out of order.
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    if let Some(min) = q.min_score {
        hits.retain(|h| h.score >= min);
    }
    Ok(HttpResponse::Ok().json(SearchOut {
        knowledge_base_id: kb.id,
        query,
        mode: mode.to_owned(),
        results: hits
            .into_iter()
            .map(|h| SearchHit {
                id: h.id,
                content: h.content,
                source: h.source,
                chunk_index: h.chunk_index,
                score: h.score,
            })
            .collect(),
    }))
}
