package did

import (
	"math"
	"strings"
	"testing"
)

// runPanel is a 6-unit, 4-period panel: units 0–1 start in period 2, units
// 2–3 in period 3 when staggered (else in 2), units 4–5 never; y varies by
// unit, period and an irregular term so that no fit is exact.
func runPanel(staggered bool) Data {
	var d Data
	for u := range 6 {
		start := -1
		switch {
		case u < 2:
			start = 2
		case u < 4 && staggered:
			start = 3
		case u < 4:
			start = 2
		}
		for t := range 4 {
			d.Unit, d.Time = append(d.Unit, u), append(d.Time, t)
			y := float64(u) + 0.5*float64(t) + math.Sin(1.7*float64(u)+2.3*float64(t)+0.1*float64(u*t))
			if start >= 0 && t >= start {
				y += 2
			}
			d.Y = append(d.Y, y)
			d.Treated = append(d.Treated, start >= 0)
			d.Post = append(d.Post, (start >= 0 && t >= start) || (start < 0 && t >= 2))
		}
	}
	return d
}

func TestRunStaggeredDetection(t *testing.T) {
	for _, c := range []struct {
		name          string
		data          Data
		opt           RunOptions
		staggered, cs bool
		warn          string
	}{
		{"one cohort", runPanel(false), RunOptions{}, false, false, ""},
		{"one cohort, asked", runPanel(false), RunOptions{Staggered: true}, false, true, ""},
		{"two cohorts", runPanel(true), RunOptions{EventStudy: true}, true, true, "use the Callaway & Sant'Anna result"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Run(c.data, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if r.StaggeredTiming != c.staggered || (r.Staggered != nil) != c.cs || !strings.Contains(r.Warning, c.warn) || (c.warn == "") != (r.Warning == "") {
				t.Errorf("staggered %v, CS %v, warning %q; want %v, %v, %q", r.StaggeredTiming, r.Staggered != nil, r.Warning, c.staggered, c.cs, c.warn)
			}
		})
	}
	// Unbalanced (one row dropped): the warning says why CS did not run; asked
	// for, it is an error.
	d := runPanel(true)
	d.Y, d.Unit, d.Time, d.Treated, d.Post = d.Y[1:], d.Unit[1:], d.Time[1:], d.Treated[1:], d.Post[1:]
	r, err := Run(d, RunOptions{})
	if err != nil || r.Staggered != nil || !strings.Contains(r.Warning, "could not run") || !strings.Contains(r.Warning, "balanced") {
		t.Errorf("unbalanced: %v, %+v; want a warning that CS needs a balanced panel", err, r)
	}
	if _, err := Run(d, RunOptions{Staggered: true}); err == nil || !strings.Contains(err.Error(), "balanced") {
		t.Errorf("unbalanced, asked: %v; want an error", err)
	}
}
