-- Shared report links: a secret URL that shows an experiment's report with
-- differentially private numbers only, to people without an API key. Only the
-- SHA-256 of the token is stored.
CREATE TABLE share_links (
    id          VARCHAR PRIMARY KEY,
    experiment  VARCHAR NOT NULL,
    hash        VARCHAR NOT NULL UNIQUE,
    created_by  VARCHAR NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
