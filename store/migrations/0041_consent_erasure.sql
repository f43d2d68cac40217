-- Stored consent, data-subject rights (erasure, reset) for journeys.

-- Every version of a unit's consent (experiment.Consent); a change appends a row,
-- none is overwritten. The latest version is the one in force.
CREATE TABLE unit_consent (
    unit           VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    tier           INTEGER NOT NULL,
    purposes       VARCHAR NOT NULL, -- JSON array
    opt_out        VARCHAR NOT NULL, -- JSON array of item categories
    channels       VARCHAR NOT NULL, -- JSON array
    policy_id      VARCHAR NOT NULL,
    policy_version VARCHAR NOT NULL,
    granted_at     TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (unit, version)
);

-- Units whose personalization profile was reset (POST /v1/units/ID/reset) or whose
-- consent no longer allows their stored history: models serve them as unknown
-- (folded in from the session) while a model trained before reset_at is loaded.
CREATE TABLE unit_profile_resets (
    unit     VARCHAR PRIMARY KEY,
    reset_at TIMESTAMPTZ NOT NULL
);

-- The key of the pseudonyms that replace an erased unit's id (HMAC-SHA256), made
-- on the first erasure. Deleting it makes the pseudonyms unlinkable for good.
CREATE TABLE pseudonym_key (
    id  INTEGER PRIMARY KEY,
    key BLOB NOT NULL
);

-- Erased units, by pseudonym only (DELETE /v1/units/ID).
CREATE TABLE unit_erasures (
    pseudonym VARCHAR PRIMARY KEY,
    erased_at TIMESTAMPTZ NOT NULL
);
