package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestQuantilesAPI: POST /v1/analyses/quantiles reads the per-unit values of
// the two variants and finds the planted shift of the upper tail; analysts may
// call it and viewers may not; bad input is 400 naming the field. The numbers
// are checked against scipy and R in analysis.TestQuantileRunReference and
// against "lift quantiles" in cmd/lift's TestQuantilesCLIMatchesAPI.
func TestQuantilesAPI(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	viewer := ts.key("viewer", experiment.RoleViewer)
	for _, m := range []*experiment.Metric{
		{Name: "revenue", EventType: "order", Aggregation: experiment.Sum},
		{Name: "orders", EventType: "order", Aggregation: experiment.Count},
		{Name: "aov", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "orders"},
	} {
		if _, err := ts.db.CreateMetric(ctx, "test", m); err != nil {
			t.Fatal(err)
		}
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "promo", "variants": twoArms}, nil)
	start := time.Now().UTC().Add(-time.Hour)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for i := range 400 {
		u := fmt.Sprintf("u%04d", i)
		arm := []string{"control", "treatment"}[i%2]
		// Each arm's values are 1…200 (i/2 + 1); the treated arm's top half gets +50.
		y := float64(i/2 + 1)
		if arm == "treatment" && y > 100 {
			y += 50
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: start})
		evs = append(evs, experiment.Event{EventID: u, Unit: u, Type: "order", TS: start.Add(time.Minute), Value: y})
	}
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var out quantilesResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/quantiles", map[string]any{"experiment": "promo", "metric": "revenue", "quantiles": []float64{0.25, 0.9}}, &out)
	if len(out.Quantiles) != 2 {
		t.Fatalf("quantiles %+v, want p25 and p90", out.Quantiles)
	}
	// Type-6 quantiles of 1…200: h = 201p, so p25 is 50.25 in both arms and p90
	// is 180.9 in control, 230.9 treated (by hand).
	for _, c := range []struct{ got, want float64 }{
		{out.Quantiles[0].Control.Estimate, 50.25}, {out.Quantiles[0].Absolute.Estimate, 0},
		{out.Quantiles[1].Control.Estimate, 180.9}, {out.Quantiles[1].Absolute.Estimate, 50},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("got %g, want %g", c.got, c.want)
		}
	}
	if p := out.Quantiles[1].Absolute.PValue; p > 1e-6 {
		t.Errorf("p90 shift p-value %g, want < 1e-6", p)
	}
	body := map[string]any{"experiment": "promo", "metric": "revenue"}
	if st, _ := ts.do("POST", "/v1/analyses/quantiles", viewer, body); st != http.StatusForbidden {
		t.Errorf("viewer: %d, want 403", st)
	}
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for k, v := range body {
			b[k] = v
		}
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"no experiment", with("experiment", nil), "experiment"},
		{"unknown experiment", with("experiment", "nope"), "experiment"},
		{"no metric", with("metric", nil), "metric"},
		{"ratio metric", with("metric", "aov"), "metric"},
		{"unknown treatment", with("treatment", "x"), "treatment"},
		{"quantile 1", with("quantiles", []float64{0.5, 1}), "quantiles[1]"},
		{"bad alpha", with("alpha", 2), "alpha"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, b := ts.do("POST", "/v1/analyses/quantiles", analyst, c.body)
			var e struct {
				Error struct{ Message string }
			}
			_ = json.Unmarshal(b, &e)
			if st != http.StatusBadRequest || !strings.HasPrefix(e.Error.Message, c.field+":") {
				t.Errorf("%d %s; want 400 naming %s", st, b, c.field)
			}
		})
	}
}
