-- Metric versions and experiment templates.
--
-- metrics keeps each metric's current definition (with its version number and
-- deprecation flag in the document); metric_versions keeps every version ever
-- written, unchanged, so that experiments pinned to an earlier version and the
-- snapshots computed from it can still be read. The metrics defined before
-- versions existed become their version 1.
CREATE TABLE metric_versions (
    name       VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    doc        JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    actor      VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);
INSERT INTO metric_versions (name, version, doc, created_at, actor)
    SELECT name, 1, doc, created_at, 'system' FROM metrics;

-- Experiment templates, kept whole as JSON (experiment.Template).
CREATE TABLE experiment_templates (
    name       VARCHAR PRIMARY KEY,
    doc        JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
