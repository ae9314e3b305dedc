//! Usage and costs: `POST /api/v1/usage` (agent servers report LLM/STT/TTS
//! usage, priced from the configured table, in exact decimals) and
//! `GET /api/v1/usage` (the contract's totals and breakdown).

use super::allow;
use super::sessions::Costs;
use crate::auth::Auth;
use crate::config::ModelPrice;
use crate::db::sessions as store;
use crate::decimal::Decimal;
use crate::error::{ApiError, ApiResult};
use crate::livekit::names::RoomName;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use bigdecimal::BigDecimal;
use diesel::sql_types::{BigInt, Bool, Nullable, Numeric, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Records at most in one request.
const MAX_RECORDS: usize = 1000;

/// One usage record: of a session (`session_id`) or of the room's active
/// session (`room_name`); at least one of them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"room_name": "proj_my-room", "service": "llm", "provider": "openai", "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 300}))]
pub struct UsageIn {
    /// The session it belongs to (or give `room_name` for the room's active session).
    #[schema(nullable = false)]
    pub session_id: Option<i64>,
    /// A room with an active session (full or short name).
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:@+-]+$"
    )]
    pub room_name: Option<String>,
    /// llm, stt or tts.
    #[schema(pattern = "^(llm|stt|tts)$")]
    pub service: String,
    /// 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub provider: String,
    /// 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub model: String,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub input_tokens: Option<i64>,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub output_tokens: Option<i64>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub audio_seconds: Option<f64>,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub characters: Option<i64>,
}

/// A recorded, priced usage.
#[derive(Debug, Serialize, utoipa::ToSchema, diesel::QueryableByName)]
pub struct UsageRecorded {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub session_id: Option<i64>,
    #[diesel(sql_type = Text)]
    pub service: String,
    #[diesel(sql_type = Text)]
    pub model: String,
    /// USD, exact decimal as a string.
    #[diesel(sql_type = Text)]
    pub cost_usd: String,
    /// false when the model is not in the price table (cost 0).
    #[diesel(sql_type = Bool)]
    pub priced: bool,
}

/// Response of `POST /api/v1/usage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageCreated {
    pub success: bool,
    pub recorded: usize,
    pub usage: Vec<UsageRecorded>,
}

/// Query of `GET /api/v1/usage`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// today, 7d, 30d (default), month (this calendar month, UTC) or all.
    #[param(value_type = Option<UsagePeriod>)]
    pub period: Option<String>,
    /// day (default), model, agent or service.
    #[param(value_type = Option<UsageGroupBy>)]
    pub group_by: Option<String>,
    /// Only usage of sessions with this disposition.
    pub disposition: Option<String>,
    /// Only usage of sessions carrying this tag.
    pub tag: Option<String>,
}

/// Response of `GET /api/v1/usage` (shape of the contract).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"period": "30d", "group_by": "day", "totals": {"cost_usd": 14.52, "input_tokens": 1250000, "output_tokens": 310000, "audio_minutes": 85.3, "tts_characters": 42000, "api_calls": 1240}, "breakdown": [{"period": "2026-03-31", "cost": 2.10, "llm_cost": 1.80, "stt_cost": 0.20, "tts_cost": 0.10, "calls": 85}]}))]
pub struct UsageReport {
    pub period: String,
    pub group_by: String,
    #[schema(value_type = Object)]
    pub totals: UsageTotals,
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<UsageGroup>,
}

/// The totals of a usage report (costs exact, as JSON numbers).
#[derive(Debug, Serialize)]
pub struct UsageTotals {
    pub cost_usd: Decimal,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub audio_minutes: Decimal,
    pub tts_characters: i64,
    pub api_calls: i64,
}

/// One group of a usage report: `{<label>: key, cost, llm_cost, stt_cost,
/// tts_cost, calls}`, the label naming the grouping (`period`, `model`,
/// `agent`, `service`).
#[derive(Debug)]
pub struct UsageGroup {
    label: &'static str,
    key: String,
    cost: Decimal,
    llm: Decimal,
    stt: Decimal,
    tts: Decimal,
    calls: i64,
}

impl Serialize for UsageGroup {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry(self.label, &self.key)?;
        map.serialize_entry("cost", &self.cost)?;
        map.serialize_entry("llm_cost", &self.llm)?;
        map.serialize_entry("stt_cost", &self.stt)?;
        map.serialize_entry("tts_cost", &self.tts)?;
        map.serialize_entry("calls", &self.calls)?;
        map.end()
    }
}

fn price_for<'a>(prices: &'a [ModelPrice], provider: &str, model: &str) -> Option<&'a ModelPrice> {
    prices
        .iter()
        .find(|p| p.provider.eq_ignore_ascii_case(provider) && p.model.eq_ignore_ascii_case(model))
}

fn check(u: &UsageIn, i: usize) -> ApiResult<()> {
    let field = |f: &str| format!("[{i}].{f}");
    if !matches!(u.service.as_str(), "llm" | "stt" | "tts") {
        return Err(ApiError::invalid_field(
            &field("service"),
            "service must be llm, stt or tts",
        ));
    }
    for (name, v) in [("provider", &u.provider), ("model", &u.model)] {
        if v.trim().is_empty() || v.chars().count() > 128 {
            return Err(ApiError::invalid_field(
                &field(name),
                format!("{name} must be 1 to 128 characters"),
            ));
        }
    }
    for (name, v) in [
        ("input_tokens", u.input_tokens),
        ("output_tokens", u.output_tokens),
        ("characters", u.characters),
    ] {
        if v.is_some_and(|v| !(0..=1_000_000_000_000).contains(&v)) {
            return Err(ApiError::invalid_field(
                &field(name),
                format!("{name} must be a non-negative count"),
            ));
        }
    }
    if u.audio_seconds
        .is_some_and(|s| !(0.0..=1.0e9).contains(&s) || s.is_nan())
    {
        return Err(ApiError::invalid_field(
            &field("audio_seconds"),
            "audio_seconds must be non-negative",
        ));
    }
    if u.session_id.is_none() && u.room_name.is_none() {
        return Err(ApiError::invalid_field(
            &field("session_id"),
            "session_id or room_name is required",
        ));
    }
    Ok(())
}

/// Record LLM/STT/TTS usage (one object or an array), priced from the table.
#[utoipa::path(
    post, path = "/api/v1/usage", tag = "Quota & Usage",
    request_body = UsageBody,
    responses(
        (status = 201, description = "Recorded", body = UsageCreated),
        (status = 400, description = "Invalid usage", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown session or no active session in the room", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn record_usage(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = match body.into_inner() {
        Value::Array(a) => a,
        obj @ Value::Object(_) => vec![obj],
        _ => {
            return Err(ApiError::bad_request(
                "Body must be a usage object or an array of them",
            ));
        }
    };
    if items.is_empty() || items.len() > MAX_RECORDS {
        return Err(ApiError::bad_request("Send 1 to 1000 usage records"));
    }
    let mut parsed = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let u: UsageIn = serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("Invalid usage record [{i}]: {e}")))?;
        check(&u, i)?;
        parsed.push(u);
    }
    let prefix = auth.project.room_prefix.clone();
    let project_id = auth.project.id;
    let prices = state.settings.prices.clone();
    let mut conn = state.pool.get().await?;
    let recorded = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let mut out = Vec::with_capacity(parsed.len());
            for (i, u) in parsed.iter().enumerate() {
                let session = match (u.session_id, &u.room_name) {
                    (Some(id), _) => store::find(conn, project_id, id)
                        .await?
                        .map(|(s, _)| s)
                        .ok_or_else(|| ApiError::NotFound(format!("Session {id} not found ([{i}])")))?,
                    (None, Some(room)) => {
                        let room = RoomName::parse(&prefix, room)?;
                        store::active(conn, project_id, &room.full)
                            .await?
                            .ok_or_else(|| ApiError::NotFound(format!("No active session in room {} ([{i}])", room.full)))?
                    }
                    (None, None) => return Err(ApiError::bad_request("session_id or room_name is required")),
                };
                let price = price_for(&prices, &u.provider, &u.model);
                let p = |f: fn(&ModelPrice) -> &str| price.map(f).unwrap_or("0").to_owned();
                let row: UsageRecorded = diesel::sql_query(
                    "INSERT INTO usage_events (project_id, session_id, agent_config_id, service, provider, model,
                         input_tokens, output_tokens, audio_seconds, characters, cost_usd, priced)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric, $10,
                         $7 * $11::numeric / 1000000 + $8 * $12::numeric / 1000000
                         + $9::numeric * $13::numeric / 60 + $10 * $14::numeric / 1000, $15)
                     RETURNING id, session_id, service, model, cost_usd::text AS cost_usd, priced",
                )
                .bind::<BigInt, _>(project_id)
                .bind::<BigInt, _>(session.id)
                .bind::<Nullable<BigInt>, _>(session.agent_config_id)
                .bind::<Text, _>(&u.service)
                .bind::<Text, _>(&u.provider)
                .bind::<Text, _>(&u.model)
                .bind::<BigInt, _>(u.input_tokens.unwrap_or(0))
                .bind::<BigInt, _>(u.output_tokens.unwrap_or(0))
                .bind::<Text, _>(format!("{:.3}", u.audio_seconds.unwrap_or(0.0)))
                .bind::<BigInt, _>(u.characters.unwrap_or(0))
                .bind::<Text, _>(p(|m| &m.input_per_million))
                .bind::<Text, _>(p(|m| &m.output_per_million))
                .bind::<Text, _>(p(|m| &m.per_minute))
                .bind::<Text, _>(p(|m| &m.per_thousand_chars))
                .bind::<Bool, _>(price.is_some())
                .get_result(conn)
                .await?;
                out.push(row);
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Created().json(UsageCreated {
        success: true,
        recorded: recorded.len(),
        usage: recorded,
    }))
}

/// Aggregated usage and costs.
#[utoipa::path(
    get, path = "/api/v1/usage", tag = "Quota & Usage",
    params(UsageQuery),
    responses((status = 200, description = "Usage", body = UsageReport), (status = 400, description = "Bad period or group_by", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_usage(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<UsageQuery>,
) -> ApiResult<HttpResponse> {
    let period = q.period.clone().unwrap_or_else(|| "30d".into());
    let group_by = q.group_by.clone().unwrap_or_else(|| "day".into());
    let since = match period.as_str() {
        "today" => "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "7d" => "now() - interval '7 days'",
        "30d" => "now() - interval '30 days'",
        "month" => "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "all" => "'-infinity'::timestamptz",
        _ => {
            return Err(ApiError::BadRequest {
                message: "period must be one of today, 7d, 30d, month, all".into(),
                details: Some(
                    json!({"field": "period", "allowed": ["today", "7d", "30d", "month", "all"]}),
                ),
            });
        }
    };
    let (key, label) = match group_by.as_str() {
        "day" => (
            "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            "period",
        ),
        "model" => ("u.provider || '/' || u.model", "model"),
        "agent" => ("coalesce(a.name, 'unassigned')", "agent"),
        "service" => ("u.service", "service"),
        _ => {
            return Err(ApiError::BadRequest {
                message: "group_by must be one of day, model, agent, service".into(),
                details: Some(
                    json!({"field": "group_by", "allowed": ["day", "model", "agent", "service"]}),
                ),
            });
        }
    };
    // Each group's costs are rounded to 6 decimals; totals are the sum of the
    // rounded groups, so they add up exactly.
    let sql = format!(
        "SELECT {key} AS key,
                round(sum(u.cost_usd), 6) AS cost,
                round(coalesce(sum(u.cost_usd) FILTER (WHERE u.service = 'llm'), 0), 6) AS llm,
                round(coalesce(sum(u.cost_usd) FILTER (WHERE u.service = 'stt'), 0), 6) AS stt,
                round(coalesce(sum(u.cost_usd) FILTER (WHERE u.service = 'tts'), 0), 6) AS tts,
                count(*) AS calls,
                sum(u.input_tokens)::int8 AS input_tokens, sum(u.output_tokens)::int8 AS output_tokens,
                coalesce(sum(u.audio_seconds) FILTER (WHERE u.service = 'stt'), 0) AS audio_seconds,
                coalesce(sum(u.characters) FILTER (WHERE u.service = 'tts'), 0)::int8 AS tts_characters
         FROM usage_events u LEFT JOIN agents a ON a.id = u.agent_config_id
         WHERE u.project_id = $1 AND u.created_at >= {since}
           AND ($2::text IS NULL AND $3::text IS NULL OR u.session_id IN (
                SELECT s.id FROM sessions s WHERE s.project_id = $1
                  AND ($2::text IS NULL OR s.disposition = $2)
                  AND ($3::text IS NULL OR s.tags @> ARRAY[$3::text])))
         GROUP BY 1 ORDER BY 1"
    );
    let mut conn = state.pool.get().await?;
    let rows: Vec<Row> = diesel::sql_query(sql)
        .bind::<BigInt, _>(auth.project.id)
        .bind::<diesel::sql_types::Nullable<Text>, _>(q.disposition.as_deref())
        .bind::<diesel::sql_types::Nullable<Text>, _>(q.tag.as_deref())
        .load::<Row>(&mut conn)
        .await?;
    let totals: TotalsRow = diesel::sql_query(format!(
        "SELECT coalesce(sum(calls), 0)::int8 AS api_calls FROM api_usage_daily
         WHERE project_id = $1 AND day >= ({since})::date"
    ))
    .bind::<BigInt, _>(auth.project.id)
    .get_result(&mut conn)
    .await?;
    let api_calls = totals.api_calls + state.api_calls.pending(auth.project.id);
    let audio_seconds: Decimal = rows.iter().map(|r| &r.audio_seconds).sum();
    let totals = UsageTotals {
        cost_usd: rows.iter().map(|r| &r.cost).sum(),
        input_tokens: rows.iter().map(|r| r.input_tokens).sum::<i64>(),
        output_tokens: rows.iter().map(|r| r.output_tokens).sum::<i64>(),
        audio_minutes: Decimal(audio_seconds.0 / BigDecimal::from(60)).round(2),
        tts_characters: rows.iter().map(|r| r.tts_characters).sum::<i64>(),
        api_calls,
    };
    let breakdown = rows
        .into_iter()
        .map(|r| UsageGroup {
            label,
            key: r.key,
            cost: r.cost,
            llm: r.llm,
            stt: r.stt,
            tts: r.tts,
            calls: r.calls,
        })
        .collect();
    Ok(HttpResponse::Ok().json(UsageReport {
        totals,
        breakdown,
        period,
        group_by,
    }))
}

/// One breakdown group: costs rounded to 6 decimals (exact).
#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Numeric)]
    cost: Decimal,
    #[diesel(sql_type = Numeric)]
    llm: Decimal,
    #[diesel(sql_type = Numeric)]
    stt: Decimal,
    #[diesel(sql_type = Numeric)]
    tts: Decimal,
    #[diesel(sql_type = BigInt)]
    calls: i64,
    #[diesel(sql_type = BigInt)]
    input_tokens: i64,
    #[diesel(sql_type = BigInt)]
    output_tokens: i64,
    #[diesel(sql_type = Numeric)]
    audio_seconds: Decimal,
    #[diesel(sql_type = BigInt)]
    tts_characters: i64,
}

#[derive(diesel::QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = BigInt)]
    api_calls: i64,
}

/// A session's costs by service.
pub async fn session_costs(conn: &mut AsyncPgConnection, session_id: i64) -> ApiResult<Costs> {
    #[derive(diesel::QueryableByName)]
    struct C {
        #[diesel(sql_type = Numeric)]
        llm: Decimal,
        #[diesel(sql_type = Numeric)]
        stt: Decimal,
        #[diesel(sql_type = Numeric)]
        tts: Decimal,
    }
    let c: C = diesel::sql_query(
        "SELECT round(coalesce(sum(cost_usd) FILTER (WHERE service = 'llm'), 0), 6) AS llm,
                round(coalesce(sum(cost_usd) FILTER (WHERE service = 'stt'), 0), 6) AS stt,
                round(coalesce(sum(cost_usd) FILTER (WHERE service = 'tts'), 0), 6) AS tts
         FROM usage_events WHERE session_id = $1",
    )
    .bind::<BigInt, _>(session_id)
    .get_result(conn)
    .await?;
    Ok(Costs {
        total: c.llm.clone() + c.stt.clone() + c.tts.clone(),
        llm: c.llm,
        stt: c.stt,
        tts: c.tts,
    })
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/usage")
            .route(web::get().to(get_usage))
            .route(web::post().to(record_usage))
            .default_service(allow(&["GET", "POST"])),
    );
}

/// The documented values of `period`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum UsagePeriod {
    /// Since midnight UTC.
    #[schema(rename = "today")]
    Today,
    /// The last 7 days.
    #[schema(rename = "7d")]
    Days7,
    /// The last 30 days.
    #[schema(rename = "30d")]
    Days30,
    /// This calendar month (UTC).
    #[schema(rename = "month")]
    Month,
    /// Everything.
    #[schema(rename = "all")]
    All,
}

/// The documented values of `group_by`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum UsageGroupBy {
    /// One row per day.
    Day,
    /// One row per model.
    Model,
    /// One row per agent.
    Agent,
    /// One row per service (llm, stt, tts).
    Service,
}

/// Body of `POST /api/v1/usage`: one record or a batch of 1 to 1000 of
/// them (stored together, all or none). Documentation only: the handler
/// reads the JSON and names the record at fault.
pub struct UsageBody;

impl utoipa::PartialSchema for UsageBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        use utoipa::openapi::{Ref, RefOr};
        let one_of = OneOfBuilder::new()
            .item(Ref::from_schema_name("UsageIn"))
            .item(
                ArrayBuilder::new()
                    .items(RefOr::Ref(Ref::from_schema_name("UsageIn")))
                    .min_items(Some(1))
                    .max_items(Some(MAX_RECORDS))
                    .description(Some("Several records, stored together (all or none).")),
            )
            .description(Some(
                "Body of `POST /api/v1/usage`: one record or a batch of them.",
            ))
            .build();
        RefOr::T(utoipa::openapi::schema::Schema::OneOf(one_of))
    }
}

impl utoipa::ToSchema for UsageBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "UsageBody".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("UsageIn".into(), UsageIn::schema()));
        <UsageIn as utoipa::ToSchema>::schemas(schemas);
    }
}
