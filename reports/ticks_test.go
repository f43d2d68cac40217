package reports

import (
	"slices"
	"testing"
	"time"
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
