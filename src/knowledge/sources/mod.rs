//! Web sources of a knowledge base: a URL (one page, or a same-site crawl
//! with depth and page limits, optionally seeded from the sitemap) fetched
//! by a background worker through the webhook SSRF guard, honouring
//! robots.txt, re-fetched every `refresh_hours` with conditional requests,
//! re-indexing only the pages whose content changed; each page keeps its
//! status and last error.

pub mod crawler;
pub mod fetch;
pub mod http;
pub mod robots;
pub mod service;
pub mod sitemap;
pub mod store;
