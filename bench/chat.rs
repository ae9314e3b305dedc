//! The team chat benchmark's client (not a test; bench/chat.sh runs it).
//!
//! `cargo bench --bench chat -- --bench <base url> <jwt secret> <members.tsv> <mode> [rate] [seconds]`
//!
//! `members.tsv`: `account_id  session_id  chat_id` per line (bench/chat.sh
//! seeds them). Access tokens are minted here with the server's secret.
//!
//! - `sockets`: one `/ws/chat` per line, authenticated and joined to its
//!   chat; then `rate` messages a second for `seconds` (open loop: message
//!   `i` is due at start + i / rate, in chat `i mod chats` by its members in
//!   turn, so each chat gets one message every `chats / rate` seconds) after
//!   a 5 s warm-up at the same rate. Latency of each
//!   delivery (`new_message` at every other member's socket) and each
//!   `message_ack`, from the message's *scheduled* time, so a stall of the
//!   client or the server is charged to every message behind it.
//! - `pages`: `POST /api/v1/chat/messages` (limit 50) at `rate` requests a
//!   second for `seconds`, each by a random member for its chat, a third each
//!   newest page / `before` a random id / `after` a random id; latency from
//!   the scheduled time.
//!
//! One thread (a current-thread runtime), so the server and Postgres keep
//! the rest of the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[path = "common.rs"]
mod common;
use common::{bench_args, pct};

struct Member {
    account: i64,
    session: i64,
    chat: i64,
}

fn members(path: &str) -> Vec<Member> {
    std::fs::read_to_string(path)
        .expect("members file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<i64> = l.split('\t').map(|x| x.trim().parse().unwrap()).collect();
            Member {
                account: f[0],
                session: f[1],
                chat: f[2],
            }
        })
        .collect()
}

fn report(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms p99.9={:.2} ms max={:.2} ms",
        ms.len(),
        pct(&ms, 0.50),
        pct(&ms, 0.90),
        pct(&ms, 0.99),
        pct(&ms, 0.999),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

/// The line sending message `i` when `n` lines are grouped by chat in
/// `chats` chats of equal size: chat `i mod chats`, its members in turn.
fn sender(i: usize, n: usize, chats: usize) -> usize {
    let per = (n / chats).max(1);
    ((i % chats) * per + (i / chats) % per) % n
}

#[derive(Default)]
struct Tally {
    /// (message number, latency ms) of deliveries and acks.
    delivered: Vec<(u64, f64)>,
    acked: Vec<(u64, f64)>,
    errors: usize,
    closed: Vec<String>,
}

async fn sockets(base: &str, secret: &[u8], all: Vec<Member>, rate: f64, seconds: f64) {
    let ws_base = base.replace("http://", "ws://");
    let n = all.len();
    let mut senders = Vec::with_capacity(n);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let start_cell: Rc<RefCell<Option<Instant>>> = Rc::new(RefCell::new(None));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let connected = Instant::now();
    for (k, m) in all.iter().enumerate() {
        let token = voxplane::auth::tokens::sign_access(secret, m.account, m.session, 86_400);
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_base}/ws/chat"))
            .await
            .expect("upgrade");
        ws.send(Message::Text(
            json!({"type": "authenticate", "token": token})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        ws.send(Message::Text(
            json!({"type": "join_chat", "chat_id": m.chat})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        // Until `joined`: the socket then gets its chat's messages.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"joined\"") => break,
                Some(Ok(Message::Text(t))) if t.contains("\"error\"") => panic!("socket {k}: {t}"),
                Some(Ok(_)) => continue,
                other => panic!("socket {k} closed: {other:?}"),
            }
        }
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        senders.push(tx);
        let (tally, start_cell) = (tally.clone(), start_cell.clone());
        tokio::task::spawn_local(async move {
            loop {
                tokio::select! {
                    out = rx.recv() => match out {
                        Some(text) => { if sink.send(Message::Text(text.into())).await.is_err() { break; } }
                        None => break,
                    },
                    msg = stream.next() => {
                        let now = Instant::now();
                        let text = match msg {
                            Some(Ok(Message::Text(t))) => t,
                            Some(Ok(Message::Close(f))) => {
                                tally.borrow_mut().closed.push(format!("{f:?}"));
                                break;
                            }
                            Some(Ok(_)) => continue,
                            _ => break,
                        };
                        let Some(start) = *start_cell.borrow() else { continue };
                        let v: Value = serde_json::from_str(&text).unwrap();
                        let number = |v: &Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
                        let (kind, num) = match v["type"].as_str() {
                            Some("new_message") => ("d", number(&v["message"]["content"])),
                            Some("message_ack") => ("a", number(&v["client_id"])),
                            Some("error") => { tally.borrow_mut().errors += 1; continue; }
                            _ => continue,
                        };
                        let Some(i) = num else { continue };
                        let due = start + interval.mul_f64(i as f64);
                        let ms = now.saturating_duration_since(due).as_secs_f64() * 1000.0;
                        let mut t = tally.borrow_mut();
                        if kind == "d" { t.delivered.push((i, ms)); } else { t.acked.push((i, ms)); }
                    }
                }
            }
        });
    }
    println!(
        "connected {n} sockets in {:.1} s",
        connected.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let chats = {
        let mut ids: Vec<i64> = all.iter().map(|m| m.chat).collect();
        ids.dedup();
        ids.len()
    };
    let warm = (rate * 5.0) as u64;
    let total = warm + (rate * seconds) as u64;
    let start = Instant::now() + Duration::from_millis(100);
    *start_cell.borrow_mut() = Some(start);
    for i in 0..total {
        tokio::time::sleep_until((start + interval.mul_f64(i as f64)).into()).await;
        // Consecutive messages go to different chats (the lines are
        // grouped by chat): chat i mod chats, its members in turn.
        let k = sender(i as usize, n, chats);
        let text = json!({"type": "send_message", "chat_id": all[k].chat, "content": i.to_string(),
                          "client_id": i.to_string()})
        .to_string();
        let _ = senders[k].send(text);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = tally.borrow();
    let members_per_chat = {
        let mut per: HashMap<i64, usize> = HashMap::new();
        for m in &all {
            *per.entry(m.chat).or_default() += 1;
        }
        per.values().copied().max().unwrap_or(1)
    };
    let measured = |v: &Vec<(u64, f64)>| -> Vec<f64> {
        v.iter()
            .filter(|(i, _)| *i >= warm)
            .map(|(_, l)| *l)
            .collect()
    };
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, _) in &t.delivered {
        *seen.entry(*i).or_default() += 1;
    }
    let expected = (members_per_chat - 1) as u64;
    let short = (0..total)
        .filter(|i| (seen.get(i).copied().unwrap_or(0) as u64) < expected)
        .count();
    let over = seen.values().filter(|c| **c as u64 > expected).count();
    println!(
        "sent {total} messages ({warm} warm-up) at {rate}/s; deliveries {} (expected {}), messages with missing deliveries {short}, with extra {over}; acks {}; error frames {}; closed sockets {}",
        t.delivered.len(),
        total * expected,
        t.acked.len(),
        t.errors,
        t.closed.len()
    );
    report(
        "send→receive (new_message at the other members)",
        measured(&t.delivered),
    );
    report("send→message_ack", measured(&t.acked));
    if std::env::var_os("CHAT_SERIES").is_some() {
        // Each second of the measured run (by scheduled time): p99 and max.
        let per_second = (rate as u64).max(1);
        let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); (total / per_second) as usize + 1];
        for (i, l) in t.delivered.iter().filter(|(i, _)| *i >= warm) {
            seconds[((i - warm) / per_second) as usize].push(*l);
        }
        for (s, mut v) in seconds
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
        {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "  second {s:>2}: p99 {:.1} ms, max {:.1} ms",
                pct(&v, 0.99),
                v[v.len() - 1]
            );
        }
    }
}

async fn pages(
    base: &str,
    secret: &[u8],
    all: Vec<Member>,
    project: i64,
    rate: f64,
    seconds: f64,
    ids: (i64, i64),
) {
    voxplane::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let tokens: Vec<String> = all
        .iter()
        .map(|m| voxplane::auth::tokens::sign_access(secret, m.account, m.session, 86_400))
        .collect();
    let url = format!("{base}/api/v1/chat/messages");
    let latencies = Rc::new(RefCell::new(Vec::new()));
    let failures = Rc::new(RefCell::new(0usize));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * seconds) as u64;
    let warm = (rate * 2.0) as u64;
    let start = Instant::now() + Duration::from_millis(100);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut tasks = Vec::new();
    for i in 0..warm + total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let k = (next() % all.len() as u64) as usize;
        let cursor = ids.0 + (next() % (ids.1 - ids.0 + 1) as u64) as i64;
        let body = match next() % 3 {
            0 => json!({"chat_id": all[k].chat, "limit": 50}),
            1 => json!({"chat_id": all[k].chat, "limit": 50, "before": cursor}),
            _ => json!({"chat_id": all[k].chat, "limit": 50, "after": cursor}),
        };
        let req = client
            .post(&url)
            .bearer_auth(&tokens[k])
            .header("X-Project-Id", project)
            .json(&body);
        let (latencies, failures) = (latencies.clone(), failures.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let ok = match req.send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            let ms = Instant::now().saturating_duration_since(due).as_secs_f64() * 1000.0;
            if !ok {
                *failures.borrow_mut() += 1;
            } else if i >= warm {
                latencies.borrow_mut().push(ms);
            }
        }));
    }
    futures_util::future::join_all(tasks).await;
    println!(
        "{total} pages at {rate}/s (after {warm} warm-up), failures {}",
        failures.borrow()
    );
    report("messages page (limit 50)", latencies.borrow().clone());
}

fn main() {
    let Some(rest) = bench_args(
        5,
        "chat --bench <base url> <jwt secret> <members.tsv> sockets|pages <project> [rate] [seconds] [min id] [max id]",
    ) else {
        return;
    };
    let base = rest[0].trim_end_matches('/').to_owned();
    let secret = rest[1].as_bytes().to_vec();
    let all = members(&rest[2]);
    let mode = rest[3].clone();
    let project: i64 = rest[4].parse().expect("project id");
    let rate: f64 = rest.get(5).map_or(500.0, |r| r.parse().unwrap());
    let seconds: f64 = rest.get(6).map_or(20.0, |r| r.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        match mode.as_str() {
            "sockets" => sockets(&base, &secret, all, rate, seconds).await,
            "pages" => {
                let lo: i64 = rest.get(7).map_or(1, |r| r.parse().unwrap());
                let hi: i64 = rest.get(8).map_or(1_000_000, |r| r.parse().unwrap());
                pages(&base, &secret, all, project, rate, seconds, (lo, hi)).await;
            }
            other => panic!("unknown mode {other}"),
        }
    });
}
