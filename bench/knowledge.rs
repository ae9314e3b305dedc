//! Knowledge-base benchmarks (not tests): `bench/knowledge.sh` runs them.
//!
//! (a) Ingest: a multi-megabyte document uploaded through the API and indexed
//!     in the background (parse, chunk, embed, insert into the HNSW-indexed
//!     table), in chunks/s, next to the bare model embedding the same chunks.
//! (b) Search at 100,000 chunks (synthetic embeddings around real sentence
//!     embeddings, loaded straight into the table, HNSW built afterwards):
//!     p50/p99 latency through the API including the query embedding, for
//!     hybrid and vector modes, and recall@5 of vector mode against exact search.
//!
//! Runs only under `cargo bench` (as a test target it exits at once).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use voxplane::config::Settings;
use voxplane::db::kb_chunks::{self, NewChunk};
use voxplane::db::sql_types::Embedding;
use voxplane::embedded::postgres::{EmbeddedPostgres, PgOptions};
use voxplane::limits::plans::Plan;
use voxplane::rag::chunking::ChunkParams;
use voxplane::rag::documents::{Kind, chunk_document};
use voxplane::rag::embedder::EmbedderConfig;
use voxplane::state::AppState;

const WORDS: &[&str] = &[
    "customer",
    "invoice",
    "support",
    "call",
    "number",
    "team",
    "billing",
    "plan",
    "agent",
    "queue",
    "voicemail",
    "recording",
    "transfer",
    "routing",
    "office",
    "device",
    "network",
    "latency",
    "account",
    "password",
    "report",
    "minutes",
    "international",
    "policy",
    "refund",
    "contract",
    "integration",
    "dashboard",
    "message",
    "schedule",
    "holiday",
    "weekend",
    "manager",
    "security",
    "storage",
    "backup",
];

fn sentence(rng: &mut impl Rng) -> String {
    let n = rng.random_range(8..20);
    let mut s: Vec<&str> = (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    s.insert(
        1,
        ["is", "has", "needs", "keeps", "sends"][rng.random_range(0..5)],
    );
    let mut text = s.join(" ");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text + "."
}

fn document(bytes: usize) -> String {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut out = String::new();
    while out.len() < bytes {
        for _ in 0..rng.random_range(3..7) {
            out.push_str(&sentence(&mut rng));
            out.push(' ');
        }
        out.push_str("\n\n");
    }
    out
}

#[path = "common.rs"]
mod common;
use common::pct;

struct Server {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Server {
    async fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn start_server(settings: Settings) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let pool = voxplane::db::app_pool(settings.database_url.as_deref().unwrap(), &settings);
            let state = AppState::new(settings, pool);
            let _indexer = voxplane::rag::indexer::spawn(state.clone());
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = voxplane::http_server(state, listener).unwrap();
            tx.send(addr).unwrap();
            let _ = server.await;
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    voxplane::install_crypto_provider();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc_mb: usize = std::env::var("KB_BENCH_DOC_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let n_chunks: usize = std::env::var("KB_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let pg = EmbeddedPostgres::start(PgOptions {
        install_dir: root.join(".local/pg"),
        data_dir: root.join(format!(".local/bench-kb/run-{}", std::process::id())),
        port: 0,
        ephemeral: true,
        // What `voxplane dev` runs with.
        settings: voxplane::embedded::postgres::memory_settings(),
    })
    .expect("embedded Postgres (run `make setup`)");
    pg.ensure_database("kbbench").await.unwrap();
    let url = pg.url("kbbench");
    voxplane::db::run_migrations(&url).await.unwrap();
    let created = voxplane::admin::create_project(&url, "bench", Plan::Enterprise)
        .await
        .unwrap();
    voxplane::admin::set_rate_limit(&url, created.project_id, Some(2_000_000_000))
        .await
        .unwrap();
    let settings = Settings {
        port: 0,
        workers: 1,
        database_url: Some(url.clone()),
        log_level: "warn".into(),
        data_dir: root.join(".local"),
        embedding_workers: env_or("KB_BENCH_WORKERS", Settings::default().embedding_workers),
        embedding_threads: env_or("KB_BENCH_THREADS", Settings::default().embedding_threads),
        embedding_batch_size: env_or("KB_BENCH_BATCH", Settings::default().embedding_batch_size),
        embedding_query_threads: env_or(
            "KB_BENCH_QUERY_THREADS",
            Settings::default().embedding_query_threads,
        ),
        kb_hnsw_ef_search: env_or(
            "KB_BENCH_EF_SEARCH",
            Settings::default().kb_hnsw_ef_search as usize,
        ) as i64,
        ..Settings::default()
    }
    .validated()
    .unwrap();
    let cfg = EmbedderConfig::from(&settings);
    let ef_search = settings.kb_hnsw_ef_search;
    let srv = Server {
        base: start_server(settings),
        key: created.api_key,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    println!(
        "== machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_default()
    );

    if doc_mb > 0 {
        // (a) Ingest through the API vs the bare model on the same chunks.
        let doc = document(doc_mb * 1024 * 1024);
        let kb = srv
            .post("/api/v1/knowledge-bases", &json!({"name": "ingest"}))
            .await["knowledge_base"]["id"]
            .as_i64()
            .unwrap();
        let texts = chunk_document(
            Kind::Txt,
            &doc,
            ChunkParams {
                size: 500,
                overlap: 50,
            },
        )
        .unwrap()
        .into_iter()
        .map(|p| p.content)
        .collect::<Vec<_>>();
        // The bare model: the same inference threads (the server's embedder:
        // embedding_workers × embedding_threads, batches of
        // embedding_batch_size), no parsing, chunking or Postgres — all of
        // the machine for the model. Timed before and after the pipeline, so
        // that a host that speeds up or slows down during the run moves both
        // sides of the ratio.
        let pool = voxplane::rag::embedder::Embedder::shared(&cfg).unwrap();
        let t = Instant::now();
        pool.embed(&texts).await.unwrap();
        let bare_before = t.elapsed().as_secs_f64();
        let boundary = "benchBoundary42";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n").into_bytes();
        body.extend_from_slice(doc.as_bytes());
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let t = Instant::now();
        let r = srv
            .client
            .post(format!(
                "{}/api/v1/knowledge-bases/{kb}/documents",
                srv.base
            ))
            .header("X-API-Key", &srv.key)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
        let chunks = loop {
            let d = srv.get(&format!("/api/v1/knowledge-bases/{kb}")).await;
            if d["knowledge_base"]["indexing_status"] == "ready" {
                break d["knowledge_base"]["chunk_count"].as_i64().unwrap() as usize;
            }
            assert_ne!(d["knowledge_base"]["indexing_status"], "error", "{d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let pipeline = t.elapsed().as_secs_f64();
        assert_eq!(texts.len(), chunks);
        // Searchable from `ready`; then the worker moves the chunks into the
        // HNSW graph (nothing else runs meanwhile, so the bare model's
        // second timing has the machine to itself again).
        // Searches meanwhile scan the waiting chunks exactly (the indexer
        // is merging them at the same time).
        let mut waiting_ms = Vec::new();
        for q in texts.iter().step_by(texts.len() / 20).take(20) {
            let t = Instant::now();
            srv.post(
                "/api/v1/knowledge/search",
                &json!({"knowledge_base_id": kb, "query": q, "top_k": 5, "mode": "vector"}),
            )
            .await;
            waiting_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        waiting_ms.sort_by(f64::total_cmp);
        let mut db = AsyncPgConnection::establish(&url).await.unwrap();
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        loop {
            let waiting =
                diesel::sql_query("SELECT count(*) AS n FROM kb_chunks WHERE hnsw_pending")
                    .get_result::<Count>(&mut db)
                    .await
                    .unwrap()
                    .n;
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let merged = t.elapsed().as_secs_f64();
        let t = Instant::now();
        pool.embed(&texts).await.unwrap();
        let bare_after = t.elapsed().as_secs_f64();
        let bare = (bare_before + bare_after) / 2.0;
        println!(
            "-- (a) ingest: {:.1} MB document, {chunks} chunks of ≤500 chars (overlap 50)",
            doc.len() as f64 / 1e6
        );
        println!(
            "   pipeline (upload → ready): {pipeline:.1} s = {:.1} chunks/s",
            chunks as f64 / pipeline
        );
        println!(
            "   bare model, same chunks:   {bare:.1} s = {:.1} chunks/s (mean of {bare_before:.1} s before and {bare_after:.1} s after; {} workers x {} threads, batch {})",
            chunks as f64 / bare,
            cfg.workers,
            cfg.threads,
            cfg.batch_size
        );
        println!("   ratio pipeline / bare: {:.2}", bare / pipeline);
        println!(
            "   upload → every chunk in the HNSW graph: {merged:.1} s ({:.1} s after ready)",
            merged - pipeline
        );
        println!(
            "   20 vector searches of it right after ready (chunks waiting, merge running): p50 {:.1} ms, max {:.1} ms",
            pct(&waiting_ms, 0.5),
            waiting_ms[waiting_ms.len() - 1]
        );
    }
    // (b) Search at n_chunks, on two corpora: "natural" text (content words
    // drawn from a Zipf–Mandelbrot law over 30,000 words, as in prose once the
    // stop words are gone) and "narrow" text (36 words in all, so every
    // query term is in a third of the chunks: the full-text worst case).
    let emb = voxplane::rag::embedder::Embedder::shared(&cfg).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let bases: Vec<String> = (0..1000).map(|_| sentence(&mut rng)).collect();
    let base_vecs = emb.embed(&bases).await.unwrap();
    let lexicon = Lexicon::new(30_000, &mut rng);
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let mut hnsw_def_kept = String::new();
    let corpora = std::env::var("KB_BENCH_CORPORA").unwrap_or_else(|_| "natural narrow".into());
    for corpus in corpora.split_whitespace() {
        let kb = srv
            .post(
                "/api/v1/knowledge-bases",
                &json!({"name": format!("search-{corpus}")}),
            )
            .await["knowledge_base"]["id"]
            .as_i64()
            .unwrap();
        // The index as the migrations define it, to build again after loading.
        #[derive(diesel::QueryableByName)]
        struct Def {
            #[diesel(sql_type = diesel::sql_types::Text)]
            def: String,
        }
        let hnsw_def = diesel::sql_query(
            "SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'kb_chunks_embedding_idx'",
        )
        .get_result::<Def>(&mut conn)
        .await
        .map(|d| d.def);
        let hnsw_def = hnsw_def.unwrap_or_else(|_| hnsw_def_kept.clone());
        hnsw_def_kept = hnsw_def.clone();
        conn.batch_execute("DROP INDEX IF EXISTS kb_chunks_embedding_idx; TRUNCATE kb_chunks")
            .await
            .unwrap();
        let t = Instant::now();
        let normal = rand_distr_normal();
        let mut texts: Vec<String> = Vec::new();
        for start in (0..n_chunks).step_by(1000) {
            let rows: Vec<NewChunk> = (start..(start + 1000).min(n_chunks))
                .map(|i| {
                    let b = i % bases.len();
                    let mut v: Vec<f32> = base_vecs[b]
                        .iter()
                        .map(|x| x + 0.03 * normal(&mut rng))
                        .collect();
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    v.iter_mut().for_each(|x| *x /= norm);
                    let content = match corpus {
                        "natural" => lexicon.passage(&mut rng, 70),
                        _ => format!("{} (variant {i})", bases[b]),
                    };
                    if i % 500 == 0 {
                        texts.push(content.clone());
                    }
                    NewChunk {
                        project_id: created.project_id,
                        knowledge_base_id: kb,
                        source: format!("synthetic-{}", i / 1000),
                        chunk_index: (i % 1000) as i32,
                        content,
                        embedding: Embedding(v),
                        hnsw_pending: false,
                        page: None,
                        heading_path: Vec::new(),
                        url: None,
                    }
                })
                .collect();
            kb_chunks::insert_many(&mut conn, &rows).await.unwrap();
        }
        let load = t.elapsed().as_secs_f64();
        let t = Instant::now();
        // One statement each: VACUUM cannot run inside the implicit
        // transaction of a multi-statement batch.
        for sql in [
            "SET maintenance_work_mem = '1GB'",
            hnsw_def.as_str(),
            "VACUUM ANALYZE kb_chunks",
        ] {
            conn.batch_execute(sql).await.unwrap();
        }
        let build = t.elapsed().as_secs_f64();
        println!(
            "-- (b) search at {n_chunks} chunks, {corpus} text: load {load:.1} s, HNSW build {build:.1} s"
        );
        // Queries: for natural text, a few words of some chunk plus a few
        // common ones (what people ask shares some terms with the answer).
        let queries: Vec<String> = (0..220)
            .map(|i| match corpus {
                "natural" => lexicon.query(&mut rng, &texts[i % texts.len()]),
                _ => sentence(&mut rng),
            })
            .collect();
        if std::env::var("KB_BENCH_EXPLAIN").is_ok_and(|v| v == "1") {
            #[derive(diesel::QueryableByName)]
            struct Plan {
                #[diesel(sql_type = diesel::sql_types::Text)]
                #[diesel(column_name = "QUERY PLAN")]
                line: String,
            }
            let qv = Embedding(emb.embed_one(&queries[0]).await.unwrap());
            // The server's session settings, on this connection too.
            conn.batch_execute(&kb_chunks::session_setup(ef_search))
                .await
                .unwrap();
            let plan: Vec<Plan> = diesel::sql_query(format!(
                "EXPLAIN (ANALYZE, BUFFERS) {}",
                *kb_chunks::SEARCH_VECTOR
            ))
            .bind::<diesel::sql_types::BigInt, _>(kb)
            .bind::<voxplane::db::sql_types::Vector, _>(&qv)
            .bind::<diesel::sql_types::BigInt, _>(5_i64)
            .load(&mut conn)
            .await
            .unwrap();
            println!("   plan of a vector search (top 5):");
            for p in plan {
                println!("     {}", elide_vectors(&p.line));
            }
        }
        let mut embed_ms = Vec::new();
        for q in &queries {
            let t = Instant::now();
            emb.embed_one(q).await.unwrap();
            embed_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        embed_ms.sort_by(f64::total_cmp);
        println!(
            "   query embedding alone: p50 {:.1} ms, p99 {:.1} ms",
            pct(&embed_ms, 0.5),
            pct(&embed_ms, 0.99)
        );
        for mode in ["vector", "hybrid", "keyword"] {
            let mut lat = Vec::new();
            let mut recall = 0.0;
            let mut partial = 0;
            let mut answers: Vec<(&String, Vec<i64>)> = Vec::new();
            for (i, q) in queries.iter().enumerate() {
                let t = Instant::now();
                let res = srv
                    .post(
                        "/api/v1/knowledge/search",
                        &json!({"knowledge_base_id": kb, "query": q, "top_k": 5, "mode": mode}),
                    )
                    .await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if i < 20 {
                    continue; // warm-up
                }
                lat.push(ms);
                if res["partial"] == true {
                    partial += 1;
                }
                if mode == "vector" {
                    let got: Vec<i64> = res["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["id"].as_i64().unwrap())
                        .collect();
                    answers.push((q, got));
                }
            }
            // Recall against exact search, once the timed queries are done:
            // a sequential scan of every chunk between two timed queries
            // leaves the next one to a cold CPU cache.
            for (q, got) in answers {
                let qv = Embedding(emb.embed_one(q).await.unwrap());
                #[derive(diesel::QueryableByName)]
                struct Id {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    id: i64,
                }
                let exact: Vec<Id> = conn.transaction::<_, diesel::result::Error, _>(async |c| {
                    c.batch_execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off").await?;
                    diesel::sql_query("SELECT id FROM kb_chunks WHERE knowledge_base_id = $1 AND is_active ORDER BY embedding <=> $2 LIMIT 5")
                        .bind::<diesel::sql_types::BigInt, _>(kb).bind::<voxplane::db::sql_types::Vector, _>(&qv).load(c).await
                }).await.unwrap();
                recall += exact.iter().filter(|e| got.contains(&e.id)).count() as f64 / 5.0;
            }
            lat.sort_by(f64::total_cmp);
            let n = lat.len();
            print!(
                "   {mode:<7}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {n} queries (one client, query embedding included)",
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                lat[n - 1]
            );
            if mode == "vector" {
                print!(", recall@5 vs exact {:.3}", recall / n as f64);
            }
            if mode == "hybrid" {
                print!(", full-text side over budget in {partial} of {n}");
            }
            println!();
        }
    }
}

/// A plan line with each vector literal's 384 numbers left out.
fn elide_vectors(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("'[") {
        let Some(len) = rest[start..].find("]'") else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str("'[…]'");
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Words for "natural" text: generated from syllables, used with Zipf–
/// Mandelbrot frequencies p(r) ∝ 1 / (r + 100) — the law of the words of
/// prose past its hundred commonest (mostly stop words, which full-text
/// search drops anyway).
struct Lexicon {
    words: Vec<String>,
    /// Cumulative weights, for sampling by rank.
    cumulative: Vec<f64>,
}

impl Lexicon {
    fn new(n: usize, rng: &mut impl Rng) -> Self {
        const SYL: &[&str] = &[
            "ba", "ko", "ri", "mel", "tan", "vo", "si", "dur", "pe", "lam", "gri", "nos", "fa",
            "ute", "ze", "hol", "ka", "min", "tro", "ve", "sul", "da", "pim", "or", "qua", "ne",
            "bri", "lo", "cas", "te", "mu", "zan", "fel", "ig", "ro", "wen",
        ];
        let mut seen = std::collections::HashSet::new();
        let mut words = Vec::with_capacity(n);
        while words.len() < n {
            let k = rng.random_range(2..5);
            let w: String = (0..k)
                .map(|_| SYL[rng.random_range(0..SYL.len())])
                .collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut acc = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                acc += 1.0 / (r as f64 + 100.0);
                acc
            })
            .collect();
        Self { words, cumulative }
    }

    fn word(&self, rng: &mut impl Rng) -> &str {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|c| *c < x);
        &self.words[i.min(self.words.len() - 1)]
    }

    /// About `n` words of prose: content words with stop words between them.
    fn passage(&self, rng: &mut impl Rng, n: usize) -> String {
        const STOP: &[&str] = &[
            "the", "of", "and", "to", "in", "is", "for", "with", "on", "that",
        ];
        let mut out = String::new();
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            if i % 2 == 1 {
                out.push_str(STOP[rng.random_range(0..STOP.len())]);
            } else {
                out.push_str(self.word(rng));
            }
        }
        out.push('.');
        out
    }

    /// A question: three words of `passage`, two common ones.
    fn query(&self, rng: &mut impl Rng, passage: &str) -> String {
        let own: Vec<&str> = passage
            .trim_end_matches('.')
            .split(' ')
            .step_by(2)
            .collect();
        let mut q = vec!["how".to_string(), "do".into(), "i".into()];
        for _ in 0..3 {
            q.push(own[rng.random_range(0..own.len())].to_owned());
        }
        for _ in 0..2 {
            q.push(self.word(rng).to_owned());
        }
        q.join(" ") + "?"
    }
}

/// A number from the environment, or the default.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A standard normal sampler (Box–Muller), to avoid another dependency.
fn rand_distr_normal() -> impl Fn(&mut rand::rngs::StdRng) -> f32 {
    |rng: &mut rand::rngs::StdRng| -> f32 {
        let u1: f32 = rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = rng.random::<f32>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}
