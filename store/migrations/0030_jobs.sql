-- Scheduled jobs: definitions, every run attempt, the alert log and published digests.
CREATE TABLE jobs (
    name       VARCHAR PRIMARY KEY,
    doc        JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE job_run_id START 1;

CREATE TABLE job_runs (
    id      BIGINT PRIMARY KEY DEFAULT nextval('job_run_id'),
    job     VARCHAR NOT NULL,
    period  TIMESTAMPTZ NOT NULL,
    attempt INTEGER NOT NULL,
    trigger VARCHAR NOT NULL,
    start   TIMESTAMPTZ NOT NULL,
    "end"   TIMESTAMPTZ,
    status  VARCHAR NOT NULL,
    error   VARCHAR,
    output  JSON
);

-- One row per (job, period) that succeeded: a period is never run twice.
CREATE TABLE job_periods_done (
    job    VARCHAR NOT NULL,
    period TIMESTAMPTZ NOT NULL,
    run_id BIGINT NOT NULL,
    PRIMARY KEY (job, period)
);

CREATE SEQUENCE alert_id START 1;

CREATE TABLE alerts (
    id        BIGINT PRIMARY KEY DEFAULT nextval('alert_id'),
    ts        TIMESTAMPTZ NOT NULL,
    job       VARCHAR NOT NULL,
    period    TIMESTAMPTZ NOT NULL,
    kind      VARCHAR NOT NULL,
    target    VARCHAR NOT NULL,
    severity  VARCHAR NOT NULL,
    message   VARCHAR NOT NULL,
    delivered BOOLEAN NOT NULL,
    UNIQUE (job, period, kind, target)
);

-- Published executive digests, keyed by job and period so publishing is idempotent.
CREATE TABLE digests (
    id           VARCHAR PRIMARY KEY,
    job          VARCHAR NOT NULL,
    period       TIMESTAMPTZ NOT NULL,
    target       VARCHAR NOT NULL,
    title        VARCHAR NOT NULL,
    verdict      VARCHAR NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    summary      JSON NOT NULL,
    html         BLOB,
    pdf          BLOB
);
