//! The monitor benchmark's client (not a test): `count` /ws/monitor sockets
//! subscribed to `rooms`, on one thread; prints `READY` once every socket is
//! subscribed, then waits for `expected` `participant.joined` messages per
//! socket and reports commit→socket latency: the time a message is read
//! minus the event's `timestamp` (its commit time, to the millisecond), over
//! every socket, and for the first socket to read each event (the time before
//! the fan-out, apart from the spread across the sockets).
//!
//! `cargo bench --bench monitor -- --bench <base url> <api key> <count> <expected>`
//! (bench/events.sh runs it). One thread, so that the server keeps the
//! other core of a 2-core machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[path = "common.rs"]
mod common;
use common::{bench_args, pct};

/// The event's time, from the `"timestamp":"…"` of a monitor message.
fn timestamp_ms(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    let at = text.find("\"timestamp\":\"")? + 13;
    let end = at + text[at..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&text[at..end])
        .ok()
        .map(|t| t.timestamp_micros() as f64 / 1000.0)
}

/// The event's number, from the `"identity":"p<n>"` bench/events.sh gives it.
fn event_number(text: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(text).ok()?;
    let at = text.find("\"identity\":\"p")? + 13;
    let end = at + text[at..].find('"')?;
    text[at..end].parse().ok()
}

fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A masked client text frame (RFC 6455 5.3; the mask may be any value).
fn client_frame(text: &str) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// One socket: the upgrade, the subscription, then frames until `expected`
/// events have arrived. A minimal WebSocket client (server frames are
/// unmasked and, here, never fragmented), so that reading costs the client
/// as little as possible and the figures are the server's.
async fn socket(
    addr: String,
    path: String,
    expected: usize,
    ready: Arc<AtomicUsize>,
    count: usize,
    closed_slow: Arc<AtomicUsize>,
) -> Vec<(usize, f64)> {
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed during the upgrade");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 101"), "upgrade refused");
            buf.drain(..end + 4);
            break;
        }
    }
    tcp.write_all(&client_frame(r#"{"action":"subscribe","channel":"rooms"}"#))
        .await
        .unwrap();
    let mut mine = Vec::with_capacity(expected);
    let mut chunk = vec![0u8; 64 * 1024];
    'read: while mine.len() < expected {
        // Whole frames first, then more bytes.
        let mut at = 0;
        while buf.len() - at >= 2 {
            let (op, len7) = (buf[at] & 0x0f, (buf[at + 1] & 0x7f) as usize);
            let (head, len) = match len7 {
                126 if buf.len() - at >= 4 => {
                    (4, u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize)
                }
                127 if buf.len() - at >= 10 => (
                    10,
                    u64::from_be_bytes(buf[at + 2..at + 10].try_into().unwrap()) as usize,
                ),
                126 | 127 => break,
                n => (2, n),
            };
            if buf.len() - at < head + len {
                break;
            }
            let payload = &buf[at + head..at + head + len];
            match op {
                1 if contains(payload, b"\"type\":\"participant.joined\"") => {
                    let t = now_ms();
                    let n = event_number(payload).expect("identity");
                    mine.push((n, t - timestamp_ms(payload).expect("timestamp")));
                }
                1 if contains(payload, b"\"type\":\"subscribed\"")
                    && ready.fetch_add(1, Ordering::Relaxed) + 1 == count =>
                {
                    println!("READY");
                }
                8 => {
                    if len >= 2 && u16::from_be_bytes([payload[0], payload[1]]) == 4008 {
                        closed_slow.fetch_add(1, Ordering::Relaxed);
                    }
                    break 'read;
                }
                _ => {}
            }
            at += head + len;
        }
        buf.drain(..at);
        if mine.len() >= expected {
            break;
        }
        let n = tcp.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    mine
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(rest) = bench_args(4, "monitor --bench <base url> <api key> <count> <expected>")
    else {
        return;
    };
    let addr = rest[0]
        .trim_end_matches('/')
        .trim_start_matches("http://")
        .to_owned();
    let path = format!("/ws/monitor?api_key={}", rest[1]);
    let count: usize = rest[2].parse().expect("count");
    let expected: usize = rest[3].parse().expect("expected");
    let ready = Arc::new(AtomicUsize::new(0));
    let closed_slow = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(count * expected)));
    let mut sockets = Vec::new();
    for _ in 0..count {
        let (addr, path, ready, closed_slow, latencies) = (
            addr.clone(),
            path.clone(),
            ready.clone(),
            closed_slow.clone(),
            latencies.clone(),
        );
        sockets.push(tokio::spawn(async move {
            let mine = socket(addr, path, expected, ready, count, closed_slow).await;
            latencies.lock().await.extend(mine);
        }));
    }
    let all = futures_util::future::join_all(sockets);
    if tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .is_err()
    {
        println!("timeout: not every socket received {expected} events");
    }
    let all = latencies.lock().await.clone();
    // The first socket to read an event: the latency before the fan-out
    // (commit, dispatcher, the first write) apart from the spread across
    // the sockets.
    let mut first = std::collections::HashMap::<usize, f64>::new();
    for (n, l) in &all {
        let f = first.entry(*n).or_insert(*l);
        *f = f.min(*l);
    }
    let mut first: Vec<f64> = first.into_values().collect();
    first.sort_by(f64::total_cmp);
    let mut lat: Vec<f64> = all.into_iter().map(|(_, l)| l).collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "messages: {} of {}; closed 4008: {}; commit→socket latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        count * expected,
        closed_slow.load(Ordering::Relaxed),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "first socket per event: p50 {:.1} ms, p99 {:.1} ms",
        pct(&first, 0.5),
        pct(&first, 0.99)
    );
}
