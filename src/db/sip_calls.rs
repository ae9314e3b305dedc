//! `sip_calls`: one row per SIP call (outbound dial or inbound), its status
//! and its deadline. Status changes are conditional updates, so when two
//! processes see the same change only one reports it.

use crate::db::schema::sip_calls;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

crate::db::text_enum::text_enum! {
    /// The status of a SIP call (`sip_calls.status`).
    pub enum SipCallStatus in ("sip_calls", "status") {
        /// A dial's call before LiveKit placed it (a reservation: its
        /// session holds the quota and the room; see `crate::sip::dialing`).
        Reserved = "reserved",
        /// Placed; the phone is being dialed.
        Dialing = "dialing",
        /// The phone rings.
        Ringing = "ringing",
        /// Answered.
        Active = "active",
        /// Ended after it was answered.
        Ended = "ended",
        /// Ended before it was answered (busy, no answer, …).
        Failed = "failed",
    }
}

/// The status of a dial's call before LiveKit placed it.
pub const RESERVED: SipCallStatus = SipCallStatus::Reserved;

/// The statuses of a call that has not ended.
pub const LIVE: [SipCallStatus; 3] = [
    SipCallStatus::Dialing,
    SipCallStatus::Ringing,
    SipCallStatus::Active,
];

/// A row of `sip_calls`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sip_calls)]
pub struct SipCall {
    pub id: i64,
    pub project_id: i64,
    pub session_id: Option<i64>,
    pub room_name: String,
    pub participant_identity: String,
    pub phone_number: String,
    pub direction: String,
    pub status: SipCallStatus,
    pub reason: Option<String>,
    pub max_call_duration: i32,
    pub deadline: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A call to record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = sip_calls)]
pub struct NewCall<'a> {
    pub project_id: i64,
    pub session_id: Option<i64>,
    pub room_name: &'a str,
    pub participant_identity: &'a str,
    pub phone_number: &'a str,
    pub direction: &'a str,
    pub status: SipCallStatus,
    pub max_call_duration: i32,
    pub deadline: DateTime<Utc>,
}

/// Inside a transaction: waits for the project's other dials (a
/// transaction advisory lock on the project id under a key of its own), so
/// that dials are counted and their rooms named one after another while
/// nothing else of the project waits.
pub async fn lock_dials(conn: &mut AsyncPgConnection, project_id: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('voxplane.sip.dial', $1))")
        .bind::<diesel::sql_types::BigInt, _>(project_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A dial's call becomes `dialing` (LiveKit placed it), with its deadline;
/// `None` when it is no longer reserved (the reconciler settled it).
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    id: i64,
    deadline: DateTime<Utc>,
) -> QueryResult<Option<SipCall>> {
    diesel::update(
        sip_calls::table
            .find(id)
            .filter(sip_calls::status.eq(RESERVED)),
    )
    .set((
        sip_calls::status.eq(SipCallStatus::Dialing),
        sip_calls::deadline.eq(deadline),
        sip_calls::updated_at.eq(Utc::now()),
    ))
    .returning(SipCall::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Deletes a dial's reservation (still `reserved`) and the session it
/// holds (which releases the quota and the room name); whether it was
/// there.
pub async fn release(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    use crate::db::schema::sessions;
    let gone: Option<Option<i64>> = diesel::delete(
        sip_calls::table
            .find(id)
            .filter(sip_calls::status.eq(RESERVED)),
    )
    .returning(sip_calls::session_id)
    .get_result(conn)
    .await
    .optional()?;
    let Some(session) = gone else {
        return Ok(false);
    };
    if let Some(session) = session {
        diesel::delete(sessions::table.find(session))
            .execute(conn)
            .await?;
    }
    Ok(true)
}

/// A dial's reservation by id, if it is still `reserved`.
pub async fn reservation(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<SipCall>> {
    sip_calls::table
        .find(id)
        .filter(sip_calls::status.eq(RESERVED))
        .select(SipCall::as_select())
        .first(conn)
        .await
        .optional()
}

/// Records a call.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewCall<'_>) -> QueryResult<SipCall> {
    diesel::insert_into(sip_calls::table)
        .values(new)
        .returning(SipCall::as_returning())
        .get_result(conn)
        .await
}

/// The live call of a participant of a room.
pub async fn live(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
    identity: &str,
) -> QueryResult<Option<SipCall>> {
    sip_calls::table
        .filter(sip_calls::project_id.eq(project_id))
        .filter(sip_calls::room_name.eq(room_name))
        .filter(sip_calls::participant_identity.eq(identity))
        .filter(sip_calls::status.eq_any(LIVE))
        .select(SipCall::as_select())
        .first(conn)
        .await
        .optional()
}

/// Whether a session has (or had) a call.
pub async fn any_for_session(conn: &mut AsyncPgConnection, session_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sip_calls::table.filter(sip_calls::session_id.eq(session_id)),
    ))
    .get_result(conn)
    .await
}

/// Moves a call from `from` to `to` (with a reason for an end); `None` when
/// it was no longer in `from` (someone else moved it).
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: i64,
    from: SipCallStatus,
    to: SipCallStatus,
    reason: Option<&str>,
) -> QueryResult<Option<SipCall>> {
    let now = Utc::now();
    let terminal = !LIVE.contains(&to);
    diesel::update(sip_calls::table.find(id).filter(sip_calls::status.eq(from)))
        .set((
            sip_calls::status.eq(to),
            sip_calls::reason.eq(reason),
            (to == SipCallStatus::Active).then_some(sip_calls::answered_at.eq(now)),
            terminal.then_some(sip_calls::ended_at.eq(now)),
            sip_calls::updated_at.eq(now),
        ))
        .returning(SipCall::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Calls still dialing or ringing (their progress is read from LiveKit).
pub async fn progressing(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<SipCall>> {
    sip_calls::table
        .filter(sip_calls::status.eq_any([SipCallStatus::Dialing, SipCallStatus::Ringing]))
        .order(sip_calls::id)
        .limit(limit)
        .select(SipCall::as_select())
        .load(conn)
        .await
}

/// Live calls past their deadline (not locked: the worker removes their
/// participants first, then takes each with [`lock_overdue`]).
pub async fn overdue(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<SipCall>> {
    sip_calls::table
        .filter(sip_calls::status.eq_any(LIVE))
        .filter(sip_calls::deadline.le(Utc::now()))
        .order(sip_calls::deadline)
        .limit(limit)
        .select(SipCall::as_select())
        .load(conn)
        .await
}

/// A call if it is still live and past its deadline, locked for this
/// transaction; `None` when it ended meanwhile or another process has it.
pub async fn lock_overdue(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<SipCall>> {
    sip_calls::table
        .find(id)
        .filter(sip_calls::status.eq_any(LIVE))
        .filter(sip_calls::deadline.le(Utc::now()))
        .for_update()
        .skip_locked()
        .select(SipCall::as_select())
        .first(conn)
        .await
        .optional()
}
