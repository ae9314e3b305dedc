//! The test harness: one embedded Postgres cluster per test run, a migrated
//! template database, a fresh database per test (cloned from the template,
//! dropped after), and the real server spawned on port 0 by the same
//! `http_server` that `main` uses.

#![allow(dead_code)]

pub mod files;
pub mod receiver;
pub mod redis;
pub mod smtp;
pub mod website;

use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use voxplane::config::Settings;
use voxplane::db;
use voxplane::embedded::livekit::{LiveKitSim, SimConfig};
use voxplane::embedded::postgres::{EmbeddedPostgres, PgOptions};
use voxplane::limits::plans::Plan;
use voxplane::state::AppState;

const TEMPLATE: &str = "voxplane_template";

/// The cluster shared by every test of this run.
pub struct Cluster {
    pub pg: EmbeddedPostgres,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cluster, started (and the template migrated) on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        std::thread::spawn(init_cluster)
            .join()
            .unwrap_or_else(|_| panic!("cluster start failed"))
    })
}

fn init_cluster() -> Cluster {
    voxplane::install_crypto_provider();
    let local = root().join(".local");
    let base = local.join("test-pg");
    std::fs::create_dir_all(&base).expect("create .local/test-pg");
    let pg = EmbeddedPostgres::start(PgOptions {
        install_dir: local.join("pg"),
        data_dir: base.join(format!("run-{}", std::process::id())),
        port: 0,
        ephemeral: true,
        settings: vec![("max_connections".into(), "400".into())],
    })
    .unwrap_or_else(|e| panic!("embedded Postgres: {e:#}"));
    if let Some(parent) = pg.data_dir().parent() {
        sweep_dead_runs(parent);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        pg.ensure_database(TEMPLATE)
            .await
            .expect("template database");
        db::run_migrations(&pg.url(TEMPLATE))
            .await
            .expect("migrations");
    });
    Cluster { pg }
}

/// Removes clusters of earlier runs whose process is gone (their watchdog
/// has stopped them).
fn sweep_dead_runs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("run-")
            .and_then(|s| s.split('.').next())
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let postmaster = entry.path().join("postmaster.pid");
        let running = std::fs::read_to_string(&postmaster)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
            .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !running {
            let _ = std::fs::remove_dir_all(entry.path());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A fresh database cloned from the migrated template; returns (name, url).
pub async fn fresh_database() -> (String, String) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let c = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = AsyncPgConnection::establish(&c.pg.url("postgres"))
        .await
        .expect("admin connection");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE {TEMPLATE}"))
        .await
        .expect("create test database");
    let url = c.pg.url(&name);
    (name, url)
}

/// Drops a test database (blocking; used from Drop).
pub fn drop_database(name: &str) {
    let name = name.to_owned();
    let url = cluster().pg.url("postgres");
    let _ = std::thread::spawn(move || {
        use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(mut admin) = AsyncPgConnection::establish(&url).await {
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            }
        });
    })
    .join();
}

/// A project with a key, as the tests use them.
#[derive(Debug, Clone)]
pub struct TestProject {
    pub id: i64,
    pub key: String,
    pub key_id: i64,
    pub room_prefix: String,
}

/// Settings for a test app (small pools, one worker).
pub fn test_settings(db_url: &str) -> Settings {
    Settings {
        port: 0,
        workers: 1,
        database_url: Some(db_url.to_owned()),
        database_pool_size: 5,
        webhook_allow_loopback: true,
        events_poll_ms: 200,
        calls_poll_ms: 100,
        jobs_poll_ms: 100,
        // Tests drive LiveKit's webhooks themselves; the reconciler's
        // tests turn it on with a short period.
        reconcile_secs: 3600,
        data_dir: root().join(".local"),
        ..Settings::default()
    }
}

/// A running app on its own database.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub state: AppState,
    pub db_url: String,
    pub db_name: String,
    /// A professional-plan project created for the test.
    pub project: TestProject,
    /// The LiveKit simulator this app talks to (its webhooks come back here).
    pub sim: Option<LiveKitSim>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    owns_db: bool,
}

impl TestApp {
    /// An app with default test settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// An app whose settings are adjusted by `f`, with its own LiveKit simulator.
    pub async fn spawn_with(f: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_with_sim(|_| {}, f).await
    }

    /// An app whose simulator's settings are adjusted by `sim_f` and its own
    /// by `f`.
    pub async fn spawn_with_sim(
        sim_f: impl FnOnce(&mut SimConfig),
        f: impl FnOnce(&mut Settings),
    ) -> Self {
        let (db_name, db_url) = fresh_database().await;
        let mut settings = test_settings(&db_url);
        let mut sim_config = SimConfig {
            recordings_dir: root().join(".local/test-recordings").join(&db_name),
            // Calls ring and are answered quickly; tests that drive them
            // set their own progress.
            call_progress: voxplane::embedded::livekit::SimCallProgress {
                ring_after: std::time::Duration::from_millis(50),
                answer_after: Some(std::time::Duration::from_millis(150)),
            },
            ..SimConfig::dev_defaults()
        };
        sim_f(&mut sim_config);
        let sim = LiveKitSim::start(sim_config).expect("LiveKit simulator");
        settings.livekit_url = Some(sim.url());
        settings.livekit_api_key = Some(sim.api_key().to_owned());
        settings.livekit_api_secret = Some(sim.api_secret().to_owned());
        settings.recordings_dir = sim.recordings_dir().to_path_buf();
        settings.recording_formats = vec!["ogg".into(), "mp4".into(), "wav".into()];
        f(&mut settings);
        let mut app = Self::start(settings, db_name, db_url).await;
        sim.set_webhook_url(Some(app.url("/livekit/webhook")));
        app.sim = Some(sim);
        app.owns_db = true;
        app
    }

    /// The simulator (panics for apps started without one).
    pub fn sim(&self) -> &LiveKitSim {
        self.sim.as_ref().expect("this app has a LiveKit simulator")
    }

    /// An app on a database the caller owns (not dropped with the app).
    pub async fn spawn_on(db_url: &str, f: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = test_settings(db_url);
        f(&mut settings);
        Self::start(settings, String::new(), db_url.to_owned()).await
    }

    /// A second app process on the same database (another "node").
    pub async fn another_node(&self, f: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = test_settings(&self.db_url);
        settings.livekit_url = self.state.settings.livekit_url.clone();
        settings.livekit_api_key = self.state.settings.livekit_api_key.clone();
        settings.livekit_api_secret = self.state.settings.livekit_api_secret.clone();
        f(&mut settings);
        let mut app = Self::start(settings, self.db_name.clone(), self.db_url.clone()).await;
        app.project = self.project.clone();
        app
    }

    async fn start(settings: Settings, db_name: String, db_url: String) -> Self {
        let settings = settings.validated().expect("valid test settings");
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let pool = db::app_pool(
                    settings.database_url.as_deref().unwrap_or_default(),
                    &settings,
                );
                let state = AppState::new(settings, pool);
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().expect("addr");
                let server = voxplane::http_server_with(state.clone(), listener, test_routes)
                    .expect("server");
                let workers = voxplane::workers::spawn_all(&state);
                tx.send((addr, server.handle(), state)).expect("send");
                let _ = server.await;
                drop(workers);
            });
        });
        let (addr, handle, state) = rx.recv().expect("server started");
        voxplane::install_crypto_provider();
        let project = create_project_in(&db_url, "Test Project", Plan::Professional).await;
        TestApp {
            base: format!("http://{addr}"),
            client: Client::builder().no_proxy().build().expect("client"),
            state,
            db_url,
            db_name,
            project,
            sim: None,
            handle,
            thread: Some(thread),
            owns_db: false,
        }
    }

    /// Creates another project (with a key) in this app's database.
    pub async fn create_project(&self, plan: Plan) -> TestProject {
        create_project_in(&self.db_url, "Other Project", plan).await
    }

    /// A direct database connection.
    pub async fn conn(&self) -> diesel_async::AsyncPgConnection {
        use diesel_async::AsyncConnection;
        diesel_async::AsyncPgConnection::establish(&self.db_url)
            .await
            .expect("db connection")
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request without credentials.
    pub fn anon(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with the test project's key.
    pub fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.req_as(&self.project.key, method, path)
    }

    /// A request with a given key.
    pub fn req_as(&self, key: &str, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.anon(method, path).header("X-API-Key", key)
    }

    /// GET with the test key.
    pub async fn get(&self, path: &str) -> Response {
        self.req(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request")
    }

    /// POST JSON with the test key.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.req(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// PATCH JSON with the test key.
    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.req(reqwest::Method::PATCH, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// PUT a JSON body with the test key.
    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.req(reqwest::Method::PUT, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// DELETE with the test key.
    pub async fn delete(&self, path: &str) -> Response {
        self.req(reqwest::Method::DELETE, path)
            .send()
            .await
            .expect("request")
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        // The stop command is sent when called; its future only awaits completion.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut sim) = self.sim.take() {
            sim.stop();
        }
        if self.owns_db {
            drop_database(&self.db_name);
        }
    }
}

/// Routes only the tests mount: a handler that panics.
fn test_routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.route(
        "/__test/panic",
        actix_web::web::get().to(|| async {
            if std::hint::black_box(true) {
                panic!("deliberate test panic");
            }
            actix_web::HttpResponse::Ok().finish()
        }),
    );
}

/// Creates a project and key through the same code as `voxplane admin`.
pub async fn create_project_in(db_url: &str, name: &str, plan: Plan) -> TestProject {
    let c = voxplane::admin::create_project(db_url, name, plan)
        .await
        .expect("create project");
    TestProject {
        id: c.project_id,
        key: c.api_key,
        key_id: c.key_id,
        room_prefix: c.room_prefix,
    }
}

/// Status and JSON body of a response.
pub async fn json(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Asserts the error envelope with a status and code; returns the body.
pub async fn expect_error(res: Response, status: u16, code: &str) -> Value {
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (got, body) = json(res).await;
    assert_eq!(got, status, "status; body: {body}");
    assert!(ct.starts_with("application/json"), "content type {ct}");
    assert_eq!(body["code"], code, "code; body: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error message; body: {body}"
    );
    body
}

/// The one number `sql` returns as column `n`; `$1` is the test project's
/// id (a query that does not need it still has to use it, e.g. `$1 > 0`).
pub async fn scalar(app: &TestApp, sql: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.conn().await;
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Int8, _>(app.project.id)
        .get_result::<N>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// Runs `sql`, `$1` being the test project's id (see [`scalar`]).
pub async fn exec(app: &TestApp, sql: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Int8, _>(app.project.id)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
