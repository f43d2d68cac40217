package api

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestPowerEndpoint: POST /v1/analyses/power answers analysis.Plan for any
// reading key, and names the bad field. Values from statsmodels 0.13:
//
//	TTestIndPower().solve_power(effect_size=0.5/2, alpha=0.05, power=0.8, ratio=1)   # 252.12750122682306
//	2*TTestIndPower().solve_power(nobs1=200, alpha=0.05, power=0.8, ratio=1)         # 0.5616704464334009
func TestPowerEndpoint(t *testing.T) {
	ts := newTestServer(t)
	viewer := ts.key("viewer", experiment.RoleViewer)
	var r analysis.PlanResult
	ts.mustAs(viewer, http.StatusOK, "POST", "/v1/analyses/power", map[string]any{"sd": 2, "delta": 0.5, "daily_units": 1000, "traffic": 0.1}, &r)
	if r.Solve != "sample_size" || math.Abs(r.NPerArm-252.12750122682306) > 1e-5*252 || r.NPerArmCeil != 253 || r.NTotal != 506 || r.Days == nil || *r.Days != 6 {
		t.Errorf("sample size: %+v; want 252.1275 (statsmodels) → 253 per arm, 506, 6 days", r)
	}
	ts.mustAs(viewer, http.StatusOK, "POST", "/v1/analyses/power", map[string]any{"sd": 2, "n_per_arm": 200}, &r)
	if r.Solve != "mde" || math.Abs(r.Delta-0.5616704464334009) > 1e-5 {
		t.Errorf("mde: %+v; want 0.56167 (statsmodels)", r)
	}
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"delta": 1}, "sd"},
		{map[string]any{"sd": 1}, "delta"},
		{map[string]any{"sd": 1, "delta": 1, "alpha": 1.5}, "alpha"},
		{map[string]any{"sd": 1, "delta": 1, "sd2": 1}, "sd2"},
		{map[string]any{"sd": "x", "delta": 1}, "sd"},
	} {
		status, body := ts.do("POST", "/v1/analyses/power", viewer, c.body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"`+c.field+`: `) && !strings.Contains(string(body), c.field+": ") {
			t.Errorf("%v: %d %s; want 400 naming %s", c.body, status, body, c.field)
		}
	}
	ingest := ts.key("ingest", experiment.RoleIngest)
	if status, _ := ts.do("POST", "/v1/analyses/power", ingest, map[string]any{"sd": 1, "delta": 1}); status != http.StatusForbidden {
		t.Errorf("ingest key: %d, want 403", status)
	}
}

// TestResultsProgress: an experiment whose plan declares a 2% MDE on revenue
// gets, in its exact results, the planned sample per arm and when the slower
// arm reaches it. Control revenue is 8 + k mod 5 for k = 0…99 (mean 10,
// sample variance 200/99), so the plan sizes for δ = 0.2:
//
//	TTestIndPower().solve_power(effect_size=0.2/math.sqrt(200/99), alpha=0.05, power=0.8, ratio=1)  # 793.7756987075322 (statsmodels 0.13)
//
// i.e. 794 per arm. After 4 days with 100 control and 60 treatment units the
// treatment arm gains 15 a day and needs (794 − 60)/15 = 48.93 more days.
func TestResultsProgress(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	sopt.Now = func() time.Time { return now }
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "lift.duckdb"), sopt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.EnsureAdminKey(ctx, testAdminKey); err != nil {
		t.Fatal(err)
	}
	opt := DefaultOptions()
	opt.Store, opt.Logger, opt.Now = db, sopt.Logger, sopt.Now
	srv, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	ts := &tserver{t: t, db: db, srv: srv, http: hs, admin: testAdminKey}
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "metrics": []any{map[string]any{"name": "revenue", "primary": true}},
		"variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"analysis": map[string]any{"primary_metric": "revenue", "mde": 0.02},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	var xs, evs []map[string]any
	for k := range 160 {
		unit, arm, v := fmt.Sprintf("u%03d", k), "control", float64(8+k%5)
		if k >= 100 {
			arm, v = "treatment", 11
		}
		xs = append(xs, map[string]any{"experiment": "checkout", "unit": unit, "variant": arm, "ts": t0.Add(time.Hour)})
		evs = append(evs, map[string]any{"event_id": unit, "unit": unit, "type": "purchase", "ts": t0.Add(2 * time.Hour), "value": v})
	}
	now = t0.Add(3 * time.Hour)
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)
	now = t0.Add(4 * 24 * time.Hour)
	var r experimentResultsAnswer
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &r)
	p := r.Progress
	if p == nil || p.Progress == nil {
		t.Fatalf("progress %+v; want the plan's progress", p)
	}
	left := (794.0 - 60) / 15
	if p.Metric != "revenue" || p.RequiredPerArm != 794 || p.Reached || p.DaysLeft == nil || math.Abs(*p.DaysLeft-left) > 1e-9 ||
		p.Arms["control"].N != 100 || p.Arms["treatment"].UnitsPerDay != 15 || math.Abs(p.MDEAbsolute-0.2) > 1e-12 {
		t.Errorf("progress %+v; want revenue, 794 per arm (statsmodels 793.78), not reached, %.4f days left", p.Progress, left)
	}
	if want := now.Add(time.Duration(left * 24 * float64(time.Hour))).Round(time.Second); p.ExpectedAt == nil || !p.ExpectedAt.Equal(want) {
		t.Errorf("expected at %v, want %v", p.ExpectedAt, want)
	}
	// A plan without an MDE: no progress object.
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "plain", "metrics": []any{"revenue"}, "variants": []map[string]any{{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}},
	}, nil)
	var plain experimentResultsAnswer
	ts.must(http.StatusOK, "GET", "/v1/experiments/plain/results", nil, &plain)
	if plain.Progress != nil {
		t.Errorf("progress %+v without an MDE", plain.Progress)
	}
}
