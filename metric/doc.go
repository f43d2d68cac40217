// Package metric is the metric engine contract: what a per-unit metric is, compiled
// once into an engine-independent Plan, and what an Engine that evaluates plans
// must return. It is pure (no SQL, no database); engines live beside it
// (metric/duckdb renders plans in DuckDB SQL, Memory evaluates them unit by unit
// in Go and is the reference), and metric/metrictest is the conformance suite
// every engine passes.
//
// # Data
//
// An engine reads two relations, exposures (experiment, unit, variant, ts,
// in_holdout, holdout_version) and events (unit, type, ts, value), with times at
// microsecond precision. It never reads the registry: a Population names the
// exposures it selects (an experiment key, or a holdout version and the resolved
// experiment keys that name the holdout), and metric definitions arrive
// resolved.
//
// # The per-unit metric (the one definition)
//
// A population's exposures (those of Population.Until and later are ignored)
// give each unit its first exposure t₀ and the set of arms it was exposed to. The
// analyzed units are those exposed to exactly one arm, that arm being one of
// Population.Arms; units exposed to more than one arm are counted
// (MultipleArms) and left out; units of an arm the population does not list are
// left out uncounted. Each Column of a Plan turns an analyzed unit's events of
// its type with t₀ + Lo ≤ ts < t₀ + Hi (dt = ts − t₀ in integer microseconds;
// events at or after Until ignored) into one value:
//
//	sum     Σ value (0 without events), added with compensation (DuckDB fsum)
//	count   the number of events
//	binary  1 if there is at least one event, else 0
//	mean    Σ value / number of events; NULL (no value) without events
//
// A column with MatureAt (a matured-only window, a day-N retention metric) has
// NULL for a unit whose window has not ended by then (t₀ + Hi > MatureAt). The
// value is then winsorized at both tails (Cap from above, Floor from below:
// max(min(v, U), L), each limit fixed or the type-7 quantile of the column's
// non-NULL values over all analyzed units before capping, zeros included; see
// Quantile and Winsorize), or, in a bounded plan, clamped to [Lower, Upper];
// NULL stays NULL.
//
// # Per-arm sums
//
// A metric's sums run over its units: every analyzed unit, or for a mean metric
// or a matured-only window (OwnCount) the units whose Y is not NULL. Within them a NULL value of another
// column (a mean metric's covariate) counts as 0. Each column c has a pilot shift
// p_c, the mean of its non-NULL values over all analyzed units (0 when there are
// none), and the sums are of shifted values: Σ(a − p_a) and Σ(a − p_a)(b − p_b),
// so that a metric at 1e9 keeps its variance (analysis.Arm's Shift fields carry
// p back). A Sum names the analysis.Arm field it fills (Field.Set) and its
// operands; its operation is the field's (Field.Op).
//
// # What an implementation must provide
//
//   - Stats: Units for every arm of the population (0 when none), MultipleArms,
//     for every metric one analysis.Arm per population arm in Arms order (Name and
//     Weight set), the sums to a relative error of 1e-9 of the reference (engines
//     may add in any order), and Checksums: per arm with at least one analyzed
//     unit, the exact sums over its units of round(v·10⁶) (half away from zero, as
//     arbitrary-precision integers; NULLs skipped) of every column, in Plan.Columns
//     order, as decimal text joined by ","; "" when the plan has no columns.
//     Freshness: FirstExposure, LatestExposure and LatestEvent as
//     Engine.Freshness reads them; LatestUnitEvent may be left nil (it costs a
//     pass over the events: a third more time in DuckDB's statistics query).
//   - Bounded: the same units; per metric and arm N (units whose clamped Y is not
//     NULL), Σy and Σy² of the clamped values, unshifted.
//   - UnitValues: the analyzed units whose (capped) Y is not NULL, sorted by unit
//     id, with their arm and value; MultipleArms.
//   - Panel: see PanelPlan; the assembly into a balanced panel is AssemblePanel's.
//   - Freshness: the latest exposure of the population (all its units, the
//     multi-arm ones included), the latest event of any unit and the latest event
//     of a population unit; all cut by Until.
//
// Errors: a context that ends is returned as its error; anything else an engine
// fails on is experiment.Internal. Plans are validated by their compilers, not by
// engines.
package metric
