-- Room administration and key redistribution: what the server mirrors of each room's
-- replayed log (rotation pending, message rate), invite join requests and their use
-- counters, and each user's sealed trust-on-first-use pins. Times are milliseconds since the
-- Unix epoch.

-- Whether a member left or was removed since the last rotation (0 or 1), and the messages
-- one member may post per minute (0: no limit), both from the server's replay of the log.
-- Existing rooms have never changed their policy, so they get the default of 120.
ALTER TABLE rooms ADD COLUMN rotation_pending INTEGER NOT NULL DEFAULT 0
    CHECK (rotation_pending IN (0, 1));
ALTER TABLE rooms ADD COLUMN messages_per_minute INTEGER NOT NULL DEFAULT 120
    CHECK (messages_per_minute >= 0);

-- Pending requests to join a room with an invite, one per room and user, until an admin
-- adds the user (an add entry deletes the row), refuses the request, or bans the user.
-- `token_hash` names the invite the request used.
CREATE TABLE join_requests (
    room_id BLOB NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    token_hash BLOB NOT NULL,
    requested_at_ms INTEGER NOT NULL,
    PRIMARY KEY (room_id, username)
) STRICT;

-- How many join requests each invite of a room has admitted; an invite admits at most the
-- `max_uses` of its log entry. A refused request does not give its use back.
CREATE TABLE invite_uses (
    room_id BLOB NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL,
    uses INTEGER NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (room_id, token_hash)
) STRICT;

-- Each user's trust-on-first-use pins, sealed by their client under a key only the client
-- can derive; the server stores the bytes and cannot read them.
CREATE TABLE user_pins (
    username TEXT PRIMARY KEY NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    sealed BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- The rate limit counts one sender's recent messages in one room.
CREATE INDEX messages_by_room_sender_time ON messages (room_id, sender, received_at_ms);
