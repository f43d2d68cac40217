-- Erasures a forwarder still has to apply to its warehouse (ClickHouse): the
-- erased unit's raw id, kept only until every shard has deleted the unit's rows
-- and holds its exposures under the pseudonym. EraseUnit writes a row only when
-- a forward cursor exists (rows were, or are being, forwarded); the forwarder
-- deletes it, with its audit entry, once ClickHouse is done.
CREATE TABLE forward_erasures (
    pseudonym    VARCHAR PRIMARY KEY,
    unit         VARCHAR NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL
);
