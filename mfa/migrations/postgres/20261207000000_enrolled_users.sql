-- Accounts that ever began setting up a second factor here, until they are deleted. A chat
-- server asks the store about an account only when its flag says the account has a second
-- factor; a store that has never heard of that account is the wrong database, or an emptied
-- or restored one, and a login must not pass on its word (the store answers `unknown_user`).
CREATE TABLE enrolled_users (
    username TEXT PRIMARY KEY NOT NULL,
    since BIGINT NOT NULL
);

INSERT INTO enrolled_users (username, since)
    SELECT username, 0 FROM user_totp
    UNION SELECT username, 0 FROM passkeys
    UNION SELECT username, 0 FROM recovery_codes;
