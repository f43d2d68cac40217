-- Registry: layers, holdouts (with versions), experiments, and the audit log.
-- Documents are kept whole as JSON next to the columns used to look them up.
CREATE TABLE layers (
    name       VARCHAR PRIMARY KEY,
    doc        JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE holdouts (
    name       VARCHAR PRIMARY KEY,
    doc        JSON NOT NULL,
    version    INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE holdout_versions (
    holdout  VARCHAR NOT NULL,
    version  INTEGER NOT NULL,
    salt     VARCHAR NOT NULL,
    start_at TIMESTAMPTZ NOT NULL,
    end_at   TIMESTAMPTZ,
    PRIMARY KEY (holdout, version)
);

CREATE TABLE experiments (
    key        VARCHAR PRIMARY KEY,
    doc        JSON NOT NULL,
    status     VARCHAR NOT NULL,
    layer      VARCHAR,
    holdout    VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE audit_id START 1;

CREATE TABLE audit (
    id     BIGINT PRIMARY KEY DEFAULT nextval('audit_id'),
    ts     TIMESTAMPTZ NOT NULL,
    actor  VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    key    VARCHAR NOT NULL,
    before JSON,
    after  JSON
);
