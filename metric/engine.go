package metric

import (
	"context"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
)

// Engine evaluates plans where the exposures and events are. The package doc
// says what each method must return; metrictest.Run checks it.
type Engine interface {
	// Stats evaluates a plan of Compile.
	Stats(ctx context.Context, p *Plan) (*Stats, error)
	// Bounded evaluates a plan of CompileBounded.
	Bounded(ctx context.Context, p *Plan) (*Bounded, error)
	// UnitValues evaluates a plan of CompileUnitValues.
	UnitValues(ctx context.Context, p *Plan) (*UnitValues, error)
	// Panel evaluates a plan of CompilePanel.
	Panel(ctx context.Context, p *PanelPlan) (*Panel, error)
	// Freshness reads the latest times of a population.
	Freshness(ctx context.Context, pop Population) (Freshness, error)
}

// Stats are the sufficient statistics of a set of metrics over a population.
type Stats struct {
	// Units is the number of analyzed units per arm.
	Units map[string]int64 `json:"units"`
	// MultipleArms counts units exposed to more than one arm, excluded.
	MultipleArms int64 `json:"multiple_arms"`
	// Metrics maps a metric name to its per-arm statistics in Population.Arms order.
	Metrics map[string][]analysis.Arm `json:"metrics"`
	// Freshness is the population's, as Engine.Freshness reads it, except that
	// LatestUnitEvent may be nil (see the package doc).
	Freshness Freshness `json:"-"`
	// Checksums are, per arm, the exact sums of every per-unit value column in
	// millionths (see the package doc): unlike the float sums they do not depend
	// on the order in which an engine adds, so they key the input hash.
	Checksums map[string]string `json:"-"`
}

// NewStats returns Stats with every arm and metric of p present and zero, for
// an engine to fill.
func NewStats(p *Plan) *Stats {
	pop := p.Population
	st := &Stats{Units: map[string]int64{}, Metrics: map[string][]analysis.Arm{}, Checksums: map[string]string{}}
	for _, a := range pop.Arms {
		st.Units[a] = 0
	}
	for _, m := range p.Metrics {
		arms := make([]analysis.Arm, len(pop.Arms))
		for i, a := range pop.Arms {
			arms[i] = analysis.Arm{Name: a, Weight: pop.Weights[i]}
		}
		st.Metrics[m.Name] = arms
	}
	return st
}

// Freshness is the time of the latest exposure of a population and of the latest
// event (nil: none).
type Freshness struct {
	LatestExposure *time.Time `json:"latest_exposure"`
	LatestEvent    *time.Time `json:"latest_event"`
	// FirstExposure is the population's first exposure; LatestUnitEvent the
	// latest event of one of its units.
	FirstExposure   *time.Time `json:"-"`
	LatestUnitEvent *time.Time `json:"-"`
}

// BoundedArm is one arm's statistics of a bounded metric: n units with a value and
// the sums of the values clamped to the metric's bounds.
type BoundedArm struct {
	Arm   string
	N     int64
	Sum   float64 // Σ clamp(y)
	SumSq float64 // Σ clamp(y)²
}

// BoundedMetric is one metric's bounded statistics, arms in Population.Arms order.
// OwnCount is set for mean metrics, whose n leaves out units without events.
type BoundedMetric struct {
	Name     string
	Bounds   experiment.Bounds
	OwnCount bool
	Arms     []BoundedArm
}

// Bounded are what a differentially private release reads.
type Bounded struct {
	Units   map[string]int64 // analyzed units per arm
	Metrics []BoundedMetric
}

// NewBounded returns Bounded with every arm and metric of p present and zero.
func NewBounded(p *Plan) *Bounded {
	out := &Bounded{Units: map[string]int64{}}
	for _, a := range p.Population.Arms {
		out.Units[a] = 0
	}
	for _, m := range p.Metrics {
		bm := BoundedMetric{Name: m.Name, Bounds: m.Bounds, OwnCount: m.OwnCount, Arms: make([]BoundedArm, len(p.Population.Arms))}
		for j, a := range p.Population.Arms {
			bm.Arms[j].Arm = a
		}
		out.Metrics = append(out.Metrics, bm)
	}
	return out
}

// UnitValue is one analyzed unit's metric value and arm.
type UnitValue struct {
	Unit  string
	Arm   string
	Value float64
}

// UnitValues are the per-unit values of one metric, sorted by unit.
type UnitValues struct {
	Values       []UnitValue
	MultipleArms int64
}

// SeriesEngine is an Engine that also evaluates one set of metrics at many
// cut-offs in one pass over the data (the daily series of a report).
type SeriesEngine interface {
	Engine
	// StatsSeries evaluates plans of CompileSeries: out[i] is what Stats(plans[i])
	// returns, except that Freshness and Checksums are left zero (a series
	// point is not a snapshot and has no input hash).
	StatsSeries(ctx context.Context, plans []*Plan) ([]*Stats, error)
}

// CompileSeries compiles the named metrics over pop at each cut-off of until
// (ascending, none zero): plan i is Compile over pop with Until = until[i], so
// that each point follows the one definition of the per-unit metric (units,
// windows, caps and matured-only windows as of that cut-off). The plans differ
// only in Population.Until and Column.MatureAt.
func CompileSeries(pop Population, names []string, defs Resolved, until []time.Time) ([]*Plan, error) {
	out := make([]*Plan, len(until))
	for i, t := range until {
		if t.IsZero() || (i > 0 && !t.After(until[i-1])) {
			panic("metric: CompileSeries needs ascending cut-offs")
		}
		p := pop
		p.Until = t
		var err error
		if out[i], err = Compile(p, names, defs); err != nil {
			return nil, err
		}
	}
	return out, nil
}
