//! The `knowledge_bases` table.

use super::schema::{kb_chunks, kb_index_jobs, knowledge_bases};
use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

crate::db::text_enum::text_enum! {
    /// The indexing status of a knowledge base (`knowledge_bases.indexing_status`).
    #[derive(utoipa::ToSchema)]
    #[schema(example = "ready")]
    pub enum KbIndexingStatus in ("knowledge_bases", "indexing_status") {
        /// Nothing indexed yet.
        Pending = "pending",
        /// Documents are being indexed (or queued).
        Indexing = "indexing",
        /// Every document is indexed.
        Ready = "ready",
        /// The last indexing failed.
        Error = "error",
    }
}

/// A row of `knowledge_bases`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = knowledge_bases)]
pub struct KnowledgeBase {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub chunk_size: i32,
    pub chunk_overlap: i32,
    pub indexing_status: KbIndexingStatus,
    pub indexing_error: Option<String>,
    pub last_indexed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Values of a new knowledge base.
#[derive(Debug, Insertable)]
#[diesel(table_name = knowledge_bases)]
pub struct NewKnowledgeBase {
    pub project_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub chunk_size: i32,
    pub chunk_overlap: i32,
}

/// A knowledge base with its chunk figures.
#[derive(Debug, Clone)]
pub struct KbStats {
    pub kb: KnowledgeBase,
    pub chunk_count: i64,
    pub total_chars: i64,
}

/// Inserts a knowledge base.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewKnowledgeBase,
) -> QueryResult<KnowledgeBase> {
    diesel::insert_into(knowledge_bases::table)
        .values(new)
        .returning(KnowledgeBase::as_returning())
        .get_result(conn)
        .await
}

/// One knowledge base of a project (`NotFound` otherwise).
pub async fn find(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<KnowledgeBase> {
    knowledge_bases::table
        .filter(knowledge_bases::project_id.eq(project_id))
        .filter(knowledge_bases::id.eq(id))
        .select(KnowledgeBase::as_select())
        .first(conn)
        .await
}

/// One knowledge base of a project, locked for the rest of the transaction.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<KnowledgeBase> {
    knowledge_bases::table
        .filter(knowledge_bases::project_id.eq(project_id))
        .filter(knowledge_bases::id.eq(id))
        .select(KnowledgeBase::as_select())
        .for_update()
        .first(conn)
        .await
}

/// One knowledge base with its chunk count and total characters.
pub async fn find_with_stats(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<KbStats> {
    let kb = find(conn, project_id, id).await?;
    let (chunk_count, total_chars): (i64, Option<i64>) = kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(id))
        .select((
            count_star(),
            sql::<Nullable<BigInt>>("sum(char_length(content))::int8"),
        ))
        .first(conn)
        .await?;
    Ok(KbStats {
        kb,
        chunk_count,
        total_chars: total_chars.unwrap_or(0),
    })
}

/// The project's knowledge bases, oldest first, with their chunk counts.
pub async fn list(conn: &mut AsyncPgConnection, project_id: i64) -> QueryResult<Vec<KbStats>> {
    let kbs: Vec<KnowledgeBase> = knowledge_bases::table
        .filter(knowledge_bases::project_id.eq(project_id))
        .order(knowledge_bases::id.asc())
        .select(KnowledgeBase::as_select())
        .load(conn)
        .await?;
    let counts: Vec<(i64, i64, Option<i64>)> = kb_chunks::table
        .filter(kb_chunks::project_id.eq(project_id))
        .group_by(kb_chunks::knowledge_base_id)
        .select((
            kb_chunks::knowledge_base_id,
            count_star(),
            sql::<Nullable<BigInt>>("sum(char_length(content))::int8"),
        ))
        .load(conn)
        .await?;
    Ok(kbs
        .into_iter()
        .map(|kb| {
            let (chunk_count, total_chars) = counts
                .iter()
                .find(|(id, _, _)| *id == kb.id)
                .map(|(_, n, c)| (*n, c.unwrap_or(0)))
                .unwrap_or((0, 0));
            KbStats {
                kb,
                chunk_count,
                total_chars,
            }
        })
        .collect())
}

/// Deletes a knowledge base (its chunks and jobs cascade); false when absent.
pub async fn delete(conn: &mut AsyncPgConnection, project_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(
        knowledge_bases::table
            .filter(knowledge_bases::project_id.eq(project_id))
            .filter(knowledge_bases::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// The ids among `ids` that are knowledge bases of the project.
pub async fn existing_ids(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    ids: &[i64],
) -> QueryResult<Vec<i64>> {
    knowledge_bases::table
        .filter(knowledge_bases::project_id.eq(project_id))
        .filter(knowledge_bases::id.eq_any(ids))
        .select(knowledge_bases::id)
        .load(conn)
        .await
}

/// Sets the indexing status (and `last_indexed_at` when it becomes `ready`).
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: KbIndexingStatus,
    error: Option<&str>,
) -> QueryResult<()> {
    let now = Utc::now();
    let target = knowledge_bases::table.filter(knowledge_bases::id.eq(id));
    let common = (
        knowledge_bases::indexing_status.eq(status),
        knowledge_bases::indexing_error.eq(error),
        knowledge_bases::updated_at.eq(now),
    );
    if status == KbIndexingStatus::Ready {
        diesel::update(target)
            .set((common, knowledge_bases::last_indexed_at.eq(now)))
            .execute(conn)
            .await?;
    } else {
        diesel::update(target).set(common).execute(conn).await?;
    }
    Ok(())
}

/// After an index pass: `ready`, unless background jobs still wait for the
/// knowledge base (then `indexing`). Returns the status set.
pub async fn mark_indexed(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<KbIndexingStatus> {
    let waiting: i64 = kb_index_jobs::table
        .filter(kb_index_jobs::knowledge_base_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    let status = if waiting > 0 {
        KbIndexingStatus::Indexing
    } else {
        KbIndexingStatus::Ready
    };
    set_status(conn, id, status, None).await?;
    Ok(status)
}

/// Knowledge bases left `indexing` by a run that died (a re-index whose
/// process went away: its status is refreshed every page) with no queued
/// document: back to `ready`. Returns how many.
pub async fn heal_stale_indexing(
    conn: &mut AsyncPgConnection,
    stale_after_secs: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE knowledge_bases k SET indexing_status = 'ready', updated_at = now() \
         WHERE k.indexing_status = 'indexing' \
           AND k.updated_at < now() - make_interval(secs => $1) \
           AND NOT EXISTS (SELECT 1 FROM kb_index_jobs j WHERE j.knowledge_base_id = k.id)",
    )
    .bind::<BigInt, _>(stale_after_secs)
    .execute(conn)
    .await
}

/// Removes a deleted knowledge base from the project's agents.
pub async fn detach_from_agents(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE agents SET knowledge_base_ids = array_remove(knowledge_base_ids, $2), updated_at = now() \
         WHERE project_id = $1 AND $2 = ANY (knowledge_base_ids)",
    )
    .bind::<BigInt, _>(project_id)
    .bind::<BigInt, _>(id)
    .execute(conn)
    .await
}
