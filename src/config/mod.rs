//! Typed settings: documented defaults < optional `voxplane.toml` < environment.
//!
//! Environment: `VOXPLANE_<FIELD>` for every field, `__` separating nested
//! sections (`VOXPLANE_RATE_LIMITS__FREE=120`), plus the conventional
//! `DATABASE_URL`, `HOST` and `PORT`. `VOXPLANE_CONFIG` names the file when it
//! is not `./voxplane.toml`.

mod prices;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

pub use prices::{ModelPrice, default_prices};
pub use sections::{AccountSettings, Plans, RateLimits};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Output format of the logs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// All settings of a Voxplane process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds to.
    pub host: String,
    /// Port the HTTP server binds to (0 = any free port).
    pub port: u16,
    /// HTTP worker threads (0 = one per CPU core).
    pub workers: usize,
    /// Postgres URL; required by `serve`, `migrate` and `admin`.
    pub database_url: Option<String>,
    /// Maximum connections in the database pool.
    pub database_pool_size: u32,
    /// How long to wait for a pooled connection before answering 503, in ms.
    pub database_timeout_ms: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info` or `voxplane=debug,info` (RUST_LOG wins).
    pub log_level: String,
    /// Largest accepted JSON body, in bytes.
    pub json_body_limit: usize,
    /// Origins allowed by CORS; `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Redis shared by the nodes of a cluster (`redis://host:6379/1`), for
    /// rate limits and login throttles; without it they live in each process.
    pub redis_url: Option<String>,
    /// Longest wait for one Redis decision, in ms; past it (or with Redis
    /// down) the decision is taken in-process and counted in `/metrics`.
    pub redis_timeout_ms: u64,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For`/`Forwarded`
    /// headers name the client; requests from any other peer are keyed by
    /// the peer address (environment: `[10.0.0.0/8, 172.30.0.10]`).
    pub trusted_proxies: Vec<String>,
    /// How long a cached API-key lookup is trusted, in ms (revocations made on
    /// another node take at most this long to apply here).
    pub key_cache_ttl_ms: u64,
    /// `serve` runs as the only node: it may then start without the
    /// per-cluster secrets (`accounts.jwt_secret`), making its own (also
    /// `voxplane serve --standalone`). `dev` always runs alone.
    pub standalone: bool,
    /// On SIGTERM: how long in-flight requests and webhook deliveries may
    /// take to finish before the process exits anyway, in seconds (keep it
    /// under the orchestrator's kill timeout, e.g. compose's `stop_grace_period`).
    pub shutdown_grace_secs: u64,
    /// Requests per minute per API key, by plan.
    pub rate_limits: RateLimits,
    /// Quota limits by plan.
    pub plans: Plans,
    /// How long an `Idempotency-Key` is remembered, in hours.
    pub idempotency_ttl_hours: u32,
    /// Where users are sent to upgrade their plan (in QUOTA_EXCEEDED errors).
    pub upgrade_url: String,
    /// Directory for local state (embedded Postgres, dev files).
    pub data_dir: PathBuf,
    /// LiveKit server API URL (`LIVEKIT_URL`); without it LiveKit endpoints answer 503.
    pub livekit_url: Option<String>,
    /// LiveKit API key (`LIVEKIT_API_KEY`).
    pub livekit_api_key: Option<String>,
    /// LiveKit API secret (`LIVEKIT_API_SECRET`); never logged.
    pub livekit_api_secret: Option<String>,
    /// URL clients connect to (`LIVEKIT_WS_URL`); default: `LIVEKIT_URL` with ws(s)://.
    pub livekit_ws_url: Option<String>,
    /// Timeout of one LiveKit call, in ms; past it the request answers 503.
    pub livekit_timeout_ms: u64,
    /// Where LiveKit Egress writes recordings and downloads read them:
    /// `<recordings_dir>/<project id>/<room>/<key>.<ext>` (a directory the
    /// egress workers and Voxplane share).
    pub recordings_dir: PathBuf,
    /// Recording formats the egress can write: `ogg` and `mp4` for LiveKit
    /// Egress; `voxplane dev`'s simulator also writes `wav`. Others → 400.
    pub recording_formats: Vec<String>,
    /// Product name used in e-mail.
    pub product_name: String,
    /// Public URL of the dashboard; e-mailed links point below it.
    pub public_base_url: String,
    /// SMTP server of account e-mail (`SMTP_URL`): `smtp://host:25` (plain),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465` (TLS). Without it e-mail is written to `mail_dir`.
    pub smtp_url: Option<String>,
    /// Sender of account e-mail.
    pub mail_from: String,
    /// Directory .eml files are written to when no `smtp_url` is set
    /// (default: `<data_dir>/mail`).
    pub mail_dir: Option<PathBuf>,
    /// First retry of a failed send after this many ms, doubling each attempt.
    pub mail_retry_base_ms: u64,
    /// Sends tried before a message is given up (and logged as failed).
    pub mail_max_attempts: u32,
    /// Accounts, sessions and login protection.
    pub accounts: AccountSettings,
    /// How often the event dispatcher polls when no NOTIFY arrives, in ms.
    pub events_poll_ms: u64,
    /// Least time between two dispatcher rounds (and two NOTIFYs) of a
    /// process, in ms: a busy stream of events is handled in batches instead
    /// of one round per commit. Adds at most this much latency. With many
    /// monitor sockets on the node the dispatcher spaces its rounds further
    /// (up to 20 ms from 1,000 sockets on; `events::dispatcher`).
    pub events_coalesce_ms: u64,
    /// How often the calls worker reads the progress of SIP calls still
    /// dialing or ringing and ends calls past their max_call_duration, in ms.
    pub calls_poll_ms: u64,
    /// How often LiveKit's rooms, participants and egresses are compared with
    /// Voxplane's records to repair what a lost webhook left wrong, in seconds.
    pub reconcile_secs: u64,
    /// How often every process's job runner claims due background jobs
    /// (settling creates that called LiveKit), in ms; also the first
    /// retry's delay (doubling, at most 10 minutes).
    pub jobs_poll_ms: u64,
    /// Attempts of a background job before it is kept as failed.
    pub jobs_max_attempts: u32,
    /// How often every process checks the quota counters against the rows
    /// they count and repairs drift (logged), in seconds.
    pub quota_recount_secs: u64,
    /// Timeout of one webhook delivery attempt, in ms.
    pub webhook_timeout_ms: u64,
    /// Delay before each delivery attempt, in seconds (the first is usually 0);
    /// ±20 % jitter is applied. After the last one a delivery has failed. A
    /// manual redeliver or recover starts the schedule over. A `Retry-After`
    /// on a 429 or 503 makes the wait at least that long, up to the longest
    /// delay of the schedule.
    pub webhook_retry_schedule_secs: Vec<u64>,
    /// How long deliveries are also signed with the previous secret after a rotation, in hours.
    pub webhook_rotation_overlap_hours: u32,
    /// An endpoint failing continuously this long is disabled, in hours.
    pub webhook_disable_after_hours: u32,
    /// Allow webhook URLs on loopback addresses (`voxplane dev` turns this on).
    pub webhook_allow_loopback: bool,
    /// Allow webhook URLs on private, link-local and unique-local addresses.
    pub webhook_allow_private: bool,
    /// Deliveries sent at once by one process.
    pub webhook_concurrency: usize,
    /// Messages queued per monitor socket before it is closed as too slow (4008);
    /// above the dispatcher's batch of 500 so a burst never drops a reader that keeps up.
    pub monitor_buffer: usize,
    /// Monitor sockets allowed per project and process.
    pub monitor_max_connections_per_project: usize,
    /// Interval of monitor pings, in seconds; a socket silent for 3 intervals is closed.
    pub monitor_heartbeat_secs: u64,
    /// Channels one monitor socket may subscribe to at once.
    pub monitor_max_channels: usize,
    /// Messages per second a monitor socket may send (bursts of twice as
    /// many); beyond, messages are dropped with an `error` reply.
    pub monitor_messages_per_sec: u32,
    /// Longest lifetime (`exp - iat`, seconds) of a signed connection-details
    /// token; a `jti` in such a token makes it single-use.
    pub connection_token_max_lifetime_secs: u64,
    /// Networks (CIDRs) a SIP trunk `address` may point into although they
    /// are private or internal (your own SIP gear); public addresses are
    /// always allowed.
    pub sip_allowed_networks: Vec<String>,
    /// Price table for usage costs; unknown models are recorded with cost 0.
    pub prices: Vec<ModelPrice>,
    /// Directory of the embedding model (all-MiniLM-L6-v2: model.onnx and the
    /// tokenizer files), installed by `make setup`.
    pub embedding_model_dir: PathBuf,
    /// The ONNX Runtime shared library (≥ 1.24), loaded at run time.
    pub onnxruntime_path: PathBuf,
    /// Inference threads, each with its own model session.
    pub embedding_workers: usize,
    /// ONNX Runtime threads per inference thread (0 = one per CPU core).
    pub embedding_threads: usize,
    /// Texts per model call; requests that arrive together share a call.
    pub embedding_batch_size: usize,
    /// ONNX Runtime threads of a separate session for single texts (search
    /// queries, chunk edits), so that they never wait behind a document's
    /// batches; 0 = no separate session.
    pub embedding_query_threads: usize,
    /// Documents up to this many bytes are indexed within the request; larger
    /// ones are queued and indexed in the background.
    pub kb_inline_index_max_bytes: usize,
    /// Database time (ms) the full-text side of a hybrid search may take;
    /// past it the search answers from the vector ranking alone, flagged
    /// `partial`.
    pub kb_hybrid_keyword_budget_ms: u64,
    /// Candidates an HNSW search looks at, at least (`hnsw.ef_search`; 4× the
    /// rows wanted when that is more): higher finds more of the exact nearest
    /// neighbours (recall) at some latency.
    pub kb_hnsw_ef_search: i64,
    /// Pages a PDF may have (more: 413).
    pub kb_max_document_pages: u32,
    /// Time (ms) reading one uploaded or fetched PDF, DOCX or HTML document
    /// may take (more: 400).
    pub kb_parse_timeout_ms: u64,
    /// Time (ms) one web-source fetch may take (connect, headers and body).
    pub kb_fetch_timeout_ms: u64,
    /// Largest web page fetched, in bytes (larger: the page's status says so).
    pub kb_fetch_max_bytes: usize,
    /// Web sources crawled at once by one process.
    pub kb_crawl_concurrency: usize,
    /// Team chat (`/api/v1/chat/…`, `/ws/chat`, `/ws/call/…`).
    pub chat: crate::chat::config::ChatSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: 0,
            database_url: None,
            database_pool_size: 16,
            database_timeout_ms: 2000,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            json_body_limit: 256 * 1024,
            cors_allowed_origins: vec!["*".into()],
            redis_url: None,
            redis_timeout_ms: 100,
            trusted_proxies: Vec::new(),
            key_cache_ttl_ms: 5000,
            standalone: false,
            shutdown_grace_secs: 25,
            rate_limits: RateLimits::default(),
            plans: Plans::default(),
            idempotency_ttl_hours: 24,
            upgrade_url: "https://voxplane.dev/pricing".into(),
            data_dir: PathBuf::from(".local"),
            livekit_url: None,
            livekit_api_key: None,
            livekit_api_secret: None,
            livekit_ws_url: None,
            livekit_timeout_ms: 5000,
            recordings_dir: PathBuf::from(".local/recordings"),
            recording_formats: vec!["ogg".into(), "mp4".into()],
            product_name: "Voxplane".into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            mail_from: "Voxplane <no-reply@voxplane.localhost>".into(),
            mail_dir: None,
            mail_retry_base_ms: 30_000,
            mail_max_attempts: 8,
            accounts: AccountSettings::default(),
            events_poll_ms: 1000,
            events_coalesce_ms: 5,
            calls_poll_ms: 1000,
            reconcile_secs: 30,
            jobs_poll_ms: 1000,
            jobs_max_attempts: 20,
            quota_recount_secs: 3600,
            webhook_timeout_ms: 15_000,
            webhook_retry_schedule_secs: vec![0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000],
            webhook_rotation_overlap_hours: 24,
            webhook_disable_after_hours: 120,
            webhook_allow_loopback: false,
            webhook_allow_private: false,
            webhook_concurrency: 32,
            monitor_buffer: 1024,
            monitor_max_connections_per_project: 200,
            monitor_heartbeat_secs: 20,
            monitor_max_channels: 100,
            monitor_messages_per_sec: 20,
            connection_token_max_lifetime_secs: 600,
            sip_allowed_networks: Vec::new(),
            prices: default_prices(),
            embedding_model_dir: PathBuf::from(".local/models/all-minilm-l6-v2"),
            onnxruntime_path: PathBuf::from(".local/onnxruntime/libonnxruntime.so.1.24.4"),
            embedding_workers: 1,
            embedding_threads: 0,
            embedding_batch_size: 32,
            embedding_query_threads: 1,
            kb_inline_index_max_bytes: 32 * 1024,
            kb_hybrid_keyword_budget_ms: 50,
            kb_hnsw_ef_search: 300,
            kb_max_document_pages: 500,
            kb_parse_timeout_ms: 20_000,
            kb_fetch_timeout_ms: 15_000,
            kb_fetch_max_bytes: 5 * 1024 * 1024,
            kb_crawl_concurrency: 2,
            chat: Default::default(),
        }
    }
}

impl Settings {
    /// Loads defaults < config file < environment, then validates.
    pub fn load() -> anyhow::Result<Self> {
        let explicit = std::env::var_os("VOXPLANE_CONFIG").map(PathBuf::from);
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from("voxplane.toml"));
        if explicit.is_some() && !path.exists() {
            anyhow::bail!(
                "VOXPLANE_CONFIG names {}, which does not exist",
                path.display()
            );
        }
        Self::figment(&path)
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
            .and_then(|s: Settings| s.validated())
    }

    fn figment(path: &Path) -> Figment {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(path))
            .merge(Env::raw().only(&[
                "database_url",
                "host",
                "port",
                "livekit_url",
                "livekit_api_key",
                "livekit_api_secret",
                "livekit_ws_url",
                "smtp_url",
            ]))
            .merge(
                Env::prefixed("VOXPLANE_")
                    .ignore(&["config", "url", "api_key", "demo_email", "demo_password"])
                    .split("__"),
            )
    }

    /// The database URL, or an error saying how to provide one.
    pub fn require_database_url(&self) -> anyhow::Result<&str> {
        self.database_url.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "DATABASE_URL is not set (in dev, `source .local/dev.env` after `make run`)"
            )
        })
    }
}
