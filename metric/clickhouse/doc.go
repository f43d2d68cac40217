// Package clickhouse is the metric engine over ClickHouse (metric.Engine), and
// the one home of the Go client (github.com/ClickHouse/clickhouse-go/v2, native
// TCP protocol: its HTTP mode fails against 18.16).
//
// # Tables
//
// Schema creates them: exposures_local and events_local (MergeTree) on every
// server, and exposures and events, Distributed(cluster, default, x_local,
// cityHash64(unit)) over them. Times are Int64 microseconds since the Unix
// epoch; a holdout exposure has variant ”. Load inserts a metric.Dataset
// straight into the local table of the shard that holds each unit (Shard, the
// Distributed tables' own choice), in batches that name their columns; a
// literal INSERT … VALUES is never sent.
//
// # Why per-shard sums are right
//
// Both tables are sharded by the same key, cityHash64(unit), so every exposure
// and every event of a unit lives on one shard. A unit's per-unit values (first
// exposure, arms, windowed aggregates of its events) depend on that unit's rows
// only, so each shard computes them for its own units, over its local tables,
// exactly as one server holding everything would. What depends on all units is
// computed first, over the Distributed tables on the first shard: the
// percentile caps (the type-7 quantile of the sorted non-NULL values of every
// analyzed unit) and the pilot shifts (the mean of the capped values). The
// second query, on each shard, sums the values shifted by those global pilots
// per arm; sums over disjoint sets of units add, so the engine adds the shards'
// per-arm sums (compensated, as the reference engine) and the exact checksums
// (Σ round(v·10⁶), as whole multiples of 2³² and the rest, each an exact Int64
// sum, joined in big integers). Bounded sums need no global step.
// UnitValues, Panel and Freshness read the Distributed tables.
//
// # SQL that runs on 18.16 and current releases
//
// No named subqueries (WITH name AS), one JOIN per SELECT with USING, -If
// combinators instead of FILTER, no window functions (min(ts) and uniqExact of
// the arm per unit), no :: casts, no Int128 or DateTime64, no sign(). A NULL
// per-unit value (a mean without events) is nan, kept apart from least and
// greatest with isNaN; floats enter the SQL by their bits
// (reinterpretAsFloat64), never as decimal text. Quantiles are exact, from the
// sorted values (the built-in quantile is approximate). sumKahan is used where
// its state never travels between servers (18.16 crashes merging it across
// shards). A unit without events is kept by a UNION ALL of one empty event row
// per exposure before the INNER JOIN, rather than a LEFT JOIN that would fill
// defaults (unless join_use_nulls).
package clickhouse
