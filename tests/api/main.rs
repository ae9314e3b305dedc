//! Integration tests: the real server over HTTP on an embedded Postgres.
//! One binary with modules, so it links once.

#![allow(clippy::unwrap_used)]

mod common;
mod conformance;

mod accounts;
mod agents;
mod auth;
mod bodies;
mod chat;
mod cli;
mod cluster;
mod connection_details;
mod dashboard;
mod db_schema;
mod deploy;
mod docs;
mod errors;
mod idempotency;
mod jobs;
mod knowledge;
mod knowledge_docs;
mod knowledge_eval;
mod knowledge_formats;
mod knowledge_search;
mod knowledge_sources;
mod layers;
mod livekit;
mod livekit_batches;
mod monitor;
mod ops;
mod outcomes;
mod postman;
mod quota;
mod quota_counters;
mod rate_limits;
mod recordings;
mod security;
mod sessions;
mod side_effects;
mod simulator;
mod sip;
mod statuses;
mod supervisor;
mod transcripts;
mod webhooks;
