package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftlab/lift/store"
)

// TestDemoOutcomes runs the default demo and checks its results against the truth
// it simulated: revenue per unit +6% (the interval must contain it), conversion
// unchanged (the interval must contain 0), CUPED narrowing revenue's interval.
func TestDemoOutcomes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.duckdb")
	code, stdout, stderr := runLift(t, "demo", "--db", db)
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, stderr)
	}
	if n := strings.Count(stdout, "yes (+"); n < 2 {
		t.Errorf("the demo says %d intervals contain the truth, want 2:\n%s", n, stdout)
	}
	s, err := store.Open(context.Background(), db, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.ExperimentResults(context.Background(), "checkout-button", store.ResultsOptions{NoSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]float64{"revenue": 0.06, "converted": 0}
	for _, m := range r.Metrics {
		want, ok := truth[m.Name]
		if !ok || len(m.Comparisons) != 1 {
			t.Fatalf("metric %s with %d comparisons", m.Name, len(m.Comparisons))
		}
		c := m.Comparisons[0].Relative
		if c.CILow > want || c.CIHigh < want {
			t.Errorf("%s: relative effect interval [%g, %g] misses the true %g", m.Name, c.CILow, c.CIHigh, want)
		}
		if m.Name == "revenue" {
			if m.CUPED == nil || m.CUPED.VarianceReduction < 0.1 || len(m.Unadjusted) != 1 {
				t.Fatalf("revenue CUPED = %+v, want a variance reduction over 10%%", m.CUPED)
			}
			u := m.Unadjusted[0].Relative
			if c.CIHigh-c.CILow >= u.CIHigh-u.CILow {
				t.Errorf("CUPED interval [%g, %g] is not narrower than the plain [%g, %g]", c.CILow, c.CIHigh, u.CILow, u.CIHigh)
			}
		}
	}
}
