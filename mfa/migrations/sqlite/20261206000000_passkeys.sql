-- Passkeys (WebAuthn) as a second factor. `passkey` is webauthn-rs' `Passkey` as JSON: the
-- credential's public key, algorithm and signature counter (nothing secret). A credential id
-- belongs to one account only.
CREATE TABLE passkeys (
    credential_id BLOB PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE INDEX passkeys_by_username ON passkeys (username);

-- A registration between its two halves: webauthn-rs' `PasskeyRegistration` as JSON (the
-- challenge the authenticator must sign), one per account, for 5 minutes.
CREATE TABLE passkey_registrations (
    username TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- The `PasskeyAuthentication` of a login challenge, when the account had passkeys.
ALTER TABLE login_challenges ADD COLUMN passkey_state TEXT;
