-- The schema of the chat server on PostgreSQL: the same tables, columns and constraints as
-- the six SQLite migrations up to and including 20261203000000_attachments.sql, in one file,
-- because PostgreSQL support begins at that version. From here on every schema change is one
-- migration in each folder with the same version number (ARCHITECTURE.md, "Two databases").
--
-- Both backends run the same queries (server/src/store/), so the types are chosen for what the
-- two have in common: every integer is BIGINT (SQLite's INTEGER is 64-bit), every flag a
-- BIGINT that is 0 or 1, every byte string BYTEA. Tables whose rows are listed in insertion
-- order have a `rowid` column, which SQLite gives every table of its own.
--
-- Times are milliseconds since the Unix epoch; keys, hashes and ciphertext are byte strings;
-- the server never stores a password, an auth key or a plaintext message.

-- One row per account. `auth_hash` is an Argon2id PHC string of the client's auth key,
-- salted with the server's own random salt. The public identity is kept as its three parts.
CREATE TABLE users (
    username TEXT PRIMARY KEY NOT NULL,
    kdf_m_kib BIGINT NOT NULL,
    kdf_t BIGINT NOT NULL,
    kdf_p BIGINT NOT NULL,
    salt BYTEA NOT NULL,
    auth_hash TEXT NOT NULL,
    x25519_public BYTEA NOT NULL,
    ed25519_public BYTEA NOT NULL,
    identity_signature BYTEA NOT NULL,
    wrapped_identity BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- Login sessions, keyed by SHA-256 of the random token the cookie carries, with a random
-- public id (for listing and revoking them) and the address and browser they came from.
CREATE TABLE sessions (
    rowid BIGSERIAL NOT NULL UNIQUE,
    token_hash BYTEA PRIMARY KEY NOT NULL,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    public_id TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_by_username ON sessions (username);
CREATE UNIQUE INDEX sessions_by_public_id ON sessions (public_id);

-- One row per room: what the server derives by replaying its log (current epoch, rotation
-- pending as the server sees it and as the log says it, the policy's message rate and
-- attachment size limit).
CREATE TABLE rooms (
    rowid BIGSERIAL NOT NULL UNIQUE,
    room_id BYTEA PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    current_epoch BIGINT NOT NULL,
    rotation_pending BIGINT NOT NULL DEFAULT 0 CHECK (rotation_pending IN (0, 1)),
    messages_per_minute BIGINT NOT NULL DEFAULT 120 CHECK (messages_per_minute >= 0),
    log_rotation_pending BIGINT NOT NULL DEFAULT 0 CHECK (log_rotation_pending IN (0, 1)),
    max_attachment_bytes BIGINT NOT NULL DEFAULT 26214400 CHECK (max_attachment_bytes >= 0)
);

-- The signed membership log, one row per entry, in order from genesis (seq 0).
CREATE TABLE room_log (
    room_id BYTEA NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    entry BYTEA NOT NULL,
    PRIMARY KEY (room_id, seq)
);

-- Current members and roles as derived by replaying the log.
CREATE TABLE room_members (
    room_id BYTEA NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES users (username),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    PRIMARY KEY (room_id, username)
);

CREATE INDEX room_members_by_username ON room_members (username);

-- Room keys sealed to one member by another; the envelope itself is stored as JSON.
CREATE TABLE key_envelopes (
    id BIGSERIAL PRIMARY KEY,
    room_id BYTEA NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    recipient TEXT NOT NULL,
    distributor TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (room_id, epoch, recipient, distributor)
);

CREATE INDEX key_envelopes_by_recipient ON key_envelopes (room_id, recipient);

-- Encrypted messages; the id orders them and pages through them.
CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    room_id BYTEA NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    sender TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);

CREATE INDEX messages_by_room ON messages (room_id, id);
CREATE INDEX messages_by_room_sender_time ON messages (room_id, sender, received_at_ms);

-- Secrets the server makes for itself on first start (the fake-salt HMAC key).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL
);

-- Pending requests to join a room with an invite, one per room and user.
CREATE TABLE join_requests (
    rowid BIGSERIAL NOT NULL UNIQUE,
    room_id BYTEA NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    requested_at_ms BIGINT NOT NULL,
    PRIMARY KEY (room_id, username)
);

-- How many join requests each invite of a room has admitted.
CREATE TABLE invite_uses (
    room_id BYTEA NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    uses BIGINT NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (room_id, token_hash)
);

-- Each user's durable client state (docs/PROTOCOL.md section 11), sealed by their client,
-- with the version sealed inside it repeated in the clear.
CREATE TABLE client_states (
    username TEXT PRIMARY KEY NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0)
);

-- TOTP (RFC 6238) secrets sealed under the server key, and the last accepted time step.
CREATE TABLE user_totp (
    username TEXT PRIMARY KEY NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    sealed_secret BYTEA,
    sealed_pending_secret BYTEA,
    last_step BIGINT NOT NULL DEFAULT 0
);

-- Unused recovery codes, as HMAC-SHA256 under the server key.
CREATE TABLE recovery_codes (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    code_mac BYTEA NOT NULL,
    PRIMARY KEY (username, code_mac)
);

-- Logins waiting for their TOTP step, keyed by SHA-256 of the challenge.
CREATE TABLE login_challenges (
    challenge_hash BYTEA PRIMARY KEY NOT NULL,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    attempts_left BIGINT NOT NULL CHECK (attempts_left >= 0)
);

CREATE INDEX login_challenges_by_username ON login_challenges (username);

-- Login attempts on each account.
CREATE TABLE login_events (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    at_ms BIGINT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    result TEXT NOT NULL CHECK (
        result IN ('success', 'wrong_password', 'wrong_code', 'network_refused', 'throttled')
    ),
    new_network BIGINT NOT NULL CHECK (new_network IN (0, 1)),
    notice_dismissed BIGINT NOT NULL DEFAULT 0 CHECK (notice_dismissed IN (0, 1))
);

CREATE INDEX login_events_by_username ON login_events (username, id);

-- The networks each account has registered or successfully logged in from.
CREATE TABLE known_networks (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    network TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (username, network)
);

-- The networks an account allows logins from; no rows allows any network.
CREATE TABLE trusted_networks (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    network TEXT NOT NULL,
    PRIMARY KEY (username, network)
);

-- Encrypted attachments (docs/PROTOCOL.md sections 8 and 14); their chunks live in the blob
-- store, never in the database.
CREATE TABLE attachments (
    room_id BYTEA NOT NULL REFERENCES rooms (room_id),
    attachment_id BYTEA NOT NULL CHECK (length(attachment_id) = 16),
    uploader TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size >= 0),
    chunk_size BIGINT NOT NULL CHECK (chunk_size > 0),
    chunk_count BIGINT NOT NULL CHECK (chunk_count > 0),
    ciphertext_size BIGINT NOT NULL CHECK (ciphertext_size >= 0),
    created_at BIGINT NOT NULL,
    attached BIGINT NOT NULL DEFAULT 0 CHECK (attached IN (0, 1)),
    PRIMARY KEY (room_id, attachment_id)
);

CREATE INDEX attachments_by_uploader ON attachments (uploader);
CREATE INDEX attachments_unattached ON attachments (attached, created_at);

-- One row per chunk written whole to the blob store.
CREATE TABLE attachment_chunks (
    room_id BYTEA NOT NULL,
    attachment_id BYTEA NOT NULL,
    chunk_index BIGINT NOT NULL CHECK (chunk_index >= 0),
    PRIMARY KEY (room_id, attachment_id, chunk_index),
    FOREIGN KEY (room_id, attachment_id) REFERENCES attachments (room_id, attachment_id)
);
