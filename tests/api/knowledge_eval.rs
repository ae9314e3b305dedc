//! The ranking evaluation: the documents of `tests/data/kb_eval.json` built
//! as real files of their formats (PDF, DOCX, HTML, Markdown, text) and
//! uploaded to one knowledge base; every question (a paraphrase of its
//! answer) searched in each mode through the API. Reports hit@1, hit@3 and
//! MRR (over the top 10) per mode for the tuning and the held-out split, and
//! asserts on the held-out split: hybrid hit@1 ≥ the better of vector and
//! keyword, hybrid hit@3 ≥ 0.95.
//!
//! `KB_EVAL_TUNE=1` also prints a grid of fusion parameters evaluated on the
//! tuning split from the two rankings (how `rag::fusion::params` was chosen).

use crate::common::files::{docx, html, pdf};
use crate::common::{TestApp, json, root};
use crate::knowledge::{create_kb, upload};
use serde_json::{Value, json};
use voxplane::rag::fusion::{self, Fusion, QueryKind};

/// A question and how to judge a hit.
struct Question {
    q: String,
    /// The file the answer is in.
    file: String,
    /// A phrase of the answer's section.
    answer: String,
    tune: bool,
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Builds and uploads every document; returns the knowledge base and the
/// questions.
async fn load(app: &TestApp) -> (i64, Vec<Question>) {
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/data/kb_eval.json")).unwrap(),
    )
    .unwrap();
    let docs = data["documents"].as_array().unwrap();
    assert!(docs.len() >= 50, "{} documents", docs.len());
    let kb = create_kb(app, json!({"name": "Evaluation"})).await;
    let mut questions = Vec::new();
    for d in docs {
        let (id, format, title) = (
            d["id"].as_str().unwrap(),
            d["format"].as_str().unwrap(),
            d["title"].as_str().unwrap(),
        );
        let sections: Vec<(&str, &str)> = d["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["heading"].as_str().unwrap(), s["text"].as_str().unwrap()))
            .collect();
        let file = format!("{id}.{format}");
        let bytes = match format {
            "pdf" => pdf(title, &sections, false),
            "docx" => docx(title, &sections),
            "html" => html(title, &sections).into_bytes(),
            "md" => {
                let body: String = sections
                    .iter()
                    .map(|(h, t)| format!("## {h}\n{t}\n\n"))
                    .collect();
                format!("# {title}\n\n{body}").into_bytes()
            }
            "txt" => {
                let body: String = sections
                    .iter()
                    .map(|(h, t)| format!("{h}\n{t}\n\n"))
                    .collect();
                format!("{title}\n\n{body}").into_bytes()
            }
            other => panic!("format {other}"),
        };
        let (status, body) = json(upload(app, kb, &file, &bytes).await).await;
        assert_eq!(status, 201, "{file}: {body}");
        for q in d["questions"].as_array().unwrap() {
            questions.push(Question {
                q: q["q"].as_str().unwrap().to_owned(),
                file: file.clone(),
                answer: q["answer"].as_str().unwrap().to_owned(),
                tune: q["split"] == "tune",
            });
        }
    }
    assert!(questions.len() >= 200, "{} questions", questions.len());
    (kb, questions)
}

/// Ranks (1-based, within the top 10) of the first relevant hit per
/// question, for a mode.
async fn ranks(app: &TestApp, kb: i64, questions: &[Question], mode: &str) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    for q in questions {
        let (status, body) = json(
            app.post_json(
                "/api/v1/knowledge/search",
                &json!({"knowledge_base_id": kb, "query": q.q, "top_k": 10, "mode": mode}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let answer = norm(&q.answer);
        let rank = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| {
                r["source"] == q.file.as_str()
                    && norm(r["content"].as_str().unwrap()).contains(&answer)
            })
            .map(|i| i + 1);
        out.push(rank);
    }
    out
}

/// hit@1, hit@3, MRR of ranks.
fn metrics(ranks: &[Option<usize>]) -> (f64, f64, f64) {
    let n = ranks.len().max(1) as f64;
    let hit = |k: usize| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n;
    let mrr = ranks
        .iter()
        .map(|r| r.map_or(0.0, |r| 1.0 / r as f64))
        .sum::<f64>()
        / n;
    (hit(1), hit(3), mrr)
}

#[tokio::test]
async fn ranking_evaluation_hybrid_never_loses_to_either_side() {
    // ~650 searches in a minute or so: more than a plan's rate limit.
    let app = TestApp::spawn_with(|s| s.rate_limits.professional = 100_000).await;
    let (kb, questions) = load(&app).await;
    let mut table = Vec::new();
    for mode in ["vector", "keyword", "hybrid"] {
        let r = ranks(&app, kb, &questions, mode).await;
        for (split, tune) in [("tuning", true), ("held-out", false)] {
            let part: Vec<Option<usize>> = r
                .iter()
                .zip(&questions)
                .filter(|(_, q)| q.tune == tune)
                .map(|(r, _)| *r)
                .collect();
            table.push((mode, split, part.len(), metrics(&part)));
        }
        for (rank, q) in r.iter().zip(&questions) {
            if rank.is_none_or(|r| r > 3) {
                eprintln!("{mode} rank {rank:?}: {} [{}]", q.q, q.file);
            }
        }
    }
    eprintln!("| mode | split | questions | hit@1 | hit@3 | MRR |");
    for (mode, split, n, (h1, h3, mrr)) in &table {
        eprintln!("| {mode} | {split} | {n} | {h1:.3} | {h3:.3} | {mrr:.3} |");
    }
    if std::env::var("KB_EVAL_TUNE").is_ok() {
        tune(&app, kb, &questions).await;
    }
    let held = |mode: &str| {
        table
            .iter()
            .find(|(m, s, _, _)| *m == mode && *s == "held-out")
            .map(|(_, _, _, m)| *m)
            .unwrap()
    };
    let (vector, keyword, hybrid) = (held("vector"), held("keyword"), held("hybrid"));
    assert!(
        hybrid.0 >= vector.0.max(keyword.0),
        "held-out hybrid hit@1 {:.3} < max(vector {:.3}, keyword {:.3})",
        hybrid.0,
        vector.0,
        keyword.0
    );
    assert!(hybrid.1 >= 0.95, "held-out hybrid hit@3 {:.3}", hybrid.1);
}

/// Prints fusion variants evaluated on the tuning split: rankings of 100
/// candidates from each side, fused offline with each parameter set.
async fn tune(app: &TestApp, kb: i64, questions: &[Question]) {
    use diesel_async::SimpleAsyncConnection;
    use voxplane::db::kb_chunks;
    use voxplane::db::sql_types::Embedding;
    let mut conn = app.conn().await;
    conn.batch_execute(&kb_chunks::session_setup(400))
        .await
        .unwrap();
    let embedder = app.state.rag.embedder().unwrap().clone();
    // Per question: (kind, vector ids, keyword ids, relevant ids).
    let mut rows = Vec::new();
    for q in questions.iter().filter(|q| q.tune) {
        let v = Embedding(embedder.embed_one(&q.q).await.unwrap());
        let by_vector = kb_chunks::search_vector(&mut conn, kb, &v, 100, 400)
            .await
            .unwrap();
        let terms = kb_chunks::query_terms(&mut conn, &q.q, 8).await.unwrap();
        let tq = kb_chunks::term_query(&terms);
        let by_keyword = kb_chunks::keyword_ranking(&mut conn, kb, &tq, 100, 5000)
            .await
            .unwrap()
            .unwrap_or_default();
        let answer = norm(&q.answer);
        let relevant: Vec<i64> = by_vector
            .iter()
            .chain(&by_keyword)
            .filter(|h| h.source == q.file && norm(&h.content).contains(&answer))
            .map(|h| h.id)
            .collect();
        rows.push((
            fusion::query_kind(&q.q),
            by_vector
                .iter()
                .map(|h| (h.id, h.score))
                .collect::<Vec<_>>(),
            by_keyword
                .iter()
                .map(|h| (h.id, h.score))
                .collect::<Vec<_>>(),
            relevant,
        ));
    }
    for kind in [QueryKind::Question, QueryKind::Lookup] {
        let of_kind: Vec<_> = rows.iter().filter(|r| r.0 == kind).collect();
        eprintln!("tuning {kind:?}: {} questions", of_kind.len());
        let mut results = Vec::new();
        for k in [5.0, 10.0, 20.0, 40.0, 60.0] {
            for w in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5] {
                for candidates in [10usize, 20, 40, 100] {
                    let f = Fusion {
                        k,
                        vector_weight: 1.0,
                        keyword_weight: w,
                        candidates: candidates as i64,
                    };
                    let ranks: Vec<Option<usize>> = of_kind
                        .iter()
                        .map(|(_, v, kw, rel)| {
                            let v: Vec<i64> = v.iter().take(candidates).map(|h| h.0).collect();
                            let kw: Vec<i64> = kw.iter().take(candidates).map(|h| h.0).collect();
                            fusion::fuse(&v, &kw, &f, 10)
                                .iter()
                                .position(|(id, _)| rel.contains(id))
                                .map(|i| i + 1)
                        })
                        .collect();
                    results.push((metrics(&ranks), k, w, candidates));
                }
            }
        }
        for beta in [0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3] {
            for candidates in [10usize, 20, 40, 100] {
                let ranks: Vec<Option<usize>> = of_kind
                    .iter()
                    .map(|(_, v, kw, rel)| {
                        let v = &v[..v.len().min(candidates)];
                        let kw = &kw[..kw.len().min(candidates)];
                        fusion::fuse_scores(v, kw, beta, 10)
                            .iter()
                            .position(|(id, _)| rel.contains(id))
                            .map(|i| i + 1)
                    })
                    .collect();
                // Marked k = 0: score fusion, `w` its beta.
                results.push((metrics(&ranks), 0.0, beta, candidates));
            }
        }
        results.sort_by(|a, b| {
            (b.0.0, b.0.2, b.0.1)
                .partial_cmp(&(a.0.0, a.0.2, a.0.1))
                .unwrap()
        });
        for ((h1, h3, mrr), k, w, c) in results.iter().filter(|r| r.3 == 40).take(40) {
            eprintln!(
                "  k {k:>4} keyword weight {w:.2} candidates {c:>3}: hit@1 {h1:.3} hit@3 {h3:.3} MRR {mrr:.3}"
            );
        }
    }
}
