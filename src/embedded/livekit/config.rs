//! How a simulator is configured.

use super::services::sip::CallProgress;
use std::path::PathBuf;

/// The API key `voxplane dev` and the tests use against the simulator
/// (the same key a LiveKit server started with `--dev` accepts).
pub const DEV_API_KEY: &str = "devkey";

/// The fixed development secret paired with [`DEV_API_KEY`].
///
/// LiveKit's `--dev` mode uses `secret`, which the token crate would accept
/// (HMAC takes keys of any length), but a real server outside dev mode
/// refuses secrets shorter than 32 characters; a long one keeps the same
/// configuration valid against both.
pub const DEV_API_SECRET: &str = "voxplane-dev-livekit-secret-0123456789abcdef";

/// Configuration of a [`LiveKitSim`](super::LiveKitSim).
#[derive(Clone)]
pub struct SimConfig {
    /// The API key tokens must be issued by (`iss`), and webhooks are signed with.
    pub api_key: String,
    /// The secret that signs and verifies the HS256 tokens.
    pub api_secret: String,
    /// Where webhooks are posted; `None` sends none. Plain `http://` only.
    pub webhook_url: Option<String>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where egress recordings are written (used by the egress service).
    pub recordings_dir: PathBuf,
    /// How placed SIP calls progress (dialing → ringing → active) on their own.
    pub call_progress: CallProgress,
}

impl SimConfig {
    /// Development defaults: key [`DEV_API_KEY`], secret [`DEV_API_SECRET`],
    /// no webhooks, any free port, recordings under `.local/recordings`,
    /// calls ringing after 1 s and answered 2 s later.
    pub fn dev_defaults() -> Self {
        Self {
            api_key: DEV_API_KEY.to_owned(),
            api_secret: DEV_API_SECRET.to_owned(),
            webhook_url: None,
            port: 0,
            recordings_dir: PathBuf::from(".local/recordings"),
            call_progress: CallProgress::default(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("SimConfig")
            .field("api_key", &self.api_key)
            .field("webhook_url", &self.webhook_url)
            .field("port", &self.port)
            .field("recordings_dir", &self.recordings_dir)
            .field("call_progress", &self.call_progress)
            .finish_non_exhaustive()
    }
}
