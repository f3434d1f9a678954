//! Storage: the database pool (SQLite or PostgreSQL through sqlx's `Any` driver), the
//! migrations, and one module of queries per table group.
//!
//! The schema lives in `server/migrations/sqlite/` and `server/migrations/postgres/`; both
//! backends run the same queries, written in the SQL the two share (`$1` parameters,
//! `ON CONFLICT`, `RETURNING`, integers for flags). Times are milliseconds since the Unix epoch.
//! Queries are plain `sqlx::query` calls checked by the integration tests.

pub mod attachments;
pub mod client_states;
pub mod envelopes;
pub mod join_requests;
pub mod legacy_factors;
pub mod login_attempts;
pub mod login_events;
pub mod messages;
pub mod rooms;
pub mod secrets;
pub mod sessions;
pub mod trusted_networks;
pub mod users;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection};

use crate::StartupError;

/// The database a URL names: an embedded SQLite file, or a PostgreSQL server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://path` (or `sqlite::memory:`): one file, one process.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: shared by every instance of a deployment.
    Postgres,
}

impl Backend {
    /// The backend of `database_url`, by its scheme.
    ///
    /// # Errors
    /// [`StartupError::DatabaseScheme`] for any other scheme.
    pub fn of(database_url: &str) -> Result<Self, StartupError> {
        if database_url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            Ok(Self::Postgres)
        } else {
            Err(StartupError::DatabaseScheme)
        }
    }

    /// The backend a connection of the pool talks to.
    pub fn of_connection(connection: &AnyConnection) -> Self {
        if connection.backend_name().eq_ignore_ascii_case("postgresql") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// How long a SQLite connection waits for another writer before failing with "database is
/// locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of a pool, per instance.
const MAX_CONNECTIONS: u32 = 16;

/// How often [`checkpoint_periodically`] moves a SQLite write-ahead log into the database.
pub const CHECKPOINT_PERIOD: Duration = Duration::from_millis(500);

/// Opens the database at `database_url` and runs its backend's migrations
/// (`server/migrations/sqlite/` or `server/migrations/postgres/`). A SQLite file is created
/// with its parent directory when missing, in WAL mode with foreign keys on.
///
/// # Errors
/// [`StartupError`] for a bad URL, a directory that cannot be created, a server that cannot
/// be reached, or a failed migration.
pub async fn connect(database_url: &str) -> Result<AnyPool, StartupError> {
    sqlx::any::install_default_drivers();
    let mut options = AnyPoolOptions::new().max_connections(MAX_CONNECTIONS);
    match Backend::of(database_url)? {
        Backend::Sqlite => {
            let sqlite = SqliteConnectOptions::from_str(database_url)
                .map_err(StartupError::DatabaseUrl)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT);
            // No connection checkpoints when its commit fills the log (SQLite's default,
            // which would make that commit, and every post waiting on it, also copy the log
            // into the database and fsync it): `checkpoint_periodically` does it beside the
            // writers instead.
            options = options.after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA wal_autocheckpoint = 0")
                        .execute(connection)
                        .await
                        .map(|_| ())
                })
            });
            let in_memory =
                database_url.contains(":memory:") || database_url.contains("mode=memory");
            if in_memory {
                // Every connection would open a database of its own: keep exactly one.
                options = options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            } else {
                if let Some(parent) = sqlite.get_filename().parent() {
                    if !parent.as_os_str().is_empty() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .map_err(StartupError::DatabaseDirectory)?;
                    }
                }
                // Creates the file and switches it to WAL, which the file keeps; the pool's
                // connections (opened from the URL) then share it.
                sqlite.connect().await?.close().await?;
            }
            // Foreign keys and the busy timeout are sqlx's defaults for every SQLite
            // connection, including those the pool opens from the URL.
            let pool = options.connect(database_url).await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Ok(pool)
        }
        Backend::Postgres => {
            let pool = options.connect(database_url).await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Ok(pool)
        }
    }
}

/// Checkpoints a SQLite database every [`CHECKPOINT_PERIOD`], for as long as the process
/// runs: a passive checkpoint (<https://www.sqlite.org/c3ref/wal_checkpoint_v2.html>) copies
/// what the write-ahead log holds into the database file and fsyncs it (on one of the pool's
/// connections), while writers go on appending to the log, so that no commit waits for it (the
/// pool's connections have automatic checkpoints off, see [`connect`]). A failure is logged
/// and tried again at the next period.
pub async fn checkpoint_periodically(pool: AnyPool) {
    let mut period = tokio::time::interval(CHECKPOINT_PERIOD);
    period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        period.tick().await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "cannot checkpoint the write-ahead log");
        }
    }
}

/// Begins a transaction on `connection` that will write, and returns it with the backend:
/// on SQLite taken for writing at once (`BEGIN IMMEDIATE`), since a deferred transaction
/// that reads first fails, without waiting, to upgrade when another connection wrote
/// meanwhile; on PostgreSQL a plain `BEGIN` (the caller takes the row or advisory locks it
/// needs).
///
/// # Errors
/// A database error.
pub async fn begin_write(
    connection: &mut AnyConnection,
) -> Result<(sqlx::Transaction<'_, sqlx::Any>, Backend), sqlx::Error> {
    let backend = Backend::of_connection(connection);
    let transaction = match backend {
        Backend::Sqlite => connection.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => connection.begin().await?,
    };
    Ok((transaction, backend))
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A 0-or-1 flag column (or a `CASE WHEN … THEN 1 ELSE 0 END`) as a `bool`: both backends
/// store flags as integers, since SQLite has no boolean type.
pub fn flag(value: i64) -> bool {
    value != 0
}

/// Whether a database error is a violated unique or primary key constraint.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}
