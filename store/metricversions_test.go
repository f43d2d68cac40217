package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestMetricVersionsResolve checks which version of each definition an
// experiment reads: the ones pinned at its start (parts of ratios included),
// the current ones for a draft, and for an experiment started before
// versions existed (no pins) the ones current at its start.
func TestMetricVersionsResolve(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	for _, m := range []*experiment.Metric{
		{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 1}},
		{Name: "orders", EventType: "purchase", Aggregation: experiment.Count},
		{Name: "aov", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "orders"},
	} {
		if _, err := db.CreateMetric(ctx, "alice", m); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(key string, start bool) *experiment.Experiment {
		t.Helper()
		e := abExperiment(key)
		e.Metrics = []experiment.MetricRef{{Name: "aov"}}
		if _, err := db.CreateExperiment(ctx, "alice", e); err != nil {
			t.Fatal(err)
		}
		if start {
			if _, err := db.StartExperiment(ctx, "alice", key); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.GetExperiment(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	c.Advance(time.Hour)
	early := mk("early", true)
	if want := map[string]int{"aov": 1, "revenue": 1, "orders": 1}; !sameJSON(early.MetricVersions, want) {
		t.Errorf("pins at the start: %v, want %v", early.MetricVersions, want)
	}
	c.Advance(time.Hour)
	v2, err := db.PutMetric(ctx, "bob", "revenue", &experiment.Metric{EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 2}})
	if err != nil || v2.Version != 2 {
		t.Fatalf("PutMetric: %+v, %v; want version 2", v2, err)
	}
	c.Advance(time.Hour)
	late := mk("late", true)
	draft := mk("draft", false)

	// legacy drops an experiment's pins, as one started before versions existed.
	legacy := func(e *experiment.Experiment) *experiment.Experiment {
		t.Helper()
		e.MetricVersions = nil
		doc, _ := json.Marshal(e)
		if _, err := db.SQL().Exec(`UPDATE experiments SET doc = ? WHERE key = ?`, string(doc), e.Key); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetExperiment(ctx, e.Key)
		if err != nil || got.MetricVersions != nil {
			t.Fatalf("legacy %s: %+v, %v", e.Key, got, err)
		}
		return got
	}
	cases := []struct {
		name        string
		e           *experiment.Experiment
		revenue     int
		revenueDays float64
	}{
		{"pinned before the change", early, 1, 1},
		{"pinned after the change", late, 2, 2},
		{"draft", draft, 2, 2},
		{"no experiment", nil, 2, 2},
		{"unpinned, started before the change", legacy(cloneExperiment(early)), 1, 1},
		{"unpinned, started after the change", legacy(cloneExperiment(late)), 2, 2},
	}
	for _, tc := range cases {
		defs, err := db.ResolveExperimentMetrics(ctx, tc.e, []string{"aov"})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		r := defs["revenue"]
		if r == nil || r.Version != tc.revenue || r.Window.EndDays != tc.revenueDays || defs["orders"].Version != 1 || defs["aov"].Version != 1 {
			t.Errorf("%s: revenue %+v, orders %+v; want revenue version %d", tc.name, r, defs["orders"], tc.revenue)
		}
	}

	bad := []struct {
		name, metric string
		m            *experiment.Metric
		kind         experiment.Kind
		field        string
	}{
		{"unknown", "nope", &experiment.Metric{EventType: "x", Aggregation: experiment.Sum}, experiment.NotFound, ""},
		{"renamed", "orders", &experiment.Metric{Name: "sales", EventType: "x", Aggregation: experiment.Count}, experiment.Invalid, "name"},
		{"a ratio's part made a mean", "orders", &experiment.Metric{EventType: "purchase", Aggregation: experiment.Mean}, experiment.Invalid, "aggregation"},
		{"invalid", "orders", &experiment.Metric{EventType: "purchase", Aggregation: "median"}, experiment.Invalid, "aggregation"},
	}
	for _, tc := range bad {
		_, err := db.PutMetric(ctx, "bob", tc.metric, tc.m)
		var le *experiment.Error
		if experiment.KindOf(err) != tc.kind || !asError(err, &le) || le.Field != tc.field {
			t.Errorf("%s: %v, want %v naming %q", tc.name, err, tc.kind, tc.field)
		}
	}
	vs, err := db.MetricVersions(ctx, "orders")
	if err != nil || len(vs) != 1 {
		t.Errorf("orders after refused PUTs: %+v, %v; want its one version", vs, err)
	}
	if n := count(t, db, `SELECT count(*) FROM metric_versions`); n != 4 {
		t.Errorf("%d metric versions stored, want 4", n)
	}
}
