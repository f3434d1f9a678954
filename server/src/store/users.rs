//! The `users` table: accounts, their key derivation parameters, auth key hashes and
//! published identities; changing an account's password and deleting an account.

use common::account::KdfParams;
use common::identity::PublicIdentity;
use common::membership::RoomId;
use ed25519_dalek::Signature;
use sqlx::{AnyPool, FromRow};

use super::sessions;

use crate::error::{ApiError, ApiResult, ErrorCode};

/// A new account as register stores it.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// The account name, already validated.
    pub username: &'a str,
    /// The client's Argon2id parameters.
    pub kdf: KdfParams,
    /// The client's 16-byte salt.
    pub salt: &'a [u8; 16],
    /// The server's Argon2id PHC string of the auth key.
    pub auth_hash: &'a str,
    /// The verified public identity.
    pub identity: &'a PublicIdentity,
    /// The identity secrets wrapped by the client.
    pub wrapped_identity: &'a [u8],
}

/// An account as stored.
#[derive(Debug)]
pub struct User {
    /// The account name.
    pub username: String,
    /// The client's Argon2id parameters.
    pub kdf: KdfParams,
    /// The client's 16-byte salt.
    pub salt: [u8; 16],
    /// The server's Argon2id PHC string of the auth key.
    pub auth_hash: String,
    /// The published identity.
    pub identity: PublicIdentity,
    /// The wrapped identity secrets.
    pub wrapped_identity: Vec<u8>,
}

#[derive(FromRow)]
struct UserRow {
    username: String,
    kdf_m_kib: i64,
    kdf_t: i64,
    kdf_p: i64,
    salt: Vec<u8>,
    auth_hash: String,
    x25519_public: Vec<u8>,
    ed25519_public: Vec<u8>,
    identity_signature: Vec<u8>,
    wrapped_identity: Vec<u8>,
}

fn corrupt(what: &str) -> ApiError {
    ApiError::CorruptData(format!("users.{what}"))
}

fn to_u32(value: i64, what: &str) -> ApiResult<u32> {
    u32::try_from(value).map_err(|_| corrupt(what))
}

fn to_array<const N: usize>(bytes: &[u8], what: &str) -> ApiResult<[u8; N]> {
    bytes.try_into().map_err(|_| corrupt(what))
}

/// Rebuilds a public identity from its stored parts, checking its self-signature again.
///
/// # Errors
/// [`ApiError::CorruptData`] when the parts do not form a validly self-signed identity.
pub fn identity_from_parts(
    username: &str,
    x25519_public: &[u8],
    ed25519_public: &[u8],
    signature: &[u8],
) -> ApiResult<PublicIdentity> {
    let signature = Signature::from_slice(signature).map_err(|_| corrupt("identity_signature"))?;
    PublicIdentity::verify(
        username,
        &to_array(x25519_public, "x25519_public")?,
        &to_array(ed25519_public, "ed25519_public")?,
        &signature,
    )
    .map_err(|_| corrupt("identity"))
}

impl TryFrom<UserRow> for User {
    type Error = ApiError;

    fn try_from(row: UserRow) -> ApiResult<Self> {
        let identity = identity_from_parts(
            &row.username,
            &row.x25519_public,
            &row.ed25519_public,
            &row.identity_signature,
        )?;
        Ok(Self {
            kdf: KdfParams {
                m_kib: to_u32(row.kdf_m_kib, "kdf_m_kib")?,
                t: to_u32(row.kdf_t, "kdf_t")?,
                p: to_u32(row.kdf_p, "kdf_p")?,
            },
            salt: to_array(&row.salt, "salt")?,
            auth_hash: row.auth_hash,
            identity,
            wrapped_identity: row.wrapped_identity,
            username: row.username,
        })
    }
}

/// Stores a new account.
///
/// # Errors
/// 409 [`ErrorCode::UsernameTaken`] when the username is taken; a database error otherwise.
pub async fn insert(pool: &AnyPool, user: &NewUser<'_>, now_ms: i64) -> ApiResult<()> {
    let keys = user.identity.keys();
    let result = sqlx::query(
        "INSERT INTO users (username, kdf_m_kib, kdf_t, kdf_p, salt, auth_hash, x25519_public, \
         ed25519_public, identity_signature, wrapped_identity, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(user.username)
    .bind(i64::from(user.kdf.m_kib))
    .bind(i64::from(user.kdf.t))
    .bind(i64::from(user.kdf.p))
    .bind(user.salt.as_slice())
    .bind(user.auth_hash)
    .bind(keys.x25519.as_bytes().as_slice())
    .bind(keys.ed25519.as_bytes().as_slice())
    .bind(user.identity.signature().to_bytes().as_slice())
    .bind(user.wrapped_identity)
    .bind(now_ms)
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if super::is_unique_violation(&error) => Err(ApiError::refused(
            ErrorCode::UsernameTaken,
            "username is already taken",
        )),
        Err(error) => Err(error.into()),
    }
}

/// Loads an account by name.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn find(pool: &AnyPool, username: &str) -> ApiResult<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT username, kdf_m_kib, kdf_t, kdf_p, salt, auth_hash, x25519_public, \
         ed25519_public, identity_signature, wrapped_identity FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(User::try_from).transpose()
}

/// Whether `username` may have a second factor (`users.second_factor`): when `false`, a
/// login needs none and the second-factor store is not asked. `None` for an unknown user.
///
/// # Errors
/// A database error.
pub async fn second_factor(pool: &AnyPool, username: &str) -> ApiResult<Option<bool>> {
    let flag: Option<i64> =
        sqlx::query_scalar("SELECT second_factor FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    Ok(flag.map(super::flag))
}

/// Marks the start of enabling a factor of `username`: sets `users.second_factor`, and
/// raises `second_factor_epoch` and `second_factor_pending` (see the migration
/// `20261206000000_second_factor_changes.sql`). Call [`end_factor_change`] once the store
/// has answered.
///
/// # Errors
/// A database error.
pub async fn begin_factor_change(pool: &AnyPool, username: &str) -> ApiResult<()> {
    sqlx::query(
        "UPDATE users SET second_factor = 1, second_factor_epoch = second_factor_epoch + 1, \
         second_factor_pending = second_factor_pending + 1 WHERE username = $1",
    )
    .bind(username)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks the end of an enabling that [`begin_factor_change`] started.
///
/// # Errors
/// A database error.
pub async fn end_factor_change(pool: &AnyPool, username: &str) -> ApiResult<()> {
    sqlx::query(
        "UPDATE users SET second_factor_pending = second_factor_pending - 1 \
         WHERE username = $1 AND second_factor_pending > 0",
    )
    .bind(username)
    .execute(pool)
    .await?;
    Ok(())
}

/// `second_factor_epoch` of `username` (0 for an unknown user): read before asking the
/// store whether any factor is left, and given to [`clear_second_factor`].
///
/// # Errors
/// A database error.
pub async fn factor_epoch(pool: &AnyPool, username: &str) -> ApiResult<i64> {
    let epoch: Option<i64> =
        sqlx::query_scalar("SELECT second_factor_epoch FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    Ok(epoch.unwrap_or_default())
}

/// Clears `users.second_factor` of `username` unless an enabling is under way or began
/// since `epoch` was read; returns whether it was cleared.
///
/// # Errors
/// A database error.
pub async fn clear_second_factor(pool: &AnyPool, username: &str, epoch: i64) -> ApiResult<bool> {
    let cleared = sqlx::query(
        "UPDATE users SET second_factor = 0 WHERE username = $1 \
         AND second_factor_epoch = $2 AND second_factor_pending = 0",
    )
    .bind(username)
    .bind(epoch)
    .execute(pool)
    .await?;
    Ok(cleared.rows_affected() == 1)
}

/// Sets `users.second_factor` of the accounts whose factors were moved into the store from
/// the chat database's old tables.
///
/// # Errors
/// A database error.
pub async fn mark_second_factor(pool: &AnyPool, usernames: &[String]) -> ApiResult<()> {
    for username in usernames {
        sqlx::query("UPDATE users SET second_factor = 1 WHERE username = $1")
            .bind(username)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Loads only the published identity of an account.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn find_identity(pool: &AnyPool, username: &str) -> ApiResult<Option<PublicIdentity>> {
    let row: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT x25519_public, ed25519_public, identity_signature FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(|(x25519_public, ed25519_public, signature)| {
        identity_from_parts(username, &x25519_public, &ed25519_public, &signature)
    })
    .transpose()
}

/// What a password change writes: everything derived from the password, never the
/// identity's public keys.
#[derive(Debug)]
pub struct PasswordChange<'a> {
    /// The client's new Argon2id parameters.
    pub kdf: KdfParams,
    /// The client's new 16-byte salt.
    pub salt: &'a [u8; 16],
    /// The server's Argon2id PHC string of the new auth key.
    pub auth_hash: &'a str,
    /// The same identity secrets wrapped under the new wrap key.
    pub wrapped_identity: &'a [u8],
}

/// Changes the password of `username` in one transaction: the salt, KDF parameters, auth
/// hash and wrapped identity, and the deletion of every session of the
/// user except `keep_session` (a public id). Returns the public ids of the deleted sessions.
///
/// # Errors
/// A database error.
pub async fn change_password(
    pool: &AnyPool,
    username: &str,
    change: &PasswordChange<'_>,
    keep_session: &str,
) -> ApiResult<Vec<String>> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "UPDATE users SET kdf_m_kib = $1, kdf_t = $2, kdf_p = $3, salt = $4, auth_hash = $5, \
         wrapped_identity = $6 WHERE username = $7",
    )
    .bind(i64::from(change.kdf.m_kib))
    .bind(i64::from(change.kdf.t))
    .bind(i64::from(change.kdf.p))
    .bind(change.salt.as_slice())
    .bind(change.auth_hash)
    .bind(change.wrapped_identity)
    .bind(username)
    .execute(&mut *transaction)
    .await?;
    let signed_out =
        sessions::delete_all_of_user(&mut transaction, username, Some(keep_session)).await?;
    transaction.commit().await?;
    Ok(signed_out)
}

/// The tables, besides `sessions` and `users`, that hold rows of a user, with the column
/// that names the user: what deleting an account empties. Messages (`messages.sender`) and
/// envelopes the user sealed for others (`key_envelopes.distributor`) stay: they are part
/// of other people's history.
pub const USER_TABLES: [(&str, &str); 10] = [
    ("room_members", "username"),
    ("client_states", "username"),
    ("join_requests", "username"),
    ("key_envelopes", "recipient"),
    ("login_events", "username"),
    ("login_challenges", "username"),
    ("known_networks", "username"),
    ("trusted_networks", "username"),
    ("recovery_codes", "username"),
    ("user_totp", "username"),
];

/// The rooms `username` has a member row in.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a stored room id that is not 32 bytes.
pub async fn room_ids<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    username: &str,
) -> ApiResult<Vec<RoomId>> {
    let room_ids: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT room_id FROM room_members WHERE username = $1")
            .bind(username)
            .fetch_all(executor)
            .await?;
    to_room_ids(room_ids)
}

/// Room ids as stored in `room_members.room_id`.
fn to_room_ids(stored: Vec<Vec<u8>>) -> ApiResult<Vec<RoomId>> {
    stored
        .into_iter()
        .map(|room_id| {
            room_id
                .try_into()
                .map(RoomId)
                .map_err(|_| ApiError::CorruptData("room_members.room_id".to_owned()))
        })
        .collect()
}

/// Deletes the account `username` in one write transaction: its member rows first (what
/// they were is what the function reports, so a room it joined while this ran is among
/// them), then every one of those rooms gets `rotation_pending = 1` (the remaining members
/// should rotate the key it held), then its sessions, its rows in every table of
/// [`USER_TABLES`] and its `users` row are deleted. On PostgreSQL the account's row is
/// locked first, so that an entry adding it cannot commit meanwhile, and the transaction
/// announces the change of those rooms to every instance
/// ([`super::rooms::announce_changes`]). Returns the public ids of the deleted sessions and
/// the rooms the account was a member of (for the caller to forget from its own membership
/// cache).
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a stored room id that is not 32 bytes.
pub async fn delete_account(
    pool: &AnyPool,
    username: &str,
) -> ApiResult<(Vec<String>, Vec<RoomId>)> {
    let mut connection = pool.acquire().await?;
    let (mut transaction, backend) = super::begin_write(&mut connection).await?;
    if backend == super::Backend::Postgres {
        sqlx::query("SELECT 1 FROM users WHERE username = $1 FOR UPDATE")
            .bind(username)
            .execute(&mut *transaction)
            .await?;
    }
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("DELETE FROM room_members WHERE username = $1 RETURNING room_id")
            .bind(username)
            .fetch_all(&mut *transaction)
            .await?;
    let room_ids = to_room_ids(rows)?;
    super::rooms::announce_changes(&mut transaction, &room_ids).await?;
    for room_id in &room_ids {
        sqlx::query("UPDATE rooms SET rotation_pending = 1 WHERE room_id = $1")
            .bind(room_id.0.as_slice())
            .execute(&mut *transaction)
            .await?;
    }
    let signed_out = sessions::delete_all_of_user(&mut transaction, username, None).await?;
    for (table, column) in USER_TABLES {
        // The table and column names are the constants above, never input.
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(username)
            .execute(&mut *transaction)
            .await?;
    }
    sqlx::query("DELETE FROM users WHERE username = $1")
        .bind(username)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok((signed_out, room_ids))
}
