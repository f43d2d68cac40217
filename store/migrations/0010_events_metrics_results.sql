-- Outcome events, metric definitions and result snapshots.
--
-- events has no index: bulk loads must stay as fast as a bare COPY. Ingest removes
-- duplicates (same event_id) with an anti-join inside the loading transaction, and
-- event_ingest_lock serializes those transactions: each one updates its single row
-- first, so a concurrent ingest conflicts and retries instead of inserting the same
-- event_id twice.
CREATE TABLE events (
    event_id   VARCHAR NOT NULL,
    unit       VARCHAR NOT NULL,
    type       VARCHAR NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,
    value      DOUBLE NOT NULL,
    properties JSON
);

CREATE TABLE event_ingest_lock (
    id      INTEGER PRIMARY KEY,
    batches BIGINT NOT NULL
);
INSERT INTO event_ingest_lock VALUES (1, 0);

-- Metric definitions, kept whole as JSON (experiment.Metric).
CREATE TABLE metrics (
    name       VARCHAR PRIMARY KEY,
    doc        JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Every computed result, so that a report can be reproduced: the input hash covers
-- the sufficient statistics and the definitions they came from.
CREATE SEQUENCE result_snapshot_id START 1;

CREATE TABLE result_snapshots (
    id           BIGINT PRIMARY KEY DEFAULT nextval('result_snapshot_id'),
    kind         VARCHAR NOT NULL, -- "experiment" or "holdout"
    subject      VARCHAR NOT NULL, -- experiment key or holdout name
    computed_at  TIMESTAMPTZ NOT NULL,
    input_hash   VARCHAR NOT NULL,
    code_version VARCHAR NOT NULL,
    doc          JSON NOT NULL
);
