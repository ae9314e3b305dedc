//! An open-loop load generator for the transcript benchmark (not a test):
//! `rooms` rooms each post transcript lines at `rate / rooms` lines per
//! second, on a fixed schedule. Every request is sent at its scheduled time
//! whether or not earlier ones have been answered, and its latency is
//! measured from that scheduled time — so a server that stalls is charged
//! for the requests that queue up behind the stall (no coordinated omission,
//! unlike a closed-loop tool such as wrk).
//!
//! `cargo bench --bench load -- --bench <base url> <api key> <rate> <seconds> [rooms] [health]`
//! (bench/run.sh runs it). Rooms are `bench-0` … `bench-<rooms-1>`, which
//! must have active sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[path = "common.rs"]
mod common;
use common::{bench_args, pct};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(rest) = bench_args(
        4,
        "load --bench <base url> <api key> <rate/s> <seconds> [rooms]",
    ) else {
        return;
    };
    let base = rest[0].trim_end_matches('/').to_owned();
    let key = rest[1].clone();
    let rate: f64 = rest[2].parse().expect("rate");
    let seconds: f64 = rest[3].parse().expect("seconds");
    let rooms: usize = rest.get(4).map_or(100, |r| r.parse().expect("rooms"));
    // `health`: GET /health instead, the floor of this harness on this machine.
    let health = rest.get(5).is_some_and(|m| m == "health");
    voxplane::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    // (seconds into the run it was due, latency in ms)
    let latencies = Arc::new(Mutex::new(Vec::<(f64, f64)>::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let per_room = rate / rooms as f64;
    let interval = Duration::from_secs_f64(1.0 / per_room);
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for room in 0..rooms {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        let (latencies, errors) = (latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            // Rooms are spread evenly over one interval.
            let mut due = start + interval.mul_f64(room as f64 / rooms as f64);
            let url = format!("{base}/api/v1/sessions/bench-{room}/transcript");
            let mut sent = Vec::new();
            let mut n: u64 = 0;
            while due < end {
                tokio::time::sleep_until(due.into()).await;
                n += 1;
                let body = format!(
                    r#"{{"speaker":"user","content":"I would like to change the billing address on my account please","timestamp_ms":{n}}}"#
                );
                let req = if health {
                    client.get(format!("{base}/health"))
                } else {
                    client
                        .post(&url)
                        .header("X-API-Key", &key)
                        .header("Content-Type", "application/json")
                        .body(body)
                };
                let (latencies, errors) = (latencies.clone(), errors.clone());
                let scheduled = due;
                sent.push(tokio::spawn(async move {
                    match req.send().await {
                        Ok(r) if r.status().as_u16() == if health { 200 } else { 201 } => {
                            let _ = r.bytes().await;
                            let ms = scheduled.elapsed().as_secs_f64() * 1000.0;
                            let at = scheduled.duration_since(start).as_secs_f64();
                            latencies.lock().await.push((at, ms));
                        }
                        other => {
                            if errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                                match other {
                                    Ok(r) => eprintln!("   first error: HTTP {}", r.status()),
                                    Err(e) => eprintln!("   first error: {e:?}"),
                                }
                            }
                        }
                    }
                }));
                due += interval;
            }
            for s in sent {
                let _ = s.await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    let all = latencies.lock().await.clone();
    if std::env::var_os("LOAD_SERIES").is_some() {
        // p50 / p99 / max of each second of the run, by when requests were due.
        let started =
            chrono::Utc::now() - chrono::Duration::from_std(start.elapsed()).unwrap_or_default();
        println!("   second 0 began at {}", started.format("%H:%M:%S%.3f"));
        let mut secs: Vec<Vec<f64>> = vec![Vec::new(); seconds.ceil() as usize + 1];
        let last = secs.len() - 1;
        for (at, ms) in &all {
            secs[(*at as usize).min(last)].push(*ms);
        }
        for (i, mut v) in secs.into_iter().enumerate().filter(|(_, v)| !v.is_empty()) {
            v.sort_by(f64::total_cmp);
            println!(
                "   second {i:>3}: {:>5} answered, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                v.len(),
                pct(&v, 0.5),
                pct(&v, 0.99),
                v.last().copied().unwrap_or(f64::NAN)
            );
        }
    }
    let mut l: Vec<f64> = all.into_iter().map(|(_, ms)| ms).collect();
    l.sort_by(f64::total_cmp);
    let errors = errors.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "   offered {rate:.0} req/s over {rooms} rooms for {seconds:.0} s: {} answered ({:.0}/s), {errors} errors",
        l.len(),
        l.len() as f64 / took
    );
    println!(
        "   latency from the scheduled send: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        pct(&l, 0.5),
        pct(&l, 0.9),
        pct(&l, 0.99),
        pct(&l, 0.999),
        l.last().copied().unwrap_or(f64::NAN)
    );
}
