package api

import (
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/results"
)

// TestCapsAndRetentionDefinitions: caps at both tails and matured-only windows
// through the API: bad definitions are 400 naming the field, and an
// experiment's results use them, the retention metric stating its denominator.
func TestCapsAndRetentionDefinitions(t *testing.T) {
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	ts := newTestServerAt(t, now)
	analyst := ts.key("ana", "analyst")
	bad := []struct {
		name string
		body map[string]any
		has  string
	}{
		{"lower above upper", map[string]any{"cap": map[string]any{"lower": 5, "upper": 1}}, "cap.lower"},
		{"lower percentile out of range", map[string]any{"cap": map[string]any{"lower_percentile": 2}}, "cap.lower_percentile"},
		{"lower percentile above percentile", map[string]any{"cap": map[string]any{"lower_percentile": 0.9, "percentile": 0.5}}, "cap.lower_percentile"},
		{"two lower caps", map[string]any{"cap": map[string]any{"lower": 0, "lower_percentile": 0.1}}, "cap"},
		{"value and upper", map[string]any{"cap": map[string]any{"value": 3, "upper": 3}}, "cap"},
		{"matured mean", map[string]any{"aggregation": "mean", "window": map[string]any{"start_days": 7, "end_days": 8, "matured_only": true}}, "window.matured_only"},
	}
	for _, c := range bad {
		body := map[string]any{"name": "x", "event_type": "purchase", "aggregation": "sum"}
		for k, v := range c.body {
			body[k] = v
		}
		status, b := ts.do("POST", "/v1/metrics", analyst, body)
		if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, c.has+":") {
			t.Errorf("%s: %d %+v; want 400 naming %s", c.name, status, e, c.has)
		}
	}
	for _, m := range []map[string]any{
		{"name": "rev_fixed", "event_type": "purchase", "aggregation": "sum", "cap": map[string]any{"lower": 0, "upper": 100}},
		{"name": "rev_pct", "event_type": "purchase", "aggregation": "sum", "cap": map[string]any{"lower_percentile": 0.1, "percentile": 0.9}},
		{"name": "ret_d7", "event_type": "visit", "aggregation": "binary", "window": map[string]any{"start_days": 7, "end_days": 8, "matured_only": true}},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "tails", "metrics": []any{"rev_fixed", "rev_pct", "ret_d7"},
		"variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/tails/start", map[string]any{"started_at": "2026-03-01T00:00:00Z"}, nil)
	// Units 0–4 of each arm are exposed on March 1st (their day-7 window ends on
	// the 9th, before the clock's March 10th), units 5–9 on the 5th (it ends on
	// the 13th: not matured). Each unit buys once; some visit on day 7.5.
	revenue := map[string][]float64{
		"control":   {-50, 10, 20, 30, 400, 5, -5, 15, 25, 35},
		"treatment": {60, -20, 200, 40, 50, 0, 70, 80, 90, 1000},
	}
	visitors := map[string][]int{"control": {0, 1, 2, 5}, "treatment": {0, 1, 2, 3, 6}}
	var xs, evs []map[string]any
	for _, arm := range []string{"control", "treatment"} {
		for i, v := range revenue[arm] {
			unit := fmt.Sprintf("%s-%d", arm, i)
			t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			if i >= 5 {
				t0 = t0.AddDate(0, 0, 4)
			}
			xs = append(xs, map[string]any{"experiment": "tails", "unit": unit, "variant": arm, "ts": t0})
			evs = append(evs, map[string]any{"event_id": unit + "-p", "unit": unit, "type": "purchase", "ts": t0.Add(time.Hour), "value": v})
			for _, j := range visitors[arm] {
				if j == i {
					evs = append(evs, map[string]any{"event_id": unit + "-v", "unit": unit, "type": "visit", "ts": t0.Add(7*24*time.Hour + 12*time.Hour)})
				}
			}
		}
	}
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)

	var r results.Results
	ts.must(http.StatusOK, "GET", "/v1/experiments/tails/results", nil, &r)
	if len(r.Metrics) != 3 {
		t.Fatalf("results %+v", r)
	}
	// numpy 1.24, the arms' purchases c and t as above:
	//   np.clip(c, 0, 100).mean(), np.clip(t, 0, 100).mean()          # 24.0 59.0
	//   a = np.concatenate([c, t]); lo, hi = np.quantile(a, 0.1), np.quantile(a, 0.9)
	//   np.clip(c, lo, hi).mean(), np.clip(t, lo, hi).mean()          # 34.85000000000003 80.35000000000002
	// Day-7 retention over the matured units 0–4: control 3 of 5, treatment 4 of 5
	// (the visits of control 5 and treatment 6 are in windows not yet ended).
	want := map[string][2]float64{"rev_fixed": {24, 59}, "rev_pct": {34.85000000000003, 80.35000000000002}, "ret_d7": {0.6, 0.8}}
	wantN := map[string]int64{"rev_fixed": 10, "rev_pct": 10, "ret_d7": 5}
	for _, m := range r.Metrics {
		if m.Error != "" || len(m.Variants) != 2 {
			t.Fatalf("%s: %+v", m.Name, m)
		}
		for i, v := range m.Variants {
			if math.Abs(v.Mean-want[m.Name][i]) > 1e-9 || v.N != wantN[m.Name] {
				t.Errorf("%s %s: n %d mean %.15g, want %d, %.15g", m.Name, v.Name, v.N, v.Mean, wantN[m.Name], want[m.Name][i])
			}
		}
		if (m.Maturity != nil) != (m.Name == "ret_d7") {
			t.Errorf("%s: maturity %+v", m.Name, m.Maturity)
		}
	}
	mt := r.Metrics[2].Maturity
	five := map[string]int64{"control": 5, "treatment": 5}
	if mt == nil || !mt.AsOf.Equal(now) || !reflect.DeepEqual(mt.Matured, five) || !reflect.DeepEqual(mt.NotMatured, five) {
		t.Errorf("ret_d7 maturity %+v, want 5 matured and 5 not per arm as of %v", mt, now)
	}
	if r.Exposures["control"] != 10 || r.Exposures["treatment"] != 10 {
		t.Errorf("exposures %v, want 10 per arm", r.Exposures)
	}
}
