//! Transcript search (web-search syntax, filters, ranking, snippets,
//! tenant isolation), exports parsed with standard parsers, the transcript
//! so far on the monitor.

use crate::common::{TestApp, expect_error, json};
use crate::monitor::{connect, next_of};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use voxplane::limits::plans::Plan;

/// A session in `room` with `lines` (speaker, content, timestamp_ms).
async fn session_with(app: &TestApp, key: &str, room: &str, lines: &[(&str, &str, i64)]) -> i64 {
    let res = app
        .req_as(key, reqwest::Method::POST, "/api/v1/sessions")
        .json(&json!({"room_name": room}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 201, "{body}");
    for (speaker, content, ts) in lines {
        let res = app
            .req_as(
                key,
                reqwest::Method::POST,
                &format!("/api/v1/sessions/{room}/transcript"),
            )
            .json(&json!({"speaker": speaker, "content": content, "timestamp_ms": ts}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    body["session"]["id"].as_i64().unwrap()
}

async fn search(app: &TestApp, query: &str) -> Value {
    let (status, body) = json(
        app.get(&format!("/api/v1/transcripts/search?{query}"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn contents(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["snippet"]
                .as_str()
                .unwrap()
                .replace("<mark>", "")
                .replace("</mark>", "")
        })
        .collect()
}

#[tokio::test]
async fn search_understands_phrases_and_or_not_with_snippets_and_offsets() {
    let app = TestApp::spawn().await;
    let key = app.project.key.clone();
    let a = session_with(
        &app,
        &key,
        "a",
        &[
            (
                "user",
                "What is your refund policy for annual plans?",
                5_200,
            ),
            (
                "agent",
                "A policy on refund requests applies to every invoice.",
                9_000,
            ),
            ("user", "I never got my invoice", 65_400),
        ],
    )
    .await;
    session_with(
        &app,
        &key,
        "b",
        &[("user", "Refund refund refund, now please", 1_000)],
    )
    .await;

    // A phrase matches the words in order only.
    let body = search(&app, "q=%22refund%20policy%22").await;
    assert_eq!(body["total"], 1, "{body}");
    let hit = &body["results"][0];
    assert_eq!(hit["session_id"], a);
    assert_eq!(hit["speaker"], "user");
    assert_eq!(hit["timestamp_ms"], 5_200);
    assert_eq!(hit["offset"], "[00:05]");
    let snippet = hit["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("<mark>refund</mark> <mark>policy</mark>"),
        "{snippet}"
    );
    // AND (all words), ranked: the line saying it three times first.
    let body = search(&app, "q=refund").await;
    assert_eq!(body["total"], 3);
    assert!(
        contents(&body)[0].starts_with("Refund refund refund"),
        "{body}"
    );
    let ranks: Vec<f64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rank"].as_f64().unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    // (Snippets are the best fragment of the line: its words, no punctuation at the ends.)
    let body = search(&app, "q=refund%20invoice").await;
    assert_eq!(
        contents(&body),
        ["policy on refund requests applies to every invoice"]
    );
    // OR, NOT.
    let body = search(&app, "q=annual%20or%20invoice").await;
    assert_eq!(body["total"], 3, "{body}");
    let body = search(&app, "q=refund%20-policy").await;
    assert_eq!(body["total"], 1);
    assert!(
        contents(&body)[0].starts_with("Refund refund refund"),
        "{body}"
    );
    let body = search(&app, "q=invoice&speaker=user").await;
    assert_eq!(body["results"][0]["offset"], "[01:05]");
    assert_eq!(body["total"], 1);
    // Paging.
    let body = search(&app, "q=refund&per_page=1&page=2").await;
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert_eq!(body["total"], 3);
    // A page past the last hit is empty and still counts them.
    let body = search(&app, "q=refund&per_page=2&page=5").await;
    assert_eq!(body["results"], json!([]));
    assert_eq!(body["total"], 3);
}

#[tokio::test]
async fn search_filters_by_period_status_tag_and_stays_in_its_project() {
    let app = TestApp::spawn().await;
    let key = app.project.key.clone();
    let done = session_with(&app, &key, "done", &[("user", "cancel my subscription", 0)]).await;
    app.post_json("/api/v1/sessions/done/end", &json!({})).await;
    let live = session_with(&app, &key, "live", &[("user", "cancel the order", 0)]).await;
    let (status, _) = json(
        app.patch_json(
            &format!("/api/v1/sessions/{live}"),
            &json!({"tags": ["vip"], "disposition": "escalated"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let other = app.create_project(Plan::Professional).await;
    session_with(
        &app,
        &other.key,
        "theirs",
        &[("user", "cancel everything", 0)],
    )
    .await;

    let ids = |b: &Value| -> Vec<i64> {
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["session_id"].as_i64().unwrap())
            .collect()
    };
    let mut all = ids(&search(&app, "q=cancel").await);
    all.sort();
    assert_eq!(all, [done, live], "another project's lines never show");
    assert_eq!(
        ids(&search(&app, "q=cancel&status=completed").await),
        [done]
    );
    assert_eq!(ids(&search(&app, "q=cancel&status=active").await), [live]);
    assert_eq!(ids(&search(&app, "q=cancel&tag=vip").await), [live]);
    assert_eq!(
        ids(&search(&app, "q=cancel&disposition=escalated").await),
        [live]
    );
    assert!(ids(&search(&app, "q=cancel&from=2999-01-01").await).is_empty());
    assert_eq!(
        ids(&search(&app, "q=cancel&to=2999-01-01&from=2000-01-01").await).len(),
        2
    );
    let res = app
        .req_as(
            &other.key,
            reqwest::Method::GET,
            "/api/v1/transcripts/search?q=cancel",
        )
        .send()
        .await
        .unwrap();
    let (_, theirs) = json(res).await;
    assert_eq!(theirs["total"], 1);
    assert_eq!(contents(&theirs), ["cancel everything"]);
    // Bad input.
    for q in [
        "",
        "q=",
        "q=a&status=gone",
        "q=a&from=yesterday",
        "q=a&per_page=0",
        "q=a&speaker=bot",
        "q=a%00b",
        "q=a&nope=1",
    ] {
        expect_error(
            app.get(&format!("/api/v1/transcripts/search?{q}")).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
    // Only stop words: nothing to find, no error.
    assert_eq!(search(&app, "q=the").await["total"], 0);
}

/// SRT or WebVTT cues: (start ms, end ms, text), parsed strictly.
fn cues(body: &str, sep: char) -> Vec<(i64, i64, String)> {
    let ms = |t: &str| -> i64 {
        let (hms, frac) = t.split_once(sep).unwrap_or_else(|| panic!("bad time {t}"));
        let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        assert_eq!((p.len(), frac.len()), (3, 3), "{t}");
        ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + frac.parse::<i64>().unwrap()
    };
    let mut out = Vec::new();
    for (i, block) in body.trim_end().split("\n\n").enumerate() {
        let mut lines = block.lines();
        assert_eq!(lines.next().unwrap(), (i + 1).to_string(), "cue number");
        let (a, b) = lines.next().unwrap().split_once(" --> ").unwrap();
        let text: Vec<&str> = lines.collect();
        assert!(!text.is_empty());
        out.push((ms(a), ms(b), text.join("\n")));
    }
    out
}

#[tokio::test]
async fn a_transcript_exports_as_srt_vtt_csv_and_json() {
    let app = TestApp::spawn().await;
    let key = app.project.key.clone();
    let tricky = "Sure, \"quoted\" and\nmultiline\n\nwith a blank line & <b>tags</b> -->";
    let id = session_with(
        &app,
        &key,
        "x",
        &[
            ("user", "Hello", 0),
            ("agent", tricky, 1_500),
            ("user", "Bye", 3_723_004),
        ],
    )
    .await;
    // An interim line: in the CSV (flagged), not in subtitles.
    app.post_json(
        "/api/v1/sessions/x/transcript",
        &json!({"speaker": "user", "content": "By", "timestamp_ms": 3_723_000, "is_final": false}),
    )
    .await;

    let res = app
        .get(&format!("/api/v1/sessions/{id}/transcript?format=srt"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-subrip")
    );
    let srt = cues(&res.text().await.unwrap(), ',');
    assert_eq!(srt.len(), 3);
    assert_eq!(
        (srt[0].0, srt[0].1, srt[0].2.as_str()),
        (0, 1_500, "User: Hello")
    );
    assert_eq!((srt[1].0, srt[1].1), (1_500, 11_500));
    assert_eq!(
        srt[1].2,
        "Agent: Sure, \"quoted\" and\nmultiline\nwith a blank line & <b>tags</b> -->"
    );
    assert_eq!(srt[2].0, 3_723_004);

    let res = app
        .get(&format!("/api/v1/sessions/{id}/transcript?format=vtt"))
        .await;
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/vtt")
    );
    let text = res.text().await.unwrap();
    let body = text.strip_prefix("WEBVTT\n\n").expect("WEBVTT header");
    let vtt = cues(body, '.');
    assert_eq!(vtt.len(), 3);
    assert_eq!(vtt[0], (0, 1_500, "<v User>Hello".to_owned()));
    assert!(
        vtt[1].2.ends_with("&amp; &lt;b&gt;tags&lt;/b&gt; --&gt;"),
        "{}",
        vtt[1].2
    );
    assert_eq!(vtt[2].1 - vtt[2].0, 10_000);

    let res = app
        .get(&format!("/api/v1/sessions/{id}/transcript?format=csv"))
        .await;
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "timestamp_ms",
            "time",
            "speaker",
            "content",
            "is_final",
            "created_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(&rows[1][3], tricky, "commas, quotes and newlines survive");
    assert_eq!(&rows[2][3], "By");
    assert_eq!(&rows[2][4], "false");

    let (_, plain) = json(app.get(&format!("/api/v1/sessions/{id}/transcript")).await).await;
    let (_, as_json) = json(
        app.get(&format!("/api/v1/sessions/{id}/transcript?format=json"))
            .await,
    )
    .await;
    assert_eq!(plain, as_json);
    assert_eq!(as_json["transcripts"].as_array().unwrap().len(), 4);
    expect_error(
        app.get(&format!("/api/v1/sessions/{id}/transcript?format=docx"))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn the_sessions_export_streams_every_page_as_csv_or_json_lines() {
    let app = TestApp::spawn().await;
    let key = app.project.key.clone();
    let id = session_with(
        &app,
        &key,
        "paid",
        &[("user", "hi", 0), ("agent", "hello", 10)],
    )
    .await;
    let notes = "Called back, said \"thanks\"\nall good";
    let (status, _) = json(
        app.patch_json(&format!("/api/v1/sessions/{id}"), &json!({"disposition": "resolved", "tags": ["vip", "billing"], "notes": notes, "rating": 4}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    app.post_json("/api/v1/usage", &json!([{"session_id": id, "service": "llm", "provider": "openai", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 500}]))
        .await;
    // 1,200 more sessions, more than two pages.
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    diesel::sql_query(format!(
        "INSERT INTO sessions (project_id, room_name, session_type, status, metadata, started_at, ended_at, duration_seconds)
         SELECT {}, 'bulk-' || g, 'voice', 'completed', '{{}}', now() - interval '1 day', now(), 60 FROM generate_series(1, 1200) g",
        app.project.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    let res = app.get("/api/v1/sessions/export").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let h = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1201);
    let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, no repeats"
    );
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let mine = rows.iter().find(|r| r[0] == id.to_string()).unwrap();
    assert_eq!(&mine[col("notes")], notes);
    assert_eq!(&mine[col("tags")], "vip;billing");
    assert_eq!(&mine[col("disposition")], "resolved");
    assert_eq!(&mine[col("rating")], "4");
    assert_eq!(&mine[col("cost_total")], "0.007500");
    assert_eq!(&mine[col("cost_llm")], "0.007500");
    assert_eq!(&mine[col("message_count")], "2");

    let res = app
        .get("/api/v1/sessions/export?format=jsonl&disposition=resolved")
        .await;
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], id);
    assert_eq!(lines[0]["tags"], json!(["vip", "billing"]));
    let text = app
        .get("/api/v1/sessions/export?format=jsonl")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text.lines().count(), 1201);
    let text = app
        .get("/api/v1/sessions/export?format=jsonl&from=2999-01-01")
        .await
        .text()
        .await
        .unwrap();
    assert!(text.is_empty());
    expect_error(
        app.get("/api/v1/sessions/export?format=xml").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    // Another project's export has none of these.
    let other = app.create_project(Plan::Professional).await;
    let res = app
        .req_as(
            &other.key,
            reqwest::Method::GET,
            "/api/v1/sessions/export?format=jsonl",
        )
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_monitor_opened_mid_call_gets_the_transcript_so_far() {
    let app = TestApp::spawn().await;
    let key = app.project.key.clone();
    session_with(
        &app,
        &key,
        "mid",
        &[("user", "first", 0), ("agent", "second", 900)],
    )
    .await;
    let mut ws = connect(&app, Some(&key)).await;
    next_of(&mut ws, "connected").await;
    ws.send(Message::Text(
        json!({"action": "transcript", "room": "mid"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let snap = next_of(&mut ws, "transcript.snapshot").await;
    assert_eq!(
        snap["data"]["room_name"],
        format!("{}_mid", app.project.room_prefix)
    );
    let lines: Vec<&str> = snap["data"]["transcripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["content"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["first", "second"]);
    ws.send(Message::Text(
        json!({"action": "transcript", "room": "nothing-here"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let err = next_of(&mut ws, "error").await;
    assert!(
        err["data"]["message"]
            .as_str()
            .unwrap()
            .contains("No active session")
    );
}
