-- Encrypted attachments (docs/PROTOCOL.md sections 8 and 14). The server keeps who uploaded
-- what in which room, the layout the uploader announced and which chunks it has; the chunks'
-- ciphertext lives in the blob store (server/src/blobs.rs), never in the database.
--
-- rooms.max_attachment_bytes mirrors the room policy's size limit from the log, as
-- messages_per_minute mirrors its rate; rooms stored before this migration take the default
-- limit (25 MiB) until their next policy entry.
ALTER TABLE rooms ADD COLUMN max_attachment_bytes INTEGER NOT NULL DEFAULT 26214400
    CHECK (max_attachment_bytes >= 0);

CREATE TABLE attachments (
    room_id BLOB NOT NULL REFERENCES rooms (room_id),
    attachment_id BLOB NOT NULL CHECK (length(attachment_id) = 16),
    uploader TEXT NOT NULL,
    -- The file's plaintext size and chunk size; chunk_count and ciphertext_size follow.
    size INTEGER NOT NULL CHECK (size >= 0),
    chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
    chunk_count INTEGER NOT NULL CHECK (chunk_count > 0),
    ciphertext_size INTEGER NOT NULL CHECK (ciphertext_size >= 0),
    created_at INTEGER NOT NULL,
    -- Set when a message of the uploader names it; unattached uploads are collected.
    attached INTEGER NOT NULL DEFAULT 0 CHECK (attached IN (0, 1)),
    PRIMARY KEY (room_id, attachment_id)
);

CREATE INDEX attachments_by_uploader ON attachments (uploader);
CREATE INDEX attachments_unattached ON attachments (attached, created_at);

-- One row per chunk written whole to the blob store.
CREATE TABLE attachment_chunks (
    room_id BLOB NOT NULL,
    attachment_id BLOB NOT NULL,
    chunk_index INTEGER NOT NULL CHECK (chunk_index >= 0),
    PRIMARY KEY (room_id, attachment_id, chunk_index),
    FOREIGN KEY (room_id, attachment_id) REFERENCES attachments (room_id, attachment_id)
);
