//! The `server_secrets` table: random keys the server makes for itself on first start.

use std::fmt;
use std::sync::Arc;

use common::OsRng;
use hmac::{Hmac, Mac};
use rand_core::RngCore;
use sha2::Sha256;
use sqlx::AnyPool;
use zeroize::Zeroizing;

/// Name of the row that holds the HMAC key for fake salts.
/// Label of [`ServerSecret::login_challenge_tag`].
const LOGIN_CHALLENGE_LABEL: &[u8] = b"e2ee-chat/v1/login-challenge";
const FAKE_SALT_KEY_NAME: &str = "fake_salt_hmac_key";
/// Domain-separation label of the fake salt HMAC input.
const FAKE_SALT_LABEL: &[u8] = b"e2ee-chat/v1/fake-salt";

/// The server's 32-byte secret; `Debug` never prints it.
#[derive(Clone)]
pub struct ServerSecret(Arc<Zeroizing<[u8; 32]>>);

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret([redacted])")
    }
}

impl ServerSecret {
    /// Wraps 32 known bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Arc::new(Zeroizing::new(bytes)))
    }

    /// The salt answered for a username that has no account: the first 16 bytes of
    /// `HMAC-SHA256(secret, "e2ee-chat/v1/fake-salt" || username)`. It is stable across
    /// requests and restarts, so asking twice does not reveal that the account is missing.
    pub fn fake_salt(&self, username: &str) -> [u8; 16] {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        mac.update(FAKE_SALT_LABEL);
        mac.update(username.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&digest[..16]);
        salt
    }

    /// The tag that binds a login challenge of the second-factor store to the account whose
    /// password step issued it: the first 16 bytes of `HMAC-SHA256(secret,
    /// "e2ee-chat/v1/login-challenge" || u32be(len) || username || challenge)`. The client
    /// holds `challenge || tag`; a second step whose challenge the store says belongs to
    /// another account than the tag names is refused, so the store alone (a compromised
    /// service, say) cannot turn a challenge into a session for an account whose password
    /// was not given.
    pub fn login_challenge_tag(&self, username: &str, challenge: &[u8]) -> [u8; 16] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        mac.update(LOGIN_CHALLENGE_LABEL);
        let length = u32::try_from(username.len()).unwrap_or(u32::MAX);
        mac.update(&length.to_be_bytes());
        mac.update(username.as_bytes());
        mac.update(challenge);
        let digest = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&digest[..16]);
        tag
    }
}

/// Loads the server secret, creating and storing a random one on first start.
///
/// # Errors
/// A database error; a stored secret of the wrong length is reported as
/// [`sqlx::Error::Decode`].
pub async fn load_or_create(pool: &AnyPool) -> Result<ServerSecret, sqlx::Error> {
    let mut candidate = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(candidate.as_mut());
    // Two servers starting at once on one database must agree on one secret: insert only
    // when no row exists, then read whichever row won.
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(FAKE_SALT_KEY_NAME)
        .bind(candidate.as_slice())
        .execute(pool)
        .await?;
    let stored: Zeroizing<Vec<u8>> = Zeroizing::new(
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(FAKE_SALT_KEY_NAME)
            .fetch_one(pool)
            .await?,
    );
    let bytes: [u8; 32] = stored
        .as_slice()
        .try_into()
        .map_err(|_| sqlx::Error::Decode("server secret must be 32 bytes".into()))?;
    Ok(ServerSecret::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_challenge_tag_matches_the_worked_example() {
        // docs/PROTOCOL.md section 12: secret 00..1f, "alice", challenge 20..3f (computed
        // independently with Python's hmac module).
        let secret = ServerSecret::from_bytes(std::array::from_fn(|index| index as u8));
        let challenge: [u8; 32] = std::array::from_fn(|index| 0x20 + index as u8);
        let tag = secret.login_challenge_tag("alice", &challenge);
        assert_eq!(hex::encode(tag), "71ce425f5580eaaef2013a5166219d39");
        assert_ne!(tag, secret.login_challenge_tag("alicf", &challenge));
    }
}
