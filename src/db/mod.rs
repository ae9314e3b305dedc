//! Database access: the connection pool, embedded migrations, and the SQL of
//! the tables the foundation owns.

pub mod accounts;
pub mod agents;
pub mod api_keys;
pub mod batch;
pub mod kb_chunks;
pub mod kb_documents;
pub mod kb_jobs;
pub mod knowledge_bases;
pub mod members;
pub mod prepared;
pub mod projects;
pub mod rooms;
pub mod schema;
pub mod sessions;
pub mod sip_calls;
pub mod sql_types;
pub mod text_enum;
pub mod transcripts;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The shared async connection pool.
pub type Pool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// A connection checked out of the pool.
pub type PooledConn<'a> =
    bb8::PooledConnection<'a, AsyncDieselConnectionManager<AsyncPgConnection>>;

/// Why a connection could not be had from the pool.
pub type PoolError = bb8::RunError<diesel_async::pooled_connection::PoolError>;

/// Builds the pool without connecting: the first request connects, and a
/// database that is down makes requests answer 503 rather than the process fail.
///
/// A connection is checked out without a round trip: instead of `SELECT 1`,
/// the check is whether its socket is still open (a server restart closes it),
/// which costs nothing on the hot path.
pub fn pool(url: &str, max_size: u32, timeout: Duration) -> Pool {
    pool_with_session(url, max_size, timeout, String::new())
}

/// The API server's pool for `settings`: its size and timeout, and every
/// connection's session set up for knowledge search
/// ([`kb_chunks::session_setup`]), so that a search needs no transaction of
/// its own to set the HNSW scan up.
pub fn app_pool(url: &str, settings: &crate::config::Settings) -> Pool {
    pool_with_session(
        url,
        settings.database_pool_size,
        Duration::from_millis(settings.database_timeout_ms),
        kb_chunks::session_setup(settings.kb_hnsw_ef_search),
    )
}

/// [`pool`], each new connection running `setup` (SQL; none if empty) once.
fn pool_with_session(url: &str, max_size: u32, timeout: Duration, setup: String) -> Pool {
    use diesel_async::pooled_connection::{ManagerConfig, PoolableConnection, RecyclingMethod};
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
        let open = !PoolableConnection::is_broken(conn);
        Box::pin(async move {
            if open {
                Ok(())
            } else {
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ClosedConnection,
                    Box::new("connection closed".to_owned()),
                ))
            }
        })
    }));
    if !setup.is_empty() {
        let setup: std::sync::Arc<str> = setup.into();
        config.custom_setup = Box::new(move |url| {
            let (url, setup) = (url.to_owned(), setup.clone());
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                conn.batch_execute(&setup)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        });
    }
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(timeout)
        .build_unchecked(manager)
}

/// Runs every pending migration; returns the versions applied.
pub async fn run_migrations(url: &str) -> anyhow::Result<Vec<String>> {
    with_sync_connection(url, |conn| {
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
}

/// The migrations that have not been applied yet.
pub async fn pending_migrations(url: &str) -> anyhow::Result<Vec<String>> {
    with_sync_connection(url, |conn| {
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("could not read migrations: {e}"))?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    })
    .await
}

/// Reverts the most recent migration (used by the migration round-trip test).
pub async fn revert_all_migrations(url: &str) -> anyhow::Result<usize> {
    with_sync_connection(url, |conn| {
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("revert failed: {e}"))?;
        Ok(reverted.len())
    })
    .await
}

type SyncConn = diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;

async fn with_sync_connection<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut SyncConn) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    use diesel::Connection;
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = SyncConn::establish(&url)
            .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
        f(&mut conn)
    })
    .await?
}
