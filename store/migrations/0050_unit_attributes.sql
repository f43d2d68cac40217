-- Attributes of units (plan, country, tenure, ...), sent by POST /v1/units and used
-- as features by uplift models. attrs is a flat JSON object of numbers, strings and
-- booleans; an upsert merges into it (RFC 7396: a null value removes the attribute).
CREATE TABLE unit_attributes (
    unit       VARCHAR PRIMARY KEY,
    attrs      JSON NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
