-- The initial schema of the chat server. Times are milliseconds since the Unix epoch; keys,
-- hashes and ciphertext are BLOBs; the server never stores a password, an auth key or a
-- plaintext message.

-- One row per account. `auth_hash` is an Argon2id PHC string of the client's auth key,
-- salted with the server's own random salt. The public identity is kept as its three parts.
CREATE TABLE users (
    username TEXT PRIMARY KEY NOT NULL,
    kdf_m_kib INTEGER NOT NULL,
    kdf_t INTEGER NOT NULL,
    kdf_p INTEGER NOT NULL,
    salt BLOB NOT NULL,
    auth_hash TEXT NOT NULL,
    x25519_public BLOB NOT NULL,
    ed25519_public BLOB NOT NULL,
    identity_signature BLOB NOT NULL,
    wrapped_identity BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Login sessions, keyed by SHA-256 of the random token the cookie carries.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_username ON sessions (username);

-- One row per room; `current_epoch` mirrors the server's replay of the log.
CREATE TABLE rooms (
    room_id BLOB PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    current_epoch INTEGER NOT NULL
) STRICT;

-- The signed membership log, one row per entry, in order from genesis (seq 0).
CREATE TABLE room_log (
    room_id BLOB NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    entry BLOB NOT NULL,
    PRIMARY KEY (room_id, seq)
) STRICT;

-- Current members and roles as derived by replaying the log; used for authorization and
-- for choosing whom to push events to. Rewritten whenever an entry is appended.
CREATE TABLE room_members (
    room_id BLOB NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES users (username),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    PRIMARY KEY (room_id, username)
) STRICT;

CREATE INDEX room_members_by_username ON room_members (username);

-- Room keys sealed to one member by another; the envelope itself is stored as JSON.
CREATE TABLE key_envelopes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id BLOB NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    distributor TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (room_id, epoch, recipient, distributor)
) STRICT;

CREATE INDEX key_envelopes_by_recipient ON key_envelopes (room_id, recipient);

-- Encrypted messages; the id orders them and pages through them.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id BLOB NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    sender TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL
) STRICT;

CREATE INDEX messages_by_room ON messages (room_id, id);

-- Secrets the server makes for itself on first start (the fake-salt HMAC key).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;
