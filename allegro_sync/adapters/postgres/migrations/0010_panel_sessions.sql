-- The seller's panel (issue 15): signed-in sessions. Only a hash of the session id is stored, so
-- a copy of this table signs nobody in.
CREATE TABLE panel_sessions (
    id_hash     text        PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX panel_sessions_expires_at ON panel_sessions (expires_at);
