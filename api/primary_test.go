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
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/reports"
)

// TestPrimaryMetricOneSource changes a draft's primary metric with PATCH in each
// way the API allows and checks that the stored experiment then names one primary
// everywhere (analysis.primary_metric and the metrics' flags), that contradictory
// bodies are refused with the field named, and that the digest of the started
// experiment headlines the primary the PATCH chose.
func TestPrimaryMetricOneSource(t *testing.T) {
	ts := newJobServer(t)
	for _, m := range []map[string]any{
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "bounds": map[string]float64{"lower": 0, "upper": 50}},
		{"name": "converted", "event_type": "purchase", "aggregation": "binary"},
		{"name": "visits", "event_type": "visit", "aggregation": "count", "bounds": map[string]float64{"lower": 0, "upper": 10}},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"metrics": []map[string]any{{"name": "revenue", "primary": true}, {"name": "converted"}},
	}, nil)
	primaryOf := func(e *experiment.Experiment) (plan string, flagged []string) {
		for _, m := range e.Metrics {
			if m.Primary {
				flagged = append(flagged, m.Name)
			}
		}
		return e.Analysis.PrimaryMetric, flagged
	}
	for _, tc := range []struct {
		name  string
		patch map[string]any
		want  string // the one primary after the change
	}{
		{"flag moved in metrics", map[string]any{"metrics": []any{"revenue", map[string]any{"name": "converted", "primary": true}}}, "converted"},
		{"plan names another", map[string]any{"analysis": map[string]any{"primary_metric": "revenue"}}, "revenue"},
		{"metrics without flags keep a primary still listed", map[string]any{"metrics": []any{"converted", "revenue"}}, "revenue"},
		{"plan without primary keeps it", map[string]any{"analysis": map[string]any{"alpha": 0.1}}, "revenue"},
		{"primary dropped from the metrics", map[string]any{"metrics": []any{"converted", "visits"}}, ""},
		{"both agree", map[string]any{"metrics": []any{"converted", map[string]any{"name": "visits", "primary": true}}, "analysis": map[string]any{"primary_metric": "visits"}}, "visits"},
		{"back to converted", map[string]any{"metrics": []any{map[string]any{"name": "converted", "primary": true}, "revenue"}}, "converted"},
	} {
		var e experiment.Experiment
		ts.must(http.StatusOK, "PATCH", "/v1/experiments/checkout", tc.patch, &e)
		var got experiment.Experiment
		ts.must(http.StatusOK, "GET", "/v1/experiments/checkout", nil, &got)
		for _, x := range []*experiment.Experiment{&e, &got} {
			plan, flagged := primaryOf(x)
			wantFlags := []string{tc.want}
			if tc.want == "" {
				wantFlags = nil
			}
			if plan != tc.want || fmt.Sprint(flagged) != fmt.Sprint(wantFlags) {
				t.Errorf("%s: analysis.primary_metric %q, flagged %v; want %q both", tc.name, plan, flagged, tc.want)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"flag and plan disagree", map[string]any{"metrics": []any{map[string]any{"name": "revenue", "primary": true}, "converted"}, "analysis": map[string]any{"primary_metric": "converted"}}, "analysis.primary_metric"},
		{"two flagged", map[string]any{"metrics": []any{map[string]any{"name": "revenue", "primary": true}, map[string]any{"name": "converted", "primary": true}}}, "metrics[1].primary"},
	} {
		status, b := ts.do("PATCH", "/v1/experiments/checkout", ts.admin, tc.body)
		if e := errorOf(t, b); status != 400 || !strings.Contains(e.Message, tc.field) {
			t.Errorf("%s: %d %+v, want 400 naming %s", tc.name, status, e, tc.field)
		}
	}
	var e experiment.Experiment
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout", nil, &e)
	if plan, _ := primaryOf(&e); plan != "converted" {
		t.Fatalf("a refused PATCH changed the primary to %q", plan)
	}

	// Started, the experiment's results and its digest name converted.
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	logPurchases(t, ts, "checkout", 800)
	var res struct {
		Metrics []struct {
			Name    string `json:"name"`
			Primary bool   `json:"primary"`
		} `json:"metrics"`
	}
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &res)
	for _, m := range res.Metrics {
		if m.Primary != (m.Name == "converted") {
			t.Errorf("results mark %s primary=%v", m.Name, m.Primary)
		}
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
	ctx := context.Background()
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "weekly", "kind": "digest", "every": "168h", "target": "checkout"}, nil)
	j, err := ts.db.GetJob(ctx, "weekly")
	if err != nil {
		t.Fatal(err)
	}
	d, err := BuildDigest(ctx, ts.db, ResultsOver(ts.db), j, time.Now().Truncate(time.Second), "checkout", DigestOptions{Privacy: privacy.DefaultOptions()})
	if err != nil {
		t.Fatal(err)
	}
	var rd reports.Digest
	if err := json.Unmarshal(d.JSON, &rd); err != nil {
		t.Fatal(err)
	}
	if rd.Headline == nil || rd.Headline.Metric != "converted" {
		t.Errorf("digest headline %+v, want the primary metric converted", rd.Headline)
	}
}

// logPurchases exposes n units to experiment key (control and treatment in turn,
// on 2026-03-01) and gives each one purchase 1 h later: 10 in control, 12 in
// treatment.
func logPurchases(t *testing.T, ts *tserver, key string, n int) {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for i := range n {
		v, price := "control", 10.0
		if i%2 == 1 {
			v, price = "treatment", 12
		}
		u := fmt.Sprintf("%s-u%d", key, i)
		xs = append(xs, experiment.Exposure{Experiment: key, Unit: u, Variant: v, TS: t0})
		evs = append(evs, experiment.Event{EventID: "e" + u, Unit: u, Type: "purchase", TS: t0.Add(time.Hour), Value: price})
	}
	ctx := context.Background()
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}
