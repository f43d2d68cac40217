-- Privacy budgets (one row per scope, "experiment:KEY" or "holdout:NAME") with what
-- has been spent, and the append-only ledger of every differentially private release.
CREATE TABLE privacy_budgets (
    scope           VARCHAR PRIMARY KEY,
    epsilon         DOUBLE NOT NULL,
    delta           DOUBLE NOT NULL,
    release_epsilon DOUBLE NOT NULL,
    release_delta   DOUBLE NOT NULL,
    epsilon_spent   DOUBLE NOT NULL DEFAULT 0,
    delta_spent     DOUBLE NOT NULL DEFAULT 0,
    updated_at      TIMESTAMPTZ NOT NULL,
    updated_by      VARCHAR NOT NULL
);

CREATE SEQUENCE privacy_ledger_id START 1;

CREATE TABLE privacy_ledger (
    id      BIGINT PRIMARY KEY DEFAULT nextval('privacy_ledger_id'),
    scope   VARCHAR NOT NULL,
    who     VARCHAR NOT NULL,
    ts      TIMESTAMPTZ NOT NULL,
    what    VARCHAR NOT NULL,
    epsilon DOUBLE NOT NULL,
    delta   DOUBLE NOT NULL
);

-- The latest differentially private release per scope and input: serving it again
-- for the same data is post-processing and spends nothing.
CREATE TABLE privacy_releases (
    scope      VARCHAR NOT NULL,
    input_hash VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    doc        JSON NOT NULL,
    PRIMARY KEY (scope, input_hash)
);
