-- The second-factor store: its own database (or, on PostgreSQL, its own schema), apart from
-- the chat's. Usernames are the chat's; nothing here refers to the chat's tables.

-- Each user's TOTP secrets, sealed under the store's key and bound to the username.
CREATE TABLE user_totp (
    username TEXT PRIMARY KEY NOT NULL,
    sealed_secret BYTEA,
    sealed_pending_secret BYTEA,
    last_step BIGINT NOT NULL DEFAULT 0
);

-- Unused recovery codes, as HMAC-SHA256 under the store's key.
CREATE TABLE recovery_codes (
    username TEXT NOT NULL,
    code_mac BYTEA NOT NULL,
    PRIMARY KEY (username, code_mac)
);

-- Logins waiting for their second factor, keyed by SHA-256 of the challenge.
CREATE TABLE login_challenges (
    challenge_hash BYTEA PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts_left BIGINT NOT NULL CHECK (attempts_left >= 0)
);

CREATE INDEX login_challenges_by_username ON login_challenges (username);
CREATE INDEX login_challenges_by_expiry ON login_challenges (expires_at);
