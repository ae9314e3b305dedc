//! The state shared by every request handler and background task.

use crate::auth::cache::KeyCache;
use crate::config::Settings;
use crate::db::Pool;
use crate::error::{ApiError, ApiResult};
use crate::events::hub::Hub;
use crate::events::ssrf;
use crate::events::ssrf::Cidr;
use crate::limits::rate::{GovernorLimiter, RateLimiter};
use crate::limits::shared::{RedisLimiter, SharedStore};
use crate::livekit::LiveKit;
use crate::metrics::Metrics;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// Cheap to clone; registered once as `web::Data<AppState>`.
#[derive(Clone)]
pub struct AppState {
    /// Settings, validated at start.
    pub settings: Arc<Settings>,
    /// Postgres pool.
    pub pool: Pool,
    /// API-key lookups.
    pub keys: Arc<KeyCache>,
    /// Rate-limit backend.
    pub limiter: Arc<dyn RateLimiter>,
    /// In-process limiter, kept for periodic sweeping (and the fallback of
    /// the shared one).
    pub governor: Arc<GovernorLimiter>,
    /// The store shared by the nodes (Redis), when `redis_url` is set.
    pub shared: Option<Arc<SharedStore>>,
    /// `trusted_proxies`, parsed.
    pub proxies: Arc<Vec<Cidr>>,
    /// Background workers' health and the shutdown signal.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The LiveKit server, when configured.
    pub livekit: Option<Arc<LiveKit>>,
    /// Room prefix → project id (None: no such project), for LiveKit webhooks.
    pub prefixes: Arc<DashMap<String, Option<i64>>>,
    /// Signed-in accounts: access tokens, session and membership caches, login throttling.
    pub accounts: Arc<crate::auth::sessions::Accounts>,
    /// Account e-mail.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Monitor sockets of this process.
    pub hub: Arc<Hub>,
    /// Chat and call sockets of this process, and the chat's rate limits.
    pub chat: Arc<crate::chat::hub::ChatHub>,
    /// Rung after commits that wrote events; wakes the dispatchers.
    pub events_wake: crate::events::Wake,
    /// Wakes the webhook delivery workers.
    pub delivery_wake: Arc<tokio::sync::Notify>,
    /// API calls counted in memory until flushed.
    pub api_calls: Arc<crate::limits::api_calls::ApiCalls>,
    /// The embedding model (or why it is missing) and the background indexer's bell.
    pub rag: Arc<crate::rag::Rag>,
    /// Transcript lines waiting to be written, batched across requests.
    pub transcripts: Arc<crate::db::transcripts::TranscriptWriter>,
    /// Session starts waiting to be written, batched across requests.
    pub starts: Arc<crate::calls::starts::SessionStarter>,
    /// LiveKit webhooks waiting to be applied, batched across requests.
    pub webhooks_in: Arc<crate::livekit::applier::WebhookApplier>,
    /// This process's SIP dispatch-rule syncs, one at a time per project.
    pub sip_syncs: Arc<crate::sip::rules::Syncs>,
}

impl AppState {
    /// Builds the state from settings and a pool.
    pub fn new(settings: Settings, pool: Pool) -> Self {
        crate::install_crypto_provider();
        let governor = Arc::new(GovernorLimiter::default());
        let metrics = Arc::new(Metrics::default());
        let shared = settings.redis_url.as_deref().and_then(|url| {
            let timeout = Duration::from_millis(settings.redis_timeout_ms);
            SharedStore::connect(url, timeout, metrics.clone())
                .map_err(|e| tracing::error!(error = %e, "no shared store; limits stay in-process"))
                .ok()
                .map(Arc::new)
        });
        let limiter: Arc<dyn RateLimiter> = match &shared {
            Some(store) => Arc::new(RedisLimiter::new(store.clone(), governor.clone())),
            None => governor.clone(),
        };
        Self {
            keys: Arc::new(KeyCache::new(Duration::from_millis(
                settings.key_cache_ttl_ms,
            ))),
            limiter,
            governor,
            proxies: Arc::new(crate::middleware::client_addr::parse_proxies(
                &settings.trusted_proxies,
            )),
            lifecycle: Arc::new(crate::lifecycle::Lifecycle::default()),
            metrics,
            livekit: LiveKit::from_settings(&settings).map(Arc::new),
            prefixes: Arc::new(DashMap::new()),
            accounts: Arc::new(crate::auth::sessions::Accounts::new(
                &settings,
                shared.clone(),
            )),
            shared,
            mailer: Arc::new(crate::mail::Mailer::from_settings(&settings)),
            hub: Arc::new(Hub::new(
                settings.monitor_buffer,
                settings.monitor_max_connections_per_project,
                settings.monitor_max_channels,
            )),
            chat: Arc::new(crate::chat::hub::ChatHub::new(&settings.chat)),
            events_wake: Default::default(),
            delivery_wake: Arc::new(tokio::sync::Notify::new()),
            api_calls: Arc::new(Default::default()),
            rag: Arc::new(crate::rag::Rag::from_settings(&settings)),
            transcripts: Arc::new(crate::db::transcripts::TranscriptWriter::new(
                settings.database_url.as_deref(),
                Duration::from_millis(settings.database_timeout_ms),
            )),
            starts: Arc::new(Default::default()),
            webhooks_in: Arc::new(Default::default()),
            sip_syncs: Arc::new(Default::default()),
            settings: Arc::new(settings),
            pool,
        }
    }
}

impl AppState {
    /// Which internal destinations webhooks may call.
    pub fn webhook_allow(&self) -> ssrf::Allow {
        self.spine().webhook_allow()
    }

    /// The event spine's handles (its workers take these, not the state).
    pub fn spine(&self) -> crate::events::Spine {
        crate::events::Spine {
            settings: self.settings.clone(),
            pool: self.pool.clone(),
            hub: self.hub.clone(),
            chat: self.chat.clone(),
            events_wake: self.events_wake.clone(),
            delivery_wake: self.delivery_wake.clone(),
            lifecycle: self.lifecycle.clone(),
        }
    }

    /// The LiveKit server, or 503 when none is configured.
    pub fn livekit(&self) -> ApiResult<&LiveKit> {
        self.livekit.as_deref().ok_or_else(|| {
            ApiError::Unavailable("LiveKit is not configured (set LIVEKIT_URL)".into())
        })
    }
}
