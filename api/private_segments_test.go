package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestPrivateSegmentsAPI: a viewer gets segment breakdowns only under DP, through
// partition selection (a one-unit segment is suppressed, a 1,200-unit one kept),
// each breakdown spending from the experiment's budget once per period and
// refused when the budget is spent.
//
// With release ε = 1 (ε/2 for selection, Laplace) and δ = 2e-5·1/2 = 1e-5 per
// release, the threshold is about 1 + ln(1/(2δ))/0.5 ≈ 24 (the library's: 22.64): the one-unit segment
// passes with probability at most δ = 1e-5 (privacy.ReleaseSegments), and the
// large one fails only if Laplace noise of scale 2 falls below −1,000 (e^−500):
// a false failure is negligible.
func TestPrivateSegmentsAPI(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	viewer := ts.key("viewer", experiment.RoleViewer)
	for _, m := range []*experiment.Metric{
		{Name: "buyers", EventType: "order", Aggregation: experiment.Binary},
		{Name: "revenue", EventType: "order", Aggregation: experiment.Sum, Bounds: &experiment.Bounds{Lower: 0, Upper: 20}},
		{Name: "unbounded", EventType: "order", Aggregation: experiment.Sum},
	} {
		if _, err := ts.db.CreateMetric(ctx, "test", m); err != nil {
			t.Fatal(err)
		}
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "promo", "variants": twoArms}, nil)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/promo/privacy", map[string]any{"epsilon": 2, "delta": 2e-5, "release_epsilon": 1}, nil)
	start := time.Now().UTC().Add(-time.Hour)
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	for i := range 1201 {
		u := fmt.Sprintf("u%04d", i)
		arm := []string{"control", "treatment"}[i%2]
		country := "US"
		if i == 1200 {
			country = "IS" // a segment of one unit
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: start})
		if i%3 != 0 {
			evs = append(evs, experiment.Event{EventID: u, Unit: u, Type: "order", TS: start.Add(time.Minute), Value: float64(i % 30)})
		}
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"country": country, "device": []string{"ios", "web"}[i%2]}})
	}
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	// Viewers get no exact breakdown.
	ts.mustAs(viewer, http.StatusForbidden, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country"}, nil)

	req := map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country"}
	var out PrivateSegmentsResult
	ts.mustAs(viewer, http.StatusOK, "POST", "/v1/analyses/segments/private", req, &out)
	if len(out.Segments) != 1 || out.Segments[0].Name != "US" || out.Segments[0].Release == nil {
		t.Fatalf("segments %+v, want US only (IS has one unit)", out.Segments)
	}
	if out.Threshold < 10 || out.Private.Epsilon != 1 || out.Private.EpsilonSpent != 1 || out.Private.EpsilonLeft != 1 {
		t.Errorf("threshold %g, private %+v; want ε 1 spent of 2", out.Threshold, out.Private)
	}
	us := out.Segments[0]
	if n := us.Release.Units; len(n) != 2 || n[0].Variant != "control" || len(us.Release.Metrics) != 1 || us.Release.Metrics[0].Metric != "buyers" {
		t.Errorf("US release %+v", us.Release)
	}
	// The same breakdown again in the period: the same release, nothing spent.
	var again PrivateSegmentsResult
	ts.mustAs(viewer, http.StatusOK, "POST", "/v1/analyses/segments/private", req, &again)
	if again.Private.EpsilonSpent != 1 || again.Segments[0].N != us.N || !again.Private.ReleasedAt.Equal(out.Private.ReleasedAt) {
		t.Errorf("second read %+v, want the first release unchanged and nothing spent", again)
	}
	// A share link reads the same breakdown of the period, without a key.
	var sh shareOut
	ts.must(http.StatusCreated, "POST", "/v1/experiments/promo/shares", map[string]any{}, &sh)
	var shared PrivateSegmentsResult
	ts.mustAs("", http.StatusOK, "GET", "/shared/"+sh.Token+"/segments.json?metric=buyers&attribute=country", nil, &shared)
	if shared.Private.EpsilonSpent != 1 || len(shared.Segments) != 1 || shared.Segments[0].N != us.N {
		t.Errorf("shared breakdown %+v, want the viewer's", shared)
	}
	if status, b := ts.do("GET", "/shared/"+sh.Token+"/segments.json?metric=buyers", "", nil); status != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, b).Message, "attribute:") {
		t.Errorf("shared without attribute: %d %s", status, b)
	}
	ts.mustAs("", http.StatusNotFound, "GET", "/shared/lsh_nope/segments.json?metric=buyers&attribute=country", nil, nil)
	// Another breakdown spends on its own; a third finds the budget spent.
	var dev PrivateSegmentsResult
	ts.mustAs(viewer, http.StatusOK, "POST", "/v1/analyses/segments/private", map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "device"}, &dev)
	if dev.Private.EpsilonSpent != 2 || len(dev.Segments) != 2 {
		t.Errorf("device breakdown %+v, want two segments and ε 2 spent", dev)
	}
	status, b := ts.do("POST", "/v1/analyses/segments/private", viewer, map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "country"})
	if e := errorOf(t, b); status != http.StatusConflict || e.Code != "budget_exhausted" {
		t.Errorf("third breakdown: %d %+v, want 409 budget_exhausted", status, e)
	}
	for _, c := range []struct {
		name string
		body map[string]any
		has  string
	}{
		{"no bounds", map[string]any{"experiment": "promo", "metric": "unbounded", "attribute": "country"}, "metric:"},
		{"no attribute", map[string]any{"experiment": "promo", "metric": "buyers"}, "attribute:"},
		{"bad max", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country", "max_segments": -1}, "max_segments:"},
		{"unknown variant", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country", "treatment": "nope"}, "treatment:"},
	} {
		status, b := ts.do("POST", "/v1/analyses/segments/private", viewer, c.body)
		if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, c.has) {
			t.Errorf("%s: %d %+v, want 400 naming %s", c.name, status, e, c.has)
		}
	}
}

// TestSegmentsCUPEDNeedsCovariate: "cuped": true on a metric without a
// pre-exposure covariate is a 400 naming cuped (CUPEDps itself is checked in
// analysis.TestPostStratifyGBStats and cmd/lift TestSegmentsCLIMatchesAPI).
func TestSegmentsCUPEDNeedsCovariate(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.db.CreateMetric(context.Background(), "test", &experiment.Metric{Name: "buyers", EventType: "order", Aggregation: experiment.Binary}); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "promo", "variants": twoArms}, nil)
	status, b := ts.do("POST", "/v1/analyses/segments", ts.admin, map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country", "cuped": true})
	if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, "cuped: ") || !strings.Contains(e.Message, "no pre-exposure covariate") {
		t.Errorf("status %d, error %+v", status, e)
	}
}
