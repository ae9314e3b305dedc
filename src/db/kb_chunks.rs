//! The `kb_chunks` table: storage, paging, and the three search modes.

use super::schema::kb_chunks;
use super::sql_types::{Embedding, Vector};
use chrono::Utc;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};
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
    /// Stored outside the HNSW graph until [`merge_pending`] moves it in
    /// (see the `kb_hnsw_tail` migration).
    pub hnsw_pending: bool,
    /// The page of a PDF the chunk is on.
    pub page: Option<i32>,
    /// The headings the chunk sits under, outermost first.
    pub heading_path: Vec<String>,
    /// The URL of a crawled page.
    pub url: Option<String>,
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
    #[diesel(sql_type = Nullable<Integer>)]
    pub page: Option<i32>,
    #[diesel(sql_type = Array<Text>)]
    pub heading_path: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub url: Option<String>,
}

/// The columns of a [`Hit`] besides its score.
const HIT_COLUMNS: &str = "id, content, source, chunk_index, page, heading_path, url";
/// [`HIT_COLUMNS`] of the row alias `c`.
const HIT_COLUMNS_C: &str =
    "c.id, c.content, c.source, c.chunk_index, c.page, c.heading_path, c.url";
/// What full-text search matches: a chunk's headings, then its content
/// (the expression of the GIN index `kb_chunks_text_idx`).
const TEXT: &str = "(heading_tsv || tsv)";

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

/// Ids, contents and heading paths of every chunk of a knowledge base
/// after `after_id`, by id.
pub async fn contents_after(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, String, Vec<String>)>> {
    kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .filter(kb_chunks::id.gt(after_id))
        .order(kb_chunks::id.asc())
        .limit(limit)
        .select((kb_chunks::id, kb_chunks::content, kb_chunks::heading_path))
        .load(conn)
        .await
}

/// The heading path of one chunk of a knowledge base.
pub async fn heading_path(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    id: i64,
) -> QueryResult<Vec<String>> {
    kb_chunks::table
        .filter(kb_chunks::knowledge_base_id.eq(kb_id))
        .filter(kb_chunks::id.eq(id))
        .select(kb_chunks::heading_path)
        .first(conn)
        .await
}

/// Replaces the embedding of one chunk, outside the HNSW graph until
/// [`merge_pending`] moves it back in (a re-index rewrites every row).
pub async fn set_embedding(
    conn: &mut AsyncPgConnection,
    id: i64,
    e: &Embedding,
) -> QueryResult<()> {
    diesel::update(kb_chunks::table.filter(kb_chunks::id.eq(id)))
        .set((kb_chunks::embedding.eq(e), kb_chunks::hnsw_pending.eq(true)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves up to `limit` chunks waiting outside the HNSW graph into it, oldest
/// knowledge base first (rows another node is moving are skipped); how many.
pub async fn merge_pending(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE kb_chunks SET hnsw_pending = false WHERE id IN ( \
           SELECT id FROM kb_chunks WHERE hnsw_pending \
           ORDER BY knowledge_base_id, id LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await
}

/// The nearest active chunks of a knowledge base, as `(…, d)` rows of
/// `columns` and the cosine distance `d`, nearest first, at most `$3`: the
/// HNSW graph's best next to an exact scan of the rows still waiting
/// outside it (none, usually: then an empty index scan).
fn nearest(columns: &str) -> String {
    let side = |graph: &str| {
        format!(
            "(SELECT {columns}, embedding <=> $2 AS d FROM kb_chunks \
             WHERE knowledge_base_id = $1 AND is_active AND {graph} \
             ORDER BY embedding <=> $2 LIMIT $3)"
        )
    };
    format!(
        "SELECT * FROM ({} UNION ALL {}) n ORDER BY d, id LIMIT $3",
        side("NOT hnsw_pending"),
        side("hnsw_pending")
    )
}

/// The full-text query of a search: the question's terms OR-ed (a paraphrase
/// rarely repeats every word of its answer).
const TSQUERY: &str =
    "to_tsquery('english', replace(plainto_tsquery('english', $2)::text, ' & ', ' | '))";

/// The statement of [`search_vector`] ($1 knowledge base, $2 query vector,
/// $3 limit), built once.
pub static SEARCH_VECTOR: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {HIT_COLUMNS}, (1 - d)::float8 AS score FROM ({}) n ORDER BY d, id",
        nearest(HIT_COLUMNS)
    )
});

/// Cosine search: score = cosine similarity (1 − cosine distance); the
/// `limit` nearest active chunks, nearest first (also the vector side of
/// hybrid search).
pub async fn search_vector(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    query: &Embedding,
    limit: i64,
    ef_search: i64,
) -> QueryResult<Vec<Hit>> {
    let search = || {
        diesel::sql_query(SEARCH_VECTOR.as_str())
            .bind::<BigInt, _>(kb_id)
            .bind::<Vector, _>(query)
            .bind::<BigInt, _>(limit)
    };
    match scan_ef(limit, ef_search) {
        // The session's own (see `session_setup`): one round trip.
        None => search().load(conn).await,
        Some(ef) => {
            conn.transaction(async |conn| {
                conn.batch_execute(&format!("SET LOCAL hnsw.ef_search = {ef}"))
                    .await?;
                search().load(conn).await
            })
            .await
        }
    }
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
        "SELECT {HIT_COLUMNS_C}, ts_rank_cd(c.text, q.q, 32)::float8 AS score \
         FROM (SELECT {TSQUERY} AS q) q, LATERAL ( \
           SELECT {HIT_COLUMNS}, {TEXT} AS text FROM kb_chunks \
           WHERE knowledge_base_id = $1 AND is_active AND {TEXT} @@ q.q \
           LIMIT {KEYWORD_RANKED_MAX}) c \
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

/// The full-text side of hybrid search, as two `tsquery` texts: which chunks
/// (`filter`: sharing at least two of the query's terms, or the one term of
/// a one-term query — without IDF, a single shared common word says little,
/// and would only add noise to the fusion) and how they rank (`rank`: any of
/// the terms, as in keyword mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermQuery {
    pub filter: String,
    pub rank: String,
}

/// The [`TermQuery`] of a query's terms; empty texts for no terms.
pub fn term_query(terms: &[String]) -> TermQuery {
    let quote = |t: &String| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''"));
    let rank = terms.iter().map(quote).collect::<Vec<_>>().join(" | ");
    let filter = match terms {
        [] | [_] => rank.clone(),
        _ => {
            let mut pairs = Vec::new();
            for (i, a) in terms.iter().enumerate() {
                for b in &terms[i + 1..] {
                    pairs.push(format!("({} & {})", quote(a), quote(b)));
                }
            }
            pairs.join(" | ")
        }
    };
    TermQuery { filter, rank }
}

/// The full-text side of hybrid search: the best `candidates` of at most
/// [`HYBRID_RANKED_MAX`] active chunks matching `q.filter`, best first,
/// ranked by `ts_rank_cd` over `q.rank` (see [`term_query`]; cover density
/// over the term pairs of the filter costs about five times as much, for a
/// ranking that only feeds the fusion). At most `budget_ms`
/// of database time: past it the side is given up (`None`).
pub async fn keyword_ranking(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    q: &TermQuery,
    candidates: i64,
    budget_ms: u64,
) -> QueryResult<Option<Vec<Hit>>> {
    if q.filter.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let sql = format!(
        "SELECT {HIT_COLUMNS_C}, ts_rank_cd(c.text, q.r)::float8 AS score \
         FROM (SELECT $2::tsquery AS f, $4::tsquery AS r) q, LATERAL ( \
           SELECT {HIT_COLUMNS}, {TEXT} AS text FROM kb_chunks \
           WHERE knowledge_base_id = $1 AND is_active AND {TEXT} @@ q.f \
           LIMIT {HYBRID_RANKED_MAX}) c \
         ORDER BY score DESC, c.id LIMIT $3"
    );
    let ranked = conn
        .transaction(async |conn| {
            conn.batch_execute(&format!(
                "SET LOCAL statement_timeout = {}",
                budget_ms.max(1)
            ))
            .await?;
            diesel::sql_query(sql)
                .bind::<BigInt, _>(kb_id)
                .bind::<Text, _>(&q.filter)
                .bind::<BigInt, _>(candidates)
                .bind::<Text, _>(&q.rank)
                .load::<Hit>(conn)
                .await
        })
        .await;
    match ranked {
        Ok(rows) => Ok(Some(rows)),
        // 57014 query_canceled: the budget ran out.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("statement timeout") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The SQL that sets a connection's session up for vector search (run once
/// per connection by [`crate::db::app_pool`]): HNSW scans look at
/// `ef_search` candidates and keep scanning past rows the knowledge-base
/// filter drops, so that a search is one statement, with no transaction.
pub fn session_setup(ef_search: i64) -> String {
    format!("SET hnsw.ef_search = {ef_search}; SET hnsw.iterative_scan = relaxed_order")
}

/// The `hnsw.ef_search` a scan for `wanted` rows needs when it is not the
/// session's `ef_search`: 4× the rows wanted, at least `ef_search`.
fn scan_ef(wanted: i64, ef_search: i64) -> Option<i64> {
    let ef = (wanted * 4).max(ef_search).clamp(10, 1000);
    (ef != ef_search).then_some(ef)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_queries_filter_on_pairs_and_rank_on_any_term() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            term_query(&t(&["a", "b", "c"])),
            TermQuery {
                filter: "('a' & 'b') | ('a' & 'c') | ('b' & 'c')".into(),
                rank: "'a' | 'b' | 'c'".into(),
            }
        );
        let one = term_query(&t(&["o'k"]));
        assert_eq!(
            (one.filter.as_str(), one.rank.as_str()),
            ("'o''k'", "'o''k'")
        );
        assert!(term_query(&[]).filter.is_empty());
    }
}
