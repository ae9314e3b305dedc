//! The price table of usage costs.

use serde::{Deserialize, Serialize};

/// The price of one model, in USD as exact decimal strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Provider, e.g. `openai` (case-insensitive).
    pub provider: String,
    /// Model, e.g. `gpt-4o` (case-insensitive).
    pub model: String,
    /// Per million input tokens (LLM).
    #[serde(default = "zero")]
    pub input_per_million: String,
    /// Per million output tokens (LLM).
    #[serde(default = "zero")]
    pub output_per_million: String,
    /// Per minute of audio (STT).
    #[serde(default = "zero")]
    pub per_minute: String,
    /// Per thousand characters (TTS).
    #[serde(default = "zero")]
    pub per_thousand_chars: String,
}

fn zero() -> String {
    "0".into()
}

fn price(
    provider: &str,
    model: &str,
    input: &str,
    output: &str,
    minute: &str,
    chars: &str,
) -> ModelPrice {
    ModelPrice {
        provider: provider.into(),
        model: model.into(),
        input_per_million: input.into(),
        output_per_million: output.into(),
        per_minute: minute.into(),
        per_thousand_chars: chars.into(),
    }
}

/// List prices of common models (USD), used unless `prices` is configured.
pub fn default_prices() -> Vec<ModelPrice> {
    vec![
        price("openai", "gpt-4o", "2.50", "10.00", "0", "0"),
        price("openai", "gpt-4o-mini", "0.15", "0.60", "0", "0"),
        price("openai", "gpt-4.1", "2.00", "8.00", "0", "0"),
        price("openai", "gpt-4.1-mini", "0.40", "1.60", "0", "0"),
        price("anthropic", "claude-3-5-sonnet", "3.00", "15.00", "0", "0"),
        price("anthropic", "claude-3-5-haiku", "0.80", "4.00", "0", "0"),
        price("google", "gemini-2.0-flash", "0.10", "0.40", "0", "0"),
        price("deepgram", "nova-2", "0", "0", "0.0043", "0"),
        price("deepgram", "nova-3", "0", "0", "0.0043", "0"),
        price("openai", "whisper-1", "0", "0", "0.006", "0"),
        price("assemblyai", "best", "0", "0", "0.0062", "0"),
        price("openai", "tts-1", "0", "0", "0", "0.015"),
        price("openai", "tts-1-hd", "0", "0", "0", "0.030"),
        price("elevenlabs", "eleven_turbo_v2_5", "0", "0", "0", "0.15"),
        price("elevenlabs", "eleven_flash_v2_5", "0", "0", "0", "0.15"),
        price("cartesia", "sonic-2", "0", "0", "0", "0.038"),
    ]
}
