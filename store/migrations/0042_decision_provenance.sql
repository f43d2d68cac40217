-- Why a unit saw what it saw: each decision's provenance (journey.Provenance as
-- JSON: the consent and signals it used, the model, exploration, the rules in
-- force). NULL for decisions stored before, and after the unit's erasure.
ALTER TABLE journey_decisions ADD COLUMN provenance VARCHAR;
