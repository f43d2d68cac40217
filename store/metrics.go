package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
)

// Metric registry and the metric → SQL compiler.
//
// A metric turns each analyzed unit's events into one number, relative to the
// unit's first exposure t₀:
//
//	sum     Σ value of the unit's events of the metric's type in the window
//	count   number of those events
//	binary  1 if there is at least one, else 0
//	mean    Σ value / number of events; units without events are left out
//	ratio   Σ numerator / Σ denominator over units (delta method in analysis)
//
// The window [start_days, end_days) is relative to t₀ (default [0, ∞)); the CUPED
// covariate x is the same aggregation over [t₀ − days, t₀). Exposed units without
// events count as 0 for sum, count and binary. Capping replaces y by min(y, c), c
// fixed or the percentile of the analyzed units' values (zeros included) computed
// by quantile_cont; the covariate is capped the same way with its own percentile.
//
// Floating-point sums depend, in their last bits, on the order in which DuckDB's
// threads add. So that the same rows give the same snapshot input hash, the
// query also returns exact checksums: per arm, the sum of each per-unit value
// column rounded to millionths, as a 128-bit integer.
//
// One query computes, for every metric of an experiment, the per-arm sufficient
// statistics analysis.Arm needs: it joins each event of the metrics' types to the
// unit's first exposure once, aggregates per unit with one FILTER clause per
// (metric, period), and sums per arm.

// CreateMetric validates and stores a metric definition with its audit entry in
// one transaction. A ratio metric must name existing non-ratio, non-mean metrics
// and cannot be capped (cap its numerator or denominator instead). Conflict if
// the name is taken.
func (db *DB) CreateMetric(ctx context.Context, actor string, in *experiment.Metric) (*experiment.Metric, error) {
	const op = "store.CreateMetric"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no metric given"))
	}
	m := *in
	if err := m.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	if m.Aggregation == experiment.Ratio {
		if m.Cap != nil {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("cap"),
				experiment.Errorf("a ratio metric cannot be capped: cap its numerator or denominator metric"))
		}
		for _, part := range []struct{ field, name string }{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
			pm, err := getMetric(ctx, db.db, part.name)
			if experiment.KindOf(err) == experiment.NotFound {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field(part.field),
					experiment.Errorf("metric %q does not exist: create it first", part.name))
			}
			if err != nil {
				return nil, internal(op, err)
			}
			if pm.Aggregation == experiment.Ratio || pm.Aggregation == experiment.Mean {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field(part.field),
					experiment.Errorf("metric %q is a %s metric: a ratio's parts must be sum, count or binary metrics", part.name, pm.Aggregation))
			}
		}
	}
	if _, err := getMetric(ctx, db.db, m.Name); err == nil {
		return nil, experiment.E(op, experiment.Conflict, experiment.Field("name"), experiment.Errorf("metric %q already exists", m.Name))
	} else if experiment.KindOf(err) != experiment.NotFound {
		return nil, internal(op, err)
	}
	now := db.now()
	doc, err := json.Marshal(&m)
	if err != nil {
		return nil, internal(op, err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO metrics (name, doc, created_at) VALUES (?, ?, ?)`, m.Name, string(doc), now); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "metric.create", "metric", m.Name, nil, &m)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &m, nil
}

// GetMetric returns a metric definition; NotFound when there is none.
func (db *DB) GetMetric(ctx context.Context, name string) (*experiment.Metric, error) {
	m, err := getMetric(ctx, db.db, name)
	if err != nil {
		return nil, internal("store.GetMetric", err)
	}
	return m, nil
}

func getMetric(ctx context.Context, q queryer, name string) (*experiment.Metric, error) {
	var doc jsonText
	err := q.QueryRowContext(ctx, `SELECT doc FROM metrics WHERE name = ?`, name).Scan(&doc)
	if err == sql.ErrNoRows {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("metric %q not found", name))
	}
	if err != nil {
		return nil, err
	}
	var m experiment.Metric
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("metric %q: %w", name, err)
	}
	return &m, nil
}

// ListMetrics returns every metric definition, by name.
func (db *DB) ListMetrics(ctx context.Context) ([]*experiment.Metric, error) {
	const op = "store.ListMetrics"
	rows, err := db.db.QueryContext(ctx, `SELECT doc FROM metrics ORDER BY name`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var ms []*experiment.Metric
	for rows.Next() {
		var doc jsonText
		if err := rows.Scan(&doc); err != nil {
			return nil, internal(op, err)
		}
		var m experiment.Metric
		if err := json.Unmarshal(doc, &m); err != nil {
			return nil, internal(op, err)
		}
		ms = append(ms, &m)
	}
	return ms, internal(op, rows.Err())
}

// resolveMetrics loads the named metrics and the parts of ratio metrics.
func (db *DB) resolveMetrics(ctx context.Context, names []string) (map[string]*experiment.Metric, error) {
	defs := map[string]*experiment.Metric{}
	var load func(name, field string) error
	load = func(name, field string) error {
		if _, ok := defs[name]; ok {
			return nil
		}
		m, err := getMetric(ctx, db.db, name)
		if experiment.KindOf(err) == experiment.NotFound {
			return experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf("metric %q is not defined: POST it to /v1/metrics first", name))
		}
		if err != nil {
			return err
		}
		defs[name] = m
		if m.Aggregation == experiment.Ratio {
			if err := load(m.Numerator, field); err != nil {
				return err
			}
			return load(m.Denominator, field)
		}
		return nil
	}
	for i, n := range names {
		if err := load(n, fmt.Sprintf("metrics[%d]", i)); err != nil {
			return nil, err
		}
	}
	return defs, nil
}

// Population is the set of units a computation analyzes and the arm each is in.
type Population struct {
	// SQL selects unit, arm, t0 (first exposure), last (latest exposure) and arms (distinct arms the unit
	// was exposed to) per unit; units with arms > 1 are excluded and counted.
	SQL  string
	Args []any
	// Arms are the arm names in order, the control first, with their weights.
	Arms    []string
	Weights []float64
	// Until, when not zero, ignores exposures and events at or after it.
	Until time.Time
}

// query returns the population's SQL with its cut-off applied.
func (p Population) query() string {
	return strings.ReplaceAll(p.SQL, "{until}", p.untilCond("ts"))
}

func (p Population) untilCond(col string) string {
	if p.Until.IsZero() {
		return "TRUE"
	}
	return col + " < TIMESTAMPTZ " + sqlString(p.Until.UTC().Format("2006-01-02 15:04:05.999999+00"))
}

// ExperimentPopulation is the exposed units of an experiment, by variant; holdout
// units (no variant) are left out.
func ExperimentPopulation(e *experiment.Experiment) Population {
	p := Population{
		SQL: `SELECT unit, min(variant) AS arm, min(ts) AS t0, max(ts) AS last, count(DISTINCT variant) AS arms
FROM exposures WHERE experiment = ? AND variant IS NOT NULL AND {until} GROUP BY unit`,
		Args: []any{e.Key},
	}
	for _, v := range e.Variants {
		p.Arms = append(p.Arms, v.Name)
		p.Weights = append(p.Weights, v.Weight)
	}
	return p
}

// Holdout arms.
const (
	HoldoutArm = "holdout" // units kept out of everything the holdout protects
	ExposedArm = "exposed" // the other units exposed under the same holdout version
)

// HoldoutPopulation is, for one version of a holdout, the units kept in the holdout
// (arm "holdout", the control) and the units exposed to the experiments naming it
// (arm "exposed"), by the exposures logged under that version. The expected shares
// are the holdout's fraction and its complement.
func HoldoutPopulation(h *experiment.Holdout, version int) Population {
	return Population{
		SQL: `SELECT unit, min(CASE WHEN in_holdout THEN 'holdout' ELSE 'exposed' END) AS arm,
	min(ts) AS t0, max(ts) AS last, count(DISTINCT in_holdout) AS arms
FROM exposures
WHERE experiment IN (SELECT key FROM experiments WHERE holdout = ?) AND holdout_version = ? AND {until}
GROUP BY unit`,
		Args:    []any{h.Name, version},
		Arms:    []string{HoldoutArm, ExposedArm},
		Weights: []float64{h.Fraction, 1 - h.Fraction},
	}
}

// Stats are the sufficient statistics of a set of metrics over a population.
type Stats struct {
	// Units is the number of analyzed units per arm (exposed to exactly one arm).
	Units map[string]int64 `json:"units"`
	// MultipleArms counts units exposed to more than one arm, excluded.
	MultipleArms int64 `json:"multiple_arms"`
	// Metrics maps a metric name to its per-arm statistics in Population.Arms order.
	Metrics map[string][]analysis.Arm `json:"metrics"`
	// Freshness is the latest exposure of the population and the latest event.
	Freshness Freshness `json:"-"`
	// Checksums are, per arm, the exact sums of every per-unit value column in
	// millionths (128-bit integers, as text): unlike the float sums they do not
	// depend on the order in which DuckDB's threads add, so they key the input hash.
	Checksums map[string]string `json:"-"`
}

// column is one per-unit value: a base metric over the post-exposure window or
// over the pre-exposure covariate period.
type column struct {
	m      *experiment.Metric
	pre    bool
	days   float64 // covariate days when pre
	name   string  // SQL alias
	lo, hi int64   // window in microseconds since t₀; hi < 0: open
	cond   string  // SQL filter of the column's events
}

// compiled is the SQL of one statistics query.
type compiled struct {
	sql  string
	args []any
	cols map[string][]string // metric → aliases of its output sums, in query order
}

const dayMicros = 86_400_000_000

// window returns the [lo, hi) bounds in microseconds since t₀; hi is -1 when open.
func (c *column) window(parent *experiment.Metric) (lo, hi int64) {
	if c.pre {
		return -int64(math.Round(c.days * dayMicros)), 0
	}
	w := c.m.Window
	if parent != nil && parent.Window != nil {
		w = parent.Window
	}
	if w == nil {
		return 0, -1
	}
	return int64(math.Round(w.StartDays * dayMicros)), int64(math.Round(w.EndDays * dayMicros))
}

// compile builds the statistics query for the metrics named (defs holds them and
// the parts of ratio metrics) over pop.
func compile(pop Population, names []string, defs map[string]*experiment.Metric) (*compiled, error) {
	var cols []*column
	byKey := map[string]*column{}
	// windows of ratio parts are overridden by the ratio's window: a part used by
	// two metrics with different windows needs two columns, so the key includes it.
	type colReq struct {
		m      *experiment.Metric
		parent *experiment.Metric
		pre    bool
		days   float64
	}
	colFor := func(r colReq) *column {
		k := fmt.Sprintf("%s|%t|%g", r.m.Name, r.pre, r.days)
		if r.parent != nil && r.parent.Window != nil && !r.pre {
			k += fmt.Sprintf("|w%g-%g", r.parent.Window.StartDays, r.parent.Window.EndDays)
		}
		if c, ok := byKey[k]; ok {
			return c
		}
		c := &column{m: r.m, pre: r.pre, days: r.days, name: fmt.Sprintf("c%d", len(cols))}
		c.lo, c.hi = c.window(r.parent)
		c.cond = fmt.Sprintf("type = %s AND dt >= %d", sqlString(r.m.EventType), c.lo)
		if c.hi >= 0 {
			c.cond += fmt.Sprintf(" AND dt < %d", c.hi)
		}
		byKey[k] = c
		cols = append(cols, c)
		return c
	}
	type metricCols struct{ y, x, d, d0 *column }
	mc := map[string]metricCols{}
	for _, n := range names {
		m := defs[n]
		var c metricCols
		days := 0.0
		if m.Covariate != nil {
			days = m.Covariate.Days
		}
		if m.Aggregation == experiment.Ratio {
			num, den := defs[m.Numerator], defs[m.Denominator]
			c.y = colFor(colReq{m: num, parent: m})
			c.d = colFor(colReq{m: den, parent: m})
			if days > 0 {
				c.x = colFor(colReq{m: num, pre: true, days: days})
				c.d0 = colFor(colReq{m: den, pre: true, days: days})
			}
		} else {
			c.y = colFor(colReq{m: m})
			if days > 0 {
				c.x = colFor(colReq{m: m, pre: true, days: days})
			}
		}
		mc[n] = c
	}

	// Per-unit aggregates over the joined events.
	var agg, vals, capped, caps, checks []string
	types := map[string]bool{}
	minLo, maxHi := int64(0), int64(0)
	openEnd := false
	// Aggregates shared by several columns (a count and a binary metric of the
	// same events and window, say) are computed once.
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
	for _, c := range cols {
		cond := c.cond
		types[c.m.EventType] = true
		switch c.m.Aggregation {
		case experiment.Sum:
			vals = append(vals, fmt.Sprintf("coalesce(pu.%s, 0.0) AS %s", aggFor("sum(value)", cond), c.name))
		case experiment.Count:
			vals = append(vals, fmt.Sprintf("coalesce(pu.%s, 0)::DOUBLE AS %s", aggFor("count(*)", cond), c.name))
		case experiment.Binary:
			vals = append(vals, fmt.Sprintf("CASE WHEN coalesce(pu.%s, 0) > 0 THEN 1.0 ELSE 0.0 END AS %s", aggFor("count(*)", cond), c.name))
		case experiment.Mean:
			vals = append(vals, fmt.Sprintf("pu.%s AS %s", aggFor("avg(value)", cond), c.name))
		default:
			return nil, fmt.Errorf("metric %q: cannot aggregate %q per unit", c.m.Name, c.m.Aggregation)
		}
		v := c.name
		if cp := c.m.Cap; cp != nil {
			if cp.Percentile > 0 {
				caps = append(caps, fmt.Sprintf("quantile_cont(%s, %g) AS q_%s", c.name, cp.Percentile, c.name))
				v = fmt.Sprintf("least(%s, caps.q_%s)", c.name, c.name)
			} else {
				v = fmt.Sprintf("least(%s, %g)", c.name, cp.Value)
			}
			// least ignores NULLs; a mean metric's "no events" must stay NULL.
			v = fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE %s END", c.name, v)
		}
		capped = append(capped, fmt.Sprintf("%s AS %s", v, c.name))
		checks = append(checks, fmt.Sprintf("coalesce(sum(CAST(round(%s * 1e6) AS HUGEINT)), 0)::VARCHAR", c.name))
		minLo = min(minLo, c.lo)
		if c.hi < 0 {
			openEnd = true
		} else {
			maxHi = max(maxHi, c.hi)
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
		capsCTE = ",\ncaps AS (SELECT " + strings.Join(caps, ", ") + " FROM v)"
		capsJoin = ", caps"
	}

	// Per-arm sums of shifted values (and the exact checksums of the input
	// hash, see the top). Each column's shift is its mean over the analyzed
	// units, from a first pass over the per-unit values (pilot).
	out := &compiled{cols: map[string][]string{}}
	var sums, pilots []string
	add := func(metric, alias, expr string) {
		sums = append(sums, fmt.Sprintf("%s AS %s", expr, alias))
		out.cols[metric] = append(out.cols[metric], alias)
	}
	for _, c := range cols {
		pilots = append(pilots, fmt.Sprintf("coalesce(avg(%s), 0) AS p_%s", c.name, c.name))
	}
	shifted := func(col string) string { return "(" + col + " - p_" + col + ")" }
	s1 := func(a, filter string) string { return "sum(" + shifted(a) + ")" + filter }
	s2 := func(a, b, filter string) string { return "sum(" + shifted(a) + "*" + shifted(b) + ")" + filter }
	shift := func(a string) string { return "min(p_" + a + ")" }
	for i, n := range names {
		c := mc[n]
		p := fmt.Sprintf("m%d_", i)
		y := c.y.name
		if defs[n].Aggregation == experiment.Ratio {
			d := c.d.name
			add(n, p+"n", "count(*)::DOUBLE")
			add(n, p+"cy", shift(y))
			add(n, p+"sy", s1(y, ""))
			add(n, p+"syy", s2(y, y, ""))
			add(n, p+"cd", shift(d))
			add(n, p+"sd", s1(d, ""))
			add(n, p+"sdd", s2(d, d, ""))
			add(n, p+"syd", s2(y, d, ""))
			if c.x != nil {
				x, d0 := c.x.name, c.d0.name
				add(n, p+"cx", shift(x))
				add(n, p+"sx", s1(x, ""))
				add(n, p+"sxx", s2(x, x, ""))
				add(n, p+"sxy", s2(x, y, ""))
				add(n, p+"cd0", shift(d0))
				add(n, p+"sd0", s1(d0, ""))
				add(n, p+"sd0d0", s2(d0, d0, ""))
				add(n, p+"syd0", s2(y, d0, ""))
				add(n, p+"sxd", s2(x, d, ""))
				add(n, p+"sxd0", s2(x, d0, ""))
				add(n, p+"sdd0", s2(d, d0, ""))
			}
			continue
		}
		// Mean metrics leave out units without events (y NULL): count(y) and the
		// covariate sums over the same units, a missing covariate counting as 0.
		add(n, p+"n", "count("+y+")::DOUBLE")
		add(n, p+"cy", shift(y))
		add(n, p+"sy", s1(y, ""))
		add(n, p+"syy", s2(y, y, ""))
		if c.x != nil {
			xs := "(coalesce(" + c.x.name + ", 0) - p_" + c.x.name + ")"
			only := " FILTER (WHERE " + y + " IS NOT NULL)"
			add(n, p+"cx", shift(c.x.name))
			add(n, p+"sx", "sum("+xs+")"+only)
			add(n, p+"sxx", "sum("+xs+"*"+xs+")"+only)
			add(n, p+"sxy", "sum("+xs+"*"+shifted(y)+")")
		}
	}
	if len(cols) == 0 {
		out.sql = `WITH pop AS (` + pop.query() + `)
SELECT arm, count(*), NULL::BIGINT, NULL::BIGINT, '' FROM pop WHERE arms = 1 GROUP BY arm
UNION ALL SELECT NULL, count(*) FILTER (WHERE arms > 1), epoch_us(max(last)), (SELECT epoch_us(max(ts)) FROM events), NULL FROM pop`
		out.args = pop.Args
		return out, nil
	}
	out.sql = `WITH pop AS MATERIALIZED (` + pop.query() + `),
u AS (SELECT unit, arm, t0 FROM pop WHERE arms = 1),
ev AS (
	SELECT e.unit, e.type, e.value, epoch_us(e.ts) - epoch_us(u.t0) AS dt
	FROM events e JOIN u ON e.unit = u.unit
	WHERE e.type IN (` + strings.Join(typeList, ", ") + `) AND ` + pop.untilCond("e.ts") + `
),
pu AS (
	SELECT unit, ` + strings.Join(agg, ",\n\t\t") + `
	FROM ev WHERE ` + dtFilter + ` GROUP BY unit
),
v AS (
	SELECT u.arm, ` + strings.Join(vals, ", ") + `
	FROM u LEFT JOIN pu ON u.unit = pu.unit
)` + capsCTE + `,
w AS MATERIALIZED (SELECT arm, ` + strings.Join(capped, ", ") + ` FROM v` + capsJoin + `),
pilot AS (SELECT ` + strings.Join(pilots, ", ") + ` FROM w)
SELECT arm, count(*) AS units, NULL::BIGINT, NULL::BIGINT, concat_ws(',', ` + strings.Join(checks, ", ") + `), ` + strings.Join(sums, ",\n\t") + `
FROM w, pilot GROUP BY arm
UNION ALL
SELECT NULL, (SELECT count(*) FROM pop WHERE arms > 1), (SELECT epoch_us(max(last)) FROM pop),
	(SELECT epoch_us(max(ts)) FROM events), NULL` + strings.Repeat(", NULL", len(sums))
	out.args = pop.Args
	return out, nil
}

// MetricStats computes the sufficient statistics of the named metrics over a
// population in one query. Metrics must exist (Invalid naming metrics[i] otherwise).
func (db *DB) MetricStats(ctx context.Context, pop Population, names []string) (*Stats, error) {
	const op = "store.MetricStats"
	defs, err := db.resolveMetrics(ctx, names)
	if err != nil {
		return nil, internal(op, err)
	}
	st := &Stats{Units: map[string]int64{}, Metrics: map[string][]analysis.Arm{}, Checksums: map[string]string{}}
	armIdx := map[string]int{}
	for i, a := range pop.Arms {
		armIdx[a] = i
		st.Units[a] = 0
	}
	for _, n := range names {
		arms := make([]analysis.Arm, len(pop.Arms))
		for i, a := range pop.Arms {
			arms[i] = analysis.Arm{Name: a, Weight: pop.Weights[i]}
		}
		st.Metrics[n] = arms
	}
	c, err := compile(pop, names, defs)
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, err)
	}
	rows, err := db.db.QueryContext(ctx, c.sql, c.args...)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("metric query: %w", err))
	}
	defer rows.Close()
	ncols := 5
	for _, n := range names {
		ncols += len(c.cols[n])
	}
	vals := make([]sql.NullFloat64, ncols-5)
	for rows.Next() {
		var arm sql.NullString
		var units int64
		var lastX, lastE sql.NullInt64
		var check sql.NullString
		dst := []any{&arm, &units, &lastX, &lastE, &check}
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		if !arm.Valid {
			st.MultipleArms = units
			if lastX.Valid {
				t := time.UnixMicro(lastX.Int64).UTC()
				st.Freshness.LatestExposure = &t
			}
			if lastE.Valid {
				t := time.UnixMicro(lastE.Int64).UTC()
				st.Freshness.LatestEvent = &t
			}
			continue
		}
		i, ok := armIdx[arm.String]
		if !ok {
			// Exposures of a variant the experiment no longer lists: not analyzable.
			continue
		}
		st.Units[arm.String] = units
		st.Checksums[arm.String] = check.String
		k := 0
		for _, n := range names {
			a := &st.Metrics[n][i]
			for _, alias := range c.cols[n] {
				v := vals[k].Float64
				k++
				setSum(a, alias[strings.IndexByte(alias, '_')+1:], v)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	return st, nil
}

// setSum stores one named sum of the query into an analysis.Arm.
func setSum(a *analysis.Arm, name string, v float64) {
	switch name {
	case "n":
		a.N = int64(v)
	case "cy":
		a.Shift = v
	case "cx":
		a.CovariateShift = v
	case "cd":
		a.DenominatorShift = v
	case "cd0":
		a.DenominatorCovariateShift = v
	case "sy":
		a.Sum = v
	case "syy":
		a.SumSquares = v
	case "sx":
		a.CovariateSum = v
	case "sxx":
		a.CovariateSumSquares = v
	case "sxy":
		a.CrossSum = v
	case "sd":
		a.DenominatorSum = v
	case "sdd":
		a.DenominatorSumSquares = v
	case "syd":
		a.MetricDenominatorSum = v
	case "sd0":
		a.DenominatorCovariateSum = v
	case "sd0d0":
		a.DenominatorCovariateSumSquares = v
	case "syd0":
		a.MetricDenominatorCovariateSum = v
	case "sxd":
		a.CovariateDenominatorSum = v
	case "sxd0":
		a.CovariateDenominatorCovariateSum = v
	case "sdd0":
		a.DenominatorDenominatorCovariateSum = v
	default:
		panic("store: unknown sum " + name)
	}
}

// Freshness is the time of the latest exposure of a population and of the latest
// event stored.
type Freshness struct {
	LatestExposure *time.Time `json:"latest_exposure"`
	LatestEvent    *time.Time `json:"latest_event"`
}

// PopulationFreshness returns the latest exposure of pop and the latest event.
func (db *DB) PopulationFreshness(ctx context.Context, pop Population) (Freshness, error) {
	var x, e sql.NullTime
	err := db.db.QueryRowContext(ctx, `SELECT (SELECT max(last) FROM (`+pop.query()+`)), (SELECT max(ts) FROM events)`, pop.Args...).Scan(&x, &e)
	if err != nil {
		return Freshness{}, experiment.E("store.PopulationFreshness", experiment.Internal, err)
	}
	var f Freshness
	if x.Valid {
		t := x.Time.UTC()
		f.LatestExposure = &t
	}
	if e.Valid {
		t := e.Time.UTC()
		f.LatestEvent = &t
	}
	return f, nil
}
