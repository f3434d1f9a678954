//! The `login_events` and `known_networks` tables: each account's login attempts, and the
//! networks it has registered or successfully logged in from.

use common::api::LoginEvent;
use sqlx::{AnyPool, FromRow};

use crate::error::ApiResult;

/// How many login events are kept per account; older ones are deleted, except successful
/// logins from a new network that the user has not dismissed yet.
pub const MAX_EVENTS_PER_USER: i64 = 200;

/// The outcome of a login attempt, as stored and shown in [`LoginEvent::result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// A session was started.
    Success,
    /// The auth key was wrong.
    WrongPassword,
    /// The TOTP or recovery code was wrong.
    WrongCode,
    /// The account's trusted networks do not include the client's address.
    NetworkRefused,
    /// Too many attempts.
    Throttled,
}

impl LoginResult {
    /// The stored name: `success`, `wrong_password`, `wrong_code`, `network_refused` or
    /// `throttled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::WrongPassword => "wrong_password",
            Self::WrongCode => "wrong_code",
            Self::NetworkRefused => "network_refused",
            Self::Throttled => "throttled",
        }
    }
}

/// A login attempt to record.
#[derive(Debug)]
pub struct NewLoginEvent<'a> {
    /// The account.
    pub username: &'a str,
    /// The client's IP address.
    pub ip: &'a str,
    /// The client's user agent.
    pub user_agent: &'a str,
    /// The outcome.
    pub result: LoginResult,
    /// Whether the attempt came from a network new to the account.
    pub new_network: bool,
}

/// Stores a login attempt made at `now_ms`, then trims the account's history to
/// [`MAX_EVENTS_PER_USER`] (keeping undismissed new-network notices).
///
/// # Errors
/// A database error.
pub async fn record(pool: &AnyPool, event: &NewLoginEvent<'_>, now_ms: i64) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO login_events (username, at_ms, ip, user_agent, result, new_network) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.username)
    .bind(now_ms)
    .bind(event.ip)
    .bind(event.user_agent)
    .bind(event.result.as_str())
    .bind(i64::from(event.new_network))
    .execute(pool)
    .await?;
    sqlx::query(
        "DELETE FROM login_events WHERE username = $1 \
         AND NOT (result = 'success' AND new_network = 1 AND notice_dismissed = 0) \
         AND id NOT IN (SELECT id FROM login_events WHERE username = $2 ORDER BY id DESC LIMIT $3)",
    )
    .bind(event.username)
    .bind(event.username)
    .bind(MAX_EVENTS_PER_USER)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct EventRow {
    at_ms: i64,
    ip: String,
    user_agent: String,
    result: String,
    new_network: i64,
}

impl From<EventRow> for LoginEvent {
    fn from(row: EventRow) -> Self {
        Self {
            at_ms: row.at_ms,
            ip: row.ip,
            user_agent: row.user_agent,
            result: row.result,
            new_network: super::flag(row.new_network),
        }
    }
}

/// The latest `limit` login attempts on `username`, newest first.
///
/// # Errors
/// A database error.
pub async fn history(pool: &AnyPool, username: &str, limit: i64) -> ApiResult<Vec<LoginEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT at_ms, ip, user_agent, result, new_network FROM login_events \
         WHERE username = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(username)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(LoginEvent::from).collect())
}

/// The successful logins of `username` from new networks not dismissed yet, newest first.
///
/// # Errors
/// A database error.
pub async fn new_network_notices(pool: &AnyPool, username: &str) -> ApiResult<Vec<LoginEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT at_ms, ip, user_agent, result, new_network FROM login_events \
         WHERE username = $1 AND result = 'success' AND new_network = 1 \
         AND notice_dismissed = 0 ORDER BY id DESC",
    )
    .bind(username)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(LoginEvent::from).collect())
}

/// Marks every new-network notice of `username` as dismissed.
///
/// # Errors
/// A database error.
pub async fn dismiss_notices(pool: &AnyPool, username: &str) -> ApiResult<()> {
    sqlx::query(
        "UPDATE login_events SET notice_dismissed = 1 \
         WHERE username = $1 AND new_network = 1 AND notice_dismissed = 0",
    )
    .bind(username)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether `network` (CIDR text) is new to `username`: not among the networks they have
/// used, while they have used some. An account with no recorded network at all (one that
/// predates this record) has nothing to compare with, so nothing is new to it.
///
/// # Errors
/// A database error.
pub async fn is_new_network(pool: &AnyPool, username: &str, network: &str) -> ApiResult<bool> {
    let (known, any): (i64, i64) = sqlx::query_as(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM known_networks \
         WHERE username = $1 AND network = $2) THEN 1 ELSE 0 END, \
         CASE WHEN EXISTS (SELECT 1 FROM known_networks WHERE username = $3) THEN 1 ELSE 0 END",
    )
    .bind(username)
    .bind(network)
    .bind(username)
    .fetch_one(pool)
    .await?;
    Ok(super::flag(any) && !super::flag(known))
}

/// Records that `username` registered or logged in from `network` at `now_ms`; returns
/// whether the network was new to them (see [`is_new_network`]).
///
/// # Errors
/// A database error.
pub async fn remember_network(
    pool: &AnyPool,
    username: &str,
    network: &str,
    now_ms: i64,
) -> ApiResult<bool> {
    let new = is_new_network(pool, username, network).await?;
    sqlx::query(
        "INSERT INTO known_networks (username, network, first_seen_ms) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(username)
    .bind(network)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(new)
}
