// Package duckdb is the metric engine over DuckDB: it renders a metric.Plan as
// one SQL query over store's exposures and events tables and returns what the
// contract of package metric says. It speaks to DuckDB through database/sql only
// (the driver's one home is store, which opens the database and hands the engine
// its *sql.DB).
//
// A statistics query joins each event of the plan's types to its unit's first
// exposure once, aggregates per unit with one FILTER clause per (event type,
// aggregation, window) (columns that share one, a count and a binary of the same
// events, say, share the aggregate), caps per column (quantile_cont, DuckDB's
// type-7 quantile), takes each column's pilot mean in a first pass over the
// per-unit values and sums the shifted values per arm.
package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Queryer is what the engine needs of a DuckDB connection (a *sql.DB).
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Engine evaluates metric plans in DuckDB.
type Engine struct{ db Queryer }

var _ metric.Engine = (*Engine)(nil)

// New returns the engine over db, a DuckDB database with store's schema.
func New(db Queryer) *Engine { return &Engine{db: db} }

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func sqlFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) + "::DOUBLE" }

// sumFn is the per-unit sum: compensated, as the contract asks.
const sumFn = "fsum"

// population renders pop: unit, arm, t0 (first exposure), last (latest exposure)
// and arms per unit, with its arguments. arms is 1 for a unit seen in one arm
// and 2 for one seen in several: the engine only tells one from many, and
// min = max answers that without the hash set per unit a DISTINCT count builds.
func population(pop metric.Population) (string, []any) {
	until := untilCond(pop, "ts")
	if pop.Holdout == nil {
		return `SELECT unit, min(variant) AS arm, min(ts) AS t0, max(ts) AS last,
	CASE WHEN min(variant) = max(variant) THEN 1 ELSE 2 END AS arms
FROM exposures WHERE experiment = ? AND variant IS NOT NULL AND ` + until + ` GROUP BY unit`, []any{pop.Experiment}
	}
	exps := pop.Holdout.Experiments
	if exps == nil {
		exps = []string{}
	}
	return `SELECT unit, min(CASE WHEN in_holdout THEN '` + metric.HoldoutArm + `' ELSE '` + metric.ExposedArm + `' END) AS arm,
	min(ts) AS t0, max(ts) AS last,
	CASE WHEN bool_and(in_holdout) = bool_or(in_holdout) THEN 1 ELSE 2 END AS arms
FROM exposures
WHERE experiment IN (SELECT unnest(?::VARCHAR[])) AND holdout_version = ? AND ` + until + `
GROUP BY unit`, []any{exps, pop.Holdout.Version}
}

func untilCond(pop metric.Population, col string) string {
	if pop.Until.IsZero() {
		return "TRUE"
	}
	return col + " < TIMESTAMPTZ " + sqlString(pop.Until.UTC().Format("2006-01-02 15:04:05.999999+00"))
}

func armList(pop metric.Population) string {
	if len(pop.Arms) == 0 {
		return "FALSE"
	}
	q := make([]string, len(pop.Arms))
	for i, a := range pop.Arms {
		q[i] = sqlString(a)
	}
	return "arm IN (" + strings.Join(q, ", ") + ")"
}

// perUnit renders the CTEs pop, u (the analyzed units) and w (the per-unit
// values c0, c1… after caps or clamps, with arm, and unit when withUnit).
func perUnit(p *metric.Plan, withUnit bool) (string, []any) { return renderUnits(p, nil, withUnit) }

// renderUnits is perUnit, and with series (plans of metric.CompileSeries, p
// their first) the same per-unit values at every cut-off k at once: pop and u
// hold one row per cut-off and unit present by then, and w one per cut-off
// and analyzed unit, with its k. A unit's events are aggregated once per
// cut-off interval (bucket b: the first cut-off after the event, or after the
// unit's first exposure when that is later) and cumulated over k by a window,
// so the events are read once whatever the number of cut-offs; caps, the
// matured-only condition and (in StatsSeries) pilots and sums are per k.
func renderUnits(p *metric.Plan, series []*metric.Plan, withUnit bool) (string, []any) {
	pop := p.Population
	var head string
	var args []any
	kCol := ""
	if series == nil {
		var popSQL string
		popSQL, args = population(pop)
		head = `WITH pop AS MATERIALIZED (` + popSQL + `),
u AS (SELECT unit, arm, t0 FROM pop WHERE arms = 1 AND ` + armList(pop) + `)`
	} else {
		head, args = seriesPopulation(series)
		kCol = "u.k, "
	}
	unitCol := ""
	if withUnit {
		unitCol = "u.unit, "
	}
	if len(p.Columns) == 0 {
		return head + `,
w AS (SELECT ` + kCol + unitCol + `arm FROM u)`, args
	}
	var agg, vals, capped, caps []string
	aggOf := map[string]string{}
	aggFor := func(fn, cond string) string {
		k := fn + "|" + cond
		if a, ok := aggOf[k]; ok {
			return a
		}
		a := fmt.Sprintf("a%d", len(aggOf))
		aggOf[k] = a
		agg = append(agg, fmt.Sprintf("%s FILTER (WHERE %s) AS %s", fn, cond, a))
		return a
	}
	types := map[string]bool{}
	minLo, maxHi := int64(0), int64(0)
	openEnd := false
	for i, c := range p.Columns {
		name := fmt.Sprintf("c%d", i)
		cond := fmt.Sprintf("type = %s AND dt >= %d", sqlString(c.EventType), c.Lo)
		if c.Hi != metric.Unbounded {
			cond += fmt.Sprintf(" AND dt < %d", c.Hi)
		}
		types[c.EventType] = true
		switch c.Aggregation {
		case experiment.Sum:
			vals = append(vals, fmt.Sprintf("coalesce(pu.%s, 0.0) AS %s", aggFor(sumFn+"(value)", cond), name))
		case experiment.Count:
			vals = append(vals, fmt.Sprintf("coalesce(pu.%s, 0)::DOUBLE AS %s", aggFor("count(*)", cond), name))
		case experiment.Binary:
			vals = append(vals, fmt.Sprintf("CASE WHEN coalesce(pu.%s, 0) > 0 THEN 1.0 ELSE 0.0 END AS %s", aggFor("count(*)", cond), name))
		case experiment.Mean:
			// Σ value / n with the compensated sum, as the other sums.
			vals = append(vals, fmt.Sprintf("pu.%s / pu.%s AS %s", aggFor(sumFn+"(value)", cond), aggFor("count(*)", cond), name))
		default:
			panic("duckdb: column aggregation " + string(c.Aggregation))
		}
		if c.MatureAt != 0 {
			// The window has not ended by the analysis time: no value yet.
			k := len(vals) - 1
			at := strconv.FormatInt(c.MatureAt, 10)
			if series != nil {
				at = "u.mature" // the cut-off's (seriesPopulation)
			}
			vals[k] = fmt.Sprintf("CASE WHEN epoch_us(u.t0) + %d > %s THEN NULL ELSE %s END AS %s",
				c.Hi, at, strings.TrimSuffix(vals[k], " AS "+name), name)
		}
		v := name
		limit := func(cp metric.Cap, q string) string {
			switch cp.Kind {
			case metric.PercentileCap:
				caps = append(caps, fmt.Sprintf("quantile_cont(%s, %s) AS %s_%s", name, strconv.FormatFloat(cp.Percentile, 'g', -1, 64), q, name))
				return "caps." + q + "_" + name
			case metric.FixedCap:
				return sqlFloat(cp.Value)
			}
			return ""
		}
		switch {
		case c.Clamp != nil:
			v = fmt.Sprintf("greatest(least(%s, %s), %s)", name, sqlFloat(c.Clamp.Upper), sqlFloat(c.Clamp.Lower))
		default:
			// Both limits are of the values before capping (caps reads v).
			if hi := limit(c.Cap, "q"); hi != "" {
				v = fmt.Sprintf("least(%s, %s)", v, hi)
			}
			if lo := limit(c.Floor, "l"); lo != "" {
				v = fmt.Sprintf("greatest(%s, %s)", v, lo)
			}
		}
		if v != name {
			// least and greatest ignore NULLs: a mean metric's "no events" must stay NULL.
			v = fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE %s END", name, v)
		}
		capped = append(capped, fmt.Sprintf("%s AS %s", v, name))
		minLo = min(minLo, c.Lo)
		if c.Hi == metric.Unbounded {
			openEnd = true
		} else {
			maxHi = max(maxHi, c.Hi)
		}
	}
	var typeList []string
	for t := range types {
		typeList = append(typeList, sqlString(t))
	}
	sort.Strings(typeList)
	// A coarse filter before the aggregation lets DuckDB drop events far from any window.
	dtFilter := fmt.Sprintf("dt >= %d", minLo)
	if !openEnd {
		dtFilter += fmt.Sprintf(" AND dt < %d", maxHi)
	}
	capsCTE, capsJoin := "", ""
	if len(caps) > 0 {
		if series == nil {
			capsCTE = ",\ncaps AS (SELECT " + strings.Join(caps, ", ") + " FROM v)"
			capsJoin = ", caps"
		} else {
			capsCTE = ",\ncaps AS (SELECT k, " + strings.Join(caps, ", ") + " FROM v GROUP BY k)"
			capsJoin = " JOIN caps USING (k)"
		}
	}
	wUnit := ""
	if withUnit {
		wUnit = "unit, "
	}
	typeIn := strings.Join(typeList, ", ")
	var evSQL string
	join := "u LEFT JOIN pu ON u.unit = pu.unit"
	if series == nil {
		evSQL = `ev AS (
	SELECT e.unit, e.type, e.value, epoch_us(e.ts) - epoch_us(u.t0) AS dt
	FROM events e JOIN u ON e.unit = u.unit
	WHERE e.type IN (` + typeIn + `) AND ` + untilCond(pop, "e.ts") + `
),
pu AS (
	SELECT unit, ` + strings.Join(agg, ",\n\t\t") + `
	FROM ev WHERE ` + dtFilter + ` GROUP BY unit
)`
	} else {
		// pb: per unit and bucket; pu: cumulated over the unit's cut-offs
		// (its rows of u are the consecutive k from its first).
		// seg: the unit's values are constant from one bucket with events
		// to the next (NULL aggregates before the first), until k2; ug
		// expands each segment to its cut-offs.
		var cum, nulls, aNames []string
		for i := range len(aggOf) {
			cum = append(cum, fmt.Sprintf("sum(a%d) OVER win AS a%d", i, i))
			nulls = append(nulls, fmt.Sprintf("NULL::DOUBLE AS a%d", i))
			aNames = append(aNames, fmt.Sprintf("pu.a%d", i))
		}
		kEnd := "coalesce(ut.k2, " + strconv.Itoa(len(series)) + ")"
		evSQL = `ev0 AS (
	SELECT ut.uid, e.type, e.value, e.ts, epoch_us(e.ts) - epoch_us(ut.t0) AS dt, ut.k0
	FROM events e JOIN ut ON e.unit = ut.unit
	WHERE e.type IN (` + typeIn + `) AND e.ts < (SELECT max(cut) FROM cuts)
),
ev AS (SELECT ev0.uid, ev0.type, ev0.value, ev0.dt, greatest(cuts.k, ev0.k0) AS b FROM ev0 ASOF JOIN cuts ON ev0.ts < cuts.cut),
pb AS (
	SELECT uid, b, ` + strings.Join(agg, ",\n\t\t") + `
	FROM ev WHERE ` + dtFilter + ` GROUP BY uid, b
),
pu AS (
	SELECT uid, b, lead(b) OVER (PARTITION BY uid ORDER BY b) AS b_next, ` + strings.Join(cum, ", ") + `
	FROM pb WINDOW win AS (PARTITION BY uid ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
seg AS (
	SELECT ut.uid, ut.t0, ut.arm, ut.k0 AS lo, least(coalesce(f.b, ` + kEnd + `), ` + kEnd + `) AS hi, ` + strings.Join(nulls, ", ") + `
	FROM ut LEFT JOIN (SELECT uid, min(b) AS b FROM pb GROUP BY uid) f ON ut.uid = f.uid WHERE ` + armList(pop) + `
	UNION ALL
	SELECT ut.uid, ut.t0, ut.arm, pu.b, least(coalesce(pu.b_next, ` + kEnd + `), ` + kEnd + `), ` + strings.Join(aNames, ", ") + `
	FROM pu JOIN ut ON pu.uid = ut.uid WHERE ` + armList(pop) + `
),
ug AS (SELECT g.*, cuts.mature FROM (SELECT *, unnest(range(lo, hi)) AS k FROM seg) g JOIN cuts USING (k))`
		join = "ug AS u"
		for i := range vals {
			vals[i] = strings.ReplaceAll(vals[i], "pu.", "u.")
		}
	}
	return head + `,
` + evSQL + `,
v AS (
	SELECT ` + kCol + unitCol + `u.arm, ` + strings.Join(vals, ", ") + `
	FROM ` + join + `
)` + capsCTE + `,
w AS MATERIALIZED (SELECT ` + strings.TrimPrefix(kCol, "u.") + wUnit + `arm, ` + strings.Join(capped, ", ") + ` FROM v` + capsJoin + `)`, args
}

// seriesPopulation renders the CTEs cuts (k, cut, mature: each plan's
// cut-off and its matured-only analysis time), ut (per unit first exposed
// before the last cut-off: an integer id uid, t0, the arm of its first
// exposure, k0 the first cut-off after t0 and k2 the first after its first
// exposure to a second arm, NULL when none) and u (one row per cut-off k and
// analyzed unit: k0 ≤ k < k2, with the cut-off's mature). A unit's arms at a
// cut-off are those it was first exposed to before it: it is in one arm
// from k0 and in several from k2 on.
func seriesPopulation(plans []*metric.Plan) (string, []any) {
	pop := plans[0].Population
	var rows []string
	for k, p := range plans {
		mature := int64(0)
		for _, c := range p.Columns {
			mature = max(mature, c.MatureAt)
		}
		rows = append(rows, fmt.Sprintf("(%d, TIMESTAMPTZ %s, %d)", k, sqlString(p.Population.Until.UTC().Format("2006-01-02 15:04:05.999999+00")), mature))
	}
	var fv string
	var args []any
	if pop.Holdout == nil {
		fv = `SELECT unit, variant AS arm, min(ts) AS f FROM exposures
	WHERE experiment = ? AND variant IS NOT NULL AND ts < (SELECT max(cut) FROM cuts) GROUP BY unit, variant`
		args = []any{pop.Experiment}
	} else {
		exps := pop.Holdout.Experiments
		if exps == nil {
			exps = []string{}
		}
		fv = `SELECT unit, CASE WHEN in_holdout THEN '` + metric.HoldoutArm + `' ELSE '` + metric.ExposedArm + `' END AS arm, min(ts) AS f FROM exposures
	WHERE experiment IN (SELECT unnest(?::VARCHAR[])) AND holdout_version = ? AND ts < (SELECT max(cut) FROM cuts) GROUP BY 1, 2`
		args = []any{exps, pop.Holdout.Version}
	}
	return `WITH cuts(k, cut, mature) AS (VALUES ` + strings.Join(rows, ", ") + `),
fv AS (` + fv + `),
uf AS (
	SELECT row_number() OVER () AS uid, unit, t0, arm, t2 FROM (
		SELECT unit, min(f) AS t0, arg_min(arm, f) AS arm, CASE WHEN count(*) > 1 THEN list_sort(list(f))[2] END AS t2
		FROM fv GROUP BY unit)
),
ut0 AS (SELECT uf.*, cuts.k AS k0 FROM uf ASOF JOIN cuts ON uf.t0 < cuts.cut),
ut AS MATERIALIZED (SELECT ut0.uid, ut0.unit, ut0.t0, ut0.arm, ut0.k0, cuts.k AS k2 FROM ut0 ASOF LEFT JOIN cuts ON ut0.t2 < cuts.cut),
u AS (
	SELECT ut.uid, ut.t0, ut.arm, cuts.k, cuts.mature FROM ut JOIN cuts ON cuts.k >= ut.k0 AND cuts.k < coalesce(ut.k2, ` + strconv.Itoa(len(plans)) + `)
	WHERE ` + armList(pop) + `
)`, args
}

// sumsOf renders the per-arm sums of a plan's metrics over w and the
// pilots, its pilot means, and checks, the checksums of its columns.
func sumsOf(p *metric.Plan) (sums, pilots, checks []string) {
	for i := range p.Columns {
		c := fmt.Sprintf("c%d", i)
		pilots = append(pilots, fmt.Sprintf("coalesce(avg(%s), 0) AS p_%s", c, c))
		checks = append(checks, fmt.Sprintf("coalesce(sum(CAST(round(%s * 1e6) AS HUGEINT)), 0)::VARCHAR", c))
	}
	for _, m := range p.Metrics {
		// A mean metric's sums run over the units with a y; there a NULL of
		// another column (its covariate) counts as 0.
		filter, val := "", func(k int) string { return fmt.Sprintf("(c%d - p_c%d)", k, k) }
		if m.OwnCount {
			filter = fmt.Sprintf(" FILTER (WHERE c%d IS NOT NULL)", m.Y)
			val = func(k int) string { return fmt.Sprintf("(coalesce(c%d, 0) - p_c%d)", k, k) }
		}
		for _, s := range m.Sums {
			var expr string
			switch s.Field.Op() {
			case metric.OpCount:
				expr = "count(*)" + filter + "::DOUBLE"
			case metric.OpPilot:
				expr = fmt.Sprintf("min(p_c%d)", s.A)
			case metric.OpLinear:
				expr = "sum(" + val(s.A) + ")" + filter
			case metric.OpProduct:
				expr = "sum(" + val(s.A) + "*" + val(s.B) + ")" + filter
			}
			sums = append(sums, expr)
		}
	}
	return sums, pilots, checks
}

// Stats implements metric.Engine: one query for the whole plan.
func (e *Engine) Stats(ctx context.Context, p *metric.Plan) (*metric.Stats, error) {
	const op = "duckdb.Stats"
	ctes, args := perUnit(p, false)
	sums, pilots, checks := sumsOf(p)
	from := "w"
	if len(pilots) > 0 {
		ctes += ",\npilot AS (SELECT " + strings.Join(pilots, ", ") + " FROM w)"
		from = "w, pilot"
	}
	checkSQL := "''"
	if len(checks) > 0 {
		checkSQL = "concat_ws(',', " + strings.Join(checks, ", ") + ")"
	}
	sel := ""
	if len(sums) > 0 {
		sel = ",\n\t" + strings.Join(sums, ",\n\t")
	}
	q := ctes + `
SELECT arm, count(*) AS units, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, ` + checkSQL + sel + `
FROM ` + from + ` GROUP BY arm
UNION ALL
SELECT NULL, (SELECT count(*) FROM pop WHERE arms > 1), (SELECT epoch_us(min(t0)) FROM pop), (SELECT epoch_us(max(last)) FROM pop),
	(SELECT epoch_us(max(ts)) FROM events WHERE ` + untilCond(p.Population, "ts") + `),
	NULL::BIGINT, NULL` + strings.Repeat(", NULL", len(sums))
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, queryErr(ctx, op, err)
	}
	defer rows.Close()
	st := metric.NewStats(p)
	armIdx := map[string]int{}
	for i, a := range p.Population.Arms {
		armIdx[a] = i
	}
	vals := make([]sql.NullFloat64, len(sums))
	for rows.Next() {
		var arm sql.NullString
		var units int64
		var firstX, lastX, lastE, none sql.NullInt64
		var check sql.NullString
		dst := []any{&arm, &units, &firstX, &lastX, &lastE, &none, &check}
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		if !arm.Valid {
			st.MultipleArms = units
			st.Freshness = metric.Freshness{FirstExposure: micros(firstX), LatestExposure: micros(lastX), LatestEvent: micros(lastE)}
			continue
		}
		i := armIdx[arm.String]
		st.Units[arm.String] = units
		st.Checksums[arm.String] = check.String
		k := 0
		for _, m := range p.Metrics {
			a := &st.Metrics[m.Name][i]
			for _, s := range m.Sums {
				s.Field.Set(a, vals[k].Float64)
				k++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, op, err)
	}
	return st, nil
}

var _ metric.SeriesEngine = (*Engine)(nil)

// StatsSeries implements metric.SeriesEngine: one query for every cut-off
// (renderUnits), whose pilots and sums are grouped by cut-off.
func (e *Engine) StatsSeries(ctx context.Context, plans []*metric.Plan) ([]*metric.Stats, error) {
	const op = "duckdb.StatsSeries"
	out := make([]*metric.Stats, len(plans))
	for i, p := range plans {
		out[i] = metric.NewStats(p)
		out[i].Checksums = nil
	}
	if len(plans) == 0 {
		return out, nil
	}
	p := plans[0]
	ctes, args := renderUnits(p, plans, false)
	sums, pilots, _ := sumsOf(p)
	from := "w"
	if len(pilots) > 0 {
		ctes += ",\npilot AS (SELECT k, " + strings.Join(pilots, ", ") + " FROM w GROUP BY k)"
		from = "w JOIN pilot USING (k)"
	}
	sel := ""
	if len(sums) > 0 {
		sel = ",\n\t" + strings.Join(sums, ",\n\t")
	}
	q := ctes + `
SELECT k, arm, count(*) AS units` + sel + `
FROM ` + from + ` GROUP BY k, arm
UNION ALL
SELECT k2, NULL, count(*)` + strings.Repeat(", NULL", len(sums)) + ` FROM ut WHERE k2 IS NOT NULL GROUP BY k2`
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, queryErr(ctx, op, err)
	}
	defer rows.Close()
	armIdx := map[string]int{}
	for i, a := range p.Population.Arms {
		armIdx[a] = i
	}
	vals := make([]sql.NullFloat64, len(sums))
	for rows.Next() {
		var k int
		var arm sql.NullString
		var units int64
		dst := []any{&k, &arm, &units}
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		st := out[k]
		if !arm.Valid {
			// units in two arms from k2 = k on
			for _, st := range out[k:] {
				st.MultipleArms += units
			}
			continue
		}
		i := armIdx[arm.String]
		st.Units[arm.String] = units
		j := 0
		for _, m := range p.Metrics {
			a := &st.Metrics[m.Name][i]
			for _, s := range m.Sums {
				s.Field.Set(a, vals[j].Float64)
				j++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, op, err)
	}
	return out, nil
}

// Bounded implements metric.Engine: one query for the whole plan.
func (e *Engine) Bounded(ctx context.Context, p *metric.Plan) (*metric.Bounded, error) {
	const op = "duckdb.Bounded"
	ctes, args := perUnit(p, false)
	var sel []string
	for _, m := range p.Metrics {
		y := fmt.Sprintf("c%d", m.Y)
		sel = append(sel, "count("+y+")", "coalesce(sum("+y+"), 0)", "coalesce(sum("+y+"*"+y+"), 0)")
	}
	q := ctes + `
SELECT arm, count(*)`
	if len(sel) > 0 {
		q += ", " + strings.Join(sel, ", ")
	}
	q += ` FROM w GROUP BY arm`
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, queryErr(ctx, op, err)
	}
	defer rows.Close()
	out := metric.NewBounded(p)
	idx := map[string]int{}
	for i, a := range p.Population.Arms {
		idx[a] = i
	}
	for rows.Next() {
		var arm string
		var units int64
		dst := []any{&arm, &units}
		vals := make([]metric.BoundedArm, len(p.Metrics))
		for i := range vals {
			dst = append(dst, &vals[i].N, &vals[i].Sum, &vals[i].SumSq)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		out.Units[arm] = units
		for i := range vals {
			vals[i].Arm = arm
			out.Metrics[i].Arms[idx[arm]] = vals[i]
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, op, err)
	}
	return out, nil
}

// UnitValues implements metric.Engine.
func (e *Engine) UnitValues(ctx context.Context, p *metric.Plan) (*metric.UnitValues, error) {
	const op = "duckdb.UnitValues"
	ctes, args := perUnit(p, true)
	y := fmt.Sprintf("c%d", p.Metrics[0].Y)
	q := ctes + `
SELECT unit, arm, ` + y + ` FROM w WHERE ` + y + ` IS NOT NULL
UNION ALL
SELECT NULL, NULL, (SELECT count(*) FROM pop WHERE arms > 1)::DOUBLE
ORDER BY 1 NULLS FIRST`
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, queryErr(ctx, op, err)
	}
	defer rows.Close()
	out := &metric.UnitValues{Values: []metric.UnitValue{}}
	for rows.Next() {
		var unit, arm sql.NullString
		var v float64
		if err := rows.Scan(&unit, &arm, &v); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		if !unit.Valid {
			out.MultipleArms = int64(v)
			continue
		}
		out.Values = append(out.Values, metric.UnitValue{Unit: unit.String, Arm: arm.String, Value: v})
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, op, err)
	}
	return out, nil
}

// Panel implements metric.Engine: the units with their numbers, the non-empty
// cells and the overlap in one query; metric.AssemblePanel fills in the zeros.
func (e *Engine) Panel(ctx context.Context, p *metric.PanelPlan) (*metric.Panel, error) {
	const op = "duckdb.Panel"
	q := p.Query
	from, to := q.From, q.To
	var sel []string
	var args []any
	for i, g := range q.Groups {
		switch {
		case g.Rest:
			sel = append(sel, fmt.Sprintf(`SELECT DISTINCT unit, %d AS g FROM events
	WHERE type = ? AND ts >= ? AND ts < ? AND unit NOT IN (SELECT unit FROM sel)`, i))
			args = append(args, p.EventType, from, to)
		case g.Units != nil:
			sel = append(sel, fmt.Sprintf(`SELECT DISTINCT unnest(?::VARCHAR[]) AS unit, %d AS g`, i))
			args = append(args, g.Units)
		default:
			sel = append(sel, fmt.Sprintf(`SELECT DISTINCT unit, %d AS g FROM exposures WHERE experiment = ? AND variant = ?`, i))
			args = append(args, g.Experiment, g.Variant)
		}
	}
	// The rest (last) reads sel, the union of the groups before it.
	selCTE := "sel AS (" + strings.Join(sel, "\nUNION ALL\n") + ")"
	if q.Groups[len(q.Groups)-1].Rest {
		selCTE = "sel AS (" + strings.Join(sel[:len(sel)-1], "\nUNION ALL\n") + "),\nsel2 AS (SELECT * FROM sel UNION ALL " + sel[len(sel)-1] + ")"
		if len(sel) == 1 {
			selCTE = "sel AS (SELECT NULL::VARCHAR AS unit, 0 AS g WHERE FALSE),\nsel2 AS (" + sel[0] + ")"
		}
	} else {
		selCTE += ",\nsel2 AS (SELECT * FROM sel)"
	}
	var value string
	switch p.Aggregation {
	case experiment.Sum:
		value = sumFn + "(e.value)"
	case experiment.Count:
		value = "count(*)::DOUBLE"
	case experiment.Binary:
		value = "1.0"
	}
	query := `WITH ` + selCTE + `,
u AS (SELECT unit, min(g) AS g, count(DISTINCT g) AS groups FROM sel2 GROUP BY unit),
one AS (SELECT unit, g, (row_number() OVER (ORDER BY unit) - 1)::BIGINT AS idx FROM u WHERE groups = 1),
c AS (
	SELECT one.idx, (epoch_us(e.ts) - ?::BIGINT) // ?::BIGINT AS p, ` + value + ` AS v
	FROM events e JOIN one ON e.unit = one.unit
	WHERE e.type = ? AND e.ts >= ? AND e.ts < ?
	GROUP BY ALL
)
SELECT 0 AS kind, unit, g::BIGINT, idx, NULL::BIGINT, NULL::DOUBLE FROM one
UNION ALL SELECT 1, NULL, NULL, idx, p::BIGINT, v FROM c
UNION ALL SELECT 2, NULL, (SELECT count(*) FROM u WHERE groups > 1), NULL, NULL, NULL`
	args = append(args, p.FromMicros, p.PeriodMicros, p.EventType, from, to)
	rows, err := e.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, queryErr(ctx, op, err)
	}
	defer rows.Close()
	var units []string
	var groups []int
	var cells []metric.PanelCell
	overlap := 0
	for rows.Next() {
		var kind int
		var unit sql.NullString
		var g, idx, k sql.NullInt64
		var v sql.NullFloat64
		if err := rows.Scan(&kind, &unit, &g, &idx, &k, &v); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		switch kind {
		case 0:
			i := int(idx.Int64)
			if i >= len(units) {
				units = append(units, make([]string, i+1-len(units))...)
				groups = append(groups, make([]int, i+1-len(groups))...)
			}
			units[i], groups[i] = unit.String, int(g.Int64)
		case 1:
			cells = append(cells, metric.PanelCell{Unit: int(idx.Int64), Period: int(k.Int64), Value: v.Float64})
		case 2:
			overlap = int(g.Int64)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryErr(ctx, op, err)
	}
	pn, err := metric.AssemblePanel(p, units, groups, overlap, cells)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	return pn, nil
}

// Freshness implements metric.Engine.
func (e *Engine) Freshness(ctx context.Context, pop metric.Population) (metric.Freshness, error) {
	const op = "duckdb.Freshness"
	popSQL, args := population(pop)
	until := untilCond(pop, "ts")
	var first, last, latest, unitLatest sql.NullInt64
	err := e.db.QueryRowContext(ctx, `WITH pop AS MATERIALIZED (`+popSQL+`)
SELECT (SELECT epoch_us(min(t0)) FROM pop), (SELECT epoch_us(max(last)) FROM pop),
	(SELECT epoch_us(max(ts)) FROM events WHERE `+until+`),
	(SELECT epoch_us(max(ts)) FROM events WHERE unit IN (SELECT unit FROM pop) AND `+until+`)`, args...).Scan(&first, &last, &latest, &unitLatest)
	if err != nil {
		return metric.Freshness{}, queryErr(ctx, op, err)
	}
	return metric.Freshness{FirstExposure: micros(first), LatestExposure: micros(last), LatestEvent: micros(latest), LatestUnitEvent: micros(unitLatest)}, nil
}

func micros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMicro(v.Int64).UTC()
	return &t
}

// queryErr returns the context's error when it ended, else an Internal error.
func queryErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return experiment.E(op, experiment.Internal, fmt.Errorf("query: %w", err))
}
