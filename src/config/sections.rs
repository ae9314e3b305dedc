//! Sections of the settings: rate limits, plan quotas, accounts.

use crate::limits::plans::{Plan, PlanQuotas};
use serde::{Deserialize, Serialize};

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
