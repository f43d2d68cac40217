-- Forwarding committed exposures to a warehouse (lift serve --engine clickhouse).
-- seq numbers every exposure row: the exposure writer gives each group a range
-- of numbers in the order it starts appending (not a sequence default: DuckDB
-- cannot replay a WAL holding those). Existing rows are numbered here.
-- forward_cursors holds, per target, the highest seq the target has acknowledged.
ALTER TABLE exposures ADD COLUMN seq BIGINT;
UPDATE exposures SET seq = rowid + 1;

CREATE TABLE forward_cursors (
    target     VARCHAR PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- events.seq numbers event rows the same way: each ingest transaction takes a
-- block of 2^32 numbers after it holds event_ingest_lock, so numbers follow the
-- order in which loads commit.
ALTER TABLE events ADD COLUMN seq BIGINT;
UPDATE events SET seq = rowid + 1;
