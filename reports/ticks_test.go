package reports

import (
	"math"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/plot"
)

func TestDayTicks(t *testing.T) {
	at := func(s string) float64 {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return float64(v.Unix())
	}
	for _, tc := range []struct {
		name       string
		min, max   string
		labels     []string
		firstLabel string // the time of the first labelled tick
		ticks      int    // all ticks, labelled or not
	}{
		// Three daily points: one label per day, each at its midnight (plot.TimeTicks
		// gave "Mar 2, Mar 3, Mar 3" here, at round numbers of seconds).
		{"3 days", "2026-03-02 00:00", "2026-03-04 00:00", []string{"Mar 2", "Mar 3", "Mar 4"}, "2026-03-02 00:00", 3},
		// Ten days: every second day, a small tick on the others.
		{"10 days", "2026-03-02 00:00", "2026-03-11 00:00", []string{"Mar 2", "Mar 4", "Mar 6", "Mar 8", "Mar 10"}, "2026-03-02 00:00", 10},
		// A month: weekly, on Mondays (2026-03-02 is a Monday).
		{"30 days", "2026-03-01 12:00", "2026-03-31 00:00", []string{"Mar 2", "Mar 9", "Mar 16", "Mar 23", "Mar 30"}, "2026-03-02 00:00", 30},
		// Under two days: hours.
		{"hours", "2026-03-02 01:30", "2026-03-02 20:00", []string{"Mar 2 06:00", "Mar 2 12:00", "Mar 2 18:00"}, "2026-03-02 06:00", 3},
		// Ten weeks: fortnightly, on Mondays.
		{"10 weeks", "2026-03-01 00:00", "2026-05-10 00:00", []string{"Mar 2", "Mar 16", "Mar 30", "Apr 13", "Apr 27"}, "2026-03-02 00:00", 71},
		// Beyond 70 days: months, every second or third when there are many.
		{"5 months", "2026-01-15 00:00", "2026-06-15 00:00", []string{"Feb 2026", "Mar 2026", "Apr 2026", "May 2026", "Jun 2026"}, "2026-02-01 00:00", 5},
		{"a year", "2025-01-01 00:00", "2026-01-01 00:00", []string{"Jan 2025", "Mar 2025", "May 2025", "Jul 2025", "Sep 2025", "Nov 2025", "Jan 2026"}, "2025-01-01 00:00", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := dayTicks{}.Ticks(at(tc.min), at(tc.max))
			var labels []string
			first := -1.0
			for _, tk := range ts {
				if tk.Label != "" {
					labels = append(labels, tk.Label)
					if first < 0 {
						first = tk.Value
					}
				}
			}
			if !slices.Equal(labels, tc.labels) || first != at(tc.firstLabel) || len(ts) != tc.ticks {
				t.Errorf("labels %q (first at %v, %d ticks), want %q (first at %v, %d ticks)", labels, first, len(ts), tc.labels, at(tc.firstLabel), tc.ticks)
			}
		})
	}
}

// TestNiceTicks checks the labelled ticks of numeric axes against matplotlib's
// MaxNLocator (matplotlib 3.6.3), the ticks it gives inside the range:
//
//	from matplotlib.ticker import MaxNLocator
//	loc = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])
//	[t for t in loc.tick_values(lo, hi) if lo <= t <= hi]
//
// The first two ranges are where plot.DefaultTicks labelled −3, 6, 15 and
// −7.5, 2.5, 12.5, skipping 0.
func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{-4, 16, []string{"0", "5", "10", "15"}},
		{-9, 14, []string{"-5", "0", "5", "10"}},
		{-7, 18, []string{"-5", "0", "5", "10", "15"}},
		{-2.3, 4.1, []string{"-2", "0", "2", "4"}},
		{-1.6, 8.3, []string{"0", "2", "4", "6", "8"}},
		{0.12, 0.97, []string{"0.2", "0.4", "0.6", "0.8"}},
		{0, 600000, []string{"0", "100000", "200000", "300000", "400000", "500000", "600000"}},
		{-0.031, 0.012, []string{"-0.03", "-0.02", "-0.01", "0.00", "0.01"}},
		{2.4, 2.9, []string{"2.4", "2.5", "2.6", "2.7", "2.8", "2.9"}},
		{-1.05, 5.2, []string{"0", "2", "4"}},
		// 2.5 steps print with their decimal (matplotlib: [-5.0, -2.5, 0.0, 2.5, 5.0, 7.5]).
		{-6, 8, []string{"-5.0", "-2.5", "0.0", "2.5", "5.0", "7.5"}},
	} {
		var got []string
		for _, tk := range (niceTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ticks on [%g, %g] = %q, want %q", tc.lo, tc.hi, got, tc.want)
		}
	}
}

// TestChartAxesRoundTicks checks every numeric axis of the sample charts: labels at
// evenly spaced multiples of 1, 2, 2.5 or 5 × 10^k, and a label at 0 whenever the
// axis spans 0.
func TestChartAxesRoundTicks(t *testing.T) {
	for _, c := range sampleCharts(Privacy{}) {
		p, err := c.build()
		if err != nil {
			t.Fatal(err)
		}
		for _, ax := range []struct {
			name string
			a    *plot.Axis
		}{{"x", &p.X}, {"y", &p.Y}} {
			switch ax.a.Tick.Marker.(type) {
			case dayTicks, integerTicks, plot.ConstantTicks:
				continue // dates, periods and names
			}
			var vals []float64
			for _, tk := range ax.a.Tick.Marker.Ticks(ax.a.Min, ax.a.Max) {
				if tk.Label != "" {
					vals = append(vals, tk.Value)
				}
			}
			if len(vals) < 2 {
				t.Errorf("%s %s axis [%g, %g]: %d labels", c.Name(), ax.name, ax.a.Min, ax.a.Max, len(vals))
				continue
			}
			step := vals[1] - vals[0]
			m := step / math.Pow(10, math.Floor(math.Log10(step)))
			round := false
			for _, f := range []float64{1, 2, 2.5, 5, 10} {
				round = round || math.Abs(m-f) < 1e-9
			}
			zero := ax.a.Min > 0 || ax.a.Max < 0
			for i, v := range vals {
				if math.Abs(v-vals[0]-float64(i)*step) > 1e-9*step || math.Abs(v/step-math.Round(v/step)) > 1e-9 {
					round = false
				}
				zero = zero || v == 0
			}
			if !round || !zero {
				t.Errorf("%s %s axis [%g, %g]: labels at %v (round steps: %v, 0 labelled: %v)", c.Name(), ax.name, ax.a.Min, ax.a.Max, vals, round, zero)
			}
		}
	}
}

// TestAllocationTicksAreVersions: the bandit allocation's x axis labels whole
// weight versions only (there is no version 1.5).
func TestAllocationTicksAreVersions(t *testing.T) {
	var vs []BanditVersion
	for v := 1; v <= 2; v++ {
		vs = append(vs, BanditVersion{Version: v, Weights: []float64{0.5, 0.5}})
	}
	p, err := (&Allocation{Variants: []string{"a", "b"}, Versions: vs}).build()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		if tk.Label != "" {
			got = append(got, tk.Label)
		}
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("x labels %q, want the versions %q", got, want)
	}
}
