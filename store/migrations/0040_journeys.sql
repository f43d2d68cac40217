-- Journeys (personalized journeys served under an experiment), their decisions and
-- the per-day guardrails of the journey comparison.

-- Journey definitions, kept whole as JSON (experiment.Journey); changes are audited.
CREATE TABLE journeys (
    key        VARCHAR PRIMARY KEY,
    doc        JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row per decision of POST /v1/journeys/KEY/decide. The exposure of a unit that
-- entered the experiment is in exposures (source 'journey'); this table says which
-- policy served it and which items it was shown. Join on (experiment, unit).
CREATE TABLE journey_decisions (
    decision_id     VARCHAR PRIMARY KEY,
    ts              TIMESTAMPTZ NOT NULL,
    journey         VARCHAR NOT NULL,
    experiment      VARCHAR NOT NULL,
    unit            VARCHAR NOT NULL,
    variant         VARCHAR,          -- NULL for holdout and ineligible units
    policy          VARCHAR NOT NULL, -- personalized, control, holdout, fallback, ineligible
    reason          VARCHAR,          -- why a fallback or ineligible decision happened
    items           VARCHAR NOT NULL, -- JSON array [{"id", "score", "reason"}] as shown
    model_version   VARCHAR,
    latency_ms      DOUBLE NOT NULL,
    in_holdout      BOOLEAN NOT NULL,
    holdout_version INTEGER
);

-- Guardrails per journey per UTC day, written by the daily roll-up.
CREATE TABLE journey_daily (
    journey          VARCHAR NOT NULL,
    day              DATE NOT NULL,
    decisions        BIGINT NOT NULL,
    personalized     BIGINT NOT NULL,
    control          BIGINT NOT NULL,
    holdout          BIGINT NOT NULL,
    fallback         BIGINT NOT NULL,
    ineligible       BIGINT NOT NULL,
    fallback_rate    DOUBLE,  -- fallback / (personalized + fallback)
    ineligible_share DOUBLE,  -- ineligible / decisions
    latency_p50_ms   DOUBLE,
    latency_p95_ms   DOUBLE,
    latency_p99_ms   DOUBLE,
    items_shown      BIGINT NOT NULL,
    distinct_items   BIGINT NOT NULL,
    gini             DOUBLE,  -- Gini of item exposure counts of the day
    computed_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (journey, day)
);
