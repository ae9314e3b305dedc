//! `voxplane dev`: the embedded default. Starts Postgres from `.local/pg`,
//! migrates, seeds a demo project with a key on first run, writes
//! `.local/dev.env`, and serves until Ctrl-C/SIGTERM, then stops Postgres.

use crate::config::Settings;
use crate::db::{self, api_keys, projects};
use crate::embedded::livekit::{LiveKitSim, SimConfig};
use crate::embedded::postgres::{EmbeddedPostgres, PgOptions};
use crate::limits::plans::Plan;
use crate::state::AppState;
use anyhow::{Context, Result};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The database of the dev cluster.
pub const DATABASE: &str = "voxplane";

#[derive(Serialize, Deserialize)]
struct Seed {
    project_id: i64,
    api_key: String,
    /// The demo account owning the project (absent in seeds of older versions).
    #[serde(default)]
    account_email: String,
    #[serde(default)]
    account_password: String,
}

/// Address of the demo account.
const DEMO_EMAIL: &str = "demo@example.com";

/// Runs the dev server.
pub async fn run(settings: Settings) -> Result<()> {
    let dir = settings.data_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let opts = PgOptions {
        install_dir: dir.join("pg"),
        data_dir: dir.join("pgdata"),
        port: 0,
        ephemeral: false,
        settings: crate::embedded::postgres::memory_settings(),
    };
    let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(opts)).await??;
    pg.ensure_database(DATABASE).await?;
    let url = pg.url(DATABASE);
    db::run_migrations(&url).await?;
    let seed = seed(&url, &dir.join("dev-seed.json")).await?;

    let listener =
        std::net::TcpListener::bind((settings.host.as_str(), settings.port)).map_err(|e| {
            anyhow::anyhow!(
                "cannot bind {}:{}: {e} (try --port)",
                settings.host,
                settings.port
            )
        })?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");

    let mut settings = settings;
    settings.database_url = Some(url.clone());
    // Without an SMTP server, e-mail is written as .eml files to .local/mail.
    if settings.smtp_url.is_none() && settings.mail_dir.is_none() {
        settings.mail_dir = Some(dir.join("mail"));
    }
    let mail_line = match &settings.mail_dir {
        Some(d) if settings.smtp_url.is_none() => {
            format!("{}   (.eml files; no SMTP_URL set)", d.display())
        }
        _ => "sent over SMTP_URL".to_owned(),
    };
    // Local receivers (e.g. a webhook catcher on localhost) are allowed in dev.
    settings.webhook_allow_loopback = true;
    // LiveKit: the configured server, else the simulator, which sends its
    // webhooks back to this process.
    let sim = if settings.livekit_url.is_none() {
        let mut cfg = SimConfig::dev_defaults();
        cfg.webhook_url = Some(format!("{base}/livekit/webhook"));
        cfg.recordings_dir = settings.recordings_dir.clone();
        let sim = LiveKitSim::start(cfg)?;
        settings.livekit_url = Some(sim.url());
        settings.livekit_api_key = Some(sim.api_key().to_owned());
        settings.livekit_api_secret = Some(sim.api_secret().to_owned());
        // The simulator's egress also writes WAV.
        if !settings.recording_formats.iter().any(|f| f == "wav") {
            settings.recording_formats.push("wav".into());
        }
        Some(sim)
    } else {
        None
    };
    let env = format!(
        "# Written by `voxplane dev`; `source .local/dev.env` to use the API from a shell.\n\
         export VOXPLANE_URL={base}\nexport VOXPLANE_API_KEY={key}\nexport DATABASE_URL={url}\n\
         export LIVEKIT_URL={lk_url}\nexport LIVEKIT_API_KEY={lk_key}\nexport LIVEKIT_API_SECRET={lk_secret}\n\
         export VOXPLANE_DEMO_EMAIL={demo_email}\nexport VOXPLANE_DEMO_PASSWORD={demo_password}\n",
        key = seed.api_key,
        demo_email = seed.account_email,
        demo_password = seed.account_password,
        lk_url = settings.livekit_url.as_deref().unwrap_or_default(),
        lk_key = settings.livekit_api_key.as_deref().unwrap_or_default(),
        lk_secret = settings.livekit_api_secret.as_deref().unwrap_or_default(),
    );
    std::fs::write(dir.join("dev.env"), env)?;
    let pool = db::app_pool(&url, &settings);
    let livekit_line = match &sim {
        Some(sim) => format!(
            "{}   (built-in simulator; test controls under /_sim/)",
            sim.url()
        ),
        None => settings.livekit_url.clone().unwrap_or_default(),
    };
    let state = AppState::new(settings, pool);
    let workers = crate::workers::spawn_all(&state);
    let server = crate::http_server(state, listener)?;
    println!();
    println!(
        "  Voxplane is running (embedded Postgres on 127.0.0.1:{})",
        pg.port()
    );
    println!();
    println!("  Dashboard  {base}/dashboard   (sign in with the demo login below)");
    println!("  API        {base}/api/v1");
    println!("  Docs       {base}/docs");
    println!(
        "  API key    {}   (project {}, professional plan)",
        seed.api_key, seed.project_id
    );
    println!(
        "  Demo login {} / {}   (owner of the demo project)",
        seed.account_email, seed.account_password
    );
    println!("  Mail       {mail_line}");
    println!("  LiveKit    {livekit_line}");
    println!(
        "  Env file   {}   (source it for curl/newman)",
        dir.join("dev.env").display()
    );
    println!();
    println!("  curl -H \"X-API-Key: $VOXPLANE_API_KEY\" $VOXPLANE_URL/api/v1/project");
    println!();
    let result = server.await;
    drop(workers);
    drop(sim);
    drop(pg);
    println!("stopped");
    result.map_err(Into::into)
}

/// The demo project, key and account: reused while they still work, else created.
async fn seed(url: &str, path: &Path) -> Result<Seed> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    let previous = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Seed>(&text).ok());
    let mut seed = match previous {
        Some(seed)
            if api_keys::authenticate(&mut conn, &api_keys::hash_key(&seed.api_key))
                .await?
                .is_some() =>
        {
            seed
        }
        _ => {
            let project = projects::create(&mut conn, "Demo Project", Plan::Professional).await?;
            let (_, api_key) = api_keys::create(&mut conn, project.id, "dev", None).await?;
            Seed {
                project_id: project.id,
                api_key,
                account_email: String::new(),
                account_password: String::new(),
            }
        }
    };
    seed_account(&mut conn, &mut seed).await?;
    std::fs::write(path, serde_json::to_string_pretty(&seed)?)?;
    Ok(seed)
}

/// The demo account (verified, professional plan) owning the demo project.
async fn seed_account(conn: &mut AsyncPgConnection, seed: &mut Seed) -> Result<()> {
    use crate::auth::password;
    use crate::db::{accounts, members};
    let account = match accounts::find_by_email(conn, DEMO_EMAIL).await? {
        Some(a)
            if !seed.account_password.is_empty()
                && password::verify(&seed.account_password, &a.password_hash) =>
        {
            a
        }
        found => {
            let pw = format!("demo-{}", projects::random_alnum(12));
            let hash = password::hash(&pw).map_err(|e| anyhow::anyhow!("{e}"))?;
            let account = match found {
                Some(a) => {
                    accounts::set_password(conn, a.id, &hash).await?;
                    a
                }
                None => {
                    accounts::create(
                        conn,
                        DEMO_EMAIL,
                        "Demo User",
                        &hash,
                        Plan::Professional.as_str(),
                    )
                    .await?
                }
            };
            accounts::verify_email(conn, account.id, None).await?;
            seed.account_password = pw;
            account
        }
    };
    seed.account_email = account.email.clone();
    projects::set_owner(conn, seed.project_id, account.id).await?;
    members::add(conn, seed.project_id, account.id, "owner").await?;
    Ok(())
}
