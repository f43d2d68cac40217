-- The console's signed-in browsers, so that a restart of lift serve does not
-- sign everyone out. Only the SHA-256 of the session id (the cookie's value) is
-- stored; the row names the key's id, never its secret.
CREATE TABLE console_sessions (
    hash        VARCHAR PRIMARY KEY,
    key_id      VARCHAR NOT NULL,
    csrf        VARCHAR NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
