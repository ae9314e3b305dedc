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
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            free: 60,
            professional: 300,
            enterprise: 1000,
            anonymous: 60,
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
            ]))
            .merge(Env::prefixed("VOXPLANE_").ignore(&["config"]).split("__"))
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
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return fail(
                "database_url",
                "must start with postgres:// or postgresql://",
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
        Ok(self)
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
