//! This browser's own copy of what the account has seen, in IndexedDB (through `rexie`):
//! the sealed client state (`client::ClientState`, opaque bytes here) and the account's salt
//! and Argon2id parameters, which the log-in screen checks before deriving anything.
//!
//! One database, `e2ee-chat`, with one object store, `client`, keyed by strings:
//! `state/<username>` holds the sealed state, `search/<username>` the sealed search index
//! (`client::search`, kept on this device only), `kdf/<username>` the 28-byte KDF record
//! `salt(16) || u32 m_kib || u32 t || u32 p` (big-endian), and `confirmed/<username>` the
//! highest client-state version the server confirmed to this browser (`u64`). The KDF record is not secret (the
//! server knows it too); it is kept in the clear because it is needed before the password
//! has unlocked anything.

use client::KdfRecord;
use common::account::{KdfParams, SALT_LEN};
use js_sys::Uint8Array;
use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

const DATABASE: &str = "e2ee-chat";
const STORE: &str = "client";
const KDF_RECORD_LEN: usize = SALT_LEN + 12;

/// IndexedDB refused or is not available (private windows of some browsers).
#[derive(Debug, Clone, thiserror::Error)]
#[error("this browser's storage (IndexedDB) failed: {0}")]
pub struct StorageError(String);

impl From<rexie::Error> for StorageError {
    fn from(error: rexie::Error) -> Self {
        Self(error.to_string())
    }
}

async fn open() -> Result<Rexie, StorageError> {
    Ok(Rexie::builder(DATABASE)
        .version(1)
        .add_object_store(ObjectStore::new(STORE))
        .build()
        .await?)
}

async fn get(key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let database = open().await?;
    let transaction = database.transaction(&[STORE], TransactionMode::ReadOnly)?;
    let value = transaction
        .store(STORE)?
        .get(JsValue::from_str(key))
        .await?;
    transaction.done().await?;
    database.close();
    Ok(value
        .and_then(|value| value.dyn_into::<Uint8Array>().ok())
        .map(|bytes| bytes.to_vec()))
}

async fn put(key: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let database = open().await?;
    let transaction = database.transaction(&[STORE], TransactionMode::ReadWrite)?;
    let value: JsValue = Uint8Array::from(bytes).into();
    transaction
        .store(STORE)?
        .put(&value, Some(&JsValue::from_str(key)))
        .await?;
    transaction.done().await?;
    database.close();
    Ok(())
}

/// The sealed client state this browser saved for `username`, if any.
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn load_state(username: &str) -> Result<Option<Vec<u8>>, StorageError> {
    get(&format!("state/{username}")).await
}

/// Saves the sealed client state of `username`, replacing the earlier one.
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn save_state(username: &str, sealed: &[u8]) -> Result<(), StorageError> {
    put(&format!("state/{username}"), sealed).await
}

/// The sealed search index this browser keeps for `username` (never uploaded), if any.
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn load_search_index(username: &str) -> Result<Option<Vec<u8>>, StorageError> {
    get(&format!("search/{username}")).await
}

/// Saves the sealed search index of `username`, replacing the earlier one.
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn save_search_index(username: &str, sealed: &[u8]) -> Result<(), StorageError> {
    put(&format!("search/{username}"), sealed).await
}

/// The highest client-state version the server confirmed to this browser for `username`
/// (0 when none).
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn load_confirmed_version(username: &str) -> Result<u64, StorageError> {
    let saved = get(&format!("confirmed/{username}")).await?;
    Ok(saved
        .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Raises the highest client-state version the server confirmed for `username` to
/// `version` (never lowers it, so two tabs cannot undo each other).
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn raise_confirmed_version(username: &str, version: u64) -> Result<(), StorageError> {
    let stored = load_confirmed_version(username).await?;
    if version > stored {
        put(&format!("confirmed/{username}"), &version.to_be_bytes()).await?;
    }
    Ok(())
}

/// The KDF record this browser saved for `username`, if any (a malformed one counts as none).
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn load_kdf_record(username: &str) -> Result<Option<KdfRecord>, StorageError> {
    let Some(bytes) = get(&format!("kdf/{username}")).await? else {
        return Ok(None);
    };
    if bytes.len() != KDF_RECORD_LEN {
        return Ok(None);
    }
    let word = |index: usize| {
        let start = SALT_LEN + 4 * index;
        u32::from_be_bytes([
            bytes[start],
            bytes[start + 1],
            bytes[start + 2],
            bytes[start + 3],
        ])
    };
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&bytes[..SALT_LEN]);
    Ok(Some(KdfRecord {
        salt,
        params: KdfParams {
            m_kib: word(0),
            t: word(1),
            p: word(2),
        },
    }))
}

/// Saves the KDF record of `username`.
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn save_kdf_record(username: &str, record: &KdfRecord) -> Result<(), StorageError> {
    let mut bytes = Vec::with_capacity(KDF_RECORD_LEN);
    bytes.extend_from_slice(&record.salt);
    for word in [record.params.m_kib, record.params.t, record.params.p] {
        bytes.extend_from_slice(&word.to_be_bytes());
    }
    put(&format!("kdf/{username}"), &bytes).await
}

/// Forgets everything this browser saved for `username` (after the account was deleted, so a
/// new account of the same name starts clean).
///
/// # Errors
/// [`StorageError`] when IndexedDB fails.
pub async fn forget(username: &str) -> Result<(), StorageError> {
    let database = open().await?;
    let transaction = database.transaction(&[STORE], TransactionMode::ReadWrite)?;
    let store = transaction.store(STORE)?;
    for key in [
        format!("state/{username}"),
        format!("kdf/{username}"),
        format!("confirmed/{username}"),
        format!("search/{username}"),
    ] {
        store.delete(JsValue::from_str(&key)).await?;
    }
    transaction.done().await?;
    database.close();
    Ok(())
}

/// A value this browser keeps in `localStorage` (preferences that are not secret and belong
/// to the browser, not the account); `None` when absent or storage is unavailable.
pub fn local_get(key: &str) -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()
        .flatten()?
        .get_item(key)
        .ok()
        .flatten()
}

/// Keeps `value` under `key` in `localStorage`; nothing happens when storage is unavailable
/// (a private window that refuses it), the preference then lasting for the tab only.
pub fn local_set(key: &str, value: &str) {
    let storage = web_sys::window().and_then(|window| window.local_storage().ok().flatten());
    if let Some(storage) = storage {
        let _ = storage.set_item(key, value);
    }
}
