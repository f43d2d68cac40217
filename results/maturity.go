package results

import (
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// DayMaturity says, for a metric with a matured-only window (a day-N
// retention metric, GrowthBook #4353), what one day of the daily series
// counts: each day's point is the analysis at the end of that day, which
// counts only the units whose window [start_days, end_days) from their first
// exposure had ended by then.
type DayMaturity struct {
	// WindowEndDays is the window's end in days after the first exposure.
	WindowEndDays float64 `json:"window_end_days"`
	// Denominators are, per arm, the units the day's point counts (whose
	// window had ended by the end of the day); Units of the point are all the
	// units exposed by then.
	Denominators map[string]int64 `json:"denominators"`
	// Share is Σ Denominators / Σ Units (0 without units).
	Share float64 `json:"share"`
	// CohortMatured says whether the units first exposed on this day have all
	// matured by the time the series was computed (the day's end plus
	// window_end_days is past): a later point will count every one of them.
	CohortMatured bool `json:"cohort_matured"`
}

// maturedWindow is the matured-only window a metric is analyzed over (a
// ratio's own, or its numerator's), nil when it has none.
func maturedWindow(m *experiment.Metric, defs metric.Resolved) *experiment.Window {
	if m == nil {
		return nil
	}
	w := m.Window
	if w == nil && m.Aggregation == experiment.Ratio {
		if n := defs[m.Numerator]; n != nil {
			w = n.Window
		}
	}
	if w == nil || !w.MaturedOnly {
		return nil
	}
	return w
}

// dayMaturity is the maturity of the point for the day ending at cut, from
// that point's statistics of the metric name (nil when the metric has no
// matured-only window).
func dayMaturity(name string, defs metric.Resolved, pop metric.Population, st *metric.Stats, cut, now time.Time) *DayMaturity {
	w := maturedWindow(defs[name], defs)
	if w == nil {
		return nil
	}
	out := &DayMaturity{WindowEndDays: w.EndDays, Denominators: map[string]int64{}}
	arms := st.Metrics[name]
	var n, units int64
	for i, a := range pop.Arms {
		var d int64
		if i < len(arms) {
			d = arms[i].N
		}
		out.Denominators[a] = d
		n += d
		units += st.Units[a]
	}
	if units > 0 {
		out.Share = float64(n) / float64(units)
	}
	out.CohortMatured = !cut.Add(time.Duration(w.EndDays * float64(24*time.Hour))).After(now)
	return out
}
