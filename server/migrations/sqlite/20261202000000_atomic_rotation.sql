-- Whether the room's own log leaves a rotation pending: a member left, or an entry written
-- by an older client removed someone or cleared the history without starting the next epoch.
-- While it does, the room's current key is one a former member holds, so the server accepts
-- no message until a member rotates (docs/PROTOCOL.md section 5). Unlike
-- rooms.rotation_pending, which the server also sets when an account is deleted, this column
-- mirrors the log and nothing else. Rooms stored before this migration start at 0 and take
-- the log's value at their next entry.
ALTER TABLE rooms ADD COLUMN log_rotation_pending INTEGER NOT NULL DEFAULT 0
    CHECK (log_rotation_pending IN (0, 1));
