//! The `login_attempts` table: the login throttle's counters ([`crate::throttle`]), shared by
//! every instance of a deployment.

use sqlx::AnyPool;

use super::Backend;
use crate::error::ApiResult;

/// One counter an attempt is checked against: what is attempted, by whom, and how many
/// attempts the window allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The endpoint's name.
    pub endpoint: &'static str,
    /// `user:NAME` or `ip:HEX`.
    pub subject: String,
    /// Attempts allowed within the window.
    pub limit: u32,
}

/// Counts an attempt at `now_ms` against every counter, unless one of them already holds
/// `limit` attempts younger than `window_ms`: then nothing is counted, and the answer is
/// how long until the oldest of those leaves the window, in milliseconds (at least 1).
/// Rows older than the window are deleted on the way.
///
/// The check and the insert are one transaction, taken for writing at once on SQLite
/// (`BEGIN IMMEDIATE`) and under a transaction-scoped advisory lock per counter on
/// PostgreSQL, so concurrent attempts, on any instance, never get past the limit together.
///
/// # Errors
/// A database error.
pub async fn count_or_wait(
    pool: &AnyPool,
    counters: &[Counter],
    now_ms: i64,
    window_ms: i64,
) -> ApiResult<Option<i64>> {
    let mut connection = pool.acquire().await?;
    let (mut transaction, backend) = super::begin_write(&mut connection).await?;
    if backend == Backend::Postgres {
        for counter in counters {
            let key = format!("login_attempts {} {}", counter.endpoint, counter.subject);
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked")
                .bind(key)
                .execute(&mut *transaction)
                .await?;
        }
    }
    let window_start = now_ms.saturating_sub(window_ms);
    sqlx::query("DELETE FROM login_attempts WHERE at_ms <= $1")
        .bind(window_start)
        .execute(&mut *transaction)
        .await?;
    let mut wait_ms: Option<i64> = None;
    for counter in counters {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(at_ms) FROM login_attempts \
             WHERE endpoint = $1 AND subject = $2 AND at_ms > $3",
        )
        .bind(counter.endpoint)
        .bind(&counter.subject)
        .bind(window_start)
        .fetch_one(&mut *transaction)
        .await?;
        if count >= i64::from(counter.limit) {
            let until = oldest.map_or(0, |oldest| oldest.saturating_add(window_ms) - now_ms);
            wait_ms = Some(wait_ms.unwrap_or(0).max(until).max(1));
        }
    }
    if wait_ms.is_some() {
        transaction.rollback().await?;
        return Ok(wait_ms);
    }
    for counter in counters {
        sqlx::query("INSERT INTO login_attempts (endpoint, subject, at_ms) VALUES ($1, $2, $3)")
            .bind(counter.endpoint)
            .bind(&counter.subject)
            .bind(now_ms)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(None)
}
