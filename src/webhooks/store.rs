//! SQL of webhook endpoints, their deliveries and attempts (the delivery
//! workers' own claims and outcomes are in `crate::events::delivery` and
//! `crate::db::batch`).

use crate::db::schema::{
    events as ev, webhook_attempts as wa, webhook_deliveries as wd, webhook_endpoints as we,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The status of a delivery (owned by the delivery workers).
pub use crate::events::delivery::DeliveryStatus;

/// An endpoint as the API shows it (never its secrets).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = we)]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub is_active: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new endpoint.
#[derive(Debug, Insertable)]
#[diesel(table_name = we)]
pub struct NewEndpoint<'a> {
    pub project_id: i64,
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
    pub is_active: bool,
    pub secret: &'a str,
}

/// The changes of an endpoint (absent fields stay). Re-enabling or
/// disabling clears the disabled reason and the failure streak.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = we)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
    pub disabled_reason: Option<Option<String>>,
    pub failing_since: Option<Option<DateTime<Utc>>>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointChanges {
    /// Changes of the given fields, `updated_at` now.
    pub fn new(
        url: Option<String>,
        description: Option<String>,
        event_types: Option<Vec<String>>,
        is_active: Option<bool>,
    ) -> Self {
        Self {
            url,
            description,
            event_types,
            is_active,
            disabled_reason: is_active.map(|_| None),
            failing_since: is_active.map(|_| None),
            updated_at: Utc::now(),
        }
    }
}

/// A delivery with its event's public id and type.
#[derive(Debug, Clone, Queryable)]
pub struct Delivery {
    pub id: i64,
    /// The event's public id (`webhook-id`).
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One try of a delivery.
#[derive(Debug, Clone, Queryable)]
pub struct Attempt {
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Inserts an endpoint.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewEndpoint<'_>) -> QueryResult<Endpoint> {
    diesel::insert_into(we::table)
        .values(new)
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
}

/// A project's endpoints, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, project_id: i64) -> QueryResult<Vec<Endpoint>> {
    we::table
        .filter(we::project_id.eq(project_id))
        .order(we::id.asc())
        .select(Endpoint::as_select())
        .load(conn)
        .await
}

/// A project's endpoint.
pub async fn find(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<Option<Endpoint>> {
    we::table
        .filter(we::project_id.eq(project_id).and(we::id.eq(id)))
        .select(Endpoint::as_select())
        .first(conn)
        .await
        .optional()
}

/// Applies changes to a project's endpoint in one statement; `None` when
/// there is no such endpoint.
pub async fn update(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
    changes: &EndpointChanges,
) -> QueryResult<Option<Endpoint>> {
    diesel::update(we::table.filter(we::project_id.eq(project_id).and(we::id.eq(id))))
        .set(changes)
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Deletes a project's endpoint (its deliveries go with it); whether it was.
pub async fn delete(conn: &mut AsyncPgConnection, project_id: i64, id: i64) -> QueryResult<bool> {
    diesel::delete(we::table.filter(we::project_id.eq(project_id).and(we::id.eq(id))))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Replaces an endpoint's secret; the previous one signs too until `until`.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
    secret: &str,
    until: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(we::table.filter(we::project_id.eq(project_id).and(we::id.eq(id))))
        .set((
            we::previous_secret.eq(we::secret.nullable()),
            we::previous_secret_expires_at.eq(until),
            we::secret.eq(secret),
            we::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Inside the transaction that emitted a test event: a delivery of it to
/// every active endpoint of the project (the event's trigger made those of
/// the subscribed ones already); returns the endpoints.
pub async fn enqueue_test(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    event_id: i64,
) -> QueryResult<Vec<i64>> {
    let active = we::table.filter(we::project_id.eq(project_id).and(we::is_active.eq(true)));
    diesel::insert_into(wd::table)
        .values(active.select((
            we::project_id,
            we::id,
            diesel::IntoSql::into_sql::<diesel::sql_types::BigInt>(event_id),
        )))
        .into_columns((wd::project_id, wd::endpoint_id, wd::event_id))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    active.order(we::id.asc()).select(we::id).load(conn).await
}

type DeliveryColumns = (
    wd::id,
    ev::public_id,
    ev::event_type,
    wd::status,
    wd::attempts,
    wd::last_status_code,
    wd::last_error,
    wd::next_attempt_at,
    wd::delivered_at,
    wd::created_at,
);

const DELIVERY: DeliveryColumns = (
    wd::id,
    ev::public_id,
    ev::event_type,
    wd::status,
    wd::attempts,
    wd::last_status_code,
    wd::last_error,
    wd::next_attempt_at,
    wd::delivered_at,
    wd::created_at,
);

/// A page of an endpoint's deliveries, newest first, with the total.
pub async fn deliveries(
    conn: &mut AsyncPgConnection,
    endpoint: i64,
    status: Option<DeliveryStatus>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Delivery>, i64)> {
    let base = || {
        let mut q = wd::table
            .inner_join(ev::table)
            .filter(wd::endpoint_id.eq(endpoint))
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(wd::status.eq(s));
        }
        q
    };
    let total: i64 = base().count().get_result(conn).await?;
    let rows = base()
        .order(wd::id.desc())
        .offset(offset)
        .limit(limit)
        .select(DELIVERY)
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// A delivery of a project's endpoint.
pub async fn delivery(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    endpoint: i64,
    id: i64,
) -> QueryResult<Option<Delivery>> {
    wd::table
        .inner_join(ev::table)
        .filter(
            wd::project_id
                .eq(project_id)
                .and(wd::endpoint_id.eq(endpoint))
                .and(wd::id.eq(id)),
        )
        .select(DELIVERY)
        .first(conn)
        .await
        .optional()
}

/// The tries of a delivery, in order.
pub async fn attempts(conn: &mut AsyncPgConnection, delivery_id: i64) -> QueryResult<Vec<Attempt>> {
    wa::table
        .filter(wa::delivery_id.eq(delivery_id))
        .order(wa::id.asc())
        .select((
            wa::attempt,
            wa::status_code,
            wa::latency_ms,
            wa::response_body,
            wa::error,
            wa::created_at,
        ))
        .load(conn)
        .await
}

/// Makes a delivery due now with a fresh retry cycle, unless a worker
/// holds it (a live lease: a send in flight); whether it did.
pub async fn redeliver(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::update(
        wd::table.find(id).filter(
            wd::locked_until
                .is_null()
                .or(wd::locked_until.le(diesel::dsl::now)),
        ),
    )
    .set(fresh_cycle())
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Makes an endpoint's failed deliveries created since `since` due now,
/// each with a fresh retry cycle; how many.
pub async fn recover(
    conn: &mut AsyncPgConnection,
    endpoint: i64,
    since: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        wd::table.filter(
            wd::endpoint_id
                .eq(endpoint)
                .and(wd::status.eq(DeliveryStatus::Failed))
                .and(wd::created_at.ge(since)),
        ),
    )
    .set(fresh_cycle())
    .execute(conn)
    .await
}

#[allow(clippy::type_complexity)]
fn fresh_cycle() -> (
    diesel::dsl::Eq<wd::status, DeliveryStatus>,
    diesel::dsl::Eq<wd::next_attempt_at, DateTime<Utc>>,
    diesel::dsl::Eq<wd::locked_until, Option<DateTime<Utc>>>,
    diesel::dsl::Eq<wd::cycle_attempts, i32>,
    diesel::dsl::Eq<wd::updated_at, DateTime<Utc>>,
) {
    let now = Utc::now();
    (
        wd::status.eq(DeliveryStatus::Pending),
        wd::next_attempt_at.eq(now),
        wd::locked_until.eq(None),
        wd::cycle_attempts.eq(0),
        wd::updated_at.eq(now),
    )
}
