package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Per-unit data for quasi-experiments and uplift models: the registry's side of
// metric panels and unit values (resolving the metric, checking experiments and
// variants, joining unit attributes); the computation is the engine's
// (metric.PanelPlan, metric.CompileUnitValues).

// PanelQuery asks for a panel of Metric (by name) over [From, To), by Period, of
// the units of Groups.
type PanelQuery struct {
	Metric   string
	Groups   []metric.UnitGroup
	From, To time.Time
	Period   metric.PanelPeriod
	// Engine computes the panel (nil: the DuckDB engine over the store).
	Engine metric.Engine
}

// MetricPanel computes the panel of q.Metric (a sum, count or binary metric) for
// the units of q.Groups (see package metric for its definition). Invalid, naming
// the query field, for an unknown metric, an unsupported aggregation, an empty or
// too long time range, a bad group or an unknown experiment or variant; TooLarge
// when the panel would have more than metric.MaxPanelCells cells.
func (db *DB) MetricPanel(ctx context.Context, q PanelQuery) (*metric.Panel, error) {
	const op = "store.MetricPanel"
	m, err := db.panelMetric(ctx, nil, q.Metric, "metric")
	if err != nil {
		return nil, experiment.E(op, err)
	}
	plan, err := metric.CompilePanel(metric.PanelQuery{Metric: m, Groups: q.Groups, From: q.From, To: q.To, Period: q.Period})
	if err != nil {
		return nil, experiment.E(op, err)
	}
	for i, g := range q.Groups {
		if g.Experiment == "" && g.Variant == "" {
			continue
		}
		field := fmt.Sprintf("groups[%d]", i)
		e, err := db.GetExperiment(ctx, g.Experiment)
		if experiment.KindOf(err) == experiment.NotFound {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(field+".experiment"), experiment.Errorf("experiment %q not found", g.Experiment))
		}
		if err != nil {
			return nil, experiment.E(op, err)
		}
		if !slices.ContainsFunc(e.Variants, func(v experiment.Variant) bool { return v.Name == g.Variant }) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(field+".variant"),
				experiment.Errorf("experiment %q has no variant %q (variants: %s)", e.Key, g.Variant, variantNames(e)))
		}
	}
	eng := q.Engine
	if eng == nil {
		eng = db.engine
	}
	p, err := eng.Panel(ctx, plan)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	return p, nil
}

// panelMetric loads a metric for per-unit use: it must exist and not be a ratio.
//
// e, when not nil, is the experiment read: its pinned version of the metric is used.
func (db *DB) panelMetric(ctx context.Context, e *experiment.Experiment, name, field string) (*experiment.Metric, error) {
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
	if v, err := experimentVersion(ctx, db.db, e, name); err != nil {
		return nil, experiment.E(experiment.Internal, err)
	} else if v != 0 {
		if m, err = getMetricVersion(ctx, db.db, name, v); err != nil {
			return nil, experiment.E(experiment.Internal, err)
		}
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

// UnitValue is one exposed unit's metric value, its arm and its attributes (nil
// when none are stored).
type UnitValue struct {
	Unit       string
	Arm        string
	Value      float64
	Attributes map[string]any
}

// UnitValues returns, for each analyzed unit of experiment e (exposed to exactly
// one variant) in one of arms, the value of metric as the experiment's results
// define it (window from the first exposure, cap over all the experiment's
// analyzed units; a mean metric leaves out units without events, a matured-only
// window the units whose window has not ended by the store's clock) and the unit's
// attributes, sorted by unit, and the number of units exposed to several
// variants (left out). The metric is read at the version e pinned (the
// current one for a draft). Invalid naming field for an unknown or ratio metric.
// eng computes the values (nil: the DuckDB engine over the store).
func (db *DB) UnitValues(ctx context.Context, eng metric.Engine, e *experiment.Experiment, arms []string, metricName, field string) (values []UnitValue, multipleArms int, err error) {
	const op = "store.UnitValues"
	m, err := db.panelMetric(ctx, e, metricName, field)
	if err != nil {
		return nil, 0, experiment.E(op, err)
	}
	pop := metric.ExperimentPopulation(e)
	pop.AsOf = db.now() // matured-only windows: the units whose window has ended by now
	values, multipleArms, err = db.unitValues(ctx, eng, pop, m, arms, field)
	if err != nil {
		return nil, 0, experiment.E(op, err)
	}
	return values, multipleArms, nil
}

// UnitCovariates returns, by unit, the CUPED covariate of metric for the
// analyzed units of experiment e in arms (metric.CompileUnitCovariate: the
// metric over its covariate's days before the unit's first exposure, as the
// experiment's CUPED reads it); a unit without a value there has none in the
// map (its covariate is 0). Invalid naming field for an unknown or ratio metric
// or one without a covariate.
func (db *DB) UnitCovariates(ctx context.Context, eng metric.Engine, e *experiment.Experiment, arms []string, metricName, field string) (map[string]float64, error) {
	const op = "store.UnitCovariates"
	m, err := db.panelMetric(ctx, e, metricName, field)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	pop := metric.ExperimentPopulation(e)
	pop.AsOf = db.now()
	plan, err := metric.CompileUnitCovariate(pop, m, field)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if eng == nil {
		eng = db.engine
	}
	uv, err := eng.UnitValues(ctx, plan)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	out := make(map[string]float64, len(uv.Values))
	for _, v := range uv.Values {
		if slices.Contains(arms, v.Arm) {
			out[v.Unit] = v.Value
		}
	}
	return out, nil
}

// EventValues returns the events behind a per-event analysis of metric (a sum
// or mean metric, whose events carry values) for units of experiment e: each
// event of the metric's type whose time falls in the metric's window from the
// unit's first exposure to e (from the exposure on when it has none), as
// (unit, value) pairs sorted by unit, time and event id. The metric's cap is
// per unit and does not apply. Invalid naming field for an unknown metric or
// one of another aggregation.
func (db *DB) EventValues(ctx context.Context, e *experiment.Experiment, metricName, field string, units []string) (eventUnits []string, values []float64, err error) {
	const op = "store.EventValues"
	m, err := db.panelMetric(ctx, e, metricName, field)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	if m.Aggregation != experiment.Sum && m.Aggregation != experiment.Mean {
		return nil, nil, experiment.E(op, experiment.Invalid, experiment.Field(field),
			experiment.Errorf("metric %q is a %s metric: quantiles of events need a sum or mean metric, whose events carry values", m.Name, m.Aggregation))
	}
	lo, hi := int64(0), int64(math.MaxInt64)
	if w := m.Window; w != nil {
		lo, hi = int64(math.Round(w.StartDays*metric.DayMicros)), int64(math.Round(w.EndDays*metric.DayMicros))
	}
	if len(units) == 0 {
		return nil, nil, nil
	}
	rows, err := db.db.QueryContext(ctx, `
WITH u AS (SELECT unnest(?::VARCHAR[]) AS unit),
fx AS (SELECT unit, min(ts) AS first FROM exposures WHERE experiment = ? AND unit IN (SELECT unit FROM u) GROUP BY unit)
SELECT ev.unit, ev.value FROM events ev JOIN fx USING (unit)
WHERE ev.type = ? AND epoch_us(ev.ts) - epoch_us(fx.first) >= ? AND epoch_us(ev.ts) - epoch_us(fx.first) < ?
ORDER BY ev.unit, ev.ts, ev.event_id`, units, e.Key, m.EventType, lo, hi)
	if err != nil {
		return nil, nil, experiment.E(op, experiment.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		var v float64
		if err := rows.Scan(&u, &v); err != nil {
			return nil, nil, experiment.E(op, experiment.Internal, err)
		}
		eventUnits, values = append(eventUnits, u), append(values, v)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, experiment.E(op, experiment.Internal, err)
	}
	return eventUnits, values, nil
}

// BoundedUnitValues is UnitValues for a differentially private analysis: the
// data until until only, each value the metric's per-unit value without its
// cap (a percentile cap depends on the other units) clamped to the metric's
// declared bounds ([0, 1] for a binary metric without), which it returns.
// Invalid naming field for an unknown or ratio metric or one without bounds.
func (db *DB) BoundedUnitValues(ctx context.Context, eng metric.Engine, e *experiment.Experiment, arms []string, metricName, field string, until time.Time) ([]UnitValue, experiment.Bounds, error) {
	const op = "store.BoundedUnitValues"
	m, err := db.panelMetric(ctx, e, metricName, field)
	if err != nil {
		return nil, experiment.Bounds{}, experiment.E(op, err)
	}
	b := m.Bounds
	if b == nil && m.Aggregation == experiment.Binary {
		b = &experiment.Bounds{Lower: 0, Upper: 1}
	}
	if b == nil {
		return nil, experiment.Bounds{}, experiment.E(op, experiment.Invalid, experiment.Field(field),
			experiment.Errorf("metric %q has no bounds: declare per-unit bounds {\"lower\", \"upper\"} to analyze it privately", m.Name))
	}
	uncapped := *m
	uncapped.Cap = nil
	pop := metric.ExperimentPopulation(e)
	pop.Until = until
	values, _, err := db.unitValues(ctx, eng, pop, &uncapped, arms, field)
	if err != nil {
		return nil, experiment.Bounds{}, experiment.E(op, err)
	}
	for i := range values {
		values[i].Value = math.Max(math.Min(values[i].Value, b.Upper), b.Lower)
	}
	return values, *b, nil
}

func (db *DB) unitValues(ctx context.Context, eng metric.Engine, pop metric.Population, m *experiment.Metric, arms []string, field string) (values []UnitValue, multipleArms int, err error) {
	plan, err := metric.CompileUnitValues(pop, m, field)
	if err != nil {
		return nil, 0, err
	}
	if eng == nil {
		eng = db.engine
	}
	uv, err := eng.UnitValues(ctx, plan)
	if err != nil {
		return nil, 0, err
	}
	var units []string
	for _, v := range uv.Values {
		if slices.Contains(arms, v.Arm) {
			values = append(values, UnitValue{Unit: v.Unit, Arm: v.Arm, Value: v.Value})
			units = append(units, v.Unit)
		}
	}
	attrs, err := db.GetUnitAttributes(ctx, units)
	if err != nil {
		return nil, 0, err
	}
	for i := range values {
		values[i].Attributes = attrs[values[i].Unit]
	}
	return values, int(uv.MultipleArms), nil
}

// MarketPanelQuery asks for a panel of Metric per market and period over
// [From, To), the market of a unit being its attribute Attribute (POST
// /v1/units); with Attribute empty every unit is its own market.
type MarketPanelQuery struct {
	Metric    string
	Attribute string
	From, To  time.Time
	Period    metric.PanelPeriod
	// Engine computes the units' panel (nil: the DuckDB engine over the store).
	Engine metric.Engine
}

// MarketPanel is a balanced panel of markets: Y[m][k] is the sum over the
// units of market Markets[m] of their panel value (metric.Panel) in period k.
type MarketPanel struct {
	Metric  *experiment.Metric
	From    time.Time
	Period  metric.PanelPeriod
	Markets []string // sorted
	Units   []int    // units per market
	Y       [][]float64
	// Unassigned counts the units with events but without the attribute
	// (left out).
	Unassigned int
}

// PeriodLabel is period k's label: the date (UTC) it starts, 2006-01-02.
func (p *MarketPanel) PeriodLabel(k int) string {
	return p.From.Add(time.Duration(k) * p.Period.Duration()).Format("2006-01-02")
}

// MarketPanel computes the panel of q.Metric per market: the units' panel of
// MetricPanel (every unit with an event of the metric's type in the range:
// the per-unit definition, its cap included, is the metric engine's), summed
// over the units of each market (a count or binary metric so counts events
// or active units per market). A number or boolean attribute names its
// market as text (2 → "2"). Invalid naming the field as MetricPanel;
// InsufficientData naming "market" when no unit has the attribute.
func (db *DB) MarketPanel(ctx context.Context, q MarketPanelQuery) (*MarketPanel, error) {
	const op = "store.MarketPanel"
	p, err := db.MetricPanel(ctx, PanelQuery{Metric: q.Metric, Groups: []metric.UnitGroup{{Rest: true}}, From: q.From, To: q.To, Period: q.Period, Engine: q.Engine})
	if err != nil {
		return nil, experiment.E(op, err)
	}
	market := make([]string, len(p.Units)) // "" for a unit without the attribute
	if q.Attribute == "" {
		copy(market, p.Units)
	} else {
		attrs, err := db.GetUnitAttributes(ctx, p.Units)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		for i, u := range p.Units {
			// Stored attributes are strings, numbers or booleans (UpsertUnitAttributes).
			switch x := attrs[u][q.Attribute].(type) {
			case string:
				market[i] = x
			case float64:
				market[i] = strconv.FormatFloat(x, 'g', -1, 64)
			case bool:
				market[i] = strconv.FormatBool(x)
			}
		}
	}
	out := &MarketPanel{Metric: p.Metric, From: p.From, Period: p.Period}
	index := map[string]int{}
	for _, m := range market {
		if m == "" {
			out.Unassigned++
			continue
		}
		if _, ok := index[m]; !ok {
			index[m] = -1
			out.Markets = append(out.Markets, m)
		}
	}
	if len(out.Markets) == 0 {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Field("market"),
			experiment.Errorf("none of the %d units with %s events in the range has the attribute %q", len(p.Units), p.Metric.EventType, q.Attribute))
	}
	slices.Sort(out.Markets)
	out.Units = make([]int, len(out.Markets))
	out.Y = make([][]float64, len(out.Markets))
	for i, m := range out.Markets {
		index[m] = i
		out.Y[i] = make([]float64, p.Periods)
	}
	for i := range p.Y {
		m := market[p.Unit[i]]
		if m == "" {
			continue
		}
		out.Y[index[m]][p.Time[i]] += p.Y[i]
		if p.Time[i] == 0 {
			out.Units[index[m]]++
		}
	}
	return out, nil
}
