//! The second-factor database: SQLite (a file, or memory) or PostgreSQL through sqlx's `Any`
//! driver, with the migrations of `mfa/migrations/`. Times are milliseconds since the Unix
//! epoch; steps are RFC 6238 time steps.
//!
//! Tables: `user_totp` (each user's sealed TOTP secrets and the last step a code was
//! accepted for), `recovery_codes` (MACs of unused recovery codes), `passkeys` (WebAuthn
//! credentials: public keys and counters), `passkey_registrations` (registrations between
//! their two halves) and `login_challenges` (logins waiting for their second factor, keyed by
//! the SHA-256 of the challenge, with the passkey ceremony's state when there is one).

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, ConnectOptions, Connection, FromRow};

use crate::error::{MfaError, MfaResult};

/// Connections of a pool.
const MAX_CONNECTIONS: u32 = 8;
/// How long a SQLite connection waits for another writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Opens the database at `database_url` and runs its migrations.
///
/// - `sqlite://FILE` (created with its folder when missing, in WAL mode) or
///   `sqlite::memory:` (one connection, gone with the process);
/// - `postgres://…`: the tables live in the schema that the URL's `search_path` option
///   names first (`?options=-c%20search_path%3Dmfa`), created when missing, so the store can
///   share a PostgreSQL database with the chat without sharing its tables or migrations.
///
/// # Errors
/// [`MfaError::BadRequest`] for a URL of another scheme, [`MfaError::Database`] otherwise.
pub async fn connect(database_url: &str) -> MfaResult<AnyPool> {
    sqlx::any::install_default_drivers();
    let mut options = AnyPoolOptions::new().max_connections(MAX_CONNECTIONS);
    if database_url.starts_with("sqlite:") {
        let sqlite = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT);
        if database_url.contains(":memory:") || database_url.contains("mode=memory") {
            // Every connection would open a database of its own: keep exactly one.
            options = options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            if let Some(parent) = sqlite.get_filename().parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|error| {
                        MfaError::BadRequest(format!("cannot create {}: {error}", parent.display()))
                    })?;
                }
            }
            // Creates the file and switches it to WAL, which the file keeps.
            sqlite.connect().await?.close().await?;
        }
        let pool = options.connect(database_url).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|error| MfaError::Database(error.into()))?;
        Ok(pool)
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        if let Some(schema) = search_path_schema(database_url) {
            let mut connection = sqlx::AnyConnection::connect(database_url).await?;
            // The schema name comes from the operator's URL; quoted, it cannot be SQL.
            let quoted = schema.replace('"', "\"\"");
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{quoted}\""))
                .execute(&mut connection)
                .await?;
            connection.close().await?;
        }
        let pool = options.connect(database_url).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| MfaError::Database(error.into()))?;
        Ok(pool)
    } else {
        Err(MfaError::BadRequest(
            "the database url must start with sqlite:, postgres:// or postgresql://".to_owned(),
        ))
    }
}

/// The first schema of a `search_path` set in a PostgreSQL URL's `options` parameter.
fn search_path_schema(database_url: &str) -> Option<String> {
    let url = url::Url::parse(database_url).ok()?;
    let options = url
        .query_pairs()
        .find(|(key, _)| key == "options")
        .map(|(_, value)| value.into_owned())?;
    let (_, rest) = options.split_once("search_path=")?;
    let first = rest.split([',', ' ']).next()?.trim_matches('"');
    (!first.is_empty()).then(|| first.to_owned())
}

/// The URL of the store in PostgreSQL database `database_url`, in schema `schema`: the URL
/// with `options=-c search_path=SCHEMA` added.
pub fn postgres_schema_url(database_url: &str, schema: &str) -> String {
    let separator = if database_url.contains('?') { '&' } else { '?' };
    format!("{database_url}{separator}options=-c%20search_path%3D{schema}")
}

fn to_i64(value: u64) -> MfaResult<i64> {
    i64::try_from(value).map_err(|_| MfaError::Corrupt("value out of range".to_owned()))
}

/// A user's TOTP row.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The active secret, sealed; `None` while TOTP is not enabled.
    pub sealed_secret: Option<Vec<u8>>,
    /// The secret shown by the latest setup, sealed; `None` when there is none.
    pub sealed_pending_secret: Option<Vec<u8>>,
    /// The last time step whose code was accepted (0: none yet).
    pub last_step: u64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("enabled", &self.sealed_secret.is_some())
            .field("pending", &self.sealed_pending_secret.is_some())
            .field("last_step", &self.last_step)
            .finish()
    }
}

#[derive(FromRow)]
struct TotpRow {
    sealed_secret: Option<Vec<u8>>,
    sealed_pending_secret: Option<Vec<u8>>,
    last_step: i64,
}

impl TotpRow {
    fn into_record(self) -> MfaResult<TotpRecord> {
        Ok(TotpRecord {
            sealed_secret: self.sealed_secret,
            sealed_pending_secret: self.sealed_pending_secret,
            last_step: u64::try_from(self.last_step)
                .map_err(|_| MfaError::Corrupt("user_totp.last_step".to_owned()))?,
        })
    }
}

/// The TOTP row of `username`, if they ever set TOTP up.
///
/// # Errors
/// A database error, or [`MfaError::Corrupt`] for a negative stored step.
pub async fn find_totp(pool: &AnyPool, username: &str) -> MfaResult<Option<TotpRecord>> {
    let row: Option<TotpRow> = sqlx::query_as(
        "SELECT sealed_secret, sealed_pending_secret, last_step FROM user_totp \
         WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(TotpRow::into_record).transpose()
}

/// Stores a pending secret for `username`, replacing an earlier pending one; the active
/// secret, if any, is left alone.
///
/// # Errors
/// A database error.
pub async fn set_pending(pool: &AnyPool, username: &str, sealed: &[u8]) -> MfaResult<()> {
    sqlx::query(
        "INSERT INTO user_totp (username, sealed_pending_secret) VALUES ($1, $2) \
         ON CONFLICT (username) DO UPDATE SET \
         sealed_pending_secret = excluded.sealed_pending_secret",
    )
    .bind(username)
    .bind(sealed)
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes the pending secret `sealed_pending` the active one, records `step` as used, and
/// replaces the user's recovery codes with `recovery_code_macs`, in one transaction.
///
/// # Errors
/// [`MfaError::Conflict`] when the pending secret changed meanwhile (another setup) or TOTP
/// was enabled meanwhile; a database error otherwise.
pub async fn enable_totp(
    pool: &AnyPool,
    username: &str,
    sealed_pending: &[u8],
    step: u64,
    recovery_code_macs: &[[u8; 32]],
) -> MfaResult<()> {
    let mut transaction = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE user_totp SET sealed_secret = sealed_pending_secret, \
         sealed_pending_secret = NULL, last_step = $1 \
         WHERE username = $2 AND sealed_pending_secret = $3 AND sealed_secret IS NULL",
    )
    .bind(to_i64(step)?)
    .bind(username)
    .bind(sealed_pending)
    .execute(&mut *transaction)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(MfaError::conflict("totp setup changed, start again"));
    }
    set_recovery_codes(&mut transaction, username, recovery_code_macs).await?;
    transaction.commit().await?;
    Ok(())
}

/// Makes `recovery_code_macs` the only recovery codes of `username`, within `transaction`.
async fn set_recovery_codes(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    username: &str,
    recovery_code_macs: &[[u8; 32]],
) -> MfaResult<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE username = $1")
        .bind(username)
        .execute(&mut **transaction)
        .await?;
    for mac in recovery_code_macs {
        sqlx::query("INSERT INTO recovery_codes (username, code_mac) VALUES ($1, $2)")
            .bind(username)
            .bind(mac.as_slice())
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// Records that a code of `step` was accepted for `username`, unless a code of this step or
/// a later one was accepted already; returns whether it was recorded. This is the check that
/// makes a code single-use even when two requests carry it at once.
///
/// # Errors
/// A database error.
pub async fn advance_step(pool: &AnyPool, username: &str, step: u64) -> MfaResult<bool> {
    let step = to_i64(step)?;
    let updated = sqlx::query(
        "UPDATE user_totp SET last_step = $1 \
         WHERE username = $2 AND sealed_secret IS NOT NULL AND last_step < $3",
    )
    .bind(step)
    .bind(username)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Spends the recovery code with this MAC; returns whether it was there (unused).
///
/// # Errors
/// A database error.
pub async fn spend_recovery_code(
    pool: &AnyPool,
    username: &str,
    code_mac: &[u8; 32],
) -> MfaResult<bool> {
    let deleted = sqlx::query("DELETE FROM recovery_codes WHERE username = $1 AND code_mac = $2")
        .bind(username)
        .bind(code_mac.as_slice())
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// How many unused recovery codes `username` has.
///
/// # Errors
/// A database error.
pub async fn recovery_codes_left(pool: &AnyPool, username: &str) -> MfaResult<u32> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE username = $1")
        .bind(username)
        .fetch_one(pool)
        .await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Deletes rows of `username` from `tables` in one transaction.
async fn delete_rows(pool: &AnyPool, username: &str, tables: &[&str]) -> MfaResult<()> {
    let mut transaction = pool.begin().await?;
    for table in tables {
        // The table names are constants of this module, never input.
        sqlx::query(&format!("DELETE FROM {table} WHERE username = $1"))
            .bind(username)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// Turns TOTP off for `username`: deletes their TOTP row and pending logins.
///
/// # Errors
/// A database error.
pub async fn disable_totp(pool: &AnyPool, username: &str) -> MfaResult<()> {
    delete_rows(pool, username, &["user_totp", "login_challenges"]).await
}

/// Deletes the recovery codes of `username` (when no factor is left for them to stand in
/// for).
///
/// # Errors
/// A database error.
pub async fn delete_recovery_codes(pool: &AnyPool, username: &str) -> MfaResult<()> {
    delete_rows(pool, username, &["recovery_codes"]).await
}

/// Deletes the pending logins of `username`.
///
/// # Errors
/// A database error.
pub async fn delete_login_challenges(pool: &AnyPool, username: &str) -> MfaResult<()> {
    delete_rows(pool, username, &["login_challenges"]).await
}

/// Stores `recovery_code_macs` as the only recovery codes of `username`.
///
/// # Errors
/// A database error.
pub async fn replace_recovery_codes(
    pool: &AnyPool,
    username: &str,
    recovery_code_macs: &[[u8; 32]],
) -> MfaResult<()> {
    let mut transaction = pool.begin().await?;
    set_recovery_codes(&mut transaction, username, recovery_code_macs).await?;
    transaction.commit().await?;
    Ok(())
}

/// Records that `username` began setting up a second factor here (see the migration
/// `20261207000000_enrolled_users.sql`).
///
/// # Errors
/// A database error.
pub async fn mark_enrolled(pool: &AnyPool, username: &str, now_ms: i64) -> MfaResult<()> {
    sqlx::query(
        "INSERT INTO enrolled_users (username, since) VALUES ($1, $2) \
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(username)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether `username` ever began setting up a second factor here (and was not deleted).
///
/// # Errors
/// A database error.
pub async fn is_enrolled(pool: &AnyPool, username: &str) -> MfaResult<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT since FROM enrolled_users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// Forgets everything of `username`.
///
/// # Errors
/// A database error.
pub async fn delete_user(pool: &AnyPool, username: &str) -> MfaResult<()> {
    delete_rows(
        pool,
        username,
        &[
            "recovery_codes",
            "user_totp",
            "login_challenges",
            "passkeys",
            "passkey_registrations",
            "enrolled_users",
        ],
    )
    .await
}

/// A stored passkey.
#[derive(Debug, Clone, FromRow)]
pub struct PasskeyRow {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The name its owner gave it.
    pub name: String,
    /// webauthn-rs' `Passkey` as JSON (public key, counter).
    pub passkey: String,
    /// When it was registered (milliseconds since the Unix epoch).
    pub created_at: i64,
    /// When it last completed a login, if ever.
    pub last_used_at: Option<i64>,
}

/// The passkeys of `username`, oldest first.
///
/// # Errors
/// A database error.
pub async fn passkeys(pool: &AnyPool, username: &str) -> MfaResult<Vec<PasskeyRow>> {
    Ok(sqlx::query_as(
        "SELECT credential_id, name, passkey, created_at, last_used_at FROM passkeys \
         WHERE username = $1 ORDER BY created_at, credential_id",
    )
    .bind(username)
    .fetch_all(pool)
    .await?)
}

/// Stores a new passkey of `username`.
///
/// # Errors
/// [`MfaError::Conflict`] when the credential is registered already (to anyone); a database
/// error otherwise.
pub async fn insert_passkey(
    pool: &AnyPool,
    username: &str,
    credential_id: &[u8],
    name: &str,
    passkey: &str,
    now_ms: i64,
) -> MfaResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO passkeys (credential_id, username, name, passkey, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (credential_id) DO NOTHING",
    )
    .bind(credential_id)
    .bind(username)
    .bind(name)
    .bind(passkey)
    .bind(now_ms)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(MfaError::conflict("this passkey is registered already"));
    }
    Ok(())
}

/// Records a login with a passkey: its new state (counter) and the time.
///
/// # Errors
/// A database error.
pub async fn passkey_used(
    pool: &AnyPool,
    username: &str,
    credential_id: &[u8],
    passkey: &str,
    now_ms: i64,
) -> MfaResult<()> {
    sqlx::query(
        "UPDATE passkeys SET passkey = $1, last_used_at = $2 \
         WHERE credential_id = $3 AND username = $4",
    )
    .bind(passkey)
    .bind(now_ms)
    .bind(credential_id)
    .bind(username)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes a passkey of `username`; returns whether it was there.
///
/// # Errors
/// A database error.
pub async fn delete_passkey(
    pool: &AnyPool,
    username: &str,
    credential_id: &[u8],
) -> MfaResult<bool> {
    let deleted = sqlx::query("DELETE FROM passkeys WHERE credential_id = $1 AND username = $2")
        .bind(credential_id)
        .bind(username)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Stores the state of `username`'s registration in progress (replacing an earlier one).
///
/// # Errors
/// A database error.
pub async fn set_registration(
    pool: &AnyPool,
    username: &str,
    state: &str,
    expires_at: i64,
) -> MfaResult<()> {
    sqlx::query(
        "INSERT INTO passkey_registrations (username, state, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO UPDATE SET state = excluded.state, \
         expires_at = excluded.expires_at",
    )
    .bind(username)
    .bind(state)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Takes (reads and deletes) `username`'s registration state, if it has not expired.
///
/// # Errors
/// A database error.
pub async fn take_registration(
    pool: &AnyPool,
    username: &str,
    now_ms: i64,
) -> MfaResult<Option<String>> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "DELETE FROM passkey_registrations WHERE username = $1 RETURNING state, expires_at",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    Ok(row
        .filter(|(_, expires_at)| *expires_at > now_ms)
        .map(|(state, _)| state))
}

/// A login challenge as [`create_challenge`] stores it.
#[derive(Clone)]
pub struct NewChallenge<'a> {
    /// SHA-256 of the challenge.
    pub challenge_hash: &'a [u8; 32],
    /// Whose login it is.
    pub username: &'a str,
    /// When it stops being valid (milliseconds since the Unix epoch).
    pub expires_at: i64,
    /// How many wrong answers it allows.
    pub attempts: u32,
    /// The passkey ceremony's state (`PasskeyAuthentication` as JSON), when the user has
    /// passkeys.
    pub passkey_state: Option<&'a str>,
}

/// Stores a challenge; expired challenges of every user are swept at the same time, and so
/// are expired passkey registrations.
///
/// # Errors
/// A database error.
pub async fn create_challenge(
    pool: &AnyPool,
    challenge: &NewChallenge<'_>,
    now_ms: i64,
) -> MfaResult<()> {
    for table in ["login_challenges", "passkey_registrations"] {
        // The table names are constants of this module, never input.
        sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
            .bind(now_ms)
            .execute(pool)
            .await?;
    }
    sqlx::query(
        "INSERT INTO login_challenges \
         (challenge_hash, username, expires_at, attempts_left, passkey_state) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(challenge.challenge_hash.as_slice())
    .bind(challenge.username)
    .bind(challenge.expires_at)
    .bind(i64::from(challenge.attempts))
    .bind(challenge.passkey_state)
    .execute(pool)
    .await?;
    Ok(())
}

/// The username of a live challenge with attempts left; `None` for an unknown, expired or
/// used-up one.
///
/// # Errors
/// A database error.
pub async fn challenge_owner(
    pool: &AnyPool,
    challenge_hash: &[u8; 32],
    now_ms: i64,
) -> MfaResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT username FROM login_challenges \
         WHERE challenge_hash = $1 AND expires_at > $2 AND attempts_left > 0",
    )
    .bind(challenge_hash.as_slice())
    .bind(now_ms)
    .fetch_optional(pool)
    .await?)
}

/// Takes one attempt of a live challenge with attempts left, before its answer is checked,
/// so that requests racing on one challenge cannot try more answers than it allows.
/// Returns the challenge's user and its passkey ceremony's state (when it has one), or
/// `None` for an unknown, expired or used-up challenge.
///
/// # Errors
/// A database error.
pub async fn take_attempt(
    pool: &AnyPool,
    challenge_hash: &[u8; 32],
    now_ms: i64,
) -> MfaResult<Option<(String, Option<String>)>> {
    Ok(sqlx::query_as(
        "UPDATE login_challenges SET attempts_left = attempts_left - 1 \
         WHERE challenge_hash = $1 AND expires_at > $2 AND attempts_left > 0 \
         RETURNING username, passkey_state",
    )
    .bind(challenge_hash.as_slice())
    .bind(now_ms)
    .fetch_optional(pool)
    .await?)
}

/// Deletes a challenge whose attempts are all taken (after a wrong answer).
///
/// # Errors
/// A database error.
pub async fn delete_if_used_up(pool: &AnyPool, challenge_hash: &[u8; 32]) -> MfaResult<()> {
    sqlx::query("DELETE FROM login_challenges WHERE challenge_hash = $1 AND attempts_left = 0")
        .bind(challenge_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes a challenge once its login succeeded; returns whether it was still there, so
/// that of two requests completing the same challenge only one is accepted.
///
/// # Errors
/// A database error.
pub async fn consume_challenge(pool: &AnyPool, challenge_hash: &[u8; 32]) -> MfaResult<bool> {
    let deleted = sqlx::query("DELETE FROM login_challenges WHERE challenge_hash = $1")
        .bind(challenge_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// One user's second factors as an older chat database held them, sealed under the same
/// key (see [`crate::Factors::import`]).
#[derive(Clone)]
pub struct ImportedFactors {
    /// The user.
    pub username: String,
    /// Their TOTP row.
    pub totp: TotpRecord,
    /// The MACs of their unused recovery codes.
    pub recovery_code_macs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ImportedFactors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedFactors")
            .field("username", &self.username)
            .field("totp", &self.totp)
            .field("recovery_codes", &self.recovery_code_macs.len())
            .finish()
    }
}

/// Stores imported factors in one transaction; a user already in the store keeps what it
/// has (so running an import twice changes nothing). Returns the users it stored.
///
/// # Errors
/// A database error.
pub async fn import(pool: &AnyPool, users: &[ImportedFactors]) -> MfaResult<Vec<String>> {
    let mut imported = Vec::new();
    let mut transaction = pool.begin().await?;
    for user in users {
        let inserted = sqlx::query(
            "INSERT INTO user_totp (username, sealed_secret, sealed_pending_secret, last_step) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING",
        )
        .bind(&user.username)
        .bind(user.totp.sealed_secret.as_deref())
        .bind(user.totp.sealed_pending_secret.as_deref())
        .bind(to_i64(user.totp.last_step)?)
        .execute(&mut *transaction)
        .await?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO enrolled_users (username, since) VALUES ($1, 0) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(&user.username)
        .execute(&mut *transaction)
        .await?;
        imported.push(user.username.clone());
        for mac in &user.recovery_code_macs {
            sqlx::query(
                "INSERT INTO recovery_codes (username, code_mac) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&user.username)
            .bind(mac.as_slice())
            .execute(&mut *transaction)
            .await?;
        }
    }
    transaction.commit().await?;
    Ok(imported)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_schema_of_a_search_path_is_found() {
        let url = postgres_schema_url("postgres://u@h/db", "mfa");
        assert_eq!(url, "postgres://u@h/db?options=-c%20search_path%3Dmfa");
        assert_eq!(search_path_schema(&url).as_deref(), Some("mfa"));
        let url = postgres_schema_url("postgres://u@h/db?sslmode=disable", "second");
        assert_eq!(search_path_schema(&url).as_deref(), Some("second"));
        assert_eq!(search_path_schema("postgres://u@h/db"), None);
    }
}
