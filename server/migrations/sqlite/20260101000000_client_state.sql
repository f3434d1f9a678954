-- The durable client state (docs/PROTOCOL.md section 11) replaces the pins blob: one sealed
-- blob per user, with the version its client sealed inside it repeated in the clear so that
-- an upload that does not raise it is refused (two browsers cannot silently overwrite each
-- other). Pins blobs stored before this migration keep their bytes with version 0; clients
-- still open them and replace them at their next save.
ALTER TABLE user_pins RENAME TO client_states;
ALTER TABLE client_states ADD COLUMN version INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0);
