//! The HTTP server: its own thread and actix `System`, one worker, bound to
//! 127.0.0.1; Twirp routing as LiveKit's generated routers do it
//! (contract §3.1, §6.2 points 1–4).

use super::auth::{self, AuthFailure};
use super::control;
use super::services::{self, Call};
use super::state::Shared;
use super::twirp::{Codec, TwirpError};
use super::webhooks::WebhookWorker;
use actix_web::dev::ServerHandle;
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::rt::System;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest request body accepted.
const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// How long [`Running::stop`] waits for open connections to close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A serving simulator.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    connections: Arc<AtomicUsize>,
}

impl Running {
    /// Stops serving and waits until the port and every open connection
    /// are closed (a client holding a keep-alive connection then gets a
    /// transport error too, as with a real server going down).
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // The stop command is sent when called; the future only awaits completion.
        drop(self.handle.stop(false));
        let _ = thread.join();
        // The worker threads close their connections as they stop.
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Counts one open connection while it lives (kept in its extensions).
struct ConnectionGuard(Arc<AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Binds 127.0.0.1:`port` and serves `shared` on a new thread, which also
/// runs the webhook delivery task; returns once listening.
pub fn spawn(shared: Arc<Shared>, port: u16, worker: WebhookWorker) -> anyhow::Result<Running> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("LiveKit simulator: bind 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("livekit-sim".to_owned())
        .spawn(move || {
            let system = System::new();
            let started = system.block_on(async move {
                actix_web::rt::spawn(worker.run());
                actix_web::rt::spawn(super::services::sip::ticker(shared.clone()));
                let data = web::Data::from(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(BODY_LIMIT))
                        .configure(control::configure)
                        .default_service(web::to(twirp_entry))
                })
                .on_connect(move |_, extensions| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    extensions.insert(ConnectionGuard(counter.clone()));
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)?
                .run();
                let handle = server.handle();
                actix_web::rt::spawn(async move {
                    let _ = server.await;
                    // Stops the worker threads too, which drops their connections.
                    System::current().stop();
                });
                Ok::<_, std::io::Error>(handle)
            });
            let serving = started.is_ok();
            let _ = tx.send(started);
            if serving {
                let _ = system.run();
            }
        })
        .context("LiveKit simulator: spawn its thread")?;
    let handle = rx
        .recv_timeout(Duration::from_secs(10))
        .context("LiveKit simulator: the server did not start")?
        .context("LiveKit simulator: serve")?;
    Ok(Running {
        addr,
        handle,
        thread: Some(thread),
        connections,
    })
}

/// Every request outside `/_sim/`: auth middleware, then the Twirp router.
async fn twirp_entry(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let claims = match auth::authenticate(header, &shared.api_key, &shared.api_secret) {
        Ok(claims) => claims,
        Err(AuthFailure(msg)) => {
            return HttpResponse::Unauthorized()
                .content_type("text/plain; charset=utf-8")
                .body(msg);
        }
    };
    let call = |codec| Call {
        shared: &shared,
        claims: claims.as_ref(),
        codec,
        body: &body,
    };
    let rpc = req.path().rsplit('/').next().unwrap_or_default();
    // A failing RPC, when a control asked for one: nothing is changed.
    let failing = shared.read(|s| s.failing.contains(rpc));
    let response = match route(&req) {
        Ok(_) if failing => Err(TwirpError::new("unavailable", "simulated failure")),
        Ok((handler, codec)) => handler(&call(codec)),
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| e.response());
    // A slow reply, when a control asked for one (the change is made).
    if let Some(delay) = shared.read(|s| s.latency.get(rpc).copied()) {
        actix_web::rt::time::sleep(delay).await;
    }
    response
}

/// The handler and codec of a request, or Twirp's `bad_route`.
fn route(req: &HttpRequest) -> Result<(services::Handler, Codec), TwirpError> {
    let method = req.method().as_str();
    let path = req.path();
    if req.method() != Method::POST {
        return Err(TwirpError::bad_route(
            format!("unsupported method {method:?} (only POST is allowed)"),
            method,
            path,
        ));
    }
    let handler = path
        .strip_prefix("/twirp/")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(_, rpc)| !rpc.contains('/'))
        .and_then(|(service, rpc)| services::lookup(service, rpc))
        .ok_or_else(|| {
            TwirpError::bad_route(format!("no handler for path {path:?}"), method, path)
        })?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let codec = Codec::from_content_type(&content_type).ok_or_else(|| {
        TwirpError::bad_route(
            format!("unexpected Content-Type: {content_type:?}"),
            method,
            path,
        )
    })?;
    Ok((handler, codec))
}
