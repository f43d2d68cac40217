-- Bandit experiments (analysis/bandit, docs/bandits.md): every weight version
-- the allocation job computed, and the version at which each unit first entered
-- (a unit's arm is the hash of the unit under that version's weights, so it
-- never moves when the weights change).
CREATE TABLE bandit_versions (
    experiment VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    weights    JSON NOT NULL,
    prob_best  JSON NOT NULL,
    burn_in    BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (experiment, version)
);
CREATE TABLE bandit_units (
    experiment VARCHAR NOT NULL,
    unit       VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (experiment, unit)
);
