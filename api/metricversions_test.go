package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// armMeans returns the per-arm means of metric name in r.
func armMeans(t *testing.T, r results.Results, name string) (version int, means map[string]float64) {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name != name {
			continue
		}
		means = map[string]float64{}
		for _, v := range m.Variants {
			means[v.Name] = v.Mean
		}
		return m.Version, means
	}
	t.Fatalf("results of %s have no metric %q: %+v", r.Experiment, name, r.Metrics)
	return 0, nil
}

// TestMetricVersionsPinResults changes a metric while an experiment runs: the
// running experiment keeps the version it pinned when it started (same
// numbers before and after), an experiment started after the change reads the
// new one, and every result records the version it used.
func TestMetricVersionsPinResults(t *testing.T) {
	ts := newTestServerAt(t, time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC))
	analyst := ts.key("ana", experiment.RoleAnalyst)
	ts.mustAs(analyst, http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum",
		"window": map[string]any{"start_days": 0, "end_days": 1}}, nil)
	arms := []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}
	expose := func(key string) {
		start := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		var xs []map[string]any
		for u := range 10 {
			v := "control"
			if u%2 == 1 {
				v = "treatment"
			}
			xs = append(xs, map[string]any{"experiment": key, "unit": fmt.Sprintf("u%d", u), "variant": v, "ts": start.Add(time.Duration(u) * time.Minute)})
		}
		ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "pinned", "variants": arms, "metrics": []string{"revenue"}}, nil)
	var started experiment.Experiment
	ts.must(http.StatusOK, "POST", "/v1/experiments/pinned/start", nil, &started)
	if started.MetricVersions["revenue"] != 1 {
		t.Fatalf("started experiment pins %v, want revenue at version 1", started.MetricVersions)
	}
	expose("pinned")
	// Unit u spends u+1 two hours after its exposure (inside the first day)
	// and 10 more thirty hours after (the second day).
	var evs []map[string]any
	for u := range 10 {
		at := time.Date(2026, 3, 1, 8, u, 0, 0, time.UTC)
		evs = append(evs,
			map[string]any{"event_id": fmt.Sprintf("a%d", u), "unit": fmt.Sprintf("u%d", u), "type": "purchase", "ts": at.Add(2 * time.Hour), "value": u + 1},
			map[string]any{"event_id": fmt.Sprintf("b%d", u), "unit": fmt.Sprintf("u%d", u), "type": "purchase", "ts": at.Add(30 * time.Hour), "value": 10})
	}
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)

	// Version 1 counts the first day: control units 0,2,4,6,8 spend 1,3,5,7,9
	// (mean 5), treatment units 1,3,5,7,9 spend 2,4,6,8,10 (mean 6), by the
	// fixture's arithmetic.
	v1 := map[string]float64{"control": 5, "treatment": 6}
	// Version 2 counts two days: each unit 10 more (means 15 and 16).
	v2 := map[string]float64{"control": 15, "treatment": 16}
	check := func(when, key string, wantVersion int, want map[string]float64) results.Results {
		t.Helper()
		var r results.Results
		ts.must(http.StatusOK, "GET", "/v1/experiments/"+key+"/results", nil, &r)
		v, means := armMeans(t, r, "revenue")
		if v != wantVersion || r.MetricVersions["revenue"] != wantVersion {
			t.Errorf("%s: %s read revenue version %d (metric_versions %v), want %d", when, key, v, r.MetricVersions, wantVersion)
		}
		for arm, m := range want {
			if means[arm] != m {
				t.Errorf("%s: %s %s mean %g, want %g", when, key, arm, means[arm], m)
			}
		}
		return r
	}
	before := check("before the change", "pinned", 1, v1)

	var m experiment.Metric
	ts.mustAs(analyst, http.StatusOK, "PUT", "/v1/metrics/revenue", map[string]any{"event_type": "purchase", "aggregation": "sum",
		"window": map[string]any{"start_days": 0, "end_days": 2}}, &m)
	if m.Version != 2 || m.Window.EndDays != 2 {
		t.Fatalf("PUT answered %+v, want version 2 with a two-day window", m)
	}
	// The same definition again changes nothing.
	ts.mustAs(analyst, http.StatusOK, "PUT", "/v1/metrics/revenue", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum",
		"window": map[string]any{"start_days": 0, "end_days": 2}}, &m)
	if m.Version != 2 {
		t.Errorf("an unchanged PUT made version %d, want 2 kept", m.Version)
	}
	after := check("after the change", "pinned", 1, v1)
	if after.InputHash != before.InputHash {
		t.Errorf("the pinned experiment's input hash changed with a new metric version: %s, then %s", before.InputHash, after.InputHash)
	}
	// The first snapshot still says which version it used.
	var snap results.Results
	ts.must(http.StatusOK, "GET", fmt.Sprintf("/v1/experiments/pinned/results?snapshot=%d", before.Snapshot), nil, &snap)
	if snap.MetricVersions["revenue"] != 1 || snap.Metrics[0].Version != 1 {
		t.Errorf("snapshot %d records %v, want revenue version 1", before.Snapshot, snap.MetricVersions)
	}
	// An experiment started after the change pins the new version.
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "later", "variants": arms, "metrics": []string{"revenue"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/later/start", nil, &started)
	expose("later")
	if started.MetricVersions["revenue"] != 2 {
		t.Errorf("experiment started after the change pins %v, want revenue at version 2", started.MetricVersions)
	}
	check("started after the change", "later", 2, v2)
	// A running experiment's pins survive a PATCH of its name.
	var patched experiment.Experiment
	ts.must(http.StatusOK, "PATCH", "/v1/experiments/pinned", map[string]any{"name": "Pinned"}, &patched)
	if patched.MetricVersions["revenue"] != 1 {
		t.Errorf("PATCH of a running experiment's name left pins %v, want revenue at version 1", patched.MetricVersions)
	}

	// The history.
	var hist metricVersionList
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/metrics/revenue/versions", nil, &hist)
	if hist.Current != 2 || len(hist.Versions) != 2 || hist.Versions[0].Definition.Window.EndDays != 1 || hist.Versions[1].Definition.Window.EndDays != 2 ||
		hist.Versions[0].Actor == "" {
		t.Errorf("versions: %+v", hist)
	}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/metrics/revenue?version=1", nil, &m)
	if m.Version != 1 || m.Window.EndDays != 1 {
		t.Errorf("version 1: %+v", m)
	}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/metrics/revenue", nil, &m)
	if m.Version != 2 {
		t.Errorf("current: %+v", m)
	}

	bad := []struct {
		name, method, path string
		body               any
		status             int
		has                string
	}{
		{"unknown metric", "PUT", "/v1/metrics/nope", map[string]any{"event_type": "purchase", "aggregation": "sum"}, 404, `"nope"`},
		{"rename", "PUT", "/v1/metrics/revenue", map[string]any{"name": "rev", "event_type": "purchase", "aggregation": "sum"}, 400, "name:"},
		{"bad window", "PUT", "/v1/metrics/revenue", map[string]any{"event_type": "purchase", "aggregation": "sum", "window": map[string]any{"start_days": 2, "end_days": 1}}, 400, "window:"},
		{"unknown field", "PUT", "/v1/metrics/revenue", map[string]any{"event_type": "purchase", "aggregation": "sum", "windw": 1}, 400, "windw"},
		{"no such version", "GET", "/v1/metrics/revenue?version=3", nil, 404, "version"},
		{"bad version", "GET", "/v1/metrics/revenue?version=x", nil, 400, "version:"},
	}
	for _, c := range bad {
		status, b := ts.do(c.method, c.path, analyst, c.body)
		if e := errorOf(t, b); status != c.status || !strings.Contains(e.Message, c.has) {
			t.Errorf("%s: %d %+v; want %d mentioning %q", c.name, status, e, c.status, c.has)
		}
	}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/metrics/revenue/versions", nil, &hist)
	if len(hist.Versions) != 2 {
		t.Errorf("rejected PUTs wrote versions: %+v", hist.Versions)
	}
	if status, _ := ts.do("PUT", "/v1/metrics/revenue", ts.key("exec", experiment.RoleViewer), map[string]any{"event_type": "purchase", "aggregation": "count"}); status != http.StatusForbidden {
		t.Errorf("viewer PUT: %d, want 403", status)
	}
}

// TestMetricDeprecateDelete deprecates metrics (kept by their users, refused
// to new experiments) and deletes unused ones (409 naming the users of one in
// use, nothing changed).
func TestMetricDeprecateDelete(t *testing.T) {
	ts := newTestServer(t)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	for _, m := range []map[string]any{
		{"name": "orders", "event_type": "purchase", "aggregation": "count"},
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum"},
		{"name": "aov", "aggregation": "ratio", "numerator": "revenue", "denominator": "orders"},
		{"name": "clicks", "event_type": "click", "aggregation": "count"},
		{"name": "spare", "event_type": "click", "aggregation": "binary"},
	} {
		ts.mustAs(analyst, http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	arms := []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "uses-clicks", "variants": arms, "metrics": []string{"clicks"}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/templates", map[string]any{"name": "std", "metrics": []string{"orders"}}, nil)

	conflicts := []struct{ metric, has string }{
		{"revenue", `ratio metric "aov"`},
		{"orders", `ratio metric "aov", template "std"`},
		{"clicks", `experiment "uses-clicks"`},
	}
	for _, c := range conflicts {
		status, b := ts.do("DELETE", "/v1/metrics/"+c.metric, ts.admin, nil)
		if e := errorOf(t, b); status != http.StatusConflict || !strings.Contains(e.Message, c.has) {
			t.Errorf("delete %s: %d %+v; want 409 naming %s", c.metric, status, e, c.has)
		}
		ts.must(http.StatusOK, "GET", "/v1/metrics/"+c.metric, nil, nil)
	}
	if status, _ := ts.do("DELETE", "/v1/metrics/spare", analyst, nil); status != http.StatusForbidden {
		t.Errorf("analyst delete: %d, want 403", status)
	}
	ts.must(http.StatusNoContent, "DELETE", "/v1/metrics/spare", nil, nil)
	ts.must(http.StatusNotFound, "GET", "/v1/metrics/spare", nil, nil)
	ts.must(http.StatusNotFound, "GET", "/v1/metrics/spare/versions", nil, nil)
	ts.must(http.StatusNotFound, "DELETE", "/v1/metrics/spare", nil, nil)
	var audit auditList
	ts.must(http.StatusOK, "GET", "/v1/audit?entity=metric&key=spare", nil, &audit)
	if len(audit.Entries) != 2 || audit.Entries[0].Action != "metric.delete" {
		t.Errorf("audit of spare: %+v", audit.Entries)
	}
	// Deleted, the name is free again, from version 1.
	var m experiment.Metric
	ts.mustAs(analyst, http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "spare", "event_type": "click", "aggregation": "sum"}, &m)
	if m.Version != 1 {
		t.Errorf("recreated spare: version %d, want 1", m.Version)
	}

	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/metrics/clicks/deprecate", nil, &m)
	if !m.Deprecated || m.Version != 1 {
		t.Errorf("deprecated clicks: %+v", m)
	}
	refused := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"new experiment", "POST", "/v1/experiments", map[string]any{"key": "new", "variants": arms, "metrics": []string{"orders", "clicks"}}, "metrics[1]"},
		{"new experiment's guardrail", "POST", "/v1/experiments", map[string]any{"key": "new", "variants": arms, "metrics": []string{"orders"}, "guardrails": []string{"clicks"}}, "metrics[1]"},
		{"draft gaining it", "PATCH", "/v1/experiments/uses-orders", map[string]any{"metrics": []string{"orders", "clicks"}}, "metrics[1]"},
		{"new template", "POST", "/v1/templates", map[string]any{"name": "t2", "guardrails": []string{"clicks"}}, "guardrails[0]"},
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "uses-orders", "variants": arms, "metrics": []string{"orders"}}, nil)
	for _, c := range refused {
		status, b := ts.do(c.method, c.path, ts.admin, c.body)
		if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, c.field+":") || !strings.Contains(e.Message, "deprecated") {
			t.Errorf("%s: %d %+v; want 400 naming %s as deprecated", c.name, status, e, c.field)
		}
	}
	ts.must(http.StatusNotFound, "GET", "/v1/experiments/new", nil, nil)
	ts.must(http.StatusNotFound, "GET", "/v1/templates/t2", nil, nil)
	// Its users keep it: the draft that had it may change other fields.
	ts.must(http.StatusOK, "PATCH", "/v1/experiments/uses-clicks", map[string]any{"name": "Clicks", "metrics": []string{"clicks"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/uses-clicks/start", nil, nil)
	ts.must(http.StatusOK, "GET", "/v1/experiments/uses-clicks/results", nil, nil)
	var restored experiment.Metric
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/metrics/clicks/restore", nil, &restored)
	if restored.Deprecated || restored.Version != 1 {
		t.Errorf("restored clicks: %+v", restored)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "new", "variants": arms, "metrics": []string{"clicks"}}, nil)
}
