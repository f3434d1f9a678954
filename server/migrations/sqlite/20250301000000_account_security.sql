-- Account security: public session ids with the client's address and browser, TOTP secrets
-- and recovery codes, pending two-step logins, login history, the networks each account has
-- logged in from, and the networks an account allows logins from. Times are milliseconds
-- since the Unix epoch.

-- Sessions get a random public id (for listing and revoking them; never derived from the
-- token), and the client IP address and user agent they were created from. Sessions created
-- before this migration get a random id and empty address and agent.
ALTER TABLE sessions ADD COLUMN public_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
UPDATE sessions SET public_id = lower(hex(randomblob(16))) WHERE public_id = '';
CREATE UNIQUE INDEX sessions_by_public_id ON sessions (public_id);

-- One row per user who has set up TOTP (RFC 6238). Both secrets are sealed under the
-- server key (XSalsa20-Poly1305, `nonce || tag || ciphertext`), which is kept outside the
-- database. `sealed_secret` is the active secret (NULL until the user confirms a code);
-- `sealed_pending_secret` the one shown by the latest setup. `last_step` is the last time
-- step (unix seconds / 30) whose code was accepted: no code of that step or an earlier one
-- is accepted again.
CREATE TABLE user_totp (
    username TEXT PRIMARY KEY NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    sealed_secret BLOB,
    sealed_pending_secret BLOB,
    last_step INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Unused recovery codes, as HMAC-SHA256 under the server key; a used code is deleted.
CREATE TABLE recovery_codes (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    code_mac BLOB NOT NULL,
    PRIMARY KEY (username, code_mac)
) STRICT;

-- Logins waiting for their TOTP step, keyed by SHA-256 of the random challenge handed to
-- the client.
CREATE TABLE login_challenges (
    challenge_hash BLOB PRIMARY KEY NOT NULL,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL CHECK (attempts_left >= 0)
) STRICT;

CREATE INDEX login_challenges_by_username ON login_challenges (username);

-- Login attempts on each account. `new_network` (0 or 1) marks an attempt from a network
-- the account had not logged in from; a successful one is a notice until dismissed.
CREATE TABLE login_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    at_ms INTEGER NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    result TEXT NOT NULL CHECK (
        result IN ('success', 'wrong_password', 'wrong_code', 'network_refused', 'throttled')
    ),
    new_network INTEGER NOT NULL CHECK (new_network IN (0, 1)),
    notice_dismissed INTEGER NOT NULL DEFAULT 0 CHECK (notice_dismissed IN (0, 1))
) STRICT;

CREATE INDEX login_events_by_username ON login_events (username, id);

-- The networks (IPv4 /24, IPv6 /48, as CIDR text) each account has registered or
-- successfully logged in from.
CREATE TABLE known_networks (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    network TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (username, network)
) STRICT;

-- The networks (CIDR text) an account allows logins from; no rows allows any network.
CREATE TABLE trusted_networks (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    network TEXT NOT NULL,
    PRIMARY KEY (username, network)
) STRICT;
