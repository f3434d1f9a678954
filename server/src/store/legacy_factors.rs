//! Second factors an older version left in the chat database (`user_totp`,
//! `recovery_codes`, `login_challenges`): read once at startup to move them into the
//! second-factor store (see [`crate::factors`]), then deleted.

use mfa::store::{ImportedFactors, TotpRecord};
use sqlx::AnyPool;

use crate::error::{ApiError, ApiResult};

/// A `user_totp` row: username, sealed secret, sealed pending secret, last step.
type OldTotpRow = (String, Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// How many accounts have a row in the old `user_totp` table.
///
/// # Errors
/// A database error.
pub async fn count(pool: &AnyPool) -> ApiResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM user_totp")
        .fetch_one(pool)
        .await?)
}

/// Every account's old TOTP row and recovery code MACs.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a negative stored step.
pub async fn load(pool: &AnyPool) -> ApiResult<Vec<ImportedFactors>> {
    let rows: Vec<OldTotpRow> = sqlx::query_as(
        "SELECT username, sealed_secret, sealed_pending_secret, last_step FROM user_totp \
         ORDER BY username",
    )
    .fetch_all(pool)
    .await?;
    let mut users = Vec::with_capacity(rows.len());
    for (username, sealed_secret, sealed_pending_secret, last_step) in rows {
        let recovery_code_macs: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT code_mac FROM recovery_codes WHERE username = $1")
                .bind(&username)
                .fetch_all(pool)
                .await?;
        users.push(ImportedFactors {
            username,
            totp: TotpRecord {
                sealed_secret,
                sealed_pending_secret,
                last_step: u64::try_from(last_step)
                    .map_err(|_| ApiError::CorruptData("user_totp.last_step".to_owned()))?,
            },
            recovery_code_macs,
        });
    }
    Ok(users)
}

/// Deletes the old rows of `usernames` (once the store has them), and every old pending
/// login, in one transaction.
///
/// # Errors
/// A database error.
pub async fn delete(pool: &AnyPool, usernames: &[String]) -> ApiResult<()> {
    let mut transaction = pool.begin().await?;
    for username in usernames {
        for table in ["recovery_codes", "user_totp"] {
            // The table names are the constants above, never input.
            sqlx::query(&format!("DELETE FROM {table} WHERE username = $1"))
                .bind(username)
                .execute(&mut *transaction)
                .await?;
        }
    }
    sqlx::query("DELETE FROM login_challenges")
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}
