//! Documents of a knowledge base: adding them (the rules, shared by uploads,
//! ingest and crawled pages) and listing, reading and deleting them.

pub mod http;
pub mod service;
