package metric

import (
	"fmt"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Panels, for difference-in-differences: a balanced panel of one value per unit
// and calendar period. Period k of a panel starting at From covers
// [From + k·L, From + (k+1)·L), L one day or one week, and a unit's value in a
// period is the metric's aggregation of its events there
//
//	sum     Σ value
//	count   number of events
//	binary  1 if there is at least one event, else 0
//
// with 0 for periods without events. A metric's cap applies to each cell (a
// percentile cap at that percentile of all cells, zeros included); its window,
// relative to a first exposure, does not apply to calendar periods.

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

// Limits of a panel.
const (
	MaxPanelPeriods = 1000       // periods in one panel
	MaxPanelCells   = 20_000_000 // units × periods in one panel
)

// UnitGroup selects units for a panel: the units with an exposure to Variant of
// Experiment (at any time), or the listed Units, or, with Rest, every unit not in
// another group that has an event of the metric's type in the panel's time
// range. Exactly one of the three.
type UnitGroup struct {
	Experiment string
	Variant    string
	Units      []string
	Rest       bool
}

// PanelQuery asks for a panel of Metric (resolved) over [From, To), by Period,
// of the units of Groups.
type PanelQuery struct {
	Metric   *experiment.Metric
	Groups   []UnitGroup
	From, To time.Time
	Period   PanelPeriod
}

// PanelPlan is a validated PanelQuery: the cell's event type, aggregation and
// cap, the groups, and the time grid in microseconds.
type PanelPlan struct {
	Query        PanelQuery
	EventType    string
	Aggregation  experiment.Aggregation // Sum, Count or Binary
	Cap, Floor   Cap                    // upper and lower caps over all cells
	FromMicros   int64
	ToMicros     int64 // exclusive
	PeriodMicros int64
	Periods      int
}

// CompilePanel validates q. Invalid, naming the query field (metric, period, to,
// groups[i]…), for a ratio or mean metric, a bad period, an empty or too long
// time range or a bad group; experiments and variants are the caller's to check.
func CompilePanel(q PanelQuery) (*PanelPlan, error) {
	invalid := func(field, format string, args ...any) error {
		return experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	m := q.Metric
	switch m.Aggregation {
	case experiment.Ratio:
		return nil, invalid("metric", "metric %q is a ratio metric: per-unit analyses need a sum, count, binary or mean metric", m.Name)
	case experiment.Mean:
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
		case g.Units != nil:
			if len(g.Units) == 0 {
				return nil, invalid(field+".units", "is empty")
			}
			for j, u := range g.Units {
				if u == "" {
					return nil, invalid(fmt.Sprintf("%s.units[%d]", field, j), "is empty")
				}
			}
		}
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	p := &PanelPlan{Query: q, EventType: m.EventType, Aggregation: m.Aggregation,
		FromMicros: q.From.UnixMicro(), ToMicros: q.To.UnixMicro(), PeriodMicros: plen.Microseconds(), Periods: periods}
	if cp := m.Cap; cp != nil {
		p.Cap, p.Floor = capsOf(cp)
	}
	return p, nil
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

// PanelCell is one non-empty cell an engine found: unit number, period, the
// aggregation of the unit's events in the period.
type PanelCell struct {
	Unit, Period int
	Value        float64
}

// AssemblePanel builds the balanced panel of plan from what an engine computed:
// the selected units (each in exactly one group) sorted by id with their group,
// the number of units in several groups, and the non-empty cells. It fills the
// zeros, applies the cap over all cells, and refuses (experiment.TooLarge) a
// panel of more than MaxPanelCells cells.
func AssemblePanel(plan *PanelPlan, units []string, groups []int, overlap int, cells []PanelCell) (*Panel, error) {
	q := plan.Query
	periods := plan.Periods
	p := &Panel{Metric: q.Metric, From: q.From, Period: q.Period, Periods: periods,
		Units: units, Group: groups, Overlap: overlap, GroupUnits: make([]int, len(q.Groups))}
	for _, g := range groups {
		p.GroupUnits[g]++
	}
	n := len(units) * periods
	if n > MaxPanelCells {
		return nil, experiment.E(experiment.TooLarge, experiment.Errorf("the panel would have %d unit-period cells, over the limit of %d: shorten the time range, use weeks or fewer units", n, MaxPanelCells))
	}
	p.Unit, p.Time, p.Y = make([]int, n), make([]int, n), make([]float64, n)
	for i := range n {
		p.Unit[i], p.Time[i] = i/periods, i%periods
	}
	for _, c := range cells {
		p.Y[c.Unit*periods+c.Period] = c.Value
	}
	Winsorize(p.Y, plan.Floor, plan.Cap)
	return p, nil
}
