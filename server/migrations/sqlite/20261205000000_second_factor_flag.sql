-- Second factors moved out of the chat database into a store of their own (the `mfa`
-- crate: linked in-process, or the separate `mfa-service`). The chat keeps one flag per
-- account: 1 when the account may have a second factor, so that only then a login asks
-- the store, and logins of accounts without one keep working while a remote store is down.
-- It is set before a factor is enabled and cleared only after the store says none is
-- left, so a factor never exists while the flag is 0.
--
-- `user_totp` and `recovery_codes` stay, empty: at startup the chat server moves rows an
-- older version left there into the in-process store (sealed under the same server key),
-- and refuses to start against a remote one while any are left.
ALTER TABLE users ADD COLUMN second_factor INTEGER NOT NULL DEFAULT 0
    CHECK (second_factor IN (0, 1));

UPDATE users SET second_factor = 1
    WHERE username IN (SELECT username FROM user_totp WHERE sealed_secret IS NOT NULL);
