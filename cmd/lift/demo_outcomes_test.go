package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/results"
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
	ranAt := time.Now()
	s, err := store.Open(context.Background(), db, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Run("no timestamp after now", func(t *testing.T) { noFutureTimes(t, s, ranAt) })
	t.Run("started before its data", func(t *testing.T) {
		e, err := s.GetExperiment(context.Background(), "checkout-button")
		if err != nil {
			t.Fatal(err)
		}
		var first time.Time
		if err := s.SQL().QueryRowContext(context.Background(), `SELECT min(ts) FROM exposures WHERE experiment = 'checkout-button'`).Scan(&first); err != nil {
			t.Fatal(err)
		}
		if e.StartedAt == nil || e.StartedAt.After(first) {
			t.Errorf("checkout-button started %v, after its first exposure %v", e.StartedAt, first)
		}
	})
	r, err := api.ResultsOver(s).ExperimentResults(context.Background(), "checkout-button", results.Options{NoSnapshot: true})
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
	t.Run("report views", func(t *testing.T) { demoReportViews(t, s, r) })
}

// demoReportViews: the demo's report shows the segments by device (every
// exposed unit in one of the three), the quantiles of revenue and the
// Bayesian view of each comparison (the experiment's engine); the numbers
// themselves are compared with the API's in api.TestReportViews.
func demoReportViews(t *testing.T, s *store.DB, r *results.Results) {
	ctx := context.Background()
	rep, err := api.BuildReport(ctx, s, api.ResultsOver(s), "checkout-button", api.ReportOptions{Who: "test"})
	if err != nil {
		t.Fatal(err)
	}
	seg := rep.Segments
	if seg == nil || seg.Attribute != "device" || seg.Metric != "revenue" || len(seg.Segments) != 3 {
		t.Fatalf("segments %+v, want revenue by device in desktop, phone and tablet; notes %q", seg, rep.Notes)
	}
	var units int64
	for _, x := range seg.Segments {
		units += x.Control + x.Treated
	}
	counts, err := s.ExposureCounts(ctx, "checkout-button")
	if err != nil {
		t.Fatal(err)
	}
	if want := counts["control"] + counts["treatment"]; units != want {
		t.Errorf("the segments hold %d units, the experiment exposed %d", units, want)
	}
	if q := rep.Quantiles; q == nil || q.Metric != "revenue" || len(q.Quantiles) != 3 {
		t.Errorf("quantiles %+v, want p50, p90 and p99 of revenue", q)
	}
	for _, x := range rep.Results {
		if x.Bayesian == nil || !(x.Bayesian.ChanceToWin > 0 && x.Bayesian.ChanceToWin < 1) {
			t.Errorf("%s: Bayesian view %+v", x.Metric, x.Bayesian)
		}
	}
	for _, m := range r.Metrics {
		if m.Comparisons[0].Bayesian == nil {
			t.Errorf("%s: the results have no Bayesian view", m.Name)
		}
	}
}

// noFutureTimes fails for any value after now in any date or timestamp column
// of any table of the file: a demo's data lie in the past.
func noFutureTimes(t *testing.T, s *store.DB, now time.Time) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.SQL().QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'main' AND (data_type LIKE 'TIMESTAMP%' OR data_type = 'DATE') ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][2]string
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(cols) < 5 {
		t.Fatalf("found only %d time columns: %v", len(cols), cols)
	}
	for _, c := range cols {
		var n int64
		var latest *time.Time
		q := fmt.Sprintf(`SELECT count(*), max(CAST(%q AS TIMESTAMPTZ)) FROM %q WHERE CAST(%q AS TIMESTAMPTZ) > ?`, c[1], c[0], c[1])
		if err := s.SQL().QueryRowContext(ctx, q, now).Scan(&n, &latest); err != nil {
			t.Fatalf("%s.%s: %v", c[0], c[1], err)
		}
		if n > 0 {
			t.Errorf("%s.%s has %d values after %s, up to %s", c[0], c[1], n, now.UTC().Format(time.RFC3339), latest.UTC().Format(time.RFC3339))
		}
	}
}
