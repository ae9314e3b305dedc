//! SIP telephony (contract section 10): trunks, call configurations and
//! outbound dialing through LiveKit SIP.
//!
//! - A trunk is a phone number at a SIP provider. Creating one creates, in
//!   LiveKit, an outbound trunk (address, number, auth), an inbound trunk
//!   for the number and a dispatch rule that puts each inbound call in its
//!   own project room (`<prefix>_call-…`) with the line's agent dispatched
//!   (the config of the number, else the project's first active agent),
//!   kept in line with it as configs and agents change ([`rules`]).
//!   PATCH of the number, address or auth recreates the three; DELETE
//!   removes them.
//! - A config is a line's call settings: agent, DTMF, max call duration and
//!   trunk. Quota: `sip_configs`.
//! - `POST /sip/dial` ([`dial`]) places an outbound call; the calls worker
//!   (`crate::livekit::calls`) reports its progress and ends it at the
//!   deadline, in whichever process runs then. Quota: concurrent calls
//!   (active sip sessions) up to the plan's `sip_configs` limit.

use crate::auth::{Auth, ProjectInfo};
use crate::db::sip::{self as store, Config, ConfigFields, Trunk, TrunkFields};
use crate::error::{ApiError, ApiResult};
use crate::events::ssrf;
use crate::limits::quota::{self, Resource};
use crate::livekit::LiveKit;
use crate::routes::token::agents_to_dispatch;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use livekit_api::services::sip::{CreateSIPInboundTrunkOptions, CreateSIPOutboundTrunkOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

use super::allow;

pub mod dial;
pub mod rules;
pub use dial::dial;
pub use rules::sync_dispatch_rules;

pub use crate::livekit::calls::DEFAULT_MAX_CALL_SECS;

/// The number in E.164, or 400 `Invalid phone number format`.
///
/// Parsed with libphonenumber's metadata (the `phonenumber` crate): it must
/// be `+` and digits, its country calling code must be assigned, and its
/// national number must have a length possible in that country.
pub fn e164(field: &str, input: &str) -> ApiResult<String> {
    let bad = || ApiError::BadRequest {
        message: "Invalid phone number format".into(),
        details: Some(json!({ "field": field, "expected": "E.164, e.g. +17751234567" })),
    };
    let s = input.trim();
    let digits = s.strip_prefix('+').ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 15 {
        return Err(bad());
    }
    let number = phonenumber::parse(None, s).map_err(|_| bad())?;
    // The regions of the country calling code (none: unassigned code).
    let regions = phonenumber::metadata::DATABASE
        .by_code(&number.code().value())
        .ok_or_else(bad)?;
    let national = number.national().to_string();
    let len = u16::try_from(national.len()).map_err(|_| bad())?;
    // Possible lengths are kept per number type (fixed line, mobile, …).
    let possible = regions.iter().any(|m| {
        let d = m.descriptors();
        std::iter::once(Some(d.general()))
            .chain([
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ])
            .flatten()
            .any(|desc| desc.possible_length().contains(&len))
    });
    if !possible {
        return Err(bad());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

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

fn name_field(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

fn address_field(address: &str) -> ApiResult<String> {
    let a = address;
    let ok = !a.is_empty()
        && a.len() <= 255
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b));
    if !ok {
        return Err(ApiError::invalid_field(
            "address",
            "address must be a SIP host name (optionally with :port)",
        ));
    }
    Ok(a.to_owned())
}

/// 400 when a trunk's address points into the server's own networks
/// (loopback, private, link-local and metadata, … as for webhooks) outside
/// `sip_allowed_networks`. An IP literal is checked as it is; a host name by
/// what it resolves to now, if anything (SIP hosts may resolve through SRV
/// records only, which LiveKit looks up itself).
async fn check_address(state: &AppState, address: &str) -> ApiResult<()> {
    let host = match address.parse::<IpAddr>() {
        Ok(_) => address,
        Err(_) => match address.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => address,
        },
    };
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => ssrf::lookup(host, 5060)
            .await
            .map(|a| a.iter().map(std::net::SocketAddr::ip).collect())
            .unwrap_or_default(),
    };
    let allowed: Vec<ssrf::Cidr> = state
        .settings
        .sip_allowed_networks
        .iter()
        .filter_map(|c| ssrf::Cidr::parse(c))
        .collect();
    for ip in ips {
        if allowed.iter().any(|net| net.contains(ip)) {
            continue;
        }
        if let Some(why) = ssrf::refusal(ip, ssrf::Allow::default()) {
            return Err(ApiError::invalid_field(
                "address",
                format!(
                    "address points to a {why} address ({ip}); SIP trunks may not point into \
                     internal networks unless the operator allows them (sip_allowed_networks)"
                ),
            ));
        }
    }
    Ok(())
}

/// The LiveKit ids of a trunk's three resources.
struct LkIds {
    inbound: String,
    outbound: String,
    rule: String,
}

/// Creates the LiveKit side of a trunk (undoing what was made on failure).
async fn create_lk(
    lk: &LiveKit,
    conn: &mut AsyncPgConnection,
    project: &ProjectInfo,
    f: &TrunkFields,
    password: &str,
) -> ApiResult<LkIds> {
    // The line's agent, dispatched into each inbound call's room.
    let agent = rules::line_agent(conn, project.id, &f.phone_number).await?;
    let outbound = lk
        .call(lk.sip.create_sip_outbound_trunk(
            f.name.clone(),
            f.address.clone(),
            vec![f.phone_number.clone()],
            CreateSIPOutboundTrunkOptions {
                metadata: json!({ "project_id": project.id }).to_string(),
                auth_username: f.auth_username.clone().unwrap_or_default(),
                auth_password: password.to_owned(),
                ..Default::default()
            },
        ))
        .await?;
    let inbound = match lk
        .call(lk.sip.create_sip_inbound_trunk(
            f.name.clone(),
            vec![f.phone_number.clone()],
            CreateSIPInboundTrunkOptions {
                metadata: Some(json!({ "project_id": project.id }).to_string()),
                ..Default::default()
            },
        ))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            drop_lk(lk, Some(&outbound.sip_trunk_id), None, None).await;
            return Err(e);
        }
    };
    let rule =
        rules::create_rule(lk, project, &f.name, &inbound.sip_trunk_id, agent.as_ref()).await;
    match rule {
        Ok(rule) => Ok(LkIds {
            inbound: inbound.sip_trunk_id,
            outbound: outbound.sip_trunk_id,
            rule,
        }),
        Err(e) => {
            drop_lk(
                lk,
                Some(&outbound.sip_trunk_id),
                Some(&inbound.sip_trunk_id),
                None,
            )
            .await;
            Err(e)
        }
    }
}

/// Deletes LiveKit SIP resources, best effort (already gone is fine).
async fn drop_lk(lk: &LiveKit, outbound: Option<&str>, inbound: Option<&str>, rule: Option<&str>) {
    if let Some(rule) = rule
        && let Err(e) = lk.call(lk.sip.delete_sip_dispatch_rule(rule)).await
    {
        tracing::warn!(rule, error = %e, "could not delete a SIP dispatch rule");
    }
    for id in [outbound, inbound].into_iter().flatten() {
        if let Err(e) = lk.call(lk.sip.delete_sip_trunk(id)).await {
            tracing::warn!(trunk = id, error = %e, "could not delete a SIP trunk");
        }
    }
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
        trunks: rows.iter().map(TrunkOut::from).collect(),
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
    let lk = state.livekit()?;
    let body = body.into_inner();
    let mut fields = TrunkFields {
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
    let mut conn = state.pool.get().await?;
    let mut made = None;
    // Under the rules lock: a concurrent sync sees the trunk with its rule.
    let created = conn
        .transaction::<_, ApiError, _>(async |conn| {
            store::lock_rules(conn, auth.project.id).await?;
            number_free(conn, None, &fields.phone_number).await?;
            let password = body.auth_password.as_deref().unwrap_or_default();
            let ids = made.insert(create_lk(lk, conn, &auth.project, &fields, password).await?);
            fields.inbound_trunk_id = Some(ids.inbound.clone());
            fields.outbound_trunk_id = Some(ids.outbound.clone());
            fields.dispatch_rule_id = Some(ids.rule.clone());
            store::insert_trunk(conn, &fields)
                .await
                .map_err(|e| taken_or(e, &fields.phone_number))
        })
        .await;
    match created {
        Ok(row) => Ok(HttpResponse::Created().json(TrunkOne {
            trunk: TrunkOut::from(&row),
        })),
        Err(e) => {
            if let Some(ids) = made {
                drop_lk(lk, Some(&ids.outbound), Some(&ids.inbound), Some(&ids.rule)).await;
            }
            Err(e)
        }
    }
}

/// 409 when another trunk (than `except`), of any project, has the number:
/// a number is live on one trunk of the installation. The answer does not
/// say whose it is. (A unique index holds the rule under concurrency.)
async fn number_free(
    conn: &mut AsyncPgConnection,
    except: Option<i64>,
    phone_number: &str,
) -> ApiResult<()> {
    if store::number_taken(conn, phone_number, except).await? {
        return Err(number_in_use(phone_number));
    }
    Ok(())
}

/// A unique violation (a concurrent trunk took the number) as the 409 of
/// [`number_in_use`]; any other error as it is.
fn taken_or(e: diesel::result::Error, phone_number: &str) -> ApiError {
    match ApiError::from(e) {
        ApiError::Conflict { .. } => number_in_use(phone_number),
        other => other,
    }
}

/// The 409 of a number that is live on another trunk.
fn number_in_use(phone_number: &str) -> ApiError {
    ApiError::conflict(format!(
        "The number {phone_number} is already in use by a SIP trunk"
    ))
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
    let lk = state.livekit()?;
    let body = body.into_inner();
    let mut conn = state.pool.get().await?;
    let current = store::trunk(&mut conn, auth.project.id, path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("SIP trunk"))?;
    let mut fields = TrunkFields {
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
    let mut made = None;
    // Under the rules lock: a concurrent sync never replaces the rule of
    // the inbound trunk this one is leaving.
    let updated = conn
        .transaction::<_, ApiError, _>(async |conn| {
            store::lock_rules(conn, auth.project.id).await?;
            // Checked first: no LiveKit resource is made for a number in use.
            number_free(conn, Some(current.id), &fields.phone_number).await?;
            if relink {
                let password = body.auth_password.as_deref().unwrap_or_default();
                let ids = made.insert(create_lk(lk, conn, &auth.project, &fields, password).await?);
                fields.inbound_trunk_id = Some(ids.inbound.clone());
                fields.outbound_trunk_id = Some(ids.outbound.clone());
                fields.dispatch_rule_id = Some(ids.rule.clone());
            }
            store::update_trunk(conn, current.id, &fields)
                .await
                .map_err(|e| taken_or(e, &fields.phone_number))
        })
        .await;
    let row = match updated {
        Ok(row) => row,
        Err(e) => {
            // A number taken meanwhile (unique violation) or any failure
            // after the new LiveKit resources: they go again.
            if let Some(ids) = made {
                drop_lk(lk, Some(&ids.outbound), Some(&ids.inbound), Some(&ids.rule)).await;
            }
            return Err(e);
        }
    };
    if relink {
        drop_lk(
            lk,
            current.outbound_trunk_id.as_deref(),
            current.inbound_trunk_id.as_deref(),
            current.dispatch_rule_id.as_deref(),
        )
        .await;
    }
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
    drop_lk(
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
    rules::resync(&state, &mut conn, &auth.project).await;
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
    rules::resync(&state, &mut conn, &auth.project).await;
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
    rules::resync(&state, &mut conn, &auth.project).await;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "SIP config deleted" })))
}

/// Mounts the SIP routes, relative to the `/sip` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/trunks")
            .route(web::get().to(list_trunks))
            .route(web::post().to(create_trunk))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/trunks/{id}")
            .route(web::patch().to(update_trunk))
            .route(web::delete().to(delete_trunk))
            .default_service(allow(&["PATCH", "DELETE"])),
    )
    .service(
        web::resource("/configs")
            .route(web::get().to(list_configs))
            .route(web::post().to(create_config))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/configs/{id}")
            .route(web::patch().to(update_config))
            .route(web::delete().to(delete_config))
            .default_service(allow(&["PATCH", "DELETE"])),
    )
    .service(
        web::resource("/dial")
            .route(web::post().to(dial))
            .default_service(allow(&["POST"])),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert_eq!(
            e164("p", "+17751234567").ok().as_deref(),
            Some("+17751234567")
        );
        assert_eq!(
            e164("p", "+442071838750").ok().as_deref(),
            Some("+442071838750")
        );
        for bad in [
            "17751234567",
            "+1775abc4567",
            "+1775",
            "+999123456789",
            "+",
            "",
            "+1 (775) 123-4567",
            "+1775123456789012",
        ] {
            assert!(e164("p", bad).is_err(), "{bad}");
        }
    }
}
