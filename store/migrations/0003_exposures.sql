-- Exposure log, appended by the single writer. variant is NULL for holdout units.
-- No constraints or indexes: the appender path must stay fast, and analyses use the
-- first exposure per unit, so at-least-once duplicates are harmless.
CREATE TABLE exposures (
    experiment      VARCHAR NOT NULL,
    unit            VARCHAR NOT NULL,
    variant         VARCHAR,
    ts              TIMESTAMPTZ NOT NULL,
    in_holdout      BOOLEAN NOT NULL,
    holdout_version INTEGER,
    source          VARCHAR
);
