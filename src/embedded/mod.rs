//! Development and test doubles of the production dependencies.

pub mod livekit;
pub mod postgres;
