package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
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
	// Quantiles of events need events with values: not a binary metric.
	status, b = ts.do("POST", "/v1/analyses/quantiles", ts.admin, map[string]any{"experiment": "promo", "metric": "buyers", "per_event": true})
	if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, "per_event: ") {
		t.Errorf("quantiles per_event of a binary metric: status %d, error %+v", status, e)
	}
}

// TestSegmentsByEventProperty: segments read from a property of the units'
// events equal the breakdown by a unit attribute holding the same values
// (each unit's first "visit" event's device; units without one in
// "(missing)"), count the units whose segment event came after their
// exposure, and bad requests name their field.
func TestSegmentsByEventProperty(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := ts.db.CreateMetric(ctx, "test", &experiment.Metric{Name: "revenue", EventType: "order", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "promo", "variants": twoArms,
		"metrics": []map[string]any{{"name": "revenue", "primary": true}}}, nil)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	after := 0
	for i := range 900 {
		u := fmt.Sprintf("u%04d", i)
		arm := []string{"control", "treatment"}[i%2]
		device := []string{"ios", "android", "web"}[(i/2)%3]
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: start})
		y := float64(i%11) + 1
		if arm == "treatment" && device == "ios" {
			y += 4
		}
		evs = append(evs, experiment.Event{EventID: "o" + u, Unit: u, Type: "order", TS: start.Add(time.Hour), Value: y})
		switch {
		case i%30 == 7: // no visit with a device: "(missing)"
			evs = append(evs, experiment.Event{EventID: "v" + u, Unit: u, Type: "visit", TS: start.Add(-time.Hour), Value: 1, Properties: []byte(`{"page": "home"}`)})
			continue
		case i%10 == 3: // the first visit with a device comes after exposure
			after++
			evs = append(evs, experiment.Event{EventID: "v" + u, Unit: u, Type: "visit", TS: start.Add(time.Minute), Value: 1, Properties: []byte(`{"device": "` + device + `"}`)})
		default: // before exposure, and a later visit from another device that does not count
			evs = append(evs, experiment.Event{EventID: "v" + u, Unit: u, Type: "visit", TS: start.Add(-time.Hour), Value: 1, Properties: []byte(`{"device": "` + device + `"}`)},
				experiment.Event{EventID: "w" + u, Unit: u, Type: "visit", TS: start.Add(2 * time.Hour), Value: 1, Properties: []byte(`{"device": "tv"}`)})
		}
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"device": device}})
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
	var byEvent, byAttr segmentsResult
	ts.must(http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "revenue", "event_property": "device", "event_type": "visit"}, &byEvent)
	ts.must(http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "device"}, &byAttr)
	if byEvent.Attribute != "visit.device" || byEvent.EventProperty != "device" || byEvent.EventType != "visit" || byEvent.SegmentAfterExposure != after {
		t.Errorf("attribute %q, event_property %q, event_type %q, after exposure %d (want %d)", byEvent.Attribute, byEvent.EventProperty, byEvent.EventType, byEvent.SegmentAfterExposure, after)
	}
	if len(byEvent.Segments) != len(byAttr.Segments) {
		t.Fatalf("segments %d by event, %d by attribute", len(byEvent.Segments), len(byAttr.Segments))
	}
	for k, s := range byEvent.Segments {
		a := byAttr.Segments[k]
		if s.Segment == analysis.MissingSegment {
			if s.Control+s.Treated != 30 {
				t.Errorf("(missing): %d units, want 30", s.Control+s.Treated)
			}
			continue
		}
		if s.Segment != a.Segment || s.Absolute != a.Absolute || s.Adjusted != a.Adjusted {
			t.Errorf("segment %d: by event %+v, by attribute %+v", k, s, a)
		}
	}
	// The report's segments view (the console's ?segment=event:visit.device).
	r, err := BuildReport(ctx, ts.db, ts.srv.results, "promo", ReportOptions{Who: "test", SegmentBy: "event:visit.device"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Segments == nil || r.Segments.Attribute != "visit.device" || len(r.Segments.Segments) != len(byEvent.Segments) {
		t.Fatalf("report segments %+v", r.Segments)
	}
	for k, s := range r.Segments.Segments {
		if w := byEvent.Segments[k]; s.Segment != w.Segment || s.Absolute.Estimate != w.Absolute.Estimate {
			t.Errorf("report segment %d %+v, API %+v", k, s, w)
		}
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"experiment": "promo", "metric": "revenue"}, "attribute"},
		{map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "device", "event_property": "device"}, "event_property"},
		{map[string]any{"experiment": "promo", "metric": "revenue", "event_property": `dev"ice`}, "event_property"},
		{map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "device", "event_type": "visit"}, "event_type"},
	} {
		status, b := ts.do("POST", "/v1/analyses/segments", ts.admin, tc.body)
		if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, tc.field+": ") {
			t.Errorf("%v: status %d, error %+v; want 400 naming %s", tc.body, status, e, tc.field)
		}
	}
}
