//! Storage: the SQLite pool, the migrations, and one module of queries per table group.
//!
//! The schema lives in `server/migrations/`. Times are milliseconds since the Unix epoch.
//! Queries are plain `sqlx::query` calls checked by the integration tests.

pub mod attachments;
pub mod client_states;
pub mod envelopes;
pub mod join_requests;
pub mod login_challenges;
pub mod login_events;
pub mod messages;
pub mod rooms;
pub mod secrets;
pub mod sessions;
pub mod totp;
pub mod trusted_networks;
pub mod users;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;

use crate::StartupError;

/// How long a connection waits for another writer before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the database at `database_url` (creating the file and its parent directory when
/// missing), in WAL mode with foreign keys on, and runs the migrations.
///
/// # Errors
/// [`StartupError`] for a bad URL, a directory that cannot be created, or a failed migration.
pub async fn connect(database_url: &str) -> Result<SqlitePool, StartupError> {
    let options = SqliteConnectOptions::from_str(database_url)
        .map_err(StartupError::DatabaseUrl)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    if let Some(parent) = options.get_filename().parent() {
        if !parent.as_os_str().is_empty() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(StartupError::DatabaseDirectory)?;
        }
    }
    let pool = SqlitePoolOptions::new().connect_with(options).await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Whether a database error is a violated unique or primary key constraint.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}
