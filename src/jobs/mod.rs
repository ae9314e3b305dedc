//! Durable background jobs (issue 19): one table, `background_jobs`, and
//! one runner in every process, in the style of crates.io's background
//! jobs.
//!
//! - **Enqueue** ([`enqueue`]) inside the transaction of the change that
//!   needs the job: the job is committed with it, or not at all.
//! - **Claim** ([`store::claim`]): `UPDATE … WHERE id IN (SELECT … FOR
//!   UPDATE SKIP LOCKED LIMIT n) RETURNING *` sets a lease (`locked_until`,
//!   `locked_by`) and counts the attempt, in one short statement. No
//!   transaction and no row lock is held while a job runs (a job calls
//!   LiveKit: no remote call inside a transaction); the lease keeps other
//!   runners away instead, and a job whose lease ran out (its process
//!   died) is claimed again by any process.
//! - **Outcome**: done → the row is deleted; failed → rescheduled with
//!   exponential backoff (`jobs_poll_ms` doubling, at most
//!   [`runner::MAX_BACKOFF`]) and the error recorded; after
//!   `jobs_max_attempts` it stays in the table as failed (`failed_at`,
//!   logged, `voxplane_jobs{state="failed"}`, `voxplane admin jobs`).
//!   The outcome is written only while the row still carries the claim's
//!   attempt number, so a runner that overran its lease does not overwrite
//!   its successor's.
//! - **Kinds** ([`Job`]): a typed registry; each kind's data is serde
//!   JSON. A type this build does not know (a newer version's) is logged
//!   and left in the table, put off, not dropped.

pub mod kinds;
pub mod runner;
pub mod store;

pub use kinds::Job;
pub use store::{cancel, enqueue};
