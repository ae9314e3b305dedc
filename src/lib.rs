//! Voxplane: a multi-tenant control plane for LiveKit voice.
//!
//! [`build_app`] assembles the HTTP application; `main` and the integration
//! tests both serve it through [`http_server`].

pub mod admin;
pub mod auth;
pub mod calls;
pub mod chat;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod decimal;
pub mod dev;
pub mod embedded;
pub mod error;
pub mod events;
pub mod healthcheck;
pub mod jobs;
pub mod knowledge;
pub mod lifecycle;
pub mod limits;
pub mod livekit;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod outcomes;
pub mod rag;
pub mod recordings;
pub mod rooms;
pub mod routes;
pub mod sip;
pub mod state;
pub mod supervisor;
pub mod telemetry;
pub mod transcripts;
pub mod validate;
pub mod webhooks;
pub mod workers;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use error::ApiError;
use state::AppState;

/// Installs the process-wide TLS crypto provider (ring), once. reqwest is
/// built with `rustls-no-provider` (through livekit-api), so building any
/// HTTP client before this panics.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The whole HTTP application for a state.
pub fn build_app(
    state: AppState,
    extra: fn(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let json_limit = state.settings.json_body_limit;
    let cors = cors(&state.settings.cors_allowed_origins);
    App::new()
        .app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(|err, _| ApiError::from(err).into()),
        )
        .app_data(web::PayloadConfig::default().limit(json_limit))
        .app_data(web::QueryConfig::default().error_handler(|err, _| ApiError::from(err).into()))
        .app_data(web::PathConfig::default().error_handler(|err, _| ApiError::from(err).into()))
        .configure(routes::ops::configure)
        .configure(routes::livekit_webhook::configure)
        .configure(routes::monitor::configure)
        .configure(chat::configure_sockets)
        .configure(dashboard::configure)
        .configure(extra)
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(middleware::json_input::json_input))
                .wrap(from_fn(middleware::idempotency::idempotency))
                .wrap(from_fn(middleware::api_guard::guard))
                .wrap(from_fn(dashboard::session::cookie_auth))
                .configure(routes::configure_api)
                .default_service(web::to(routes::not_found)),
        )
        .default_service(web::to(routes::not_found))
        .wrap(cors)
        .wrap(from_fn(middleware::observe::observe))
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allow_any_method()
        .allow_any_header()
        .expose_headers([
            "x-request-id",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "retry-after",
            "idempotent-replayed",
        ])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin();
    } else {
        for o in origins {
            cors = cors.allowed_origin(o);
        }
    }
    cors
}

/// An HTTP server for the app on an already bound listener.
pub fn http_server(state: AppState, listener: std::net::TcpListener) -> std::io::Result<Server> {
    http_server_with(state, listener, |_| {})
}

/// [`http_server`] with extra routes mounted outside `/api/v1` (tests use it
/// to mount a route that panics).
pub fn http_server_with(
    state: AppState,
    listener: std::net::TcpListener,
    extra: fn(&mut web::ServiceConfig),
) -> std::io::Result<Server> {
    build_server(state, listener, extra, false)
}

/// The server; with `own_signals` the caller handles SIGTERM/SIGINT
/// (`serve`), else actix stops on them.
fn build_server(
    state: AppState,
    listener: std::net::TcpListener,
    extra: fn(&mut web::ServiceConfig),
    own_signals: bool,
) -> std::io::Result<Server> {
    let workers = match state.settings.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    let state_grace = state.settings.shutdown_grace_secs;
    let mut server = HttpServer::new(move || build_app(state.clone(), extra))
        .workers(workers)
        // Small writes (a monitor event, a short response) go out at once:
        // with Nagle's algorithm a write waits for the ACK of the previous
        // one, which the peer's delayed ACK holds back for up to 40 ms.
        .tcp_nodelay(true)
        .backlog(4096)
        .shutdown_timeout(state_grace);
    if own_signals {
        server = server.disable_signals();
    }
    Ok(server.listen(listener)?.run())
}

/// `voxplane serve`: production, against `DATABASE_URL`. Refuses to start
/// without the per-cluster secrets unless `standalone`. On SIGTERM (or
/// SIGINT): stops accepting, closes monitor sockets with 1001, lets
/// in-flight requests and webhook deliveries finish within
/// `shutdown_grace_secs` (releasing the claims of those that do not), then
/// exits.
pub async fn serve(settings: config::Settings) -> anyhow::Result<()> {
    settings.require_cluster_secrets()?;
    let url = settings.require_database_url()?.to_owned();
    match db::pending_migrations(&url).await {
        Ok(pending) if !pending.is_empty() => anyhow::bail!(
            "the database has {} pending migration(s) ({}); run `voxplane migrate` first",
            pending.len(),
            pending.join(", ")
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not check migrations; starting anyway (/ready will tell)")
        }
    }
    let listener = std::net::TcpListener::bind((settings.host.as_str(), settings.port))
        .map_err(|e| anyhow::anyhow!("cannot bind {}:{}: {e}", settings.host, settings.port))?;
    let pool = db::app_pool(&url, &settings);
    let state = AppState::new(settings, pool);
    let workers = workers::spawn_all(&state);
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let server = build_server(state.clone(), listener, |_| {}, true)?;
    let handle = server.handle();
    let grace = std::time::Duration::from_secs(state.settings.shutdown_grace_secs);
    let lifecycle = state.lifecycle.clone();
    let hub = state.hub.clone();
    tokio::spawn(async move {
        let signal = stop_signal().await;
        tracing::info!(signal, grace_secs = grace.as_secs(), "shutting down");
        lifecycle.begin_shutdown();
        hub.close_all();
        handle.stop(true).await;
    });
    let result = server.await;
    workers.shutdown(grace).await;
    tracing::info!("stopped");
    result.map_err(Into::into)
}

/// Resolves with the name of the first SIGTERM or SIGINT.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
