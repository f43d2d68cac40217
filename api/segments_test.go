package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestSegmentsAPI: POST /v1/analyses/segments finds the segment with the planted
// effect; analysts may call it and viewers may not; bad input is 400 naming
// the field. Its numbers are checked against scipy and statsmodels in
// analysis.TestSegmentRunReference, and against "lift segments" in
// cmd/lift's TestSegmentsCLIMatchesAPI.
func TestSegmentsAPI(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	viewer := ts.key("viewer", experiment.RoleViewer)
	for _, m := range []*experiment.Metric{
		{Name: "revenue", EventType: "order", Aggregation: experiment.Sum},
		{Name: "buyers", EventType: "order", Aggregation: experiment.Binary},
		{Name: "orders", EventType: "order", Aggregation: experiment.Count},
	} {
		if _, err := ts.db.CreateMetric(ctx, "test", m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.db.CreateMetric(ctx, "test", &experiment.Metric{Name: "aov", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "orders"}); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "promo", "variants": twoArms}, nil)
	start := time.Now().UTC().Add(-time.Hour)
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	for i := range 400 {
		u := fmt.Sprintf("u%04d", i)
		arm := []string{"control", "treatment"}[i%2]
		plan := []string{"free", "pro"}[(i/2)%2]
		y := float64(i%7) + 1
		if arm == "treatment" && plan == "pro" {
			y += 5
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: start})
		evs = append(evs, experiment.Event{EventID: u, Unit: u, Type: "order", TS: start.Add(time.Minute), Value: y})
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"plan": plan}})
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
	var out segmentsResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "plan"}, &out)
	if len(out.Segments) != 2 {
		t.Fatalf("segments %+v, want free and pro", out.Segments)
	}
	for _, s := range out.Segments {
		// Within a plan the arms' values follow i%7 over interleaved units; pro's
		// treated units have 5 more (planted). With two segments each one's rest
		// is the other, so both differ.
		if s.Control != 100 || s.Treated != 100 || !s.Differs || (s.Segment == "pro") != (s.Absolute.Estimate > 4) || s.Absolute.Estimate > 6 {
			t.Errorf("segment %s: %d/%d units, differs %v, effect %g; want 100/100, differs, about 5 for pro only", s.Segment, s.Control, s.Treated, s.Differs, s.Absolute.Estimate)
		}
	}
	if out.Type != "mean" || out.Heterogeneity == nil || !out.Heterogeneity.Heterogeneous {
		t.Errorf("type %s, heterogeneity %+v; want mean, heterogeneous", out.Type, out.Heterogeneity)
	}
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "plan"}, &out)
	if out.Type != "proportion" {
		t.Errorf("binary metric analyzed as %s, want proportion", out.Type)
	}
	body := map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "plan"}
	if st, _ := ts.do("POST", "/v1/analyses/segments", viewer, body); st != http.StatusForbidden {
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
		{"unknown metric", with("metric", "nope"), "metric"},
		{"ratio metric", with("metric", "aov"), "metric"},
		{"no attribute", with("attribute", nil), "attribute"},
		{"unknown control", with("control", "x"), "control"},
		{"same arms", with("treatment", "control"), "treatment"},
		{"bad type", with("type", "ratio"), "type"},
		{"bad alpha", with("alpha", 1.5), "alpha"},
		{"bad correction", with("correction", "bonferroni"), "correction"},
		{"bad cap", with("max_segments", 1), "max_segments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, b := ts.do("POST", "/v1/analyses/segments", analyst, c.body)
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
