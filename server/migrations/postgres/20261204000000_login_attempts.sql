-- Login throttling counters (server/src/throttle.rs), in the database so that every
-- instance of a deployment counts the same attempts. One row per counted attempt: the
-- endpoint, the subject (`user:NAME`, or `ip:HEX` for an IPv4 address or an IPv6 /64) and
-- the time in milliseconds since the Unix epoch. Rows older than the window are deleted.
CREATE TABLE login_attempts (
    endpoint TEXT NOT NULL,
    subject TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX login_attempts_by_subject ON login_attempts (endpoint, subject, at_ms);
CREATE INDEX login_attempts_by_time ON login_attempts (at_ms);
