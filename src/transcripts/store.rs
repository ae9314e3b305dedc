//! SQL of transcript search and of the sessions export.

use crate::db::sessions::SessionStatus;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Session filters shared by search and export.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    pub agent_config_id: Option<i64>,
    /// active or completed.
    pub status: Option<SessionStatus>,
    /// Carries this tag.
    pub tag: Option<String>,
    pub disposition: Option<String>,
}

/// Matches ranked at most: the newest `MAX_CANDIDATES` matching lines (by
/// id; with session filters, those of the newest sessions that pass them)
/// are ranked, and `total` is then a lower bound (`total_is_capped`).
/// The planner finds them either from the `gin (search)` index (rare terms:
/// every line holding them, the project tested on each) or by walking the
/// project's final lines (or filtered sessions) newest first, testing each
/// (terms in a large share of the lines, whose posting lists alone would be
/// millions of entries): both stop at the cap.
pub const MAX_CANDIDATES: i64 = 500;

/// A search hit.
#[derive(Debug, Clone, QueryableByName)]
pub struct Hit {
    #[diesel(sql_type = BigInt)]
    pub line_id: i64,
    #[diesel(sql_type = BigInt)]
    pub session_id: i64,
    #[diesel(sql_type = Text)]
    pub room_name: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub agent_config_id: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub session_started_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub speaker: String,
    #[diesel(sql_type = BigInt)]
    pub timestamp_ms: i64,
    #[diesel(sql_type = Double)]
    pub rank: f64,
    #[diesel(sql_type = Text)]
    pub snippet: String,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

// The tsquery is written out in the WHERE clause (not taken from the `q`
// CTE) so that the planner sees its terms and estimates their share of the
// lines from the column's statistics: that is what lets it walk the recent
// lines for a common term instead of building a bitmap of all its matches.
//
// `{hits}` selects the candidate lines: [`LINES`] without session filters,
// [`SESSION_LINES`] with them.
const SEARCH: &str = "\
WITH q AS (SELECT websearch_to_tsquery('english', $2) AS q),
hits AS ({hits}
    LIMIT $12
), ranked AS (
    SELECT h.*, ts_rank_cd(h.search, q.q)::float8 AS rank, count(*) OVER () AS total
    FROM hits h, q
    ORDER BY rank DESC, h.id DESC
    LIMIT $10 OFFSET $11
)
SELECT r.id AS line_id, r.session_id, s.room_name, s.agent_config_id, s.started_at AS session_started_at,
       r.speaker, r.timestamp_ms, r.rank, r.total,
       ts_headline('english', r.content, q.q,
                   'StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \"') AS snippet
FROM ranked r JOIN sessions s ON s.id = r.session_id, q
ORDER BY r.rank DESC, r.id DESC";

/// The newest matching lines of the project. Matched with `= ANY(ARRAY[$1])`
/// and ordered by `(project_id, id DESC)`: with a plain `=` the planner
/// drops the constant column from the order and may walk the primary key
/// instead, newest lines of every project first, filtering out the other
/// projects' lines (in a cluster where another project wrote last, millions
/// of them). Only the project's index gives this order.
const LINES: &str = "
    SELECT t.id, t.session_id, t.speaker, t.content, t.timestamp_ms, t.search
    FROM transcripts t
    WHERE t.project_id = ANY(ARRAY[$1]::int8[]) AND t.search @@ websearch_to_tsquery('english', $2) AND t.is_final
      AND ($9::text IS NULL OR t.speaker = $9)
    ORDER BY t.project_id, t.id DESC";

/// The matching lines of the newest sessions that pass the filters: the
/// project's sessions walked newest first (`sessions_project_started_idx`,
/// which a period filter bounds), each session's lines read through its
/// own index. For a term in few lines the planner takes the term's posting
/// list instead and joins the sessions. Walking sessions rather than lines
/// skips the lines of every session the filters drop (a line walk tested
/// them all: 2–3 times slower at 10 M lines).
const SESSION_LINES: &str = "
    SELECT t.id, t.session_id, t.speaker, t.content, t.timestamp_ms, t.search
    FROM sessions s JOIN transcripts t ON t.session_id = s.id
    WHERE s.project_id = $1
      AND ($3::timestamptz IS NULL OR s.started_at >= $3)
      AND ($4::timestamptz IS NULL OR s.started_at < $4)
      AND ($5::int8 IS NULL OR s.agent_config_id = $5)
      AND ($6::text IS NULL OR s.status = $6)
      AND ($7::text IS NULL OR s.tags @> ARRAY[$7::text])
      AND ($8::text IS NULL OR s.disposition = $8)
      AND t.search @@ websearch_to_tsquery('english', $2) AND t.is_final
      AND ($9::text IS NULL OR t.speaker = $9)
    ORDER BY s.started_at DESC, s.id DESC, t.id DESC";

impl SessionFilter {
    /// Whether any filter is set.
    fn is_empty(&self) -> bool {
        self.from.is_none()
            && self.to.is_none()
            && self.agent_config_id.is_none()
            && self.status.is_none()
            && self.tag.is_none()
            && self.disposition.is_none()
    }
}

/// Final lines of a project's sessions matching a web-search query
/// (`websearch_to_tsquery`), best first.
pub async fn search(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    q: &str,
    f: &SessionFilter,
    speaker: Option<&str>,
    limit: i64,
    offset: i64,
) -> diesel::QueryResult<Vec<Hit>> {
    let hits = if f.is_empty() { LINES } else { SESSION_LINES };
    diesel::sql_query(SEARCH.replace("{hits}", hits))
        .bind::<BigInt, _>(project_id)
        .bind::<Text, _>(q)
        .bind::<Nullable<Timestamptz>, _>(f.from)
        .bind::<Nullable<Timestamptz>, _>(f.to)
        .bind::<Nullable<BigInt>, _>(f.agent_config_id)
        .bind::<Nullable<Text>, _>(f.status)
        .bind::<Nullable<Text>, _>(f.tag.as_deref())
        .bind::<Nullable<Text>, _>(f.disposition.as_deref())
        .bind::<Nullable<Text>, _>(speaker)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset)
        .bind::<BigInt, _>(MAX_CANDIDATES)
        .load(conn)
        .await
}

/// A row of the sessions export.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct ExportRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub room_name: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub agent_config_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub agent_name: Option<String>,
    #[diesel(sql_type = Text)]
    pub status: SessionStatus,
    #[diesel(sql_type = Text)]
    pub session_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub caller_identity: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub ended_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub duration_seconds: i64,
    #[diesel(sql_type = BigInt)]
    pub message_count: i64,
    /// USD, exact decimal text.
    #[diesel(sql_type = Text)]
    pub cost_total: String,
    #[diesel(sql_type = Text)]
    pub cost_llm: String,
    #[diesel(sql_type = Text)]
    pub cost_stt: String,
    #[diesel(sql_type = Text)]
    pub cost_tts: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub disposition: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    pub tags: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub notes: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub rating: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub summary: Option<String>,
}

const EXPORT_PAGE: &str = "\
WITH page AS (
    SELECT s.* FROM sessions s
    WHERE s.project_id = $1 AND s.id > $2
      AND ($3::timestamptz IS NULL OR s.started_at >= $3)
      AND ($4::timestamptz IS NULL OR s.started_at < $4)
      AND ($5::int8 IS NULL OR s.agent_config_id = $5)
      AND ($6::text IS NULL OR s.status = $6)
      AND ($7::text IS NULL OR s.tags @> ARRAY[$7::text])
      AND ($8::text IS NULL OR s.disposition = $8)
    ORDER BY s.id
    LIMIT $9
)
SELECT p.id, p.room_name, p.agent_config_id, a.name AS agent_name, p.status, p.session_type,
       p.caller_identity, p.started_at, p.ended_at,
       coalesce(p.duration_seconds, greatest(0, extract(epoch FROM coalesce(p.ended_at, now()) - p.started_at)))::int8
           AS duration_seconds,
       (SELECT count(*) FROM transcripts t WHERE t.session_id = p.id AND t.is_final) AS message_count,
       coalesce(c.total, 0)::text AS cost_total, coalesce(c.llm, 0)::text AS cost_llm,
       coalesce(c.stt, 0)::text AS cost_stt, coalesce(c.tts, 0)::text AS cost_tts,
       p.disposition, p.tags, p.notes, p.rating::int4 AS rating, p.summary
FROM page p
LEFT JOIN agents a ON a.id = p.agent_config_id
LEFT JOIN LATERAL (
    SELECT round(sum(u.cost_usd), 6) AS total,
           round(coalesce(sum(u.cost_usd) FILTER (WHERE u.service = 'llm'), 0), 6) AS llm,
           round(coalesce(sum(u.cost_usd) FILTER (WHERE u.service = 'stt'), 0), 6) AS stt,
           round(coalesce(sum(u.cost_usd) FILTER (WHERE u.service = 'tts'), 0), 6) AS tts
    FROM usage_events u WHERE u.session_id = p.id
) c ON true
ORDER BY p.id";

/// The next page of the export: sessions after `after_id` (keyset), in id order.
pub async fn export_page(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    after_id: i64,
    f: &SessionFilter,
    limit: i64,
) -> diesel::QueryResult<Vec<ExportRow>> {
    diesel::sql_query(EXPORT_PAGE)
        .bind::<BigInt, _>(project_id)
        .bind::<BigInt, _>(after_id)
        .bind::<Nullable<Timestamptz>, _>(f.from)
        .bind::<Nullable<Timestamptz>, _>(f.to)
        .bind::<Nullable<BigInt>, _>(f.agent_config_id)
        .bind::<Nullable<Text>, _>(f.status)
        .bind::<Nullable<Text>, _>(f.tag.as_deref())
        .bind::<Nullable<Text>, _>(f.disposition.as_deref())
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}
