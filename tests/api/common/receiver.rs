//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records
//! every request (headers and raw body) and answers from a script.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path (`/hook` unless a test sends elsewhere).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// What the receiver answers, in order; once empty, 200.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status with the body `status <code>`.
    Status(u16),
    /// This status with a `Retry-After` header of that many seconds.
    StatusRetryAfter(u16, u64),
    /// This status with a `Retry-After` header of this literal value.
    StatusRetryAfterValue(u16, String),
    /// This status with this body.
    Body(u16, Vec<u8>),
    /// This redirect status with a `Location` of this path on the receiver.
    Redirect(u16, String),
    /// 200 after this long.
    Hang(Duration),
    /// This status after this long.
    HangThen(Duration, u16),
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
}

/// A running receiver.
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
}

async fn record(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    shared.received.lock().unwrap().push(Received {
        path: req.path().to_owned(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let next = shared.script.lock().unwrap().pop_front();
    let status = |s: u16| HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap());
    match next {
        None => HttpResponse::Ok().body("ok"),
        Some(Reply::Status(s)) => status(s).body(format!("status {s}")),
        Some(Reply::StatusRetryAfter(s, secs)) => status(s)
            .insert_header(("Retry-After", secs.to_string()))
            .finish(),
        Some(Reply::StatusRetryAfterValue(s, value)) => {
            status(s).insert_header(("Retry-After", value)).finish()
        }
        Some(Reply::Body(s, body)) => status(s).body(body),
        Some(Reply::Redirect(s, path)) => {
            let host = req.connection_info().host().to_owned();
            status(s)
                .insert_header(("Location", format!("http://{host}{path}")))
                .finish()
        }
        Some(Reply::Hang(d)) => {
            tokio::time::sleep(d).await;
            HttpResponse::Ok().finish()
        }
        Some(Reply::HangThen(d, s)) => {
            tokio::time::sleep(d).await;
            status(s).body(format!("status {s}"))
        }
    }
}

impl Receiver {
    /// Starts a receiver answering `script` first, then 200.
    pub fn start(script: Vec<Reply>) -> Self {
        Self::start_on(0, script)
    }

    /// Starts on a given port (0 = any).
    pub fn start_on(port: u16, script: Vec<Reply>) -> Self {
        let shared = Arc::new(Shared::default());
        shared.script.lock().unwrap().extend(script);
        let data = web::Data::from(shared.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(record))
                })
                .workers(1)
                .bind(("127.0.0.1", port))
                .expect("bind receiver");
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((addr, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.recv().unwrap();
        Receiver {
            url: format!("http://{addr}/hook"),
            shared,
            handle,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} webhook requests, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (its port refuses connections afterwards).
    pub fn stop(&self) {
        drop(self.handle.stop(false));
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}
