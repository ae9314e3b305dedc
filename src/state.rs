//! The state shared by every request handler and background task.

use crate::auth::cache::KeyCache;
use crate::config::Settings;
use crate::db::Pool;
use crate::error::{ApiError, ApiResult};
use crate::limits::rate::{GovernorLimiter, RateLimiter};
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
    /// In-process limiter, kept for periodic sweeping.
    pub governor: Arc<GovernorLimiter>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The LiveKit server, when configured.
    pub livekit: Option<Arc<LiveKit>>,
    /// Room prefix → project id (None: no such project), for LiveKit webhooks.
    pub prefixes: Arc<DashMap<String, Option<i64>>>,
}

impl AppState {
    /// Builds the state from settings and a pool.
    pub fn new(settings: Settings, pool: Pool) -> Self {
        crate::install_crypto_provider();
        let governor = Arc::new(GovernorLimiter::default());
        Self {
            keys: Arc::new(KeyCache::new(Duration::from_millis(
                settings.key_cache_ttl_ms,
            ))),
            limiter: governor.clone(),
            governor,
            metrics: Arc::new(Metrics::default()),
            livekit: LiveKit::from_settings(&settings).map(Arc::new),
            prefixes: Arc::new(DashMap::new()),
            settings: Arc::new(settings),
            pool,
        }
    }
}

impl AppState {
    /// The LiveKit server, or 503 when none is configured.
    pub fn livekit(&self) -> ApiResult<&LiveKit> {
        self.livekit.as_deref().ok_or_else(|| {
            ApiError::Unavailable("LiveKit is not configured (set LIVEKIT_URL)".into())
        })
    }
}
