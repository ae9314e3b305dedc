//! Create, list, read and delete knowledge bases.

use super::kb_missing;
use crate::auth::Auth;
use crate::db::knowledge_bases::{self, KbStats, NewKnowledgeBase};
use crate::error::{ApiError, ApiResult};
use crate::limits::quota::{self, Resource};
use crate::routes::SuccessMessage;
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};

/// Body of `POST /api/v1/knowledge-bases`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "FAQ", "description": "Customer support FAQs", "chunk_size": 400}))]
pub struct KnowledgeBaseIn {
    /// 1–200 characters.
    pub name: String,
    pub description: Option<String>,
    /// Characters per chunk, 100–4000 (default 500).
    pub chunk_size: Option<i64>,
    /// Characters repeated from the previous chunk, 0 ≤ overlap < chunk_size / 2 (default 50).
    pub chunk_overlap: Option<i64>,
}

/// A knowledge base in the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBaseSummary {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "FAQ")]
    pub name: String,
    #[schema(example = "Support FAQs")]
    pub description: Option<String>,
    #[schema(example = 42)]
    pub chunk_count: i64,
    pub created_at: DateTime<Utc>,
}

/// A knowledge base in detail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBaseOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "FAQ")]
    pub name: String,
    #[schema(example = "Support FAQs")]
    pub description: Option<String>,
    #[schema(example = 500)]
    pub chunk_size: i32,
    #[schema(example = 50)]
    pub chunk_overlap: i32,
    #[schema(example = 42)]
    pub chunk_count: i64,
    /// Characters in all chunks (overlaps included).
    #[schema(example = 18500)]
    pub total_chars: i64,
    /// `pending` (nothing indexed yet), `indexing`, `ready` or `error`.
    pub indexing_status: crate::db::knowledge_bases::KbIndexingStatus,
    /// Why background indexing failed (status `error` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing_error: Option<String>,
    pub last_indexed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<KbStats> for KnowledgeBaseOut {
    fn from(s: KbStats) -> Self {
        Self {
            id: s.kb.id,
            name: s.kb.name,
            description: s.kb.description,
            chunk_size: s.kb.chunk_size,
            chunk_overlap: s.kb.chunk_overlap,
            chunk_count: s.chunk_count,
            total_chars: s.total_chars,
            indexing_status: s.kb.indexing_status,
            indexing_error: s.kb.indexing_error,
            last_indexed_at: s.kb.last_indexed_at,
            created_at: s.kb.created_at,
        }
    }
}

/// `{"knowledge_base": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBaseResponse {
    pub knowledge_base: KnowledgeBaseOut,
}

/// `{"knowledge_bases": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBaseList {
    pub knowledge_bases: Vec<KnowledgeBaseSummary>,
}

impl KnowledgeBaseIn {
    fn validate(self, project_id: i64) -> ApiResult<NewKnowledgeBase> {
        let size = self.chunk_size.unwrap_or(500);
        if !(100..=4000).contains(&size) {
            return Err(ApiError::invalid_field(
                "chunk_size",
                "chunk_size must be between 100 and 4000",
            ));
        }
        let overlap = self.chunk_overlap.unwrap_or(50);
        if overlap < 0 || overlap * 2 >= size {
            return Err(ApiError::invalid_field(
                "chunk_overlap",
                "chunk_overlap must be at least 0 and less than half of chunk_size",
            ));
        }
        Ok(NewKnowledgeBase {
            project_id,
            name: validate::text("name", &self.name, 200)?,
            description: validate::opt_text("description", self.description.as_deref(), 2000)?,
            chunk_size: i32::try_from(size).unwrap_or(500),
            chunk_overlap: i32::try_from(overlap).unwrap_or(0),
        })
    }
}

/// Create a knowledge base. Quota: knowledge_bases.
#[utoipa::path(
    post, path = "/api/v1/knowledge-bases", tag = "Knowledge Bases",
    request_body = KnowledgeBaseIn,
    responses(
        (status = 201, description = "Created", body = KnowledgeBaseResponse),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 429, description = "Knowledge-base quota reached", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_knowledge_base(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<KnowledgeBaseIn>,
) -> ApiResult<HttpResponse> {
    let new = body.into_inner().validate(auth.project.id)?;
    let mut conn = state.pool.get().await?;
    let settings = state.settings.clone();
    let kb = conn
        .transaction::<_, ApiError, _>(async |conn| {
            quota::reserve(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                &auth.project,
                Resource::KnowledgeBases,
            )
            .await?;
            Ok(knowledge_bases::insert(conn, &new).await?)
        })
        .await?;
    let stats = KbStats {
        kb,
        chunk_count: 0,
        total_chars: 0,
    };
    Ok(HttpResponse::Created().json(KnowledgeBaseResponse {
        knowledge_base: stats.into(),
    }))
}

/// List the project's knowledge bases with their chunk counts.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases", tag = "Knowledge Bases",
    responses((status = 200, description = "Knowledge bases of the project", body = KnowledgeBaseList)),
    security(("api_key" = []))
)]
pub async fn list_knowledge_bases(
    auth: Auth,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let list = knowledge_bases::list(&mut conn, auth.project.id).await?;
    Ok(HttpResponse::Ok().json(KnowledgeBaseList {
        knowledge_bases: list
            .into_iter()
            .map(|s| KnowledgeBaseSummary {
                id: s.kb.id,
                name: s.kb.name,
                description: s.kb.description,
                chunk_count: s.chunk_count,
                created_at: s.kb.created_at,
            })
            .collect(),
    }))
}

/// A knowledge base with its indexing status and character counts.
#[utoipa::path(
    get, path = "/api/v1/knowledge-bases/{kb_id}", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    responses(
        (status = 200, description = "The knowledge base", body = KnowledgeBaseResponse),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_knowledge_base(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let stats = knowledge_bases::find_with_stats(&mut conn, auth.project.id, *id)
        .await
        .map_err(kb_missing)?;
    Ok(HttpResponse::Ok().json(KnowledgeBaseResponse {
        knowledge_base: stats.into(),
    }))
}

/// Delete a knowledge base with all its chunks and embeddings (agents that
/// referenced it forget it).
#[utoipa::path(
    delete, path = "/api/v1/knowledge-bases/{kb_id}", tag = "Knowledge Bases",
    params(("kb_id" = i64, Path, description = "Knowledge base id", example = 1)),
    responses(
        (status = 200, description = "Deleted", body = SuccessMessage),
        (status = 404, description = "No such knowledge base in this project", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_knowledge_base(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = (auth.project.id, *id);
    let mut conn = state.pool.get().await?;
    let deleted = conn
        .transaction::<_, ApiError, _>(async |conn| {
            knowledge_bases::detach_from_agents(conn, project_id, id).await?;
            Ok(knowledge_bases::delete(conn, project_id, id).await?)
        })
        .await?;
    if !deleted {
        return Err(ApiError::not_found("Knowledge base"));
    }
    Ok(HttpResponse::Ok().json(SuccessMessage {
        success: true,
        message: "Knowledge base deleted".into(),
    }))
}
