//! The `trusted_networks` table: the networks each account allows logins from (none: any).

use ipnet::IpNet;
use sqlx::AnyPool;

use crate::error::{ApiError, ApiResult};

/// The networks `username` allows logins from, in CIDR order; empty allows any.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a stored network that does not parse.
pub async fn list(pool: &AnyPool, username: &str) -> ApiResult<Vec<IpNet>> {
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT network FROM trusted_networks WHERE username = $1")
            .bind(username)
            .fetch_all(pool)
            .await?;
    let mut networks = stored
        .iter()
        .map(|text| {
            text.parse::<IpNet>()
                .map_err(|_| ApiError::CorruptData(format!("trusted_networks.network {text:?}")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    networks.sort();
    Ok(networks)
}

/// Replaces the networks of `username` with `networks` in one transaction.
///
/// # Errors
/// A database error.
pub async fn replace(pool: &AnyPool, username: &str, networks: &[IpNet]) -> ApiResult<()> {
    let mut transaction = pool.begin().await?;
    sqlx::query("DELETE FROM trusted_networks WHERE username = $1")
        .bind(username)
        .execute(&mut *transaction)
        .await?;
    for network in networks {
        sqlx::query("INSERT INTO trusted_networks (username, network) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(username)
            .bind(network.to_string())
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}
