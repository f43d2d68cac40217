package metric

import (
	"fmt"
	"math"
	"slices"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
)

// DayMicros is one day in microseconds, the unit of windows.
const DayMicros = 86_400_000_000

// Unbounded is Column.Hi for a window without an end.
const Unbounded = math.MaxInt64

// Plan is a compiled set of metrics over a population: the per-unit columns an
// engine computes for every analyzed unit, and per metric the per-arm sums it
// reports. Engines read plans; only the compilers (Compile, CompileBounded)
// write them.
type Plan struct {
	Population Population
	Columns    []Column
	Metrics    []MetricPlan
	// Bounded marks a plan of CompileBounded: columns are clamped, not capped,
	// and Engine.Bounded evaluates it.
	Bounded bool
}

// Column is one per-unit value: an aggregation of the unit's events of one type
// with Lo ≤ dt < Hi microseconds since its first exposure, then capped or clamped.
type Column struct {
	EventType   string
	Aggregation experiment.Aggregation // Sum, Count, Binary or Mean
	Lo, Hi      int64                  // Hi == Unbounded: no end
	Cap         Cap                    // the upper cap; none in a bounded plan
	Floor       Cap                    // the lower cap; none in a bounded plan
	Clamp       *experiment.Bounds     // bounded plans only
	// MatureAt, when not 0, makes the value NULL for a unit whose window has not
	// ended by then: t₀ + Hi > MatureAt (microseconds since the epoch; Hi is
	// finite). A matured-only window (a day-N retention metric).
	MatureAt int64
	// Pre marks a CUPED pre-period column (Lo < Hi = 0), for readers of the plan.
	Pre bool
}

// CapKind says how a column is capped.
type CapKind uint8

// The cap kinds. A Column's Cap is an upper limit (min(v, limit)), its Floor a
// lower one (max(v, limit)).
const (
	NoCap         CapKind = iota
	FixedCap              // the limit is Value
	PercentileCap         // the limit is Quantile(values, Percentile) over the analyzed units' non-NULL values before capping
)

// Cap winsorizes a column at one tail (Column.Cap from above, Column.Floor from
// below).
type Cap struct {
	Kind       CapKind
	Value      float64 // FixedCap
	Percentile float64 // PercentileCap, in (0, 1)
}

// MetricPlan is one metric's output: which columns are its y, CUPED covariate x,
// ratio denominator d and the denominator's covariate d₀ (-1 when absent), and
// the sums to report per arm.
type MetricPlan struct {
	Name string
	Def  *experiment.Metric
	Y    int
	X    int
	D    int
	D0   int
	// OwnCount: a mean metric, whose sums run over the units with a Y only.
	OwnCount bool
	// Bounds are a bounded plan's clamp of Y.
	Bounds experiment.Bounds
	Sums   []Sum
}

// Sum is one per-arm sum: the analysis.Arm field it fills and its operands,
// column indices (B only for products).
type Sum struct {
	Field Field
	A, B  int
}

// Op is how a Sum is computed over a metric's units of one arm.
type Op uint8

// The operations.
const (
	OpCount   Op = iota // the number of units
	OpPilot             // p_A, the column's pilot shift (the same in every arm)
	OpLinear            // Σ(a − p_A)
	OpProduct           // Σ(a − p_A)(b − p_B)
)

// Field names an analysis.Arm field.
type Field uint8

// The fields, in analysis.Arm's order.
const (
	FieldN Field = iota
	FieldShift
	FieldSum
	FieldSumSquares
	FieldCovariateShift
	FieldCovariateSum
	FieldCovariateSumSquares
	FieldCrossSum
	FieldDenominatorShift
	FieldDenominatorSum
	FieldDenominatorSumSquares
	FieldMetricDenominatorSum
	FieldDenominatorCovariateShift
	FieldDenominatorCovariateSum
	FieldDenominatorCovariateSumSquares
	FieldMetricDenominatorCovariateSum
	FieldCovariateDenominatorSum
	FieldCovariateDenominatorCovariateSum
	FieldDenominatorDenominatorCovariateSum
)

// Op is the operation that computes f.
func (f Field) Op() Op {
	switch f {
	case FieldN:
		return OpCount
	case FieldShift, FieldCovariateShift, FieldDenominatorShift, FieldDenominatorCovariateShift:
		return OpPilot
	case FieldSum, FieldCovariateSum, FieldDenominatorSum, FieldDenominatorCovariateSum:
		return OpLinear
	}
	return OpProduct
}

// Set stores v into a's field f.
func (f Field) Set(a *analysis.Arm, v float64) {
	switch f {
	case FieldN:
		a.N = int64(v)
	case FieldShift:
		a.Shift = v
	case FieldSum:
		a.Sum = v
	case FieldSumSquares:
		a.SumSquares = v
	case FieldCovariateShift:
		a.CovariateShift = v
	case FieldCovariateSum:
		a.CovariateSum = v
	case FieldCovariateSumSquares:
		a.CovariateSumSquares = v
	case FieldCrossSum:
		a.CrossSum = v
	case FieldDenominatorShift:
		a.DenominatorShift = v
	case FieldDenominatorSum:
		a.DenominatorSum = v
	case FieldDenominatorSumSquares:
		a.DenominatorSumSquares = v
	case FieldMetricDenominatorSum:
		a.MetricDenominatorSum = v
	case FieldDenominatorCovariateShift:
		a.DenominatorCovariateShift = v
	case FieldDenominatorCovariateSum:
		a.DenominatorCovariateSum = v
	case FieldDenominatorCovariateSumSquares:
		a.DenominatorCovariateSumSquares = v
	case FieldMetricDenominatorCovariateSum:
		a.MetricDenominatorCovariateSum = v
	case FieldCovariateDenominatorSum:
		a.CovariateDenominatorSum = v
	case FieldCovariateDenominatorCovariateSum:
		a.CovariateDenominatorCovariateSum = v
	case FieldDenominatorDenominatorCovariateSum:
		a.DenominatorDenominatorCovariateSum = v
	default:
		panic(fmt.Sprintf("metric: unknown field %d", f))
	}
}

// Resolved are metric definitions by name: the metrics asked for and the parts
// of ratio metrics.
type Resolved map[string]*experiment.Metric

// Compile plans the sufficient statistics of the named metrics (defs holds them
// and the parts of ratio metrics) over pop. Invalid naming metrics[i] for a name
// without a definition, a ratio whose parts are missing, ratios or means, or an
// aggregation that has no per-unit value.
func Compile(pop Population, names []string, defs Resolved) (*Plan, error) {
	c := newCompiler(pop)
	for i, n := range names {
		if err := c.metric(i, n, defs); err != nil {
			return nil, err
		}
	}
	return c.plan, nil
}

// CompileBounded plans the bounded statistics of a differentially private
// release: for each named metric its per-unit value (aggregation and window as
// in Compile, caps ignored: a percentile cap depends on the data, and the bounds
// take its place) clamped to its declared bounds (a binary metric without bounds
// uses [0, 1]). Ratio metrics and metrics without bounds are Invalid naming
// metrics[i].
func CompileBounded(pop Population, names []string, defs Resolved) (*Plan, error) {
	c := newCompiler(pop)
	c.plan.Bounded = true
	for i, n := range names {
		m := defs[n]
		f := experiment.Field(fmt.Sprintf("metrics[%d]", i))
		if m == nil {
			return nil, experiment.E(experiment.Invalid, f, experiment.Errorf("metric %q is not defined", n))
		}
		b := m.Bounds
		if b == nil && m.Aggregation == experiment.Binary {
			b = &experiment.Bounds{Lower: 0, Upper: 1}
		}
		switch {
		case m.Aggregation == experiment.Ratio:
			return nil, experiment.E(experiment.Invalid, f, experiment.Errorf("ratio metric %q cannot be released privately; release its numerator and denominator", n))
		case b == nil:
			return nil, experiment.E(experiment.Invalid, f, experiment.Errorf("metric %q has no bounds: declare per-unit bounds {\"lower\", \"upper\"} to release it privately", n))
		}
		y, err := c.column(m, nil, 0, b, f)
		if err != nil {
			return nil, err
		}
		c.plan.Metrics = append(c.plan.Metrics, MetricPlan{Name: n, Def: m, Y: y, X: -1, D: -1, D0: -1,
			OwnCount: m.Aggregation == experiment.Mean || c.plan.Columns[y].MatureAt != 0, Bounds: *b})
	}
	return c.plan, nil
}

// CompileUnitValues plans the per-unit value of one sum, count, binary or mean
// metric over pop, with the definition of Compile (window, cap over the analyzed
// units). Invalid naming field for a ratio metric.
func CompileUnitValues(pop Population, m *experiment.Metric, field string) (*Plan, error) {
	if m.Aggregation == experiment.Ratio {
		return nil, experiment.E(experiment.Invalid, experiment.Field(field),
			experiment.Errorf("metric %q is a ratio metric: per-unit analyses need a sum, count, binary or mean metric", m.Name))
	}
	c := newCompiler(pop)
	y, err := c.column(m, nil, 0, nil, experiment.Field(field))
	if err != nil {
		return nil, err
	}
	c.plan.Metrics = []MetricPlan{{Name: m.Name, Def: m, Y: y, X: -1, D: -1, D0: -1, OwnCount: m.Aggregation == experiment.Mean || c.plan.Columns[y].MatureAt != 0}}
	return c.plan, nil
}

// CompileUnitCovariate plans the per-unit CUPED covariate of one sum, count,
// binary or mean metric over pop: the metric over its Covariate.Days before
// each unit's first exposure, the column Compile uses as the covariate x.
// Invalid naming field for a ratio metric or one without a covariate.
func CompileUnitCovariate(pop Population, m *experiment.Metric, field string) (*Plan, error) {
	if m.Aggregation == experiment.Ratio {
		return nil, experiment.E(experiment.Invalid, experiment.Field(field),
			experiment.Errorf("metric %q is a ratio metric: per-unit analyses need a sum, count, binary or mean metric", m.Name))
	}
	if m.Covariate == nil || m.Covariate.Days <= 0 {
		return nil, experiment.E(experiment.Invalid, experiment.Field(field),
			experiment.Errorf("metric %q has no pre-exposure covariate: give it \"covariate\": {\"days\": N} (PUT /v1/metrics/%s) for CUPED", m.Name, m.Name))
	}
	c := newCompiler(pop)
	x, err := c.column(m, nil, m.Covariate.Days, nil, experiment.Field(field))
	if err != nil {
		return nil, err
	}
	c.plan.Metrics = []MetricPlan{{Name: m.Name, Def: m, Y: x, X: -1, D: -1, D0: -1}}
	return c.plan, nil
}

// capsOf is the upper and lower caps of a definition's cap.
func capsOf(cp *experiment.Cap) (upper, lower Cap) {
	if v, ok := cp.UpperValue(); ok {
		upper = Cap{Kind: FixedCap, Value: v}
	} else if cp.Percentile > 0 {
		upper = Cap{Kind: PercentileCap, Percentile: cp.Percentile}
	}
	if cp.Lower != nil {
		lower = Cap{Kind: FixedCap, Value: *cp.Lower}
	} else if cp.LowerPercentile > 0 {
		lower = Cap{Kind: PercentileCap, Percentile: cp.LowerPercentile}
	}
	return upper, lower
}

// effectiveWindow is the window m's column is over: parent's (a ratio) when it
// has one, else m's own.
func effectiveWindow(m, parent *experiment.Metric) *experiment.Window {
	if parent != nil && parent.Window != nil {
		return parent.Window
	}
	return m.Window
}

type compiler struct {
	plan  *Plan
	byKey map[Column]int
}

func newCompiler(pop Population) *compiler {
	return &compiler{plan: &Plan{Population: pop}, byKey: map[Column]int{}}
}

// column returns the index of m's column over the window of parent (a ratio,
// whose window overrides its parts'; nil: m's own), or over the pre-period of
// days when days > 0; columns are shared by the metrics that need the same one.
func (c *compiler) column(m, parent *experiment.Metric, days float64, clamp *experiment.Bounds, f experiment.Field) (int, error) {
	switch m.Aggregation {
	case experiment.Sum, experiment.Count, experiment.Binary, experiment.Mean:
	default:
		return 0, experiment.E(experiment.Invalid, f, experiment.Errorf("metric %q: cannot aggregate %q per unit", m.Name, m.Aggregation))
	}
	col := Column{EventType: m.EventType, Aggregation: m.Aggregation, Lo: 0, Hi: Unbounded}
	switch w := m.Window; {
	case days > 0:
		col.Lo, col.Hi, col.Pre = -int64(math.Round(days*DayMicros)), 0, true
	case parent != nil && parent.Window != nil:
		col.Lo, col.Hi = int64(math.Round(parent.Window.StartDays*DayMicros)), int64(math.Round(parent.Window.EndDays*DayMicros))
	case w != nil:
		col.Lo, col.Hi = int64(math.Round(w.StartDays*DayMicros)), int64(math.Round(w.EndDays*DayMicros))
	}
	if clamp != nil {
		b := *clamp
		col.Clamp = &b
	} else if cp := m.Cap; cp != nil {
		col.Cap, col.Floor = capsOf(cp)
	}
	if w := effectiveWindow(m, parent); days == 0 && w != nil && w.MaturedOnly {
		at := c.plan.Population.Until
		if at.IsZero() || (!c.plan.Population.AsOf.IsZero() && c.plan.Population.AsOf.Before(at)) {
			at = c.plan.Population.AsOf
		}
		if at.IsZero() {
			return 0, experiment.E(experiment.Invalid, f, experiment.Errorf("metric %q counts matured windows only and needs an analysis time (Population.AsOf or Until)", m.Name))
		}
		col.MatureAt = at.UnixMicro()
	}
	key := col
	key.Clamp = nil // pointers differ; bounded plans have one column per metric anyway
	if i, ok := c.byKey[key]; ok && clamp == nil {
		return i, nil
	}
	c.byKey[key] = len(c.plan.Columns)
	c.plan.Columns = append(c.plan.Columns, col)
	return len(c.plan.Columns) - 1, nil
}

func (c *compiler) metric(i int, n string, defs Resolved) error {
	f := experiment.Field(fmt.Sprintf("metrics[%d]", i))
	m := defs[n]
	if m == nil {
		return experiment.E(experiment.Invalid, f, experiment.Errorf("metric %q is not defined", n))
	}
	days := 0.0
	if m.Covariate != nil {
		days = m.Covariate.Days
	}
	mp := MetricPlan{Name: n, Def: m, X: -1, D: -1, D0: -1}
	var err error
	col := func(m, parent *experiment.Metric, days float64) int {
		if err != nil {
			return -1
		}
		var k int
		k, err = c.column(m, parent, days, nil, f)
		return k
	}
	sums := func(fields ...any) {
		for k := 0; k < len(fields); k += 3 {
			mp.Sums = append(mp.Sums, Sum{Field: fields[k].(Field), A: fields[k+1].(int), B: fields[k+2].(int)})
		}
	}
	if m.Aggregation == experiment.Ratio {
		num, den := defs[m.Numerator], defs[m.Denominator]
		for _, p := range []*experiment.Metric{num, den} {
			if p == nil || p.Aggregation == experiment.Ratio || p.Aggregation == experiment.Mean {
				return experiment.E(experiment.Invalid, f, experiment.Errorf("ratio metric %q: its numerator %q and denominator %q must be defined sum, count or binary metrics", n, m.Numerator, m.Denominator))
			}
		}
		mp.Y, mp.D = col(num, m, 0), col(den, m, 0)
		if days > 0 {
			mp.X, mp.D0 = col(num, nil, days), col(den, nil, days)
		}
		if err != nil {
			return err
		}
		// A matured-only ratio counts the units whose numerator and denominator
		// windows have both ended: one end for both, or the parts disagree.
		if cy, cd := c.plan.Columns[mp.Y], c.plan.Columns[mp.D]; cy.MatureAt != 0 || cd.MatureAt != 0 {
			if cy.MatureAt != cd.MatureAt || cy.Hi != cd.Hi {
				return experiment.E(experiment.Invalid, f, experiment.Errorf("ratio metric %q: its numerator %q and denominator %q must both have the same matured-only window: give the ratio a window with matured_only", n, m.Numerator, m.Denominator))
			}
			mp.OwnCount = true
		}
		y, d, x, d0 := mp.Y, mp.D, mp.X, mp.D0
		sums(FieldN, -1, -1, FieldShift, y, -1, FieldSum, y, -1, FieldSumSquares, y, y,
			FieldDenominatorShift, d, -1, FieldDenominatorSum, d, -1, FieldDenominatorSumSquares, d, d, FieldMetricDenominatorSum, y, d)
		if x >= 0 {
			sums(FieldCovariateShift, x, -1, FieldCovariateSum, x, -1, FieldCovariateSumSquares, x, x, FieldCrossSum, x, y,
				FieldDenominatorCovariateShift, d0, -1, FieldDenominatorCovariateSum, d0, -1, FieldDenominatorCovariateSumSquares, d0, d0,
				FieldMetricDenominatorCovariateSum, y, d0, FieldCovariateDenominatorSum, x, d, FieldCovariateDenominatorCovariateSum, x, d0,
				FieldDenominatorDenominatorCovariateSum, d, d0)
		}
	} else {
		mp.Y = col(m, nil, 0)
		if days > 0 {
			mp.X = col(m, nil, days)
		}
		if err != nil {
			return err
		}
		mp.OwnCount = m.Aggregation == experiment.Mean || c.plan.Columns[mp.Y].MatureAt != 0
		y, x := mp.Y, mp.X
		sums(FieldN, -1, -1, FieldShift, y, -1, FieldSum, y, -1, FieldSumSquares, y, y)
		if x >= 0 {
			sums(FieldCovariateShift, x, -1, FieldCovariateSum, x, -1, FieldCovariateSumSquares, x, x, FieldCrossSum, x, y)
		}
	}
	c.plan.Metrics = append(c.plan.Metrics, mp)
	return nil
}

// Quantile is the p-quantile of xs by linear interpolation between the order
// statistics at h = (n−1)·p (Hyndman & Fan type 7: R's default, numpy's
// "linear", DuckDB's quantile_cont). NaN when xs is empty.
func Quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	h := p * float64(len(s)-1)
	lo := int(math.Floor(h))
	q := s[lo]
	if lo+1 < len(s) {
		q += (h - float64(lo)) * (s[lo+1] - s[lo])
	}
	return q
}

// ApplyCap caps v from above in place (NaN, "no value", stays NaN): at
// c.Value, or at the Quantile of v's non-NaN values.
func ApplyCap(v []float64, c Cap) { Winsorize(v, Cap{}, c) }

// Winsorize caps v in place at both tails (NaN, "no value", stays NaN): each
// value becomes max(min(v, U), L), with U from upper and L from lower (none:
// that tail is left), a fixed Value or the Quantile of v's non-NaN values
// before capping.
func Winsorize(v []float64, lower, upper Cap) {
	if lower.Kind == NoCap && upper.Kind == NoCap {
		return
	}
	var present []float64
	if lower.Kind == PercentileCap || upper.Kind == PercentileCap {
		for _, x := range v {
			if !math.IsNaN(x) {
				present = append(present, x)
			}
		}
		if len(present) == 0 {
			return
		}
	}
	limit := func(c Cap, none float64) float64 {
		switch c.Kind {
		case FixedCap:
			return c.Value
		case PercentileCap:
			return Quantile(present, c.Percentile)
		}
		return none
	}
	lo, hi := limit(lower, math.Inf(-1)), limit(upper, math.Inf(1))
	for i, x := range v {
		if !math.IsNaN(x) {
			v[i] = math.Max(math.Min(x, hi), lo)
		}
	}
}
