//! The `voxplane` binary: `serve`, `dev`, `migrate`, `admin …`,
//! `healthcheck`, `check-config`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use voxplane::config::Settings;
use voxplane::limits::plans::Plan;
use voxplane::{admin, dev};

#[derive(Parser)]
#[command(
    name = "voxplane",
    version,
    about = "Multi-tenant control plane for LiveKit voice"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API against DATABASE_URL (production).
    Serve {
        /// Run as the only node: start without the per-cluster secrets
        /// (accounts.jwt_secret), making them up (also VOXPLANE_STANDALONE=true).
        #[arg(long)]
        standalone: bool,
    },
    /// Serve on the embedded default: local Postgres, a demo project and key.
    Dev {
        /// Port to listen on (default 8080, or VOXPLANE_PORT).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Apply pending database migrations to DATABASE_URL.
    Migrate,
    /// Probe a running server's /health (container health checks): exit 0
    /// when it answers 200 within 2 s, else 1 with the reason.
    Healthcheck {
        /// URL to probe (default: http://127.0.0.1:<port>/health from HOST/PORT).
        url: Option<String>,
    },
    /// Load and validate the configuration (file and environment), then exit;
    /// an error names the setting.
    CheckConfig,
    /// Administrative tasks against DATABASE_URL.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Write the OpenAPI document and the Postman collection (for `make openapi`).
    #[command(hide = true)]
    GenDocs {
        /// Repository root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a project with a first API key.
    CreateProject {
        /// Project name.
        #[arg(long)]
        name: String,
        /// Plan: free, professional or enterprise.
        #[arg(long, default_value = "free", value_parser = parse_plan)]
        plan: Plan,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Set or clear a project's requests-per-minute override.
    SetRateLimit {
        /// Project id.
        #[arg(long)]
        project: i64,
        /// Requests per minute per key; omit to return to the plan's limit.
        #[arg(long)]
        per_minute: Option<u32>,
    },
    /// Create another API key for a project.
    CreateKey {
        /// Project id.
        #[arg(long)]
        project: i64,
        /// Key name.
        #[arg(long, default_value = "default")]
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Recompute quota counters from the tables they count and repair
    /// those that differ (every live project, or one).
    RecountQuotas {
        /// Only this project.
        #[arg(long)]
        project: Option<i64>,
    },
    /// List background jobs (oldest first), or only the failed ones.
    Jobs {
        /// Only the jobs kept as failed.
        #[arg(long)]
        failed: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Put a failed background job back in the queue, due now.
    RetryJob {
        /// Job id.
        #[arg(long)]
        id: i64,
    },
}

fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse()
}

#[tokio::main]
async fn main() {
    voxplane::install_crypto_provider();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::GenDocs { root } = &cli.command {
        std::fs::write(
            root.join("openapi/openapi.json"),
            voxplane::openapi::document_json(),
        )?;
        std::fs::write(
            root.join("postman/voxplane.postman_collection.json"),
            voxplane::openapi::postman_json(),
        )?;
        std::fs::write(
            root.join("postman/voxplane.postman_environment.json"),
            voxplane::openapi::postman_environment_json(),
        )?;
        println!(
            "wrote openapi/openapi.json and postman/voxplane.postman_{{collection,environment}}.json"
        );
        return Ok(());
    }
    if let Command::Healthcheck { url } = &cli.command {
        let url = match url {
            Some(url) => url.clone(),
            None => voxplane::healthcheck::default_url(&Settings::load()?)?,
        };
        return voxplane::healthcheck::run(&url).await;
    }
    let mut settings = Settings::load()?;
    if let Command::CheckConfig = cli.command {
        println!("configuration ok");
        return Ok(());
    }
    voxplane::telemetry::init(&settings);
    match cli.command {
        Command::Serve { standalone } => {
            settings.standalone |= standalone;
            voxplane::serve(settings).await
        }
        Command::Dev { port } => {
            if let Some(port) = port {
                settings.port = port;
            }
            dev::run(settings).await
        }
        Command::Migrate => {
            let url = settings.require_database_url()?;
            let applied = voxplane::db::run_migrations(url).await?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for v in applied {
                println!("applied {v}");
            }
            Ok(())
        }
        Command::Admin { command } => {
            let url = settings.require_database_url()?.to_owned();
            match command {
                AdminCommand::CreateProject { name, plan, json } => {
                    let out = admin::create_project(&url, &name, plan).await?;
                    admin::print(&out, json)
                }
                AdminCommand::SetRateLimit {
                    project,
                    per_minute,
                } => {
                    admin::set_rate_limit(&url, project, per_minute).await?;
                    match per_minute {
                        Some(n) => println!("project {project}: {n} requests per minute per key"),
                        None => println!("project {project}: plan rate limit"),
                    }
                    Ok(())
                }
                AdminCommand::CreateKey {
                    project,
                    name,
                    json,
                } => {
                    let out = admin::create_key(&url, project, &name)
                        .await
                        .context("create-key")?;
                    admin::print(&out, json)
                }
                AdminCommand::RecountQuotas { project } => {
                    let repaired = admin::recount_quotas(&url, project).await?;
                    for d in &repaired {
                        println!(
                            "project {}: {} was {}, now {}",
                            d.project_id, d.resource, d.counted, d.actual
                        );
                    }
                    println!("{} counter(s) repaired", repaired.len());
                    Ok(())
                }
                AdminCommand::Jobs { failed, limit } => {
                    for line in admin::list_jobs(&url, failed, limit).await? {
                        println!("{line}");
                    }
                    Ok(())
                }
                AdminCommand::RetryJob { id } => {
                    admin::retry_job(&url, id).await?;
                    println!("job {id} queued again");
                    Ok(())
                }
            }
        }
        Command::GenDocs { .. } | Command::Healthcheck { .. } | Command::CheckConfig => Ok(()),
    }
}
