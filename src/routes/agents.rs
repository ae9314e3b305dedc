//! Agents: `GET /api/v1/agents` and `GET /api/v1/agents/{agent_id}/tools` as
//! the contract shows them, plus create, read, update and delete in the same
//! style.

use super::allow;
use crate::auth::Auth;
use crate::db::agents::{self, Agent, AgentChanges, NewAgent};
use crate::error::{ApiError, ApiResult};
use crate::limits::quota::{self, Resource};
use crate::state::AppState;
use crate::validate::{self, double_option};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An agent configuration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Support Agent")]
    pub name: String,
    /// Always `voice` for now.
    #[schema(example = "voice")]
    pub agent_type: String,
    /// The LiveKit agent name this configuration dispatches.
    #[schema(example = "support-agent")]
    pub dispatch_name: String,
    #[schema(example = "openai")]
    pub llm_provider: Option<String>,
    #[schema(example = "gpt-4o")]
    pub llm_model: Option<String>,
    #[schema(example = "deepgram")]
    pub stt_provider: Option<String>,
    #[schema(example = "nova-3")]
    pub stt_model: Option<String>,
    #[schema(example = "cartesia")]
    pub tts_provider: Option<String>,
    #[schema(example = "sonic-2")]
    pub tts_model: Option<String>,
    pub tts_voice: Option<String>,
    pub instructions: Option<String>,
    pub greeting: Option<String>,
    /// OpenAI-style function definitions.
    #[schema(value_type = Vec<Object>)]
    pub tools: Value,
    pub knowledge_base_ids: Vec<i64>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Agent> for AgentOut {
    fn from(a: Agent) -> Self {
        Self {
            id: a.id,
            name: a.name,
            agent_type: a.agent_type,
            dispatch_name: a.dispatch_name,
            llm_provider: a.llm_provider,
            llm_model: a.llm_model,
            stt_provider: a.stt_provider,
            stt_model: a.stt_model,
            tts_provider: a.tts_provider,
            tts_model: a.tts_model,
            tts_voice: a.tts_voice,
            instructions: a.instructions,
            greeting: a.greeting,
            tools: a.tools,
            knowledge_base_ids: a.knowledge_base_ids,
            is_active: a.is_active,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// `{"agent": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentResponse {
    pub agent: AgentOut,
}

/// `{"agents": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentOut>,
}

/// `{"tools": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolList {
    /// Tool definitions (name, description, parameters).
    #[schema(value_type = Vec<Object>, example = json!([{"name": "search_kb", "description": "Search the knowledge base", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]))]
    pub tools: Value,
}

/// A tool definition (OpenAI function style). Names are unique within an
/// agent; `parameters` is a JSON Schema of an object (checked structurally).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AgentTool {
    /// 1 to 64 letters, digits, `_` or `-`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    name: String,
    description: Option<String>,
    /// A JSON Schema with `"type": "object"` (default: no arguments).
    #[schema(value_type = Option<Object>)]
    parameters: Option<Value>,
    strict: Option<bool>,
}

/// Body of `POST /api/v1/agents`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Support Agent", "dispatch_name": "support-agent", "llm_provider": "openai", "llm_model": "gpt-4o", "instructions": "You are a helpful support agent.", "greeting": "Hi! How can I help?", "tools": [{"name": "search_kb", "description": "Search the knowledge base", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]}))]
pub struct AgentIn {
    /// 1–200 characters, unique in the project (case-insensitive).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// `voice` (default).
    #[schema(value_type = Option<AgentType>)]
    pub agent_type: Option<String>,
    /// LiveKit agent name; defaults to a slug of `name`.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._-]+$")]
    pub dispatch_name: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub llm_provider: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub llm_model: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub stt_provider: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub stt_model: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub tts_provider: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub tts_model: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub tts_voice: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 100000,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub instructions: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub greeting: Option<String>,
    /// OpenAI-style function definitions; `parameters` must be a JSON Schema object.
    #[schema(value_type = Option<Vec<AgentTool>>)]
    pub tools: Option<Value>,
    /// Knowledge bases of this project the agent may search.
    pub knowledge_base_ids: Option<Vec<i64>>,
    /// Default true.
    pub is_active: Option<bool>,
}

/// Body of `PATCH /api/v1/agents/{agent_id}`; absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"llm_model": "gpt-4o-mini", "is_active": false}))]
pub struct AgentPatch {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(value_type = Option<AgentType>)]
    pub agent_type: Option<String>,
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._-]+$")]
    pub dispatch_name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub llm_provider: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub llm_model: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub stt_provider: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub stt_model: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub tts_provider: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub tts_model: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub tts_voice: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100000, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub instructions: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 10000, pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$")]
    pub greeting: Option<Option<String>>,
    #[schema(value_type = Option<Vec<AgentTool>>)]
    pub tools: Option<Value>,
    pub knowledge_base_ids: Option<Vec<i64>>,
    pub is_active: Option<bool>,
}

/// Optional filters of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AgentQuery {
    /// Only active (true) or inactive (false) agents.
    pub is_active: Option<bool>,
}

const MAX_PROVIDER: usize = 64;
const MAX_MODEL: usize = 128;
const MAX_INSTRUCTIONS: usize = 100_000;
const MAX_GREETING: usize = 10_000;

fn agent_type(v: &str) -> ApiResult<String> {
    match v {
        "voice" => Ok(v.into()),
        _ => Err(ApiError::invalid_field(
            "agent_type",
            "agent_type must be \"voice\"",
        )),
    }
}

/// Checks that every id is a knowledge base of the project (400 naming the
/// unknown ones otherwise); duplicates are dropped, order kept.
async fn kb_ids(
    conn: &mut diesel_async::AsyncPgConnection,
    project_id: i64,
    ids: Vec<i64>,
) -> ApiResult<Vec<i64>> {
    let mut unique = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    if unique.is_empty() {
        return Ok(unique);
    }
    let found = crate::db::knowledge_bases::existing_ids(conn, project_id, &unique).await?;
    let unknown: Vec<i64> = unique
        .iter()
        .copied()
        .filter(|id| !found.contains(id))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest {
            message: format!("Unknown knowledge base id(s) for this project: {unknown:?}"),
            details: Some(json!({ "field": "knowledge_base_ids", "unknown": unknown })),
        });
    }
    Ok(unique)
}

fn opt(field: &str, v: Option<Option<String>>, max: usize) -> ApiResult<Option<Option<String>>> {
    v.map(|inner| validate::opt_text(field, inner.as_deref(), max))
        .transpose()
}

impl AgentIn {
    fn validate(self, project_id: i64) -> ApiResult<NewAgent> {
        let name = validate::text("name", &self.name, 200)?;
        let dispatch_name = match &self.dispatch_name {
            Some(d) => validate::ident("dispatch_name", d, 128)?,
            None => crate::db::projects::slugify(&name),
        };
        Ok(NewAgent {
            project_id,
            agent_type: agent_type(self.agent_type.as_deref().unwrap_or("voice"))?,
            dispatch_name,
            llm_provider: validate::opt_text(
                "llm_provider",
                self.llm_provider.as_deref(),
                MAX_PROVIDER,
            )?,
            llm_model: validate::opt_text("llm_model", self.llm_model.as_deref(), MAX_MODEL)?,
            stt_provider: validate::opt_text(
                "stt_provider",
                self.stt_provider.as_deref(),
                MAX_PROVIDER,
            )?,
            stt_model: validate::opt_text("stt_model", self.stt_model.as_deref(), MAX_MODEL)?,
            tts_provider: validate::opt_text(
                "tts_provider",
                self.tts_provider.as_deref(),
                MAX_PROVIDER,
            )?,
            tts_model: validate::opt_text("tts_model", self.tts_model.as_deref(), MAX_MODEL)?,
            tts_voice: validate::opt_text("tts_voice", self.tts_voice.as_deref(), MAX_MODEL)?,
            instructions: validate::opt_text(
                "instructions",
                self.instructions.as_deref(),
                MAX_INSTRUCTIONS,
            )?,
            greeting: validate::opt_text("greeting", self.greeting.as_deref(), MAX_GREETING)?,
            tools: validate::tools(self.tools.as_ref().unwrap_or(&json!([])))?,
            // Checked against the database by the handler.
            knowledge_base_ids: self.knowledge_base_ids.unwrap_or_default(),
            is_active: self.is_active.unwrap_or(true),
            name,
        })
    }
}

impl AgentPatch {
    fn validate(self) -> ApiResult<AgentChanges> {
        let changes = AgentChanges {
            name: self
                .name
                .as_deref()
                .map(|n| validate::text("name", n, 200))
                .transpose()?,
            agent_type: self.agent_type.as_deref().map(agent_type).transpose()?,
            dispatch_name: self
                .dispatch_name
                .as_deref()
                .map(|d| validate::ident("dispatch_name", d, 128))
                .transpose()?,
            llm_provider: opt("llm_provider", self.llm_provider, MAX_PROVIDER)?,
            llm_model: opt("llm_model", self.llm_model, MAX_MODEL)?,
            stt_provider: opt("stt_provider", self.stt_provider, MAX_PROVIDER)?,
            stt_model: opt("stt_model", self.stt_model, MAX_MODEL)?,
            tts_provider: opt("tts_provider", self.tts_provider, MAX_PROVIDER)?,
            tts_model: opt("tts_model", self.tts_model, MAX_MODEL)?,
            tts_voice: opt("tts_voice", self.tts_voice, MAX_MODEL)?,
            instructions: opt("instructions", self.instructions, MAX_INSTRUCTIONS)?,
            greeting: opt("greeting", self.greeting, MAX_GREETING)?,
            tools: self.tools.as_ref().map(validate::tools).transpose()?,
            knowledge_base_ids: self.knowledge_base_ids,
            is_active: self.is_active,
            updated_at: Some(Utc::now()),
        };
        Ok(changes)
    }
}

fn name_taken(e: diesel::result::Error) -> ApiError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => ApiError::conflict("An agent with this name already exists in the project"),
        diesel::result::Error::NotFound => ApiError::not_found("Agent"),
        other => other.into(),
    }
}

/// List the project's agents.
#[utoipa::path(
    get, path = "/api/v1/agents", tag = "Agents",
    params(AgentQuery),
    responses((status = 200, description = "Agents of the project", body = AgentList)),
    security(("api_key" = []))
)]
pub async fn list_agents(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<AgentQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let list = agents::list(&mut conn, auth.project.id, q.is_active).await?;
    Ok(HttpResponse::Ok().json(AgentList {
        agents: list.into_iter().map(Into::into).collect(),
    }))
}

/// Create an agent. Quota: agents.
#[utoipa::path(
    post, path = "/api/v1/agents", tag = "Agents",
    request_body = AgentIn,
    responses(
        (status = 201, description = "Created", body = AgentResponse),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 409, description = "Name taken", body = crate::error::ErrorBody),
        (status = 429, description = "Agent quota reached", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_agent(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<AgentIn>,
) -> ApiResult<HttpResponse> {
    let mut new = body.into_inner().validate(auth.project.id)?;
    let mut conn = state.pool.get().await?;
    new.knowledge_base_ids = kb_ids(
        &mut conn,
        auth.project.id,
        std::mem::take(&mut new.knowledge_base_ids),
    )
    .await?;
    let settings = state.settings.clone();
    let agent = conn
        .transaction::<_, ApiError, _>(async |conn| {
            quota::reserve(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                &auth.project,
                Resource::Agents,
            )
            .await?;
            agents::insert(conn, &new).await.map_err(name_taken)
        })
        .await?;
    // The first active agent may now be a SIP line's.
    crate::sip::rules::resync(&state, &auth.project).await;
    Ok(HttpResponse::Created().json(AgentResponse {
        agent: agent.into(),
    }))
}

/// One agent.
#[utoipa::path(
    get, path = "/api/v1/agents/{agent_id}", tag = "Agents",
    params(("agent_id" = i64, Path, description = "Agent id", example = 1)),
    responses(
        (status = 200, description = "The agent", body = AgentResponse),
        (status = 404, description = "No such agent in this project", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_agent(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let agent = agents::find(&mut conn, auth.project.id, *id)
        .await
        .map_err(name_taken)?;
    Ok(HttpResponse::Ok().json(AgentResponse {
        agent: agent.into(),
    }))
}

/// The tool definitions of an agent.
#[utoipa::path(
    get, path = "/api/v1/agents/{agent_id}/tools", tag = "Agents",
    params(("agent_id" = i64, Path, description = "Agent id", example = 1)),
    responses(
        (status = 200, description = "Tool definitions", body = ToolList),
        (status = 404, description = "No such agent in this project", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_agent_tools(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let agent = agents::find(&mut conn, auth.project.id, *id)
        .await
        .map_err(name_taken)?;
    Ok(HttpResponse::Ok().json(ToolList { tools: agent.tools }))
}

/// Update an agent; absent fields are kept, `null` clears optional ones.
#[utoipa::path(
    patch, path = "/api/v1/agents/{agent_id}", tag = "Agents",
    params(("agent_id" = i64, Path, description = "Agent id", example = 1)),
    request_body = AgentPatch,
    responses(
        (status = 200, description = "Updated", body = AgentResponse),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such agent in this project", body = crate::error::ErrorBody),
        (status = 409, description = "Name taken", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn update_agent(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<AgentPatch>,
) -> ApiResult<HttpResponse> {
    let mut changes = body.into_inner().validate()?;
    let mut conn = state.pool.get().await?;
    if let Some(ids) = changes.knowledge_base_ids.take() {
        changes.knowledge_base_ids = Some(kb_ids(&mut conn, auth.project.id, ids).await?);
    }
    let agent = agents::update(&mut conn, auth.project.id, *id, &changes)
        .await
        .map_err(name_taken)?;
    // What a SIP line dispatches (this agent, or another once inactive).
    crate::sip::rules::resync(&state, &auth.project).await;
    Ok(HttpResponse::Ok().json(AgentResponse {
        agent: agent.into(),
    }))
}

/// Delete an agent.
#[utoipa::path(
    delete, path = "/api/v1/agents/{agent_id}", tag = "Agents",
    params(("agent_id" = i64, Path, description = "Agent id", example = 1)),
    responses(
        (status = 200, description = "Deleted", body = crate::routes::SuccessMessage),
        (status = 404, description = "No such agent in this project", body = crate::error::ErrorBody),
        (status = 409, description = "The agent is handling active sessions", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_agent(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    match agents::delete(&mut conn, auth.project.id, *id).await? {
        agents::Deleted::Yes => {}
        agents::Deleted::NotFound => return Err(ApiError::not_found("Agent")),
        agents::Deleted::Busy(active) => {
            return Err(ApiError::Conflict {
                message: format!(
                    "Agent {} is handling {active} active session(s); end them first",
                    *id
                ),
                details: Some(json!({ "active_sessions": active })),
            });
        }
    }
    drop(conn);
    crate::sip::rules::resync(&state, &auth.project).await;
    Ok(HttpResponse::Ok().json(crate::routes::SuccessMessage {
        success: true,
        message: "Agent deleted".into(),
    }))
}

/// Registers the routes, relative to the `/agents` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(list_agents))
            .route(web::post().to(create_agent))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{agent_id}")
            .route(web::get().to(get_agent))
            .route(web::patch().to(update_agent))
            .route(web::delete().to(delete_agent))
            .default_service(allow(&["GET", "PATCH", "DELETE"])),
    )
    .service(
        web::resource("/{agent_id}/tools")
            .route(web::get().to(get_agent_tools))
            .default_service(allow(&["GET"])),
    );
}

/// The kinds of agent (the documented values of `agent_type`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AgentType {
    /// A voice agent dispatched into LiveKit rooms.
    Voice,
}
