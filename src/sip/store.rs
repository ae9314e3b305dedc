//! `sip_trunks` and `sip_configs`.

use crate::db::schema::{agents, sip_configs, sip_trunks};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A row of `sip_trunks`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sip_trunks)]
pub struct Trunk {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub phone_number: String,
    pub address: String,
    pub auth_username: Option<String>,
    pub inbound_trunk_id: Option<String>,
    pub outbound_trunk_id: Option<String>,
    pub dispatch_rule_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The stored fields of a trunk.
#[derive(
    Debug, Clone, PartialEq, Eq, Insertable, AsChangeset, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = sip_trunks, treat_none_as_null = true)]
pub struct TrunkFields {
    pub project_id: i64,
    pub name: String,
    pub phone_number: String,
    pub address: String,
    pub auth_username: Option<String>,
    pub inbound_trunk_id: Option<String>,
    pub outbound_trunk_id: Option<String>,
    pub dispatch_rule_id: Option<String>,
}

/// A project's trunks, oldest first.
pub async fn trunks(conn: &mut AsyncPgConnection, project_id: i64) -> QueryResult<Vec<Trunk>> {
    sip_trunks::table
        .filter(sip_trunks::project_id.eq(project_id))
        .order(sip_trunks::id.asc())
        .select(Trunk::as_select())
        .load(conn)
        .await
}

/// A project's trunk.
pub async fn trunk(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<Option<Trunk>> {
    sip_trunks::table
        .filter(
            sip_trunks::project_id
                .eq(project_id)
                .and(sip_trunks::id.eq(id)),
        )
        .select(Trunk::as_select())
        .first(conn)
        .await
        .optional()
}

/// Whether a trunk of any project (other than `except`) has the number.
pub async fn number_taken(
    conn: &mut AsyncPgConnection,
    phone_number: &str,
    except: Option<i64>,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sip_trunks::table
            .filter(sip_trunks::phone_number.eq(phone_number))
            .filter(sip_trunks::id.ne(except.unwrap_or(0))),
    ))
    .get_result(conn)
    .await
}

/// Inserts a trunk.
pub async fn insert_trunk(conn: &mut AsyncPgConnection, t: &TrunkFields) -> QueryResult<Trunk> {
    diesel::insert_into(sip_trunks::table)
        .values(t)
        .returning(Trunk::as_returning())
        .get_result(conn)
        .await
}

/// Replaces a trunk's fields.
pub async fn update_trunk(
    conn: &mut AsyncPgConnection,
    id: i64,
    t: &TrunkFields,
) -> QueryResult<Trunk> {
    diesel::update(sip_trunks::table.find(id))
        .set((t, sip_trunks::updated_at.eq(Utc::now())))
        .returning(Trunk::as_returning())
        .get_result(conn)
        .await
}

/// A trunk by id, whatever its project.
pub async fn by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Trunk>> {
    sip_trunks::table
        .find(id)
        .select(Trunk::as_select())
        .first(conn)
        .await
        .optional()
}

/// Records the LiveKit ids of a trunk; `None` when the trunk is gone.
pub async fn set_lk_ids(
    conn: &mut AsyncPgConnection,
    id: i64,
    ids: &super::provision::LkIds,
) -> QueryResult<Option<Trunk>> {
    diesel::update(sip_trunks::table.find(id))
        .set((
            sip_trunks::inbound_trunk_id.eq(&ids.inbound),
            sip_trunks::outbound_trunk_id.eq(&ids.outbound),
            sip_trunks::dispatch_rule_id.eq(&ids.rule),
            sip_trunks::updated_at.eq(Utc::now()),
        ))
        .returning(Trunk::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Points a trunk at a new dispatch rule, if it is still on `inbound` with
/// the rule `old` (another sync did not replace it meanwhile); returns
/// whether it did.
pub async fn replace_dispatch_rule(
    conn: &mut AsyncPgConnection,
    id: i64,
    inbound: &str,
    old: Option<&str>,
    rule_id: &str,
) -> QueryResult<bool> {
    let n = diesel::update(
        sip_trunks::table
            .find(id)
            .filter(sip_trunks::inbound_trunk_id.eq(inbound))
            .filter(sip_trunks::dispatch_rule_id.is_not_distinct_from(old)),
    )
    .set((
        sip_trunks::dispatch_rule_id.eq(rule_id),
        sip_trunks::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// A trunk reservation (no LiveKit ids recorded yet) by id.
pub async fn reservation(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Trunk>> {
    sip_trunks::table
        .find(id)
        .filter(sip_trunks::outbound_trunk_id.is_null())
        .filter(sip_trunks::inbound_trunk_id.is_null())
        .filter(sip_trunks::dispatch_rule_id.is_null())
        .select(Trunk::as_select())
        .first(conn)
        .await
        .optional()
}

/// Which of these LiveKit trunk ids a trunk row records.
pub async fn recorded_lk_trunks(
    conn: &mut AsyncPgConnection,
    ids: &[String],
) -> QueryResult<Vec<String>> {
    let rows: Vec<(Option<String>, Option<String>)> = sip_trunks::table
        .filter(
            sip_trunks::outbound_trunk_id
                .eq_any(ids)
                .or(sip_trunks::inbound_trunk_id.eq_any(ids)),
        )
        .select((sip_trunks::outbound_trunk_id, sip_trunks::inbound_trunk_id))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .flat_map(|(o, i)| [o, i])
        .flatten()
        .collect())
}

/// Drops a trunk reservation that never got its LiveKit resources (the
/// process creating it died); whether it was one.
pub async fn drop_reservation(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(
        sip_trunks::table
            .find(id)
            .filter(sip_trunks::outbound_trunk_id.is_null())
            .filter(sip_trunks::inbound_trunk_id.is_null())
            .filter(sip_trunks::dispatch_rule_id.is_null()),
    )
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// Deletes a trunk.
pub async fn delete_trunk(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(sip_trunks::table.find(id))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// A row of `sip_configs` with its agent's name.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sip_configs)]
pub struct Config {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub phone_number: String,
    pub agent_config_id: Option<i64>,
    pub dtmf_enabled: bool,
    pub max_call_duration: i32,
    pub trunk_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The stored fields of a config.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = sip_configs, treat_none_as_null = true)]
pub struct ConfigFields {
    pub project_id: i64,
    pub name: String,
    pub phone_number: String,
    pub agent_config_id: Option<i64>,
    pub dtmf_enabled: bool,
    pub max_call_duration: i32,
    pub trunk_id: Option<i64>,
}

/// A project's configs with their agents' names, oldest first.
pub async fn configs(
    conn: &mut AsyncPgConnection,
    project_id: i64,
) -> QueryResult<Vec<(Config, Option<String>)>> {
    sip_configs::table
        .left_join(agents::table.on(agents::id.nullable().eq(sip_configs::agent_config_id)))
        .filter(sip_configs::project_id.eq(project_id))
        .order(sip_configs::id.asc())
        .select((Config::as_select(), agents::name.nullable()))
        .load(conn)
        .await
}

/// A project's config.
pub async fn config(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<Option<Config>> {
    sip_configs::table
        .filter(
            sip_configs::project_id
                .eq(project_id)
                .and(sip_configs::id.eq(id)),
        )
        .select(Config::as_select())
        .first(conn)
        .await
        .optional()
}

/// The config of a line: the one naming the phone number, else the first
/// one attached to the trunk.
pub async fn config_for_line(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    phone_number: &str,
    trunk_id: Option<i64>,
) -> QueryResult<Option<Config>> {
    let by_number = sip_configs::table
        .filter(sip_configs::project_id.eq(project_id))
        .filter(sip_configs::phone_number.eq(phone_number))
        .order(sip_configs::id.asc())
        .select(Config::as_select())
        .first(conn)
        .await
        .optional()?;
    if by_number.is_some() {
        return Ok(by_number);
    }
    let Some(trunk_id) = trunk_id else {
        return Ok(None);
    };
    sip_configs::table
        .filter(sip_configs::project_id.eq(project_id))
        .filter(sip_configs::trunk_id.eq(trunk_id))
        .order(sip_configs::id.asc())
        .select(Config::as_select())
        .first(conn)
        .await
        .optional()
}

/// Inserts a config.
pub async fn insert_config(conn: &mut AsyncPgConnection, c: &ConfigFields) -> QueryResult<Config> {
    diesel::insert_into(sip_configs::table)
        .values(c)
        .returning(Config::as_returning())
        .get_result(conn)
        .await
}

/// Replaces a config's fields.
pub async fn update_config(
    conn: &mut AsyncPgConnection,
    id: i64,
    c: &ConfigFields,
) -> QueryResult<Config> {
    diesel::update(sip_configs::table.find(id))
        .set((c, sip_configs::updated_at.eq(Utc::now())))
        .returning(Config::as_returning())
        .get_result(conn)
        .await
}

/// Deletes a config.
pub async fn delete_config(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(sip_configs::table.find(id))
        .execute(conn)
        .await
        .map(|n| n > 0)
}
