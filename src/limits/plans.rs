//! Plans and their quota limits.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A project's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Free tier.
    Free,
    /// Professional tier.
    Professional,
    /// Enterprise tier.
    Enterprise,
}

impl Plan {
    /// All plans, cheapest first.
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Professional, Plan::Enterprise];

    /// The identifier stored in the database and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
        }
    }

    /// The name shown to people (`plan_display`).
    pub fn display_name(self) -> &'static str {
        match self {
            Plan::Free => "Free",
            Plan::Professional => "Professional",
            Plan::Enterprise => "Enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "free" => Ok(Plan::Free),
            "professional" => Ok(Plan::Professional),
            "enterprise" => Ok(Plan::Enterprise),
            other => Err(format!(
                "unknown plan `{other}` (expected free, professional or enterprise)"
            )),
        }
    }
}

/// Quota limits of one plan. Counts are totals; `rooms` counts rooms active at
/// once; `sessions` and `recordings` count per calendar month (UTC).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlanQuotas {
    /// Projects one owner may have.
    pub projects: i64,
    /// Agent configurations per project.
    pub agents: i64,
    /// Knowledge bases per project.
    pub knowledge_bases: i64,
    /// SIP configurations per project (also gates outbound dialing).
    pub sip_configs: i64,
    /// Webhook endpoints per project.
    pub webhook_configs: i64,
    /// Members per project.
    pub team_members: i64,
    /// Rooms active at the same time.
    pub rooms: i64,
    /// Sessions started per calendar month.
    pub sessions: i64,
    /// Recordings started per calendar month.
    pub recordings: i64,
}

impl PlanQuotas {
    /// Default limits of the free plan.
    pub fn free() -> Self {
        Self {
            projects: 1,
            agents: 3,
            knowledge_bases: 2,
            sip_configs: 1,
            webhook_configs: 2,
            team_members: 2,
            rooms: 5,
            sessions: 100,
            recordings: 20,
        }
    }

    /// Default limits of the professional plan (as the contract's example).
    pub fn professional() -> Self {
        Self {
            projects: 10,
            agents: 50,
            knowledge_bases: 20,
            sip_configs: 10,
            webhook_configs: 10,
            team_members: 10,
            rooms: 100,
            sessions: 10_000,
            recordings: 1_000,
        }
    }

    /// Default limits of the enterprise plan.
    pub fn enterprise() -> Self {
        Self {
            projects: 100,
            agents: 500,
            knowledge_bases: 200,
            sip_configs: 100,
            webhook_configs: 50,
            team_members: 100,
            rooms: 1_000,
            sessions: 1_000_000,
            recordings: 100_000,
        }
    }
}

impl Default for PlanQuotas {
    fn default() -> Self {
        Self::free()
    }
}
