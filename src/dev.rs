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
use std::time::Duration;

/// The database of the dev cluster.
pub const DATABASE: &str = "voxplane";

#[derive(Serialize, Deserialize)]
struct Seed {
    project_id: i64,
    api_key: String,
}

/// Runs the dev server.
pub async fn run(settings: Settings) -> Result<()> {
    let dir = settings.data_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let opts = PgOptions {
        install_dir: dir.join("pg"),
        data_dir: dir.join("pgdata"),
        port: 0,
        ephemeral: false,
        settings: vec![],
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
    // LiveKit: the configured server, else the simulator, which sends its
    // webhooks back to this process.
    let sim = if settings.livekit_url.is_none() {
        let mut cfg = SimConfig::dev_defaults();
        cfg.webhook_url = Some(format!("{base}/livekit/webhook"));
        cfg.recordings_dir = dir.join("recordings");
        let sim = LiveKitSim::start(cfg)?;
        settings.livekit_url = Some(sim.url());
        settings.livekit_api_key = Some(sim.api_key().to_owned());
        settings.livekit_api_secret = Some(sim.api_secret().to_owned());
        Some(sim)
    } else {
        None
    };
    let env = format!(
        "# Written by `voxplane dev`; `source .local/dev.env` to use the API from a shell.\n\
         export VOXPLANE_URL={base}\nexport VOXPLANE_API_KEY={key}\nexport DATABASE_URL={url}\n\
         export LIVEKIT_URL={lk_url}\nexport LIVEKIT_API_KEY={lk_key}\nexport LIVEKIT_API_SECRET={lk_secret}\n",
        key = seed.api_key,
        lk_url = settings.livekit_url.as_deref().unwrap_or_default(),
        lk_key = settings.livekit_api_key.as_deref().unwrap_or_default(),
        lk_secret = settings.livekit_api_secret.as_deref().unwrap_or_default(),
    );
    std::fs::write(dir.join("dev.env"), env)?;
    let pool = db::pool(
        &url,
        settings.database_pool_size,
        Duration::from_millis(settings.database_timeout_ms),
    );
    let livekit_line = match &sim {
        Some(sim) => format!(
            "{}   (built-in simulator; test controls under /_sim/)",
            sim.url()
        ),
        None => settings.livekit_url.clone().unwrap_or_default(),
    };
    let state = AppState::new(settings, pool);
    let housekeeping = crate::workers::spawn_housekeeping(state.clone());
    let server = crate::http_server(state, listener)?;
    println!();
    println!(
        "  Voxplane is running (embedded Postgres on 127.0.0.1:{})",
        pg.port()
    );
    println!();
    println!("  API        {base}/api/v1");
    println!("  Docs       {base}/docs");
    println!(
        "  API key    {}   (project {}, professional plan)",
        seed.api_key, seed.project_id
    );
    println!("  LiveKit    {livekit_line}");
    println!(
        "  Env file   {}   (source it for curl/newman)",
        dir.join("dev.env").display()
    );
    println!();
    println!("  curl -H \"X-API-Key: $VOXPLANE_API_KEY\" $VOXPLANE_URL/api/v1/project");
    println!();
    let result = server.await;
    housekeeping.abort();
    drop(sim);
    drop(pg);
    println!("stopped");
    result.map_err(Into::into)
}

/// The demo project and key: reused while the key still works, else created.
async fn seed(url: &str, path: &Path) -> Result<Seed> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    if let Ok(text) = std::fs::read_to_string(path)
        && let Ok(seed) = serde_json::from_str::<Seed>(&text)
        && api_keys::authenticate(&mut conn, &api_keys::hash_key(&seed.api_key))
            .await?
            .is_some()
    {
        return Ok(seed);
    }
    let project = projects::create(&mut conn, "Demo Project", Plan::Professional).await?;
    let (_, api_key) = api_keys::create(&mut conn, project.id, "dev", None).await?;
    let seed = Seed {
        project_id: project.id,
        api_key,
    };
    std::fs::write(path, serde_json::to_string_pretty(&seed)?)?;
    Ok(seed)
}
