//! Typed settings: documented defaults < optional `voxplane.toml` < environment.
//!
//! Environment: `VOXPLANE_<FIELD>` for every field, `__` separating nested
//! sections (`VOXPLANE_RATE_LIMITS__FREE=120`), plus the conventional
//! `DATABASE_URL`, `HOST` and `PORT`. `VOXPLANE_CONFIG` names the file when it
//! is not `./voxplane.toml`.

use crate::limits::plans::{Plan, PlanQuotas};
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

/// Requests per minute allowed per API key, by plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Free plan (contract: 60).
    pub free: u32,
    /// Professional plan (contract: 300).
    pub professional: u32,
    /// Enterprise plan (contract: 1000).
    pub enterprise: u32,
    /// Requests without a valid key, per client IP.
    pub anonymous: u32,
    /// Requests per signed-in account on `/auth` and `/projects`.
    pub account: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            free: 60,
            professional: 300,
            enterprise: 1000,
            anonymous: 60,
            account: 300,
        }
    }
}

impl RateLimits {
    /// The per-minute limit of a plan.
    pub fn for_plan(&self, plan: Plan) -> u32 {
        match plan {
            Plan::Free => self.free,
            Plan::Professional => self.professional,
            Plan::Enterprise => self.enterprise,
        }
    }
}

/// Quota limits by plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plans {
    /// Free plan limits.
    pub free: PlanQuotas,
    /// Professional plan limits.
    pub professional: PlanQuotas,
    /// Enterprise plan limits.
    pub enterprise: PlanQuotas,
}

impl Default for Plans {
    fn default() -> Self {
        Self {
            free: PlanQuotas::free(),
            professional: PlanQuotas::professional(),
            enterprise: PlanQuotas::enterprise(),
        }
    }
}

impl Plans {
    /// The quota limits of a plan.
    pub fn for_plan(&self, plan: Plan) -> &PlanQuotas {
        match plan {
            Plan::Free => &self.free,
            Plan::Professional => &self.professional,
            Plan::Enterprise => &self.enterprise,
        }
    }
}

/// Dashboard accounts: access tokens, sessions and brute-force protection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    /// HS256 secret of access tokens (at least 32 characters); without it a
    /// random one is made at start (tokens then die with the process and are
    /// not accepted by other nodes). Never logged.
    pub jwt_secret: Option<String>,
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a login (its refresh tokens), in days.
    pub refresh_token_ttl_days: u32,
    /// Plan of new accounts (the plan of the projects they create).
    pub default_plan: Plan,
    /// Failed logins per account (e-mail) before it is locked for `lockout_secs`.
    pub max_failures_per_account: u32,
    /// Failed logins per client address before it is locked for `lockout_secs`.
    pub max_failures_per_ip: u32,
    /// How long a locked account or address is refused, in seconds.
    pub lockout_secs: u64,
    /// Verification e-mails one address may request per hour.
    pub verification_resends_per_hour: u32,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl_secs: 900,
            refresh_token_ttl_days: 30,
            default_plan: Plan::Free,
            max_failures_per_account: 5,
            max_failures_per_ip: 50,
            lockout_secs: 900,
            verification_resends_per_hour: 3,
        }
    }
}

/// The price of one model, in USD as exact decimal strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Provider, e.g. `openai` (case-insensitive).
    pub provider: String,
    /// Model, e.g. `gpt-4o` (case-insensitive).
    pub model: String,
    /// Per million input tokens (LLM).
    #[serde(default = "zero")]
    pub input_per_million: String,
    /// Per million output tokens (LLM).
    #[serde(default = "zero")]
    pub output_per_million: String,
    /// Per minute of audio (STT).
    #[serde(default = "zero")]
    pub per_minute: String,
    /// Per thousand characters (TTS).
    #[serde(default = "zero")]
    pub per_thousand_chars: String,
}

fn zero() -> String {
    "0".into()
}

fn price(
    provider: &str,
    model: &str,
    input: &str,
    output: &str,
    minute: &str,
    chars: &str,
) -> ModelPrice {
    ModelPrice {
        provider: provider.into(),
        model: model.into(),
        input_per_million: input.into(),
        output_per_million: output.into(),
        per_minute: minute.into(),
        per_thousand_chars: chars.into(),
    }
}

/// List prices of common models (USD), used unless `prices` is configured.
pub fn default_prices() -> Vec<ModelPrice> {
    vec![
        price("openai", "gpt-4o", "2.50", "10.00", "0", "0"),
        price("openai", "gpt-4o-mini", "0.15", "0.60", "0", "0"),
        price("openai", "gpt-4.1", "2.00", "8.00", "0", "0"),
        price("openai", "gpt-4.1-mini", "0.40", "1.60", "0", "0"),
        price("anthropic", "claude-3-5-sonnet", "3.00", "15.00", "0", "0"),
        price("anthropic", "claude-3-5-haiku", "0.80", "4.00", "0", "0"),
        price("google", "gemini-2.0-flash", "0.10", "0.40", "0", "0"),
        price("deepgram", "nova-2", "0", "0", "0.0043", "0"),
        price("deepgram", "nova-3", "0", "0", "0.0043", "0"),
        price("openai", "whisper-1", "0", "0", "0.006", "0"),
        price("assemblyai", "best", "0", "0", "0.0062", "0"),
        price("openai", "tts-1", "0", "0", "0", "0.015"),
        price("openai", "tts-1-hd", "0", "0", "0", "0.030"),
        price("elevenlabs", "eleven_turbo_v2_5", "0", "0", "0", "0.15"),
        price("elevenlabs", "eleven_flash_v2_5", "0", "0", "0", "0.15"),
        price("cartesia", "sonic-2", "0", "0", "0", "0.038"),
    ]
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
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For`/`Forwarded`
    /// headers name the client; requests from any other peer are keyed by
    /// the peer address (environment: `[10.0.0.0/8, 172.30.0.10]`).
    pub trusted_proxies: Vec<String>,
    /// How long a cached API-key lookup is trusted, in ms (revocations made on
    /// another node take at most this long to apply here).
    pub key_cache_ttl_ms: u64,
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
            trusted_proxies: Vec::new(),
            key_cache_ttl_ms: 5000,
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

    /// Checks every value, naming the setting that is wrong.
    pub fn validated(self) -> anyhow::Result<Self> {
        let fail = |name: &str, why: &str| Err(anyhow::anyhow!("invalid setting `{name}`: {why}"));
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            return fail("host", "must be an IP address or localhost");
        }
        if self.database_pool_size == 0 {
            return fail("database_pool_size", "must be at least 1");
        }
        if self.database_timeout_ms < 10 {
            return fail("database_timeout_ms", "must be at least 10");
        }
        if self.json_body_limit < 1024 {
            return fail("json_body_limit", "must be at least 1024 bytes");
        }
        for (name, v) in [
            ("rate_limits.free", self.rate_limits.free),
            ("rate_limits.professional", self.rate_limits.professional),
            ("rate_limits.enterprise", self.rate_limits.enterprise),
            ("rate_limits.anonymous", self.rate_limits.anonymous),
            ("rate_limits.account", self.rate_limits.account),
        ] {
            if v == 0 {
                return fail(name, "must be at least 1 request per minute");
            }
        }
        if self.idempotency_ttl_hours == 0 {
            return fail("idempotency_ttl_hours", "must be at least 1");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return fail("log_level", "is not a valid tracing filter");
        }
        for origin in &self.cors_allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return fail(
                    "cors_allowed_origins",
                    "entries must be `*` or http(s) origins",
                );
            }
        }
        if let Some(url) = &self.redis_url
            && !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return fail(
                "redis_url",
                "must start with redis://, rediss://, redis+unix:// or unix://",
            );
        }
        if let Some(bad) = self.trusted_proxies.iter().find(|c| !is_cidr(c)) {
            return Err(anyhow::anyhow!(
                "invalid setting `trusted_proxies`: `{bad}` is not an address or CIDR"
            ));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return fail(
                "database_url",
                "must start with postgres:// or postgresql://",
            );
        }
        if self.recording_formats.is_empty()
            || self
                .recording_formats
                .iter()
                .any(|f| !matches!(f.as_str(), "ogg" | "mp4" | "wav"))
        {
            return fail(
                "recording_formats",
                "must be a non-empty list of ogg, mp4 and wav",
            );
        }
        if let Some(url) = &self.livekit_url {
            let scheme_ok = ["http://", "https://", "ws://", "wss://"]
                .iter()
                .any(|p| url.starts_with(p));
            if !scheme_ok {
                return fail(
                    "livekit_url",
                    "must start with http://, https://, ws:// or wss://",
                );
            }
            if self.livekit_api_key.as_deref().is_none_or(str::is_empty) {
                return fail("livekit_api_key", "is required when livekit_url is set");
            }
            if self.livekit_api_secret.as_deref().is_none_or(str::is_empty) {
                return fail("livekit_api_secret", "is required when livekit_url is set");
            }
        }
        if let Some(ws) = &self.livekit_ws_url
            && !(ws.starts_with("ws://") || ws.starts_with("wss://"))
        {
            return fail("livekit_ws_url", "must start with ws:// or wss://");
        }
        if self.livekit_timeout_ms < 100 {
            return fail("livekit_timeout_ms", "must be at least 100");
        }
        self.validate_accounts()?;
        if let Err((name, why)) = self.chat.validate() {
            return fail(name, why);
        }
        if self.events_poll_ms < 10 {
            return fail("events_poll_ms", "must be at least 10");
        }
        if self.events_coalesce_ms > 1000 {
            return fail("events_coalesce_ms", "must be at most 1000");
        }
        if self.calls_poll_ms < 10 {
            return fail("calls_poll_ms", "must be at least 10");
        }
        if self.reconcile_secs == 0 {
            return fail("reconcile_secs", "must be at least 1");
        }
        if self.webhook_timeout_ms < 100 {
            return fail("webhook_timeout_ms", "must be at least 100");
        }
        if self.webhook_retry_schedule_secs.is_empty() {
            return fail("webhook_retry_schedule_secs", "needs at least one attempt");
        }
        if self.webhook_concurrency == 0
            || self.monitor_buffer == 0
            || self.monitor_max_connections_per_project == 0
        {
            return fail(
                "webhook_concurrency/monitor_buffer/monitor_max_connections_per_project",
                "must be at least 1",
            );
        }
        for p in &self.prices {
            for v in [
                &p.input_per_million,
                &p.output_per_million,
                &p.per_minute,
                &p.per_thousand_chars,
            ] {
                let decimal = !v.is_empty()
                    && v.split('.').count() <= 2
                    && v.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && !v.starts_with('.')
                    && !v.ends_with('.');
                if !decimal {
                    return fail("prices", "prices are non-negative decimals like \"2.50\"");
                }
            }
        }
        if self.monitor_heartbeat_secs == 0 {
            return fail("monitor_heartbeat_secs", "must be at least 1");
        }
        if self.monitor_max_channels == 0 || self.monitor_messages_per_sec == 0 {
            return fail(
                "monitor_max_channels",
                "monitor_max_channels and monitor_messages_per_sec must be at least 1",
            );
        }
        if !(10..=86_400).contains(&self.connection_token_max_lifetime_secs) {
            return fail(
                "connection_token_max_lifetime_secs",
                "must be between 10 and 86400",
            );
        }
        for n in &self.sip_allowed_networks {
            if crate::events::ssrf::Cidr::parse(n).is_none() {
                return fail(
                    "sip_allowed_networks",
                    "each entry must be a CIDR like 10.1.0.0/16 or fd00::/8",
                );
            }
        }
        if !(1..=16).contains(&self.embedding_workers) {
            return fail("embedding_workers", "must be between 1 and 16");
        }
        if self.embedding_threads > 256 {
            return fail("embedding_threads", "must be at most 256");
        }
        if !(1..=100_000).contains(&self.kb_max_document_pages) {
            return fail("kb_max_document_pages", "must be between 1 and 100000");
        }
        if !(100..=600_000).contains(&self.kb_parse_timeout_ms) {
            return fail("kb_parse_timeout_ms", "must be between 100 and 600000");
        }
        if !(100..=600_000).contains(&self.kb_fetch_timeout_ms) {
            return fail("kb_fetch_timeout_ms", "must be between 100 and 600000");
        }
        if !(1024..=100 * 1024 * 1024).contains(&self.kb_fetch_max_bytes) {
            return fail("kb_fetch_max_bytes", "must be between 1024 and 104857600");
        }
        if !(1..=64).contains(&self.kb_crawl_concurrency) {
            return fail("kb_crawl_concurrency", "must be between 1 and 64");
        }
        if !(10..=1000).contains(&self.kb_hnsw_ef_search) {
            return fail("kb_hnsw_ef_search", "must be between 10 and 1000");
        }
        if self.embedding_query_threads > 256 {
            return fail("embedding_query_threads", "must be at most 256");
        }
        if !(1..=256).contains(&self.embedding_batch_size) {
            return fail("embedding_batch_size", "must be between 1 and 256");
        }
        Ok(self)
    }

    fn validate_accounts(&self) -> anyhow::Result<()> {
        let fail = |name: &str, why: &str| Err(anyhow::anyhow!("invalid setting `{name}`: {why}"));
        let base = &self.public_base_url;
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.ends_with('/') {
            return fail(
                "public_base_url",
                "must be an http(s) URL without a trailing slash",
            );
        }
        if self.product_name.trim().is_empty() {
            return fail("product_name", "must not be empty");
        }
        if let Some(url) = &self.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return fail("smtp_url", "must start with smtp:// or smtps://");
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return fail(
                "mail_from",
                "must be an address like `Name <user@example.com>`",
            );
        }
        if self.mail_max_attempts == 0 || self.mail_retry_base_ms == 0 {
            return fail(
                "mail_max_attempts",
                "attempts and mail_retry_base_ms must be at least 1",
            );
        }
        let a = &self.accounts;
        if a.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return fail("accounts.jwt_secret", "must be at least 32 characters");
        }
        if a.access_token_ttl_secs < 60 || a.refresh_token_ttl_days == 0 {
            return fail(
                "accounts.access_token_ttl_secs",
                "access tokens live at least 60 s and logins at least a day",
            );
        }
        if a.max_failures_per_account == 0 || a.max_failures_per_ip == 0 || a.lockout_secs == 0 {
            return fail(
                "accounts.max_failures_per_account",
                "failure limits and lockout_secs must be at least 1",
            );
        }
        if a.verification_resends_per_hour == 0 {
            return fail(
                "accounts.verification_resends_per_hour",
                "must be at least 1",
            );
        }
        Ok(())
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

/// Whether `s` is an IP address or a CIDR (`10.0.0.0/8`, `fd00::/8`).
fn is_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= max))
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Settings::default().validated().is_ok());
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let s = Settings {
            database_pool_size: 0,
            ..Settings::default()
        };
        let err = s.validated().unwrap_err().to_string();
        assert!(err.contains("database_pool_size"), "{err}");
        let mut s = Settings::default();
        s.rate_limits.free = 0;
        assert!(
            s.validated()
                .unwrap_err()
                .to_string()
                .contains("rate_limits.free")
        );
    }

    #[test]
    fn redis_url_and_trusted_proxies_are_checked() {
        for (redis, proxies, bad) in [
            (
                "redis://redis:6379/1",
                vec!["10.0.0.0/8", "fd00::/8", "127.0.0.1"],
                None,
            ),
            ("http://redis", vec![], Some("redis_url")),
            ("redis://r", vec!["10.0.0.0/33"], Some("trusted_proxies")),
            ("redis://r", vec!["proxy.local"], Some("trusted_proxies")),
        ] {
            let s = Settings {
                redis_url: Some(redis.into()),
                trusted_proxies: proxies.into_iter().map(String::from).collect(),
                ..Settings::default()
            };
            match (s.validated(), bad) {
                (Ok(_), None) => {}
                (Err(e), Some(name)) => assert!(e.to_string().contains(name), "{e}"),
                (r, _) => panic!("{redis}: {:?}", r.map(|_| ())),
            }
        }
    }

    #[test]
    fn env_overrides_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("voxplane.toml", "port = 9000\n[rate_limits]\nfree = 10\n")?;
            jail.set_env("VOXPLANE_RATE_LIMITS__FREE", "20");
            jail.set_env("DATABASE_URL", "postgres://u@h/db");
            let s: Settings = Settings::figment(Path::new("voxplane.toml")).extract()?;
            assert_eq!(s.port, 9000);
            assert_eq!(s.rate_limits.free, 20);
            assert_eq!(s.rate_limits.professional, 300);
            assert_eq!(s.database_url.as_deref(), Some("postgres://u@h/db"));
            Ok(())
        });
    }

    #[test]
    fn the_dev_env_file_does_not_break_configuration() {
        figment::Jail::expect_with(|jail| {
            // `source .local/dev.env` exports these; they are not settings.
            jail.set_env("VOXPLANE_URL", "http://127.0.0.1:8080");
            jail.set_env("VOXPLANE_API_KEY", "pk_x");
            jail.set_env("VOXPLANE_DEMO_EMAIL", "demo@example.com");
            let s: Settings = Settings::figment(Path::new("voxplane.toml")).extract()?;
            assert_eq!(s.port, 8080);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("voxplane.toml", "prot = 9000\n")?;
            let r: Result<Settings, _> = Settings::figment(Path::new("voxplane.toml")).extract();
            assert!(r.unwrap_err().to_string().contains("prot"));
            Ok(())
        });
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    /// The shipped example documents exactly the defaults.
    #[test]
    fn example_config_is_the_defaults() {
        let text = include_str!("../voxplane.example.toml");
        let from_file: Settings = Figment::from(Toml::string(text))
            .extract()
            .expect("example parses");
        let defaults = Settings::default();
        assert_eq!(
            serde_json::to_value(&from_file).expect("json"),
            serde_json::to_value(&defaults).expect("json")
        );
    }
}
