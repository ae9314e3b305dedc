//! [`Spine`]: what the spine's workers (dispatcher, notifier, delivery,
//! drain) need of the process. The process state builds it
//! (`AppState::spine`), so the spine depends on the layers below it
//! (settings, pool, lifecycle) and never on the state.

use super::hub::Hub;
use super::{Event, Wake, ssrf};
use crate::config::Settings;
use crate::db::Pool;
use crate::lifecycle::Lifecycle;
use std::sync::Arc;
use tokio::sync::Notify;

/// Sockets fed by the dispatcher besides the monitor hub (the chat's).
pub trait Listener: Send + Sync {
    /// How many sockets are connected to this process.
    fn connections(&self) -> usize;
    /// Pushes a round of events to the sockets they concern.
    fn publish(&self, events: &[Event]);
}

/// The handles of the event spine; cheap to clone.
#[derive(Clone)]
pub struct Spine {
    /// Settings, validated at start.
    pub settings: Arc<Settings>,
    /// Postgres pool.
    pub pool: Pool,
    /// Monitor sockets of this process.
    pub hub: Arc<Hub>,
    /// Chat and call sockets of this process.
    pub chat: Arc<dyn Listener>,
    /// Rung after commits that wrote events; wakes the dispatchers.
    pub events_wake: Wake,
    /// Wakes the webhook delivery workers.
    pub delivery_wake: Arc<Notify>,
    /// Workers' health and the shutdown signal.
    pub lifecycle: Arc<Lifecycle>,
}

impl Spine {
    /// Which internal destinations webhooks may call.
    pub fn webhook_allow(&self) -> ssrf::Allow {
        ssrf::Allow {
            loopback: self.settings.webhook_allow_loopback,
            private: self.settings.webhook_allow_private,
        }
    }
}
