-- API keys: only the SHA-256 of the secret (hex) is stored.
CREATE TABLE api_keys (
    id         VARCHAR PRIMARY KEY,
    name       VARCHAR NOT NULL,
    role       VARCHAR NOT NULL,
    prefix     VARCHAR NOT NULL,
    hash       VARCHAR NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
