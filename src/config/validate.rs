//! Validation of the settings: every error names the setting.

use super::Settings;

impl Settings {
    /// The per-cluster secrets `serve` needs unless it runs alone: every
    /// node must share them, so none may be made up by one process. An
    /// error names the setting.
    pub fn require_cluster_secrets(&self) -> anyhow::Result<()> {
        if self.standalone {
            return Ok(());
        }
        if self.accounts.jwt_secret.is_none() {
            anyhow::bail!(
                "`accounts.jwt_secret` (VOXPLANE_ACCOUNTS__JWT_SECRET) is not set: every node of a \
                 cluster must sign access tokens with the same secret (32+ characters). \
                 Set it, or run a single node with `voxplane serve --standalone` \
                 (VOXPLANE_STANDALONE=true), which makes one up at each start"
            );
        }
        Ok(())
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
        if let Some(url) = &self.redis_url
            && let Err(e) = redis::Client::open(url.as_str())
        {
            return Err(anyhow::anyhow!("invalid setting `redis_url`: {e}"));
        }
        if !(5..=5000).contains(&self.redis_timeout_ms) {
            return fail("redis_timeout_ms", "must be between 5 and 5000");
        }
        if !(1..=3600).contains(&self.shutdown_grace_secs) {
            return fail("shutdown_grace_secs", "must be between 1 and 3600");
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
        if self.quota_recount_secs == 0 {
            return fail("quota_recount_secs", "must be at least 1");
        }
        if self.jobs_poll_ms < 10 {
            return fail("jobs_poll_ms", "must be at least 10");
        }
        if self.jobs_max_attempts == 0 {
            return fail("jobs_max_attempts", "must be at least 1");
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
