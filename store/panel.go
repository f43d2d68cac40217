package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Per-unit data for quasi-experiments and uplift models.
//
// MetricPanel turns the events of a metric into a balanced panel, one value per
// unit and calendar period, for difference-in-differences: period k of a panel
// starting at From covers [From + k·L, From + (k+1)·L), L one day or one week, and
// a unit's value in a period is the metric's aggregation of its events there
//
//	sum     Σ value
//	count   number of events
//	binary  1 if there is at least one event, else 0
//
// with 0 for periods without events. A metric's cap applies to each cell (a
// percentile cap at that percentile of all cells, zeros included); its window,
// relative to a first exposure, does not apply to calendar periods.
//
// UnitValues is the per-unit value of a metric over an experiment's exposed units,
// with the same definition as the experiment's results (window relative to the
// first exposure, capping over the analyzed units), and the units' attributes.

// PanelPeriod is the length of a panel period.
type PanelPeriod string

// The panel periods.
const (
	Day  PanelPeriod = "day"
	Week PanelPeriod = "week"
)

// Duration is the period's length.
func (p PanelPeriod) Duration() time.Duration {
	if p == Week {
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// Limits of MetricPanel.
const (
	MaxPanelPeriods = 1000       // periods in one panel
	MaxPanelCells   = 20_000_000 // units × periods in one panel
)

// UnitGroup selects units for a panel: the units exposed to Variant of Experiment,
// or the listed Units, or, with Rest, every unit not in another group that has an
// event of the metric's type in the panel's time range. Exactly one of the three.
type UnitGroup struct {
	Experiment string
	Variant    string
	Units      []string
	Rest       bool
}

// PanelQuery asks for a panel of Metric over [From, To), by Period, of the units
// of Groups.
type PanelQuery struct {
	Metric   string
	Groups   []UnitGroup
	From, To time.Time
	Period   PanelPeriod
}

// Panel is a balanced panel in long format: Unit[i] observed in period Time[i] with
// value Y[i], one row per unit and period, sorted by unit then period. Units are
// numbered 0…len(Units)−1 in the order of their ids.
type Panel struct {
	Metric     *experiment.Metric
	From       time.Time
	Period     PanelPeriod
	Periods    int
	Units      []string // unit id by number
	Group      []int    // group index by unit number
	GroupUnits []int    // units per group
	Overlap    int      // units selected by more than one group, left out
	Unit, Time []int
	Y          []float64
}

// PeriodStart is the start of period k.
func (p *Panel) PeriodStart(k int) time.Time {
	return p.From.Add(time.Duration(k) * p.Period.Duration())
}

// MetricPanel computes the panel of q.Metric (a sum, count or binary metric) for
// the units of q.Groups. Invalid, naming the query field, for an unknown metric,
// an unsupported aggregation, an empty or too long time range, a bad group or an
// unknown experiment or variant; TooLarge when the panel would have more than
// MaxPanelCells cells.
func (db *DB) MetricPanel(ctx context.Context, q PanelQuery) (*Panel, error) {
	const op = "store.MetricPanel"
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	m, err := db.panelMetric(ctx, q.Metric, "metric")
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if m.Aggregation == experiment.Mean {
		return nil, invalid("metric", "metric %q is a mean metric: a panel needs a sum, count or binary metric (a mean is undefined in periods without events)", m.Name)
	}
	if q.Period != Day && q.Period != Week {
		return nil, invalid("period", `must be "day" or "week", got %q`, q.Period)
	}
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, invalid("to", "the time range must be non-empty: from %s, to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	plen := q.Period.Duration()
	periods := int((q.To.Sub(q.From) + plen - 1) / plen)
	if periods > MaxPanelPeriods {
		return nil, invalid("to", "%d %s periods between from and to; the limit is %d", periods, q.Period, MaxPanelPeriods)
	}
	if len(q.Groups) == 0 {
		return nil, invalid("groups", "at least one group is required")
	}

	from, to := q.From.UTC(), q.To.UTC()
	var sel []string
	var args []any
	for i, g := range q.Groups {
		shapes := 0
		if g.Experiment != "" || g.Variant != "" {
			shapes++
		}
		if g.Units != nil {
			shapes++
		}
		if g.Rest {
			shapes++
		}
		field := fmt.Sprintf("groups[%d]", i)
		switch {
		case shapes != 1:
			return nil, invalid(field, "give exactly one of an experiment and variant, a list of units, or the rest")
		case g.Rest && i != len(q.Groups)-1:
			return nil, invalid(field, "the rest must be the last group")
		case g.Rest:
			sel = append(sel, fmt.Sprintf(`SELECT DISTINCT unit, %d AS g FROM events
	WHERE type = ? AND ts >= ? AND ts < ? AND unit NOT IN (SELECT unit FROM sel)`, i))
			args = append(args, m.EventType, from, to)
		case g.Units != nil:
			if len(g.Units) == 0 {
				return nil, invalid(field+".units", "is empty")
			}
			for j, u := range g.Units {
				if u == "" {
					return nil, invalid(fmt.Sprintf("%s.units[%d]", field, j), "is empty")
				}
			}
			sel = append(sel, fmt.Sprintf(`SELECT DISTINCT unnest(?::VARCHAR[]) AS unit, %d AS g`, i))
			args = append(args, g.Units)
		default:
			e, err := db.GetExperiment(ctx, g.Experiment)
			if experiment.KindOf(err) == experiment.NotFound {
				return nil, invalid(field+".experiment", "experiment %q not found", g.Experiment)
			}
			if err != nil {
				return nil, experiment.E(op, err)
			}
			if !slices.ContainsFunc(e.Variants, func(v experiment.Variant) bool { return v.Name == g.Variant }) {
				return nil, invalid(field+".variant", "experiment %q has no variant %q (variants: %s)", e.Key, g.Variant, variantNames(e))
			}
			sel = append(sel, fmt.Sprintf(`SELECT DISTINCT unit, %d AS g FROM exposures WHERE experiment = ? AND variant = ?`, i))
			args = append(args, e.Key, g.Variant)
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
	switch m.Aggregation {
	case experiment.Sum:
		value = "fsum(e.value)"
	case experiment.Count:
		value = "count(*)::DOUBLE"
	case experiment.Binary:
		value = "1.0"
	}
	// One row per unit (with its number), one per non-empty cell, and one with the
	// count of overlapping units; the zeros are filled in here, not sent.
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
	args = append(args, from.UnixMicro(), plen.Microseconds(), m.EventType, from, to)

	rows, err := db.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("panel query: %w", err))
	}
	defer rows.Close()
	p := &Panel{Metric: m, From: from, Period: q.Period, Periods: periods, GroupUnits: make([]int, len(q.Groups))}
	type cell struct {
		idx, k int
		v      float64
	}
	var cells []cell
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
			if i >= len(p.Units) {
				p.Units = append(p.Units, make([]string, i+1-len(p.Units))...)
				p.Group = append(p.Group, make([]int, i+1-len(p.Group))...)
			}
			p.Units[i], p.Group[i] = unit.String, int(g.Int64)
			p.GroupUnits[g.Int64]++
		case 1:
			cells = append(cells, cell{int(idx.Int64), int(k.Int64), v.Float64})
		case 2:
			p.Overlap = int(g.Int64)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	if n := len(p.Units) * periods; n > MaxPanelCells {
		return nil, experiment.E(op, experiment.TooLarge, experiment.Errorf("the panel would have %d unit-period cells, over the limit of %d: shorten the time range, use weeks or fewer units", n, MaxPanelCells))
	}
	n := len(p.Units) * periods
	p.Unit, p.Time, p.Y = make([]int, n), make([]int, n), make([]float64, n)
	for i := range n {
		p.Unit[i], p.Time[i] = i/periods, i%periods
	}
	for _, c := range cells {
		p.Y[c.idx*periods+c.k] = c.v
	}
	capValues(p.Y, m.Cap)
	return p, nil
}

// panelMetric loads a metric for per-unit use: it must exist and not be a ratio.
func (db *DB) panelMetric(ctx context.Context, name, field string) (*experiment.Metric, error) {
	if name == "" {
		return nil, experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf("is required"))
	}
	m, err := getMetric(ctx, db.db, name)
	if experiment.KindOf(err) == experiment.NotFound {
		return nil, experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf("metric %q is not defined: POST it to /v1/metrics first", name))
	}
	if err != nil {
		return nil, experiment.E(experiment.Internal, err)
	}
	if m.Aggregation == experiment.Ratio {
		return nil, experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf("metric %q is a ratio metric: per-unit analyses need a sum, count, binary or mean metric", name))
	}
	return m, nil
}

func variantNames(e *experiment.Experiment) string {
	names := make([]string, len(e.Variants))
	for i, v := range e.Variants {
		names[i] = fmt.Sprintf("%q", v.Name)
	}
	return strings.Join(names, ", ")
}

// capValues winsorizes v in place by c: at c.Value, or at the c.Percentile
// quantile of v computed as DuckDB's quantile_cont does (linear interpolation
// between order statistics at position p·(n−1), Hyndman & Fan type 7).
func capValues(v []float64, c *experiment.Cap) {
	if c == nil || len(v) == 0 {
		return
	}
	limit := c.Value
	if c.Percentile > 0 {
		s := slices.Clone(v)
		slices.Sort(s)
		h := c.Percentile * float64(len(s)-1)
		lo := int(math.Floor(h))
		limit = s[lo]
		if lo+1 < len(s) {
			limit += (h - float64(lo)) * (s[lo+1] - s[lo])
		}
	}
	for i := range v {
		v[i] = math.Min(v[i], limit)
	}
}

// UnitValue is one exposed unit's metric value, its arm and its attributes (nil
// when none are stored).
type UnitValue struct {
	Unit       string
	Arm        string
	Value      float64
	Attributes map[string]any
}

// UnitValues returns, for each unit exposed to exactly one of the arms of
// experiment e (units exposed to several variants are left out and counted), the
// value of metric as the experiment's results define it (window from the first
// exposure, cap over the units returned; a mean metric leaves out units without
// events) and the unit's attributes, sorted by unit. Invalid naming field for an
// unknown or ratio metric.
func (db *DB) UnitValues(ctx context.Context, e *experiment.Experiment, arms []string, metric, field string) (values []UnitValue, multipleArms int, err error) {
	const op = "store.UnitValues"
	m, err := db.panelMetric(ctx, metric, field)
	if err != nil {
		return nil, 0, experiment.E(op, err)
	}
	pop := ExperimentPopulation(e)
	window := ""
	lo := int64(0)
	if w := m.Window; w != nil {
		lo = int64(math.Round(w.StartDays * dayMicros))
		window = fmt.Sprintf(" AND epoch_us(e.ts) - epoch_us(u.t0) < %d", int64(math.Round(w.EndDays*dayMicros)))
	}
	query := `WITH pop AS (` + pop.query() + `),
u AS (SELECT unit, arm, t0 FROM pop WHERE arms = 1 AND arm IN (SELECT unnest(?::VARCHAR[]))),
pu AS (
	SELECT e.unit, fsum(e.value) AS s, count(*) AS n
	FROM events e JOIN u ON e.unit = u.unit
	WHERE e.type = ? AND epoch_us(e.ts) - epoch_us(u.t0) >= ?` + window + `
	GROUP BY e.unit
)
SELECT u.unit, u.arm, coalesce(pu.s, 0.0), coalesce(pu.n, 0), a.attrs
FROM u LEFT JOIN pu ON pu.unit = u.unit LEFT JOIN unit_attributes a ON a.unit = u.unit
UNION ALL
SELECT NULL, NULL, NULL, (SELECT count(*) FROM pop WHERE arms > 1 AND arm IN (SELECT unnest(?::VARCHAR[]))), NULL
ORDER BY 1 NULLS FIRST`
	args := append(slices.Clone(pop.Args), arms, m.EventType, lo, arms)
	rows, err := db.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, experiment.E(op, experiment.Internal, fmt.Errorf("unit values query: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var unit, arm sql.NullString
		var s sql.NullFloat64
		var n int64
		var doc jsonText
		if err := rows.Scan(&unit, &arm, &s, &n, &doc); err != nil {
			return nil, 0, experiment.E(op, experiment.Internal, err)
		}
		if !unit.Valid {
			multipleArms = int(n)
			continue
		}
		uv := UnitValue{Unit: unit.String, Arm: arm.String}
		switch m.Aggregation {
		case experiment.Sum:
			uv.Value = s.Float64
		case experiment.Count:
			uv.Value = float64(n)
		case experiment.Binary:
			if n > 0 {
				uv.Value = 1
			}
		case experiment.Mean:
			if n == 0 {
				continue
			}
			uv.Value = s.Float64 / float64(n)
		}
		if len(doc) > 0 {
			if err := json.Unmarshal(doc, &uv.Attributes); err != nil {
				return nil, 0, experiment.E(op, experiment.Internal, fmt.Errorf("attributes of unit %q: %w", uv.Unit, err))
			}
		}
		values = append(values, uv)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, experiment.E(op, experiment.Internal, err)
	}
	y := make([]float64, len(values))
	for i := range values {
		y[i] = values[i].Value
	}
	capValues(y, m.Cap)
	for i := range values {
		values[i].Value = y[i]
	}
	return values, multipleArms, nil
}
