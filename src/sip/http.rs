//! The trunk and config endpoints: parse → [`super::provision`] (trunks)
//! or the store (configs) → respond.

use super::DEFAULT_MAX_CALL_SECS;
use super::provision::{self, address_field, check_address, e164, name_field};
use super::rules;
use super::store::{self, Config, ConfigFields, Trunk, TrunkFields};
use crate::auth::Auth;
use crate::calls::dispatch::agents_to_dispatch;
use crate::error::{ApiError, ApiResult};
use crate::limits::quota::{self, Resource};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use serde_json::json;

// ---------------------------------------------------------------- trunks

/// A trunk, as the contract lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrunkOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Main Trunk")]
    pub name: String,
    #[schema(example = "+18001234567")]
    pub phone_number: String,
    #[schema(example = "ST_in123")]
    pub inbound_trunk_id: Option<String>,
    #[schema(example = "ST_out456")]
    pub outbound_trunk_id: Option<String>,
    #[schema(example = "SDR_abc")]
    pub dispatch_rule_id: Option<String>,
}

impl From<&Trunk> for TrunkOut {
    fn from(t: &Trunk) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            phone_number: t.phone_number.clone(),
            inbound_trunk_id: t.inbound_trunk_id.clone(),
            outbound_trunk_id: t.outbound_trunk_id.clone(),
            dispatch_rule_id: t.dispatch_rule_id.clone(),
        }
    }
}

/// `{"trunks": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrunkList {
    pub trunks: Vec<TrunkOut>,
}

/// `{"trunk": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrunkOne {
    pub trunk: TrunkOut,
}

/// Body of `POST /sip/trunks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Main Trunk", "phone_number": "+18001234567", "address": "sip.provider.example"}))]
pub struct TrunkIn {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// E.164 (a number that can exist in its country).
    #[schema(pattern = "^\\+[0-9]{1,15}$", example = "+18001234567")]
    pub phone_number: String,
    /// SIP provider host (optionally with `:port`) for outbound calls.
    #[schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9.:_-]+$")]
    pub address: String,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
}

/// Body of `PATCH /sip/trunks/:id` (fields to change).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkPatch {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: Option<String>,
    /// E.164 (a number that can exist in its country).
    #[schema(pattern = "^\\+[0-9]{1,15}$", example = "+18001234567")]
    pub phone_number: Option<String>,
    /// SIP provider host (optionally with `:port`) for outbound calls.
    #[schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9.:_-]+$")]
    pub address: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct IdPath {
    #[param(example = 1)]
    pub id: i64,
}

#[utoipa::path(
    get, path = "/api/v1/sip/trunks", tag = "SIP",
    responses((status = 200, description = "The project's trunks", body = TrunkList)),
    security(("api_key" = []))
)]
pub async fn list_trunks(auth: Auth, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let rows = store::trunks(&mut conn, auth.project.id).await?;
    Ok(HttpResponse::Ok().json(TrunkList {
        // A trunk LiveKit has not made yet (no outbound trunk) is not listed.
        trunks: rows
            .iter()
            .filter(|t| t.outbound_trunk_id.is_some())
            .map(TrunkOut::from)
            .collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/sip/trunks", tag = "SIP",
    request_body = TrunkIn,
    responses(
        (status = 201, description = "Created, with its LiveKit trunks and dispatch rule", body = TrunkOne),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 409, description = "A trunk (of any project) has this number", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_trunk(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<TrunkIn>,
) -> ApiResult<HttpResponse> {
    state.livekit()?;
    let body = body.into_inner();
    let fields = TrunkFields {
        project_id: auth.project.id,
        name: name_field(&body.name)?,
        phone_number: e164("phone_number", &body.phone_number)?,
        address: address_field(&body.address)?,
        auth_username: body.auth_username.filter(|u| !u.is_empty()),
        inbound_trunk_id: None,
        outbound_trunk_id: None,
        dispatch_rule_id: None,
    };
    check_address(&state, &fields.address).await?;
    let password = body.auth_password.as_deref().unwrap_or_default();
    let row = provision::create_trunk(&state, &auth.project, fields, password).await?;
    Ok(HttpResponse::Created().json(TrunkOne {
        trunk: TrunkOut::from(&row),
    }))
}

#[utoipa::path(
    patch, path = "/api/v1/sip/trunks/{id}", tag = "SIP",
    params(IdPath),
    request_body = TrunkPatch,
    responses(
        (status = 200, description = "Updated", body = TrunkOne),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such trunk", body = crate::error::ErrorBody),
        (status = 409, description = "Another trunk (of any project) has this number (nothing changed, in LiveKit either)", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn update_trunk(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<IdPath>,
    body: web::Json<TrunkPatch>,
) -> ApiResult<HttpResponse> {
    state.livekit()?;
    let body = body.into_inner();
    let mut conn = state.pool.get().await?;
    let current = store::trunk(&mut conn, auth.project.id, path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("SIP trunk"))?;
    let fields = TrunkFields {
        project_id: current.project_id,
        name: match &body.name {
            Some(n) => name_field(n)?,
            None => current.name.clone(),
        },
        phone_number: match &body.phone_number {
            Some(p) => e164("phone_number", p)?,
            None => current.phone_number.clone(),
        },
        address: match &body.address {
            Some(a) => address_field(a)?,
            None => current.address.clone(),
        },
        auth_username: match &body.auth_username {
            Some(u) => Some(u.clone()).filter(|u| !u.is_empty()),
            None => current.auth_username.clone(),
        },
        inbound_trunk_id: current.inbound_trunk_id.clone(),
        outbound_trunk_id: current.outbound_trunk_id.clone(),
        dispatch_rule_id: current.dispatch_rule_id.clone(),
    };
    if fields.address != current.address {
        check_address(&state, &fields.address).await?;
    }
    let relink = fields.phone_number != current.phone_number
        || fields.address != current.address
        || fields.auth_username != current.auth_username
        || body.auth_password.is_some();
    // The password is not stored: recreating an authenticated trunk needs it.
    if relink && fields.auth_username.is_some() && body.auth_password.is_none() {
        return Err(ApiError::invalid_field(
            "auth_password",
            "auth_password is required when changing a trunk that authenticates",
        ));
    }
    drop(conn);
    let password = body.auth_password.as_deref().unwrap_or_default();
    let row =
        provision::update_trunk(&state, &auth.project, &current, fields, relink, password).await?;
    Ok(HttpResponse::Ok().json(TrunkOne {
        trunk: TrunkOut::from(&row),
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/sip/trunks/{id}", tag = "SIP",
    params(IdPath),
    responses(
        (status = 200, description = "Deleted with its LiveKit trunks and rule", body = crate::routes::SuccessMessage),
        (status = 404, description = "No such trunk", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_trunk(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<IdPath>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let mut conn = state.pool.get().await?;
    let current = store::trunk(&mut conn, auth.project.id, path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("SIP trunk"))?;
    store::delete_trunk(&mut conn, current.id).await?;
    drop(conn);
    provision::drop_lk(
        lk,
        current.outbound_trunk_id.as_deref(),
        current.inbound_trunk_id.as_deref(),
        current.dispatch_rule_id.as_deref(),
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "SIP trunk deleted" })))
}

// ---------------------------------------------------------------- configs

/// A config, as the contract lists it (plus its trunk).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Inbound Line")]
    pub name: String,
    #[schema(example = "+18001234567")]
    pub phone_number: String,
    #[schema(example = 3)]
    pub agent_config_id: Option<i64>,
    #[schema(example = "Support Agent")]
    pub agent_name: Option<String>,
    pub dtmf_enabled: bool,
    /// Seconds.
    #[schema(example = 1800)]
    pub max_call_duration: i32,
    /// The trunk (id of `GET /sip/trunks`).
    pub trunk_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

fn config_out(c: &Config, agent_name: Option<String>) -> ConfigOut {
    ConfigOut {
        id: c.id,
        name: c.name.clone(),
        phone_number: c.phone_number.clone(),
        agent_config_id: c.agent_config_id,
        agent_name,
        dtmf_enabled: c.dtmf_enabled,
        max_call_duration: c.max_call_duration,
        trunk_id: c.trunk_id,
        created_at: c.created_at,
    }
}

/// `{"configs": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigList {
    pub configs: Vec<ConfigOut>,
}

/// `{"config": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigOne {
    pub config: ConfigOut,
}

/// Body of `POST /sip/configs`; for PATCH every field is optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Inbound Line", "phone_number": "+18001234567", "agent_config_id": 3, "max_call_duration": 1800}))]
pub struct ConfigIn {
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub agent_config_id: Option<i64>,
    /// Default true.
    pub dtmf_enabled: Option<bool>,
    /// Seconds, 1 to 86400 (default 1800).
    pub max_call_duration: Option<i32>,
    pub trunk_id: Option<i64>,
}

/// Applies a body to config fields, checking agent and trunk ownership.
async fn config_fields(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    body: &ConfigIn,
    mut f: ConfigFields,
) -> ApiResult<ConfigFields> {
    if let Some(n) = &body.name {
        f.name = name_field(n)?;
    }
    if let Some(p) = &body.phone_number {
        f.phone_number = e164("phone_number", p)?;
    }
    if let Some(d) = body.dtmf_enabled {
        f.dtmf_enabled = d;
    }
    if let Some(m) = body.max_call_duration {
        if !(1..=86_400).contains(&m) {
            return Err(ApiError::invalid_field(
                "max_call_duration",
                "max_call_duration must be 1 to 86400 seconds",
            ));
        }
        f.max_call_duration = m;
    }
    if let Some(a) = body.agent_config_id {
        agents_to_dispatch(conn, project_id, &[a], false)
            .await
            .map_err(|_| ApiError::invalid_field("agent_config_id", "Unknown or inactive agent"))?;
        f.agent_config_id = Some(a);
    }
    if let Some(t) = body.trunk_id {
        store::trunk(conn, project_id, t)
            .await?
            .ok_or_else(|| ApiError::invalid_field("trunk_id", "Unknown SIP trunk"))?;
        f.trunk_id = Some(t);
    }
    Ok(f)
}

#[utoipa::path(
    get, path = "/api/v1/sip/configs", tag = "SIP",
    responses((status = 200, description = "The project's SIP configurations", body = ConfigList)),
    security(("api_key" = []))
)]
pub async fn list_configs(auth: Auth, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let rows = store::configs(&mut conn, auth.project.id).await?;
    Ok(HttpResponse::Ok().json(ConfigList {
        configs: rows.into_iter().map(|(c, a)| config_out(&c, a)).collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/sip/configs", tag = "SIP",
    request_body = ConfigIn,
    responses(
        (status = 201, description = "Created", body = ConfigOne),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 429, description = "SIP config quota reached", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_config(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ConfigIn>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let (Some(_), Some(_)) = (&body.name, &body.phone_number) else {
        return Err(ApiError::bad_request("name and phone_number are required"));
    };
    let mut conn = state.pool.get().await?;
    let settings = state.settings.clone();
    let project = auth.project.clone();
    let (row, agent) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            quota::reserve(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                &project,
                Resource::SipConfigs,
            )
            .await?;
            let f = ConfigFields {
                project_id: project.id,
                name: String::new(),
                phone_number: String::new(),
                agent_config_id: None,
                dtmf_enabled: true,
                max_call_duration: DEFAULT_MAX_CALL_SECS,
                trunk_id: None,
            };
            let f = config_fields(conn, project.id, &body, f).await?;
            let row = store::insert_config(conn, &f).await?;
            let agent = agent_name(conn, project.id, row.agent_config_id).await?;
            Ok((row, agent))
        })
        .await?;
    rules::resync(&state, &auth.project).await;
    Ok(HttpResponse::Created().json(ConfigOne {
        config: config_out(&row, agent),
    }))
}

async fn agent_name(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: Option<i64>,
) -> ApiResult<Option<String>> {
    let Some(id) = id else { return Ok(None) };
    Ok(crate::db::agents::find(conn, project_id, id)
        .await
        .ok()
        .map(|a| a.name))
}

#[utoipa::path(
    patch, path = "/api/v1/sip/configs/{id}", tag = "SIP",
    params(IdPath),
    request_body = ConfigIn,
    responses(
        (status = 200, description = "Updated", body = ConfigOne),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such config", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn update_config(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<IdPath>,
    body: web::Json<ConfigIn>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let current = store::config(&mut conn, auth.project.id, path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("SIP config"))?;
    let f = ConfigFields {
        project_id: current.project_id,
        name: current.name,
        phone_number: current.phone_number,
        agent_config_id: current.agent_config_id,
        dtmf_enabled: current.dtmf_enabled,
        max_call_duration: current.max_call_duration,
        trunk_id: current.trunk_id,
    };
    let f = config_fields(&mut conn, auth.project.id, &body, f).await?;
    let row = store::update_config(&mut conn, current.id, &f).await?;
    rules::resync(&state, &auth.project).await;
    let agent = agent_name(&mut conn, auth.project.id, row.agent_config_id).await?;
    Ok(HttpResponse::Ok().json(ConfigOne {
        config: config_out(&row, agent),
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/sip/configs/{id}", tag = "SIP",
    params(IdPath),
    responses(
        (status = 200, description = "Deleted", body = crate::routes::SuccessMessage),
        (status = 404, description = "No such config", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_config(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<IdPath>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let current = store::config(&mut conn, auth.project.id, path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("SIP config"))?;
    store::delete_config(&mut conn, current.id).await?;
    rules::resync(&state, &auth.project).await;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "SIP config deleted" })))
}
