package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

func TestPostEvents(t *testing.T) {
	ts := newTestServer(t)
	ingest := ts.key("collector", experiment.RoleIngest)
	viewer := ts.key("exec", experiment.RoleViewer)
	batch := map[string]any{"events": []map[string]any{
		{"event_id": "e1", "unit": "u1", "type": "purchase", "ts": "2026-03-01T10:00:00Z", "value": 12.5, "properties": map[string]any{"sku": "A"}},
		{"event_id": "e2", "unit": "u2", "type": "visit", "ts": "2026-03-01T10:05:00Z"},
	}}
	var got eventsAccepted
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/events", batch, &got)
	if got != (eventsAccepted{Accepted: 2}) {
		t.Errorf("first batch: %+v, want 2 accepted", got)
	}
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/events", batch, &got)
	if got != (eventsAccepted{Duplicates: 2}) {
		t.Errorf("resent batch: %+v, want 2 duplicates", got)
	}
	ndjson := `{"event_id":"e3","unit":"u1","type":"visit","ts":"2026-03-01T11:00:00Z","value":1}` + "\n" +
		`{"event_id":"e1","unit":"u1","type":"purchase","ts":"2026-03-01T10:00:00Z","value":12.5}` + "\n"
	resp := postRaw(t, ts, ingest, "application/x-ndjson", ndjson)
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || got != (eventsAccepted{Accepted: 1, Duplicates: 1}) {
		t.Errorf("NDJSON: status %d, %+v; want 1 accepted, 1 duplicate", resp.StatusCode, got)
	}

	bad := []struct {
		name, contentType, body string
		status                  int
		code, has               string
	}{
		{"bad timestamp", "application/json", `{"events":[{"event_id":"x","unit":"u","type":"t","ts":"2026-03-01T10:00:00Z"},{"event_id":"y","unit":"u","type":"t","ts":"yesterday"}]}`, 400, "invalid", "events[1].ts"},
		{"non-numeric value", "application/json", `{"events":[{"event_id":"x","unit":"u","type":"t","ts":"2026-03-01T10:00:00Z","value":"12"}]}`, 400, "invalid", "events[0].value"},
		{"missing unit", "application/json", `{"events":[{"event_id":"x","type":"t","ts":"2026-03-01T10:00:00Z"}]}`, 400, "invalid", "events[0].unit"},
		{"unknown field", "application/json", `{"events":[{"event_id":"x","unit":"u","type":"t","ts":"2026-03-01T10:00:00Z","amount":3}]}`, 400, "invalid", "events[0].amount"},
		{"NDJSON bad line", "application/x-ndjson", `{"event_id":"x","unit":"u","type":"t","ts":"2026-03-01T10:00:00Z"}` + "\n" + `{"event_id":"y","unit":"u","type":"t","ts":"later"}`, 400, "invalid", "line 2.ts"},
		{"too many", "application/json", tooManyEvents(), 413, "too_large", "10001 events"},
	}
	for _, c := range bad {
		resp := postRaw(t, ts, ingest, c.contentType, c.body)
		var e apiError
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.has) {
			t.Errorf("%s: %d %+v; want %d %s mentioning %q", c.name, resp.StatusCode, e.Error, c.status, c.code, c.has)
		}
	}
	var n int
	ts.db.SQL().QueryRow(`SELECT count(*) FROM events`).Scan(&n)
	if n != 3 {
		t.Errorf("%d events stored, want 3 (rejected batches store nothing)", n)
	}
	if status, _ := ts.do("POST", "/v1/events", viewer, batch); status != http.StatusForbidden {
		t.Errorf("viewer key: status %d, want 403", status)
	}
}

// postRaw posts body to /v1/events with the given content type.
func postRaw(t *testing.T, ts *tserver, key, contentType, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", ts.http.URL+"/v1/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := ts.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func tooManyEvents() string {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	for i := range MaxEventBatch + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"event_id":"e%d","unit":"u","type":"t","ts":"2026-03-01T10:00:00Z"}`, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

func TestMetricDefinitions(t *testing.T) {
	ts := newTestServer(t)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	rev := map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum",
		"window": map[string]any{"start_days": 0, "end_days": 7}, "cap": map[string]any{"percentile": 0.99}, "covariate": map[string]any{"days": 14}}
	var m experiment.Metric
	ts.mustAs(analyst, http.StatusCreated, "POST", "/v1/metrics", rev, &m)
	if m.Name != "revenue" || m.Cap.Percentile != 0.99 || m.Covariate.Days != 14 {
		t.Errorf("created %+v", m)
	}
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "sessions", "event_type": "visit", "aggregation": "count"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "rps", "aggregation": "ratio", "numerator": "revenue", "denominator": "sessions"}, nil)
	bad := []struct {
		name   string
		body   any
		status int
		has    string
	}{
		{"taken", rev, 409, "already exists"},
		{"bad aggregation", map[string]any{"name": "x", "event_type": "v", "aggregation": "median"}, 400, "aggregation"},
		{"unknown numerator", map[string]any{"name": "x", "aggregation": "ratio", "numerator": "nope", "denominator": "sessions"}, 400, `"nope" does not exist`},
		{"bad percentile", map[string]any{"name": "x", "event_type": "v", "aggregation": "sum", "cap": map[string]any{"percentile": 1.5}}, 400, "cap.percentile"},
		{"unknown field", map[string]any{"name": "x", "event_type": "v", "aggregation": "sum", "windw": map[string]any{}}, 400, "windw"},
	}
	for _, c := range bad {
		status, b := ts.do("POST", "/v1/metrics", analyst, c.body)
		if e := errorOf(t, b); status != c.status || !strings.Contains(e.Message, c.has) {
			t.Errorf("%s: %d %+v; want %d mentioning %q", c.name, status, e, c.status, c.has)
		}
	}
	var list metricList
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/metrics", nil, &list)
	if len(list.Metrics) != 3 || list.Metrics[0].Name != "revenue" {
		t.Errorf("list: %+v", list.Metrics)
	}
	ts.must(http.StatusOK, "GET", "/v1/metrics/rps", nil, &m)
	if m.Numerator != "revenue" {
		t.Errorf("rps: %+v", m)
	}
	ts.must(http.StatusNotFound, "GET", "/v1/metrics/nope", nil, nil)
}

// TestResultsEndpoints runs an experiment through the API (metrics, exposures,
// events) and reads the results, a snapshot, the daily series and the holdout.
func TestResultsEndpoints(t *testing.T) {
	ts := newTestServerAt(t, time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)) // the experiment starts before its exposures
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "covariate": map[string]any{"days": 7}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "converted", "event_type": "purchase", "aggregation": "binary"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.1}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "holdout": "global", "metrics": []any{map[string]any{"name": "revenue", "primary": true}, "converted"},
		"variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	start := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var xs, evs []map[string]any
	for u := range 400 {
		unit := fmt.Sprintf("u%d", u)
		x := map[string]any{"experiment": "checkout", "unit": unit, "ts": start.Add(time.Duration(u) * time.Minute)}
		switch {
		case u%10 == 0:
			x["in_holdout"] = true
		case u%2 == 0:
			x["variant"] = "control"
		default:
			x["variant"] = "treatment"
		}
		xs = append(xs, x)
		if u%3 != 0 {
			v := float64(u%7) + 1
			evs = append(evs, map[string]any{"event_id": unit + "-pre", "unit": unit, "type": "purchase", "ts": start.Add(-24 * time.Hour), "value": v})
			evs = append(evs, map[string]any{"event_id": unit + "-post", "unit": unit, "type": "purchase", "ts": start.Add(30 * time.Hour), "value": v + float64(u%2)})
		}
	}
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)

	var r results.Results
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &r)
	if r.Experiment != "checkout" || r.Snapshot == 0 || len(r.Metrics) != 2 || r.Correction != "holm" {
		t.Fatalf("results: %+v", r)
	}
	// Even units not multiple of 10 are control (160), odd ones treatment (200);
	// the 40 holdout units are left out.
	if r.Exposures["control"] != 160 || r.Exposures["treatment"] != 200 {
		t.Errorf("exposures %v, want 160 control and 200 treatment", r.Exposures)
	}
	rev := r.Metrics[0]
	if rev.Name != "revenue" || !rev.Primary || rev.CUPED == nil || len(rev.Unadjusted) != 1 || len(rev.Comparisons) != 1 || rev.Comparisons[0].Adjusted == nil {
		t.Errorf("revenue: %+v", rev)
	}
	// A treatment unit with events (odd u, u mod 3 ≠ 0) spends its pre-period
	// value plus 1; a control unit its pre-period value. The true effect per unit
	// is the share of treatment units with events, 133/200 (odd u < 400 not
	// divisible by 3), and the pre-period explains the rest, so CUPED's interval
	// must cover it and be far narrower than the plain one.
	truth := 133.0 / 200
	if a, p := rev.Comparisons[0].Absolute, rev.Unadjusted[0].Absolute; !(a.CILow < truth && truth < a.CIHigh) || !(a.SE < p.SE/5) {
		t.Errorf("revenue effect %+v (plain %+v), true effect %g", a, p, truth)
	}
	if r.Freshness.LatestEvent == nil || !r.Freshness.LatestEvent.Equal(start.Add(30*time.Hour)) {
		t.Errorf("freshness %+v", r.Freshness)
	}

	// A stored snapshot comes back unchanged.
	status, first := ts.do("GET", fmt.Sprintf("/v1/experiments/checkout/results?snapshot=%d", r.Snapshot), ts.admin, nil)
	var again results.Results
	json.Unmarshal(first, &again)
	if status != 200 || again.Snapshot != r.Snapshot || again.InputHash != r.InputHash || !again.ComputedAt.Equal(r.ComputedAt) {
		t.Errorf("snapshot: %d %s", status, first)
	}
	ts.must(http.StatusNotFound, "GET", "/v1/experiments/checkout/results?snapshot=999", nil, nil)
	ts.must(http.StatusBadRequest, "GET", "/v1/experiments/checkout/results?snapshot=abc", nil, nil)
	ts.must(http.StatusNotFound, "GET", "/v1/experiments/nope/results", nil, nil)
	var snaps snapshotList
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/results/snapshots", nil, &snaps)
	if len(snaps.Snapshots) != 1 || snaps.Snapshots[0].ID != r.Snapshot {
		t.Errorf("snapshots %+v", snaps)
	}

	var d results.Daily
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/results/daily?metric=converted", nil, &d)
	// From the day of the first exposure to the day of the last event.
	if len(d.Days) != 2 || d.Days[len(d.Days)-1].Units["treatment"] != 200 {
		t.Errorf("daily: %+v", d)
	}
	ts.must(http.StatusBadRequest, "GET", "/v1/experiments/checkout/results/daily", nil, nil)

	var h results.Results
	ts.must(http.StatusOK, "GET", "/v1/holdouts/global/results?version=1&metrics=converted", nil, &h)
	if h.Holdout != "global" || h.Exposures["holdout"] != 40 || h.Exposures["exposed"] != 360 || len(h.Metrics) != 1 || h.Metrics[0].Error != "" {
		t.Errorf("holdout results: %+v", h)
	}
	ts.must(http.StatusNotFound, "GET", "/v1/holdouts/global/results?version=3", nil, nil)

	viewer := ts.key("exec", experiment.RoleViewer)
	// A viewer is answered with DP numbers only: without a privacy budget, none.
	if status, b := ts.do("GET", "/v1/experiments/checkout/results", viewer, nil); status != http.StatusNotFound || !strings.Contains(errorOf(t, b).Message, "no privacy budget") {
		t.Errorf("viewer reading results without a privacy budget: %d %s, want 404 no privacy budget", status, b)
	}
}
