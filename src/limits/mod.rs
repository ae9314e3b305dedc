//! Rate limits per API key, plan quotas, and the plans themselves.

pub mod api_calls;
pub mod plans;
pub mod quota;
pub mod rate;
pub mod recount;
pub mod shared;
