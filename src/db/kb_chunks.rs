//! The `kb_chunks` table: storage, paging, and the three search modes.

use super::schema::kb_chunks;
use super::sql_types::{Embedding, Vector};
use chrono::Utc;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// Values of a new chunk.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = kb_chunks)]
pub struct NewChunk {
    pub project_id: i64,
    pub knowledge_base_id: i64,
    pub source: String,
    pub chunk_index: i32,
    pub content: String,
    pub embedding: Embedding,
}

/// A chunk as listed (content cut to 200 characters by Postgres).
#[derive(Debug, Clone, Queryable)]
pub struct ChunkRow {
    pub id: i64,
    pub content: String,
    pub source: String,
    pub chunk_index: i32,
    pub is_active: bool,
}

/// A search hit.
#[derive(Debug, Clone, QueryableByName)]
pub struct Hit {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Integer)]
    pub chunk_index: i32,
    #[diesel(sql_type = Double)]
    pub score: f64,
}

/// Deletes the chunks of one source (a re-upload replaces them).
pub async fn delete_source(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    source: &str,
) -> QueryResult<usize> {
    diesel::delete(
        kb_chunks::table
            .filter(kb_chunks::knowledge_base_id.eq(kb_id))
            .filter(kb_chunks::source.eq(source)),
    )
    .execute(conn)
    .await
}

/// Inserts chunks in one statement.
pub async fn insert_many(conn: &mut AsyncPgConnection, chunks: &[NewChunk]) -> QueryResult<usize> {
    if chunks.is_empty() {
        return Ok(0);
    }
    diesel::insert_into(kb_chunks::table)
        .values(chunks)
        .execute(conn)
        .await
}

/// A page of a knowledge base's chunks (by source, then position) and the total.
pub async fn page(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    is_active: Option<bool>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<ChunkRow>, i64)> {
    let mut q = kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .into_boxed();
    let mut count = kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .into_boxed();
    if let Some(active) = is_active {
        q = q.filter(kb_chunks::is_active.eq(active));
        count = count.filter(kb_chunks::is_active.eq(active));
    }
    let total = count.count().get_result(conn).await?;
    let rows = q
        .order((
            kb_chunks::source.asc(),
            kb_chunks::chunk_index.asc(),
            kb_chunks::id.asc(),
        ))
        .offset(offset)
        .limit(limit)
        .select((
            kb_chunks::id,
            sql::<Text>("left(content, 200)"),
            kb_chunks::source,
            kb_chunks::chunk_index,
            kb_chunks::is_active,
        ))
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// The full row of one chunk of a knowledge base (`NotFound` otherwise).
pub async fn find(conn: &mut AsyncPgConnection, kb_id: i64, id: i64) -> QueryResult<ChunkRow> {
    kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .filter(kb_chunks::id.eq(id))
        .select((
            kb_chunks::id,
            kb_chunks::content,
            kb_chunks::source,
            kb_chunks::chunk_index,
            kb_chunks::is_active,
        ))
        .first(conn)
        .await
}

/// Updates a chunk's content (with its new embedding) and/or its active flag.
pub async fn update(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    id: i64,
    content: Option<(String, Embedding)>,
    is_active: Option<bool>,
) -> QueryResult<usize> {
    let target = kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .filter(kb_chunks::id.eq(id));
    let (content, embedding) = content.unzip();
    diesel::update(target)
        .set((
            content.map(|c| kb_chunks::content.eq(c)),
            embedding.map(|e| kb_chunks::embedding.eq(e)),
            is_active.map(|a| kb_chunks::is_active.eq(a)),
            kb_chunks::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
}

/// Deletes one chunk; false when absent.
pub async fn delete(conn: &mut AsyncPgConnection, kb_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(
        kb_chunks::table
            .filter(kb_chunks::knowledge_base_id.eq(kb_id))
            .filter(kb_chunks::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Ids and contents of every chunk of a knowledge base after `after_id`, by id.
pub async fn contents_after(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, String)>> {
    kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .filter(kb_chunks::id.gt(after_id))
        .order(kb_chunks::id.asc())
        .limit(limit)
        .select((kb_chunks::id, kb_chunks::content))
        .load(conn)
        .await
}

/// Replaces the embedding of one chunk.
pub async fn set_embedding(
    conn: &mut AsyncPgConnection,
    id: i64,
    e: &Embedding,
) -> QueryResult<()> {
    diesel::update(kb_chunks::table.filter(kb_chunks::id.eq(id)))
        .set(kb_chunks::embedding.eq(e))
        .execute(conn)
        .await?;
    Ok(())
}

/// The full-text query of a search: the question's terms OR-ed (a paraphrase
/// rarely repeats every word of its answer).
const TSQUERY: &str =
    "to_tsquery('english', replace(plainto_tsquery('english', $2)::text, ' & ', ' | '))";

/// Cosine search: score = cosine similarity (1 − cosine distance).
pub async fn search_vector(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    query: &Embedding,
    limit: i64,
) -> QueryResult<Vec<Hit>> {
    conn.transaction(async |conn| {
        hnsw_scan(conn, limit).await?;
        diesel::sql_query(
            "SELECT id, content, source, chunk_index, (1 - (embedding <=> $2))::float8 AS score \
             FROM kb_chunks WHERE knowledge_base_id = $1 AND is_active \
             ORDER BY embedding <=> $2 LIMIT $3",
        )
        .bind::<BigInt, _>(kb_id)
        .bind::<Vector, _>(query)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
    })
    .await
}

/// Full-text matches ranked per query, at most: ranking is the costly part,
/// and a term shared by more chunks than this ranks them all about the same.
pub const KEYWORD_RANKED_MAX: i64 = 1000;
/// The same bound inside hybrid search, whose latency budget is tighter.
pub const HYBRID_RANKED_MAX: i64 = 300;

/// Full-text search: score = ts_rank_cd normalised to rank / (rank + 1),
/// over at most [`KEYWORD_RANKED_MAX`] matching chunks.
pub async fn search_keyword(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    text: &str,
    limit: i64,
) -> QueryResult<Vec<Hit>> {
    diesel::sql_query(format!(
        "SELECT c.id, c.content, c.source, c.chunk_index, ts_rank_cd(c.tsv, q.q, 32)::float8 AS score \
         FROM (SELECT {TSQUERY} AS q) q, LATERAL ( \
           SELECT id, content, source, chunk_index, tsv FROM kb_chunks \
           WHERE knowledge_base_id = $1 AND is_active AND tsv @@ q.q LIMIT {KEYWORD_RANKED_MAX}) c \
         ORDER BY score DESC, c.id LIMIT $3"
    ))
    .bind::<BigInt, _>(kb_id)
    .bind::<Text, _>(text)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// The stemmed terms of a query (English configuration, stop words dropped),
/// in query order, at most `max`.
pub async fn query_terms(
    conn: &mut AsyncPgConnection,
    text: &str,
    max: i64,
) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Term {
        #[diesel(sql_type = Text)]
        lexeme: String,
    }
    let terms: Vec<Term> = diesel::sql_query(
        "SELECT lexeme FROM unnest(to_tsvector('english', $1)) ORDER BY positions[1] LIMIT $2",
    )
    .bind::<Text, _>(text)
    .bind::<BigInt, _>(max)
    .load(conn)
    .await?;
    Ok(terms.into_iter().map(|t| t.lexeme).collect())
}

/// The full-text side of hybrid search: chunks sharing at least two of the
/// query's terms (one for a one-term query). Without IDF, a single shared
/// common word says little, and would only add noise to the fusion.
pub fn pair_query(terms: &[String]) -> String {
    let quote = |t: &String| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''"));
    match terms {
        [] => String::new(),
        [one] => quote(one),
        _ => {
            let mut pairs = Vec::new();
            for (i, a) in terms.iter().enumerate() {
                for b in &terms[i + 1..] {
                    pairs.push(format!("({} & {})", quote(a), quote(b)));
                }
            }
            pairs.join(" | ")
        }
    }
}

/// The RRF constant k (Cormack et al.).
pub const RRF_K: f64 = 60.0;

/// Hybrid search: reciprocal rank fusion of the vector ranking and the
/// full-text ranking of `tsquery` (see [`pair_query`]) over `candidates` of
/// each; score = Σ 1/(k + rank) scaled so that 1.0 means first in both.
pub async fn search_hybrid(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    query: &Embedding,
    tsquery: &str,
    limit: i64,
    candidates: i64,
) -> QueryResult<Vec<Hit>> {
    let scale = (RRF_K + 1.0) / 2.0;
    let sql = format!(
        "WITH v AS ( \
           SELECT id, row_number() OVER (ORDER BY d, id) AS r FROM ( \
             SELECT id, embedding <=> $3 AS d FROM kb_chunks \
             WHERE knowledge_base_id = $1 AND is_active ORDER BY embedding <=> $3 LIMIT $5) s), \
         k AS ( \
           SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r FROM ( \
             SELECT c.id, ts_rank_cd(c.tsv, q.q) AS rank FROM (SELECT $2::tsquery AS q) q, LATERAL ( \
               SELECT id, tsv FROM kb_chunks WHERE knowledge_base_id = $1 AND is_active AND tsv @@ q.q \
               LIMIT {HYBRID_RANKED_MAX}) c \
             ORDER BY rank DESC, c.id LIMIT $5) s), \
         f AS ( \
           SELECT coalesce(v.id, k.id) AS id, \
                  coalesce(1.0 / ({RRF_K} + v.r), 0) + coalesce(1.0 / ({RRF_K} + k.r), 0) AS rrf \
           FROM v FULL JOIN k ON v.id = k.id) \
         SELECT c.id, c.content, c.source, c.chunk_index, (f.rrf * {scale})::float8 AS score \
         FROM f JOIN kb_chunks c ON c.id = f.id ORDER BY f.rrf DESC, c.id LIMIT $4"
    );
    conn.transaction(async |conn| {
        hnsw_scan(conn, candidates).await?;
        diesel::sql_query(sql)
            .bind::<BigInt, _>(kb_id)
            .bind::<Text, _>(tsquery)
            .bind::<Vector, _>(query)
            .bind::<BigInt, _>(limit)
            .bind::<BigInt, _>(candidates)
            .load(conn)
            .await
    })
    .await
}

/// Inside a transaction: HNSW scans look at enough candidates and keep
/// scanning past rows the knowledge-base filter drops.
async fn hnsw_scan(conn: &mut AsyncPgConnection, wanted: i64) -> QueryResult<()> {
    // Candidates looked at: 4× the rows wanted, at least 200 (see docs/PERFORMANCE.md).
    let ef = (wanted * 4).clamp(200, 1000);
    conn.batch_execute(&format!(
        "SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order"
    ))
    .await
}
