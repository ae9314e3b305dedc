//! Account e-mail: messages rendered from `templates/`, written to the
//! `outbound_emails` outbox in the transaction of the change that sends them,
//! and delivered after commit over SMTP (lettre) or, without an SMTP server
//! (`voxplane dev`), as `.eml` files in a directory.

pub mod outbox;
pub mod templates;

use crate::config::Settings;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;
pub use templates::{Rendered, Template};

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Dir(PathBuf),
}

/// Sends rendered messages; shared by the process.
pub struct Mailer {
    transport: Transport,
    from: Option<Mailbox>,
    product: String,
    base_url: String,
    /// First retry delay; doubles with each attempt.
    pub retry_base: Duration,
    /// Attempts before a message is given up.
    pub max_attempts: u32,
}

/// Builds the SMTP transport of an `smtp://` / `smtps://` URL.
pub fn smtp_transport(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| anyhow::anyhow!("invalid smtp_url: {e}"))?
        .timeout(Some(Duration::from_secs(20)))
        .build())
}

impl Mailer {
    /// From the settings: SMTP when `smtp_url` is set, else files in
    /// `mail_dir` (default `<data_dir>/mail`).
    pub fn from_settings(settings: &Settings) -> Self {
        let dir = || {
            settings
                .mail_dir
                .clone()
                .unwrap_or_else(|| settings.data_dir.join("mail"))
        };
        let transport = match settings.smtp_url.as_deref().map(smtp_transport) {
            Some(Ok(t)) => Transport::Smtp(t),
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot use smtp_url; writing e-mail to files instead");
                Transport::Dir(dir())
            }
            None => Transport::Dir(dir()),
        };
        Self {
            transport,
            // Validated with the settings.
            from: settings.mail_from.parse().ok(),
            product: settings.product_name.clone(),
            base_url: settings.public_base_url.clone(),
            retry_base: Duration::from_millis(settings.mail_retry_base_ms),
            max_attempts: settings.mail_max_attempts,
        }
    }

    /// The directory messages are written to, when not sent over SMTP.
    pub fn dir(&self) -> Option<&std::path::Path> {
        match &self.transport {
            Transport::Dir(d) => Some(d),
            Transport::Smtp(_) => None,
        }
    }

    /// `<public_base_url>/<page>?token=<token>`.
    pub fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}?token={token}", self.base_url)
    }

    /// The address of a page of the dashboard (`sign-in`, …).
    pub fn page(&self, page: &str) -> String {
        format!("{}/{page}", self.base_url)
    }

    /// Renders a template with the product name added to `vars`.
    pub fn render(&self, t: Template, vars: &[(&str, &str)]) -> Rendered {
        let mut all = vec![("product", self.product.as_str())];
        all.extend_from_slice(vars);
        templates::render(t, &all)
    }

    /// Sends one message (HTML with a plain-text alternative).
    pub async fn send(&self, id: i64, kind: &str, to: &str, r: &Rendered) -> anyhow::Result<()> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| anyhow::anyhow!("bad recipient: {e}"))?;
        let message = Message::builder()
            .from(
                self.from
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("mail_from is not a valid address"))?,
            )
            .to(to)
            .subject(r.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                r.text.clone(),
                r.html.clone(),
            ))?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(message).await?;
            }
            Transport::Dir(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
                let path = dir.join(format!("{stamp}-{id}-{kind}.eml"));
                tokio::fs::write(&path, message.formatted()).await?;
                tracing::info!(path = %path.display(), kind, "e-mail written");
            }
        }
        Ok(())
    }
}
