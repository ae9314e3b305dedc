//! The `voxplane` binary: admin, migrate, serve's checks, and `dev` end to end.

use crate::common::{TestApp, cluster, fresh_database, json, root};
use reqwest::Method;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn voxplane() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_voxplane"));
    for (k, _) in std::env::vars() {
        if k.starts_with("VOXPLANE_") || k == "DATABASE_URL" || k == "HOST" || k == "PORT" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir());
    cmd
}

#[tokio::test]
async fn admin_create_project_key_is_rate_limited_as_a_free_plan() {
    let app = TestApp::spawn().await;
    let out = voxplane()
        .args([
            "admin",
            "create-project",
            "--name",
            "CLI Co",
            "--plan",
            "free",
            "--json",
        ])
        .env("DATABASE_URL", &app.db_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pk_"));
    assert_eq!(created["plan"], "free");
    assert!(created["room_prefix"].as_str().unwrap().len() >= 3);

    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..61 {
        let res = app
            .req_as(&key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap();
        remaining.push(
            res.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1);
    assert_eq!(*statuses.last().unwrap(), 429);
    assert_eq!(remaining[..3], [59, 58, 57]);

    let out = voxplane()
        .args([
            "admin",
            "create-key",
            "--project",
            &created["project_id"].to_string(),
            "--name",
            "second",
            "--json",
        ])
        .env("DATABASE_URL", &app.db_url)
        .output()
        .unwrap();
    assert!(out.status.success());
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    let res = app
        .req_as(
            second["api_key"].as_str().unwrap(),
            Method::GET,
            "/api/v1/project",
        )
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["project"]["id"], created["project_id"]);
}

#[test]
fn admin_and_config_errors_are_clear() {
    let _ = cluster();
    let out = voxplane()
        .args(["admin", "create-project", "--name", "x", "--plan", "gold"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown plan `gold`"));

    let out = voxplane()
        .args(["admin", "create-key", "--project", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL is not set"));

    let out = voxplane()
        .arg("serve")
        .env("VOXPLANE_DATABASE_POOL_SIZE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_pool_size"));

    let out = voxplane()
        .arg("serve")
        .env("VOXPLANE_PORT", "not-a-port")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("port")
    );
}

#[tokio::test]
async fn migrate_applies_once_and_serve_refuses_a_stale_schema() {
    let c = cluster();
    let name = format!("mig{}_{}", std::process::id(), rand_suffix());
    c.pg.ensure_database(&name).await.unwrap();
    let url = c.pg.url(&name);

    // Without the cluster's secrets serve refuses, naming the setting.
    let out = voxplane()
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("VOXPLANE_PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("accounts.jwt_secret"), "{err}");
    assert!(err.contains("--standalone"), "{err}");

    let out = voxplane()
        .args(["serve", "--standalone"])
        .env("DATABASE_URL", &url)
        .env("VOXPLANE_PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `voxplane migrate`"));

    let out = voxplane()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied"));
    let out = voxplane()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
}

fn rand_suffix() -> u32 {
    rand::random::<u32>() % 1_000_000
}

#[tokio::test]
async fn dev_serves_seeds_a_key_writes_dev_env_and_stops_postgres() {
    let _ = cluster();
    let dir = root()
        .join(".local")
        .join(format!("test-dev-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(root().join(".local/pg"), dir.join("pg")).unwrap();

    let mut first_key = String::new();
    for round in 0..2 {
        let port = voxplane::embedded::postgres::free_port().unwrap();
        let _ = std::fs::remove_file(dir.join("dev.env"));
        let mut child = voxplane()
            .args(["dev", "--port", &port.to_string()])
            .env("VOXPLANE_DATA_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("dev.log")).unwrap())
            .spawn()
            .unwrap();
        let env_file = dir.join("dev.env");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !env_file.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "dev exited with {status}: {}",
                    std::fs::read_to_string(dir.join("dev.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "dev did not write dev.env");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let env = std::fs::read_to_string(&env_file).unwrap();
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} missing from dev.env: {env}"))
                .to_owned()
        };
        let (url, key) = (var("VOXPLANE_URL"), var("VOXPLANE_API_KEY"));
        assert!(var("DATABASE_URL").starts_with("postgres://"));
        assert!(
            var("LIVEKIT_URL").starts_with("http://127.0.0.1:"),
            "the simulator's URL"
        );
        assert_eq!(var("LIVEKIT_API_KEY"), "devkey");
        assert!(!var("LIVEKIT_API_SECRET").is_empty());
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let res = client
            .get(format!("{url}/api/v1/project"))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap();
        let (status, body) = json(res).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["project"]["plan"], "professional");
        if round == 0 {
            first_key = key;
        } else {
            assert_eq!(key, first_key, "the demo key is kept across restarts");
        }

        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "dev exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "dev did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut out = String::new();
        use std::io::Read;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(out.contains(&first_key), "dev prints the key: {out}");
        // Postgres was stopped cleanly: no postmaster.pid remains.
        let pgdata = std::fs::read_link(dir.join("pgdata")).unwrap_or_else(|_| dir.join("pgdata"));
        assert!(
            !pgdata.join("postmaster.pid").exists(),
            "Postgres still running after dev stopped"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fresh_database_is_migrated() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_, url) = fresh_database().await;
        assert!(
            voxplane::db::pending_migrations(&url)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

/// Runs `voxplane healthcheck [url]` with extra environment: (success, stdout + stderr, time).
fn healthcheck(url: Option<&str>, env: &[(&str, &str)]) -> (bool, String, Duration) {
    let mut cmd = voxplane();
    cmd.arg("healthcheck");
    if let Some(url) = url {
        cmd.arg(url);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1), "{text}");
    }
    (out.status.success(), text, started.elapsed())
}

#[tokio::test]
async fn healthcheck_passes_against_a_serving_node() {
    let app = TestApp::spawn().await;
    let (ok, out, _) = healthcheck(Some(&app.url("/health")), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("answered 200"), "{out}");

    // Without a URL: loopback on the configured port, also for a 0.0.0.0 bind.
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    for host in ["127.0.0.1", "0.0.0.0"] {
        let (ok, out, _) = healthcheck(None, &[("HOST", host), ("PORT", port.as_str())]);
        assert!(ok, "{host}: {out}");
        assert!(
            out.contains(&format!("http://127.0.0.1:{port}/health")),
            "{out}"
        );
    }
}

#[tokio::test]
async fn healthcheck_fails_with_the_reason() {
    let app = TestApp::spawn().await;
    // Not 200: the reason is the status.
    let (ok, out, _) = healthcheck(Some(&app.url("/nope")), &[]);
    assert!(!ok);
    assert!(
        out.contains("unhealthy") && out.contains("status 404"),
        "{out}"
    );

    // Nothing listening: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/health");
    let (ok, out, _) = healthcheck(Some(&url), &[]);
    assert!(!ok);
    assert!(out.contains("connection refused"), "{out}");
    let (ok, out, _) = healthcheck(None, &[("PORT", &closed.to_string())]);
    assert!(!ok && out.contains("connection refused"), "{out}");

    // Accepts but never answers: a timeout after 2 s, not a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", silent.local_addr().unwrap());
    let (ok, out, took) = healthcheck(Some(&url), &[]);
    assert!(!ok);
    assert!(out.contains("timeout"), "{out}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    drop(silent);

    // A bad URL or a bad configuration is a failure too, with its reason.
    let (ok, out, _) = healthcheck(Some("not a url"), &[]);
    assert!(!ok && out.contains("invalid URL"), "{out}");
    let (ok, out, _) = healthcheck(None, &[("VOXPLANE_PORT", "x")]);
    assert!(!ok && out.to_lowercase().contains("port"), "{out}");
}
