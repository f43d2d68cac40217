-- Releases on a schedule: each scope is released at most once per release period
-- (default a day), and every reader of the period is served that release. The
-- release is saved in the same transaction as its ledger entry. The former table of
-- releases keyed by a hash of the input is dropped: reuse no longer depends on the
-- data.
ALTER TABLE privacy_budgets ADD COLUMN release_period_s BIGINT DEFAULT 86400;

DROP TABLE privacy_releases;

CREATE TABLE privacy_period_releases (
    scope        VARCHAR NOT NULL,
    subject      VARCHAR NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    released_at  TIMESTAMPTZ NOT NULL,
    ledger_id    BIGINT NOT NULL,
    doc          JSON NOT NULL,
    PRIMARY KEY (scope, subject, period_start)
);
