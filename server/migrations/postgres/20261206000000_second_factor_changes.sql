-- Keeps `users.second_factor` from being cleared while a factor is being enabled.
-- Enabling a factor first raises `second_factor_epoch` and `second_factor_pending` (and sets
-- the flag); it lowers `second_factor_pending` once the store has answered. The flag is
-- cleared only when the store said no factor is left, no enabling is under way, and none
-- began since the store was asked (the epoch is unchanged). An enabling cut off half-way
-- leaves `second_factor_pending` raised, which keeps the flag set: the safe side.
ALTER TABLE users ADD COLUMN second_factor_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN second_factor_pending BIGINT NOT NULL DEFAULT 0;
