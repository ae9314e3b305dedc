//! `POST /api/v1/knowledge/search`: hybrid, vector or keyword search.
//!
//! Scores (higher is better, results best first):
//! - `vector`: cosine similarity of the query and chunk embeddings, in [-1, 1].
//! - `keyword`: Postgres `ts_rank_cd` over the question's terms (OR-ed),
//!   normalised to rank / (rank + 1), in [0, 1).
//! - `hybrid` (default): weighted reciprocal rank fusion of the vector
//!   ranking and a full-text ranking (`ts_rank_cd` over the question's
//!   terms, OR-ed) of the chunks sharing at least two of them:
//!   Σ w / (k + rank) over the lists a chunk appears in, scaled so that 1.0
//!   means first in both; the weights and the candidate depth depend on how
//!   the query reads (see [`crate::rag::fusion`]).
//!   The two rankings run at once on two connections (the full-text one
//!   while the query is being embedded); each fetches its candidates' text,
//!   so that the fused results need no further query. The full-text side
//!   has a budget of `kb_hybrid_keyword_budget_ms` of database time, past
//!   which the answer comes from the vector ranking alone and says
//!   `"partial": true`.

use super::kb_missing;
use crate::auth::Auth;
use crate::db::kb_chunks::{self, Hit};
use crate::db::knowledge_bases;
use crate::db::sql_types::Embedding;
use crate::error::{ApiError, ApiResult};
use crate::rag::fusion;
use crate::rag::snippet::{Highlighter, SNIPPET_CHARS};
use crate::state::AppState;
use crate::validate::no_nul;
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
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub query: String,
    /// Number of results, 1–50 (default 5).
    #[schema(minimum = 1, maximum = 50)]
    pub top_k: Option<i64>,
    /// `hybrid` (default), `vector` or `keyword`.
    #[schema(value_type = Option<KbSearchMode>)]
    pub mode: Option<String>,
    /// Drop results scoring below this (the score of the chosen mode).
    pub min_score: Option<f64>,
}

/// How a knowledge base is searched.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum KbSearchMode {
    /// Vector and keyword ranks fused.
    Hybrid,
    /// Semantic similarity of the embeddings.
    Vector,
    /// Full-text match.
    Keyword,
}

/// Where a hit comes from, to cite it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchCitation {
    /// The document's name: its file name, its `source_name`, or the page URL.
    #[schema(example = "handbook.pdf")]
    pub document: String,
    /// The page of a PDF (from 1).
    #[schema(example = 4)]
    pub page: Option<i32>,
    /// The URL of a crawled page.
    pub url: Option<String>,
    /// The headings the chunk sits under, outermost first.
    #[schema(example = json!(["Billing", "Refunds"]))]
    pub heading_path: Vec<String>,
    /// About 240 characters of the chunk around the query's terms, the terms
    /// in `<mark>…</mark>`, the rest HTML-escaped, `…` where cut.
    #[schema(example = "…we <mark>refund</mark> unused months of a yearly plan within 14 days…")]
    pub snippet: String,
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
    pub citation: SearchCitation,
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
    /// Present (true) only when the full-text side of a hybrid search ran out
    /// of its time budget and the results come from the vector ranking alone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
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
    // The query is embedded while the knowledge base is looked up.
    let embedding = match mode {
        "keyword" => None,
        _ => Some(state.rag.embedder()?.queue_one(&query)),
    };
    let mut conn = state.pool.get().await?;
    let kb = knowledge_bases::find(&mut conn, auth.project.id, q.knowledge_base_id)
        .await
        .map_err(kb_missing)?;
    let mut partial = false;
    let mut hits: Vec<Hit> = match (mode, embedding) {
        ("keyword", _) => kb_chunks::search_keyword(&mut conn, kb.id, &query, top_k).await?,
        ("vector", Some(e)) => {
            let v = vector(e.await)?;
            kb_chunks::search_vector(
                &mut conn,
                kb.id,
                &v,
                top_k,
                state.settings.kb_hnsw_ef_search,
            )
            .await?
        }
        (_, Some(e)) => {
            let (hits, gave_up) = hybrid(&state, &mut conn, e, kb.id, &query, top_k).await?;
            partial = gave_up;
            hits
        }
        (_, None) => return Err(ApiError::internal(anyhow::anyhow!("no embedder"))),
    };
    // Iterative HNSW scans may return neighbours slightly out of order.
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    if let Some(min) = q.min_score {
        hits.retain(|h| h.score >= min);
    }
    let marks = Highlighter::new(&query);
    let results = hits
        .into_iter()
        .map(|h| SearchHit {
            citation: SearchCitation {
                document: h.source.clone(),
                page: h.page,
                url: h.url,
                heading_path: h.heading_path,
                snippet: marks.snippet(&h.content, SNIPPET_CHARS),
            },
            id: h.id,
            content: h.content,
            source: h.source,
            chunk_index: h.chunk_index,
            score: h.score,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SearchOut {
        knowledge_base_id: kb.id,
        query,
        mode: mode.to_owned(),
        partial,
        results,
    }))
}

/// The query's vector, or 503 when the model failed.
fn vector(embedded: Result<Vec<f32>, String>) -> ApiResult<Embedding> {
    embedded
        .map(Embedding)
        .map_err(|e| ApiError::Unavailable(format!("Embedding failed: {e}")))
}

/// Hybrid search: the full-text ranking (on `conn`) runs while the query is
/// embedded and ranked by vector (on a second connection); the two are fused
/// (RRF). True when the full-text side ran out of its budget.
async fn hybrid(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    embedding: impl Future<Output = Result<Vec<f32>, String>>,
    kb_id: i64,
    query: &str,
    top_k: i64,
) -> ApiResult<(Vec<Hit>, bool)> {
    let fusion = fusion::params(fusion::query_kind(query));
    let candidates = (top_k * 4).max(fusion.candidates);
    let budget = state.settings.kb_hybrid_keyword_budget_ms;
    let vector_side = async {
        let (v, c) = tokio::join!(embedding, state.pool.get());
        let (v, mut c) = (vector(v)?, c?);
        Ok::<_, ApiError>(
            kb_chunks::search_vector(
                &mut c,
                kb_id,
                &v,
                candidates,
                state.settings.kb_hnsw_ef_search,
            )
            .await?,
        )
    };
    let keyword_side = async {
        let terms = kb_chunks::query_terms(conn, query, 8).await?;
        let q = kb_chunks::term_query(&terms);
        Ok::<_, ApiError>(kb_chunks::keyword_ranking(conn, kb_id, &q, candidates, budget).await?)
    };
    let (by_vector, by_keyword) = tokio::join!(vector_side, keyword_side);
    let (by_vector, by_keyword) = (by_vector?, by_keyword?);
    let gave_up = by_keyword.is_none();
    if gave_up {
        tracing::warn!(
            kb_id,
            budget_ms = budget,
            "hybrid search: full-text side over budget; vector ranking only"
        );
    }
    let by_keyword = by_keyword.unwrap_or_default();
    let ids = |hits: &[Hit]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
    let fused = fusion::fuse(
        &ids(&by_vector),
        &ids(&by_keyword),
        &fusion,
        usize::try_from(top_k).unwrap_or(5),
    );
    // A chunk on both sides is the same row either way.
    let mut rows: std::collections::HashMap<i64, Hit> = by_vector
        .into_iter()
        .chain(by_keyword)
        .map(|h| (h.id, h))
        .collect();
    let hits = fused
        .into_iter()
        .filter_map(|(id, score)| rows.remove(&id).map(|h| Hit { score, ..h }))
        .collect();
    Ok((hits, gave_up))
}
