//! Transcript search benchmark (not a test): `bench/transcripts.sh` runs it.
//!
//! Loads `TX_BENCH_LINES` (default 10,000,000) transcript lines with SQL
//! (`generate_series`, words drawn from a 5,000-word vocabulary with a
//! skewed distribution: a few words are in a large share of the lines, most
//! are rare), 80 % in the measured project and 20 % in another one, over
//! 160-line sessions with tags, dispositions and start times spread over
//! 90 days (in the order of their lines, as calls are: the newest lines are
//! the newest sessions'); builds the search index afterwards, as the migration defines
//! it; then times `GET /api/v1/transcripts/search` through the API:
//! sequential requests per query class, and 4 concurrent clients on the mix.
//!
//! Runs only under `cargo bench` (as a test target it exits at once).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;
use voxplane::config::Settings;
use voxplane::embedded::postgres::{EmbeddedPostgres, PgOptions};
use voxplane::limits::plans::Plan;
use voxplane::state::AppState;

/// Words of a support call, first in the vocabulary (the most frequent).
const REAL: &[&str] = &[
    "account",
    "payment",
    "refund",
    "cancel",
    "order",
    "delivery",
    "invoice",
    "password",
    "subscription",
    "upgrade",
    "billing",
    "charge",
    "card",
    "address",
    "shipping",
    "return",
    "warranty",
    "manager",
    "complaint",
    "discount",
    "credit",
    "balance",
    "transfer",
    "login",
    "email",
    "phone",
    "number",
    "problem",
    "issue",
    "help",
    "policy",
    "contract",
    "plan",
    "premium",
    "technician",
    "appointment",
    "schedule",
    "reschedule",
    "outage",
    "internet",
    "router",
    "signal",
    "package",
    "tracking",
    "damaged",
    "replacement",
    "receipt",
    "statement",
    "overdraft",
    "fraud",
];

fn vocabulary(n: usize) -> Vec<String> {
    const C: &[u8] = b"bdfgklmnprstvz";
    const V: &[u8] = b"aeiou";
    let mut out: Vec<String> = REAL.iter().map(|s| (*s).to_owned()).collect();
    let mut i: usize = 0;
    while out.len() < n {
        let mut w = String::new();
        let mut x = i + 7919;
        for _ in 0..3 {
            w.push(C[x % C.len()] as char);
            x /= C.len();
            w.push(V[x % V.len()] as char);
            x /= V.len();
        }
        w.push(C[(i / 3) % C.len()] as char);
        if !out.contains(&w) {
            out.push(w);
        }
        i += 1;
    }
    out
}

fn start_server(settings: Settings) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let pool = voxplane::db::app_pool(settings.database_url.as_deref().unwrap(), &settings);
            let state = AppState::new(settings, pool);
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = voxplane::http_server(state, listener).unwrap();
            tx.send(addr).unwrap();
            let _ = server.await;
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

/// The measured project of a database loaded by an earlier run, if any.
async fn kept_project(conn: &mut AsyncPgConnection) -> Option<i64> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    diesel::sql_query(
        "SELECT p.id FROM projects p WHERE p.name = 'bench'
           AND EXISTS (SELECT 1 FROM transcripts t WHERE t.project_id = p.id)",
    )
    .get_result::<Id>(conn)
    .await
    .ok()
    .map(|r| r.id)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Loads `lines` lines for `project` in sessions of 160 lines, in statements
/// of at most 1,000,000 lines.
async fn load(conn: &mut AsyncPgConnection, project: i64, lines: usize, vocab: &[String]) {
    let per_session = 160;
    let sessions = lines.div_ceil(per_session);
    diesel::sql_query(format!(
        "INSERT INTO sessions (project_id, room_name, session_type, status, metadata, started_at,
                               ended_at, duration_seconds, disposition, tags)
         SELECT {project}, 'bench-' || g, 'voice',
                CASE WHEN g % 50 = 0 THEN 'active' ELSE 'completed' END, '{{}}',
                now() - ({sessions} - g) * interval '90 days' / {sessions},
                CASE WHEN g % 50 = 0 THEN NULL
                     ELSE now() - ({sessions} - g) * interval '90 days' / {sessions} + interval '5 minutes' END,
                300,
                (ARRAY['resolved','escalated','callback_requested','voicemail','no_answer','spam'])[1 + g % 6],
                CASE WHEN g % 10 = 0 THEN ARRAY['vip'] WHEN g % 7 = 0 THEN ARRAY['billing','churn']
                     ELSE '{{}}'::text[] END
         FROM generate_series(1, {sessions}) g"
    ))
    .execute(conn)
    .await
    .unwrap();
    let words = format!(
        "ARRAY[{}]",
        vocab
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let n = vocab.len();
    let mut done = 0;
    while done < lines {
        let chunk = (lines - done).min(1_000_000);
        let t = Instant::now();
        // Word i is drawn with probability ~ the slope of x^2.5 at i/n: the
        // first words are in a large share of the lines, most are rare.
        diesel::sql_query(format!(
            "WITH s AS (SELECT array_agg(id ORDER BY id) AS ids FROM sessions WHERE project_id = {project})
             INSERT INTO transcripts (project_id, session_id, speaker, content, timestamp_ms, is_final)
             SELECT {project}, s.ids[1 + (g / {per_session}) % array_length(s.ids, 1)],
                    CASE WHEN g % 2 = 0 THEN 'user' ELSE 'agent' END,
                    (SELECT string_agg(({words}::text[])[1 + floor(power(random(), 2.5) * {n})::int], ' ')
                     FROM generate_series(1, 6 + (g % 11)) k WHERE k > 0 * g),
                    (g % {per_session}) * 4000, true
             FROM generate_series({from}, {to}) g, s",
            from = done,
            to = done + chunk - 1,
        ))
        .execute(conn)
        .await
        .unwrap();
        done += chunk;
        println!(
            "   loaded {done} lines for project {project} ({:.1} s for the last {chunk})",
            t.elapsed().as_secs_f64()
        );
    }
}

struct Class {
    name: &'static str,
    query: String,
}

async fn timed(client: &reqwest::Client, url: &str, key: &str) -> (f64, i64) {
    let t = Instant::now();
    let res = client
        .get(url)
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let body: Value = res.json().await.unwrap();
    (
        t.elapsed().as_secs_f64() * 1000.0,
        body["total"].as_i64().unwrap_or(0),
    )
}

fn report(name: &str, mut ms: Vec<f64>, hits: i64) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "   {name:<44} n={:<5} p50={:>6.1} ms  p95={:>6.1} ms  p99={:>6.1} ms  max={:>6.1} ms  hits={hits}",
        ms.len(),
        common::pct(&ms, 0.50),
        common::pct(&ms, 0.95),
        common::pct(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN),
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    voxplane::install_crypto_provider();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lines = env_or("TX_BENCH_LINES", 10_000_000);
    let rounds = env_or("TX_BENCH_ROUNDS", 300);
    // TX_BENCH_KEEP=1 keeps the loaded database (one per line count) and
    // reuses it on the next run: query changes are timed without a reload.
    let keep = std::env::var("TX_BENCH_KEEP").is_ok_and(|v| v == "1");
    let data_dir = if keep {
        root.join(format!(".local/bench-tx/kept-{lines}"))
    } else {
        root.join(format!(".local/bench-tx/run-{}", std::process::id()))
    };
    let pg = EmbeddedPostgres::start(PgOptions {
        install_dir: root.join(".local/pg"),
        data_dir,
        port: 0,
        ephemeral: !keep,
        settings: voxplane::embedded::postgres::memory_settings(),
    })
    .expect("embedded Postgres (run `make setup`)");
    pg.ensure_database("txbench").await.unwrap();
    let url = pg.url("txbench");
    voxplane::db::run_migrations(&url).await.unwrap();
    let vocab = vocabulary(5_000);
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let loaded_before = kept_project(&mut conn).await;
    let mine = match loaded_before {
        Some(id) => {
            println!("== reusing the {lines} lines kept from an earlier run");
            voxplane::admin::create_key(&url, id, "bench")
                .await
                .unwrap()
        }
        None => {
            let mine = voxplane::admin::create_project(&url, "bench", Plan::Enterprise)
                .await
                .unwrap();
            let other = voxplane::admin::create_project(&url, "other", Plan::Enterprise)
                .await
                .unwrap();
            voxplane::admin::set_rate_limit(&url, mine.project_id, Some(2_000_000_000))
                .await
                .unwrap();
            let t = Instant::now();
            conn.batch_execute("DROP INDEX transcripts_search_idx")
                .await
                .unwrap();
            load(&mut conn, mine.project_id, lines * 4 / 5, &vocab).await;
            load(&mut conn, other.project_id, lines / 5, &vocab).await;
            let loaded = t.elapsed();
            let t = Instant::now();
            for sql in [
                "SET maintenance_work_mem = '1GB'",
                "CREATE INDEX transcripts_search_idx ON transcripts USING gin (search)",
                "VACUUM ANALYZE transcripts",
                "VACUUM ANALYZE sessions",
            ] {
                conn.batch_execute(sql).await.unwrap();
            }
            println!(
                "== {lines} lines loaded in {:.0} s, index built in {:.0} s",
                loaded.as_secs_f64(),
                t.elapsed().as_secs_f64()
            );
            mine
        }
    };
    let settings = Settings {
        port: 0,
        workers: 1,
        database_url: Some(url.clone()),
        log_level: "warn".into(),
        data_dir: root.join(".local"),
        ..Settings::default()
    }
    .validated()
    .unwrap();
    let base = start_server(settings);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let (common1, common2, mid1, mid2, rare) =
        (&vocab[0], &vocab[1], &vocab[120], &vocab[300], &vocab[4500]);
    let week_ago = (chrono::Utc::now() - chrono::Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    let classes = vec![
        Class {
            name: "one common word",
            query: format!("q={}", enc(common1)),
        },
        Class {
            name: "one rare word",
            query: format!("q={}", enc(rare)),
        },
        Class {
            name: "two words (AND), mid frequency",
            query: format!("q={}", enc(&format!("{mid1} {mid2}"))),
        },
        Class {
            name: "phrase of two common words",
            query: format!("q={}", enc(&format!("\"{common1} {common2}\""))),
        },
        Class {
            name: "OR of a mid and a rare word",
            query: format!("q={}", enc(&format!("{mid1} or {rare}"))),
        },
        Class {
            name: "common word NOT another common",
            query: format!("q={}", enc(&format!("{common1} -{common2}"))),
        },
        Class {
            name: "common word, tag=vip",
            query: format!("q={}&tag=vip", enc(common1)),
        },
        Class {
            name: "mid word, last 7 days",
            query: format!("q={}&from={week_ago}", enc(mid1)),
        },
        Class {
            name: "mid word, completed+resolved",
            query: format!("q={}&status=completed&disposition=resolved", enc(mid2)),
        },
        Class {
            name: "rare phrase, page 3",
            query: format!("q={}&page=3", enc(&format!("\"{mid1} {rare}\""))),
        },
    ];
    let url_of = |c: &Class| format!("{base}/api/v1/transcripts/search?{}&per_page=20", c.query);
    // Warm up: every class a few times.
    for c in &classes {
        for _ in 0..5 {
            timed(&client, &url_of(c), &mine.api_key).await;
        }
    }
    println!("== sequential, {rounds} requests per class (latency through the API, ms)");
    let mut all = Vec::new();
    for c in &classes {
        let mut ms = Vec::with_capacity(rounds);
        let mut hits = 0;
        for _ in 0..rounds {
            let (t, h) = timed(&client, &url_of(c), &mine.api_key).await;
            ms.push(t);
            hits = h;
        }
        all.extend(ms.iter().copied());
        report(c.name, ms, hits);
    }
    report("all classes", all, 0);
    println!(
        "== 4 concurrent clients on the mix, {} requests each",
        rounds * 2
    );
    let urls: Vec<String> = classes.iter().map(url_of).collect();
    let t = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let (client, urls, key) = (client.clone(), urls.clone(), mine.api_key.clone());
            tokio::spawn(async move {
                let mut ms = Vec::new();
                for i in 0..rounds * 2 {
                    let (t, _) = timed(&client, &urls[(i + w) % urls.len()], &key).await;
                    ms.push(t);
                }
                ms
            })
        })
        .collect();
    let mut ms = Vec::new();
    for task in tasks {
        ms.extend(task.await.unwrap());
    }
    let secs = t.elapsed().as_secs_f64();
    println!("   throughput {:.0} searches/s", ms.len() as f64 / secs);
    report("mix, 4 clients", ms, 0);
    drop(pg);
}
