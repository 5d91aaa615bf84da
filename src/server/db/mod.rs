//! The database: either backend, chosen by `DATABASE_URL`, and one repo module per table. Repos
//! write a query once and run it on whichever backend is live through [`with_db!`] (statements
//! that write, and transactions) or [`with_db_read!`] (reads alone); only the few statements
//! whose dialects differ are written twice, side by side.
//!
//! SQLite takes one writer at a time. With several connections writing, the others waited in
//! SQLite's busy handler, which sleeps (1, 2, 5 … 100 ms) and retries: under 16 concurrent
//! sends the admission's first write waited up to 1.3 s. So on SQLite every write goes through
//! one connection, and the writers queue for it in order in the pool (no sleeping, no retry);
//! reads have a pool of their own, which WAL lets read beside the writer. The send path's one
//! write, a finished exchange, is committed in groups ([`exchanges::Commits`]), and its quota
//! reservations stay in memory ([`quota::Holds`]).

pub mod api_tokens;
pub mod conversations;
pub mod exchanges;
pub mod jobs;
pub mod llm_keys;
pub mod login_failures;
pub mod notifications;
pub mod plans;
pub mod quota;
pub mod sessions;
pub mod signup_attempts;
pub mod usage_history;
pub mod usage_records;
pub mod users;

use crate::server::error::{Error, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// The database `DATABASE_URL` named. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(Sqlite),
    Postgres(PgPool),
}

/// SQLite's two pools: one connection for every write, in turn; several for reads.
#[derive(Clone, Debug)]
pub struct Sqlite {
    pub writer: SqlitePool,
    pub readers: SqlitePool,
    /// The reservations of sends under way (see [`quota::Holds`]).
    pub holds: std::sync::Arc<quota::Holds>,
    /// Exchanges waiting for the writer (see [`exchanges::Commits`]).
    pub commits: std::sync::Arc<exchanges::Commits>,
}

/// Runs the same code on whichever backend is live: `$pool` is bound to the concrete pool (on
/// SQLite the writer's), so `sqlx::query_as::<_, Row>` infers the backend and the SQL is
/// written once. For anything that writes; the body must not wait for another connection of
/// the pool while it holds one (SQLite's writer has one).
macro_rules! with_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        $crate::server::db::with_db!(@sqlite writer, $db, |$pool| $body)
    };
    (@sqlite $side:ident, $db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::server::db::Db::Sqlite(sqlite) => {
                let $pool = &sqlite.$side;
                $body
            }
            $crate::server::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_db;

/// [`with_db!`] for reads alone: on SQLite a reader's connection, beside the writer.
macro_rules! with_db_read {
    ($db:expr, |$pool:ident| $body:expr) => {
        $crate::server::db::with_db!(@sqlite readers, $db, |$pool| $body)
    };
}
pub(crate) use with_db_read;

/// How long a PostgreSQL connection may sit in the pool and still be used without a ping.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Turns on SQLite's query planner stability guarantee for a connection. Without it, once
/// statistics exist (`ANALYZE`, `PRAGMA optimize`), SQLite re-plans a cached statement every
/// time a parameter compared with an indexed column changes (`user_id = $1`): measured here, the
/// period's usage query went from 20 to 80 µs a call. Our statements are planned by their
/// indexes, not by the values bound to them.
async fn stable_query_plans(
    conn: &mut sqlx::SqliteConnection,
) -> std::result::Result<(), sqlx::Error> {
    use libsqlite3_sys::{sqlite3_db_config, SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK};
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked out of sqlx's worker thread for this call, and the variadic
    // arguments are the (int, int*) pair this option takes; a null pointer asks for no report.
    let rc = unsafe {
        sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc != SQLITE_OK {
        return Err(sqlx::Error::Configuration(
            format!("SQLite refused SQLITE_DBCONFIG_ENABLE_QPSG (code {rc})").into(),
        ));
    }
    Ok(())
}

impl Db {
    /// Connects (creating the SQLite file and its folder when missing).
    #[tracing::instrument(skip_all, err)]
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                // A connection that has waited in the pool is pinged before it is used (the
                // server may have restarted meanwhile); one just put back is not: sqlx pinged
                // every one, a round trip on every acquire, two of a send's eight.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for < PING_AFTER_IDLE {
                            return Ok(true);
                        }
                        // A failed ping closes the connection; the pool takes another.
                        Ok(sqlx::Connection::ping(conn).await.is_ok())
                    })
                })
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let file = options.get_filename();
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::internal(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            // No ping before each use: a file does not go away as a server does, and every
            // call to a SQLite connection is a round trip to its thread (the ping doubled the
            // send path's).
            let pool = |connections: u32| {
                SqlitePoolOptions::new()
                    .max_connections(connections)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(5))
                    .after_connect(|conn, _| Box::pin(stable_query_plans(conn)))
            };
            // The writer first: it creates the file.
            let writer = pool(1).connect_with(options.clone()).await?;
            let readers = pool(max_connections).connect_with(options).await?;
            Ok(Db::Sqlite(Sqlite {
                writer,
                readers,
                holds: Default::default(),
                commits: Default::default(),
            }))
        } else {
            Err(Error::internal(
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql://",
            ))
        }
    }

    /// Applies the migrations of the live backend (`migrations/sqlite` or `migrations/postgres`).
    #[tracing::instrument(skip_all, err)]
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(sqlite) => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&sqlite.writer)
                    .await?
            }
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Answers when the database does (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        with_db_read!(self, |pool| {
            sqlx::query("select 1").execute(pool).await?;
        });
        Ok(())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(sqlite) => {
                sqlite.readers.close().await;
                sqlite.writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// The current time at the precision both backends store (microseconds), so that a value
/// written and read back compares equal.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
