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

// setupPrivate registers bounded metrics and a running experiment with 400 units per
// variant: control units buy once for 10, treatment units for 12.
func setupPrivate(t testing.TB, ts *tserver) {
	t.Helper()
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum",
		"bounds": map[string]float64{"lower": 0, "upper": 50}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "converted", "event_type": "purchase", "aggregation": "binary"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "visits", "event_type": "visit", "aggregation": "count"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"metrics": []map[string]any{{"name": "revenue", "primary": true}, {"name": "converted"}, {"name": "visits"}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for i := range 800 {
		v, price := "control", 10.0
		if i%2 == 1 {
			v, price = "treatment", 12
		}
		u := fmt.Sprintf("u%d", i)
		xs = append(xs, experiment.Exposure{Experiment: "checkout", Unit: u, Variant: v, TS: t0})
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

func TestPrivateResults(t *testing.T) {
	clock := newTestClock()
	ts := newTestServer(t, withClock(clock))
	setupPrivate(t, ts)
	viewer := ts.key("exec", experiment.RoleViewer)
	status, b := ts.do("GET", "/v1/experiments/checkout/results/private", viewer, nil)
	if e := errorOf(t, b); status != 404 || !strings.Contains(e.Message, "no privacy budget") {
		t.Fatalf("without a budget: %d %+v", status, e)
	}
	if status, _ := ts.do("PUT", "/v1/experiments/checkout/privacy", viewer, map[string]any{"epsilon": 1, "release_epsilon": 0.4}); status != 403 {
		t.Fatalf("viewer sets the budget: %d, want 403", status)
	}
	status, b = ts.do("PUT", "/v1/experiments/checkout/privacy", ts.admin, map[string]any{"epsilon": 1, "release_epsilon": 2})
	if e := errorOf(t, b); status != 400 || !strings.Contains(e.Message, "release_epsilon") {
		t.Fatalf("bad budget: %d %+v", status, e)
	}
	var acct experiment.PrivacyAccount
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "delta": 0, "release_epsilon": 0.4}, &acct)
	if acct.Budget.ReleaseEpsilon != 0.4 || acct.EpsilonSpent != 0 {
		t.Fatalf("account %+v", acct)
	}

	var r PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results/private", nil, &r)
	if math.Abs(r.Private.EpsilonSpent-0.4) > 1e-12 || math.Abs(r.Private.EpsilonLeft-0.6) > 1e-12 ||
		!r.Private.PeriodStart.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) || !r.Private.NextReleaseAt.Equal(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("private = %+v, want 0.4 spent, 0.6 left, the release of 2 March (UTC)", r.Private)
	}
	if _, ok := r.Omitted["visits"]; !ok || len(r.Metrics) != 2 {
		t.Errorf("metrics %d, omitted %v: want revenue and converted released, visits (no bounds) omitted", len(r.Metrics), r.Omitted)
	}
	// The noise is Laplace with ε/5 per query (counts + 2 metrics × 2 sums):
	// count sd = √2·5/0.4 ≈ 17.7 units; the revenue mean's noise sd ≈ √2·25·12.5/400 ≈ 1.1.
	// Six standard deviations make a false failure negligible.
	for v, n := range r.Exposures {
		if math.Abs(float64(n)-400) > 6*17.7 {
			t.Errorf("noised units of %s: %d, want 400 ± 106", v, n)
		}
	}
	rev := r.Metrics[0]
	if rev.Name != "revenue" || math.Abs(rev.Variants[0].Mean-10) > 6*1.1 || math.Abs(rev.Variants[1].Mean-12) > 6*1.1 || rev.Comparisons[0].Absolute.SE < 1 {
		t.Errorf("revenue release %+v", rev)
	}

	// The same day: served again, nothing spent.
	var again PrivateResults
	clock.Advance(14 * time.Hour)
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results/private", nil, &again)
	if again.Private != r.Private || again.Metrics[0].Variants[0].Mean != rev.Variants[0].Mean {
		t.Errorf("the same day: %+v, want the same release", again.Private)
	}
	// The next day: a new release spends 0.4 more; the day after, it would need 1.2 > 1.
	ctx := context.Background()
	add := func(id string) {
		if _, _, err := ts.db.IngestEvents(ctx, []experiment.Event{{EventID: id, Unit: "u0", Type: "purchase", TS: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Value: 5}}); err != nil {
			t.Fatal(err)
		}
	}
	add("x1")
	clock.Advance(time.Hour)
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results/private", nil, &r)
	if math.Abs(r.Private.EpsilonSpent-0.8) > 1e-12 {
		t.Errorf("second release: spent %g, want 0.8", r.Private.EpsilonSpent)
	}
	add("x2")
	clock.Advance(24 * time.Hour)
	status, b = ts.do("GET", "/v1/experiments/checkout/results/private", viewer, nil)
	e := errorOf(t, b)
	const want = "privacy budget of experiment checkout exhausted: ε spent 0.8 of 1, this release needs 0.4"
	if status != http.StatusConflict || e.Code != "budget_exhausted" || e.Message != want {
		t.Errorf("over budget: %d %+v, want 409 budget_exhausted %q", status, e, want)
	}
	// Holdouts have budgets of their own.
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.05}, nil)
	ts.must(http.StatusOK, "PUT", "/v1/holdouts/global/privacy", map[string]any{"epsilon": 3, "release_epsilon": 1}, nil)
	var h experiment.PrivacyAccount
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/holdouts/global/privacy", nil, &h)
	if h.Scope != "holdout:global" || h.Budget.Epsilon != 3 || h.EpsilonSpent != 0 {
		t.Errorf("holdout account %+v", h)
	}
	if status, _ := ts.do("PUT", "/v1/holdouts/nope/privacy", ts.admin, map[string]any{"epsilon": 3, "release_epsilon": 1}); status != 404 {
		t.Errorf("budget of an unknown holdout: %d, want 404", status)
	}
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if len(acct.Entries) != 2 || acct.Entries[0].Who != "exec" || math.Abs(acct.EpsilonSpent-0.8) > 1e-12 {
		t.Errorf("ledger after a refusal: %+v", acct)
	}
}

func TestPrivateHoldoutResults(t *testing.T) {
	ts := newTestServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "converted", "event_type": "purchase", "aggregation": "binary"}, nil)
	setupHoldout(t, ts)
	viewer := ts.key("exec", experiment.RoleViewer)
	ts.must(http.StatusOK, "PUT", "/v1/holdouts/global/privacy", map[string]any{"epsilon": 2, "release_epsilon": 1}, nil)
	var r PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/holdouts/global/results/private", nil, &r)
	// 200 holdout and 1800 exposed units; noise sd of a count √2·3/1 ≈ 4.2 (ε/3 per query).
	if r.Holdout != "global" || r.Version != 1 || math.Abs(float64(r.Exposures["holdout"])-200) > 6*4.2 || math.Abs(float64(r.Exposures["exposed"])-1800) > 6*4.2 {
		t.Errorf("holdout release: %+v", r)
	}
	if r.Private.EpsilonSpent != 1 || len(r.Metrics) != 1 || r.Metrics[0].Control != "holdout" {
		t.Errorf("holdout release private %+v, metrics %+v", r.Private, r.Metrics)
	}
	if status, _ := ts.do("GET", "/v1/holdouts/global/results/private?version=2", viewer, nil); status != 404 {
		t.Errorf("unknown version: %d, want 404", status)
	}
}

// TestResultsRouteIsPrivateForViewers checks the exact results routes: a viewer
// key (or ?private=true) is answered with the DP release, spending from the
// budget, and cannot reach exact snapshots or daily series.
func TestResultsRouteIsPrivateForViewers(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.4}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	analyst := ts.key("ana", experiment.RoleAnalyst)

	var exact map[string]json.RawMessage
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &exact)
	if _, ok := exact["private"]; ok || exact["snapshot"] == nil {
		t.Fatalf("analyst: want exact results with a snapshot, got keys of %v", exact)
	}
	var r PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &r)
	if math.Abs(r.Private.EpsilonSpent-0.4) > 1e-12 || math.Abs(r.Private.EpsilonLeft-0.6) > 1e-12 || len(r.Metrics) != 2 {
		t.Errorf("viewer: private %+v with %d metrics, want the release of 0.4 of 1", r.Private, len(r.Metrics))
	}
	// The analyst asking for the private numbers gets the same release (unchanged data).
	var again PrivateResults
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/checkout/results?private=true", nil, &again)
	if again.Private != r.Private || again.Metrics[0].Variants[0].Mean != r.Metrics[0].Variants[0].Mean {
		t.Errorf("analyst ?private=true: %+v, want the viewer's release of the period", again.Private)
	}
	for _, c := range []struct {
		key, path string
		status    int
		field     string
	}{
		{viewer, "/v1/experiments/checkout/results?snapshot=1", http.StatusForbidden, "snapshot"},
		{analyst, "/v1/experiments/checkout/results?private=maybe", http.StatusBadRequest, "private"},
		{viewer, "/v1/experiments/checkout/results/daily?metric=revenue", http.StatusForbidden, ""},
		{viewer, "/v1/experiments/checkout/results/snapshots", http.StatusForbidden, ""},
		{viewer, "/v1/holdouts/global/results?metrics=revenue", http.StatusForbidden, "metrics"},
	} {
		status, b := ts.do("GET", c.path, c.key, nil)
		e := errorOf(t, b)
		if status != c.status || !strings.HasPrefix(e.Message, c.field) {
			t.Errorf("GET %s: %d %+v, want %d on field %q", c.path, status, e, c.status, c.field)
		}
	}
}

// setupHoldout registers holdout "global" (10%) and a running experiment "promo"
// naming it, with 2,000 exposed units (every tenth in the holdout, version 1) of
// which every third converted (metric "converted" must exist).
func setupHoldout(t *testing.T, ts *tserver) {
	t.Helper()
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.1}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "promo", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"holdout": "global", "metrics": []map[string]any{{"name": "converted"}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/promo/start", nil, nil)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for i := range 2000 {
		u := fmt.Sprintf("u%d", i)
		x := experiment.Exposure{Experiment: "promo", Unit: u, Variant: []string{"control", "treatment"}[i%2], TS: t0, HoldoutVersion: 1}
		if i%10 == 0 {
			x.Variant, x.InHoldout = "", true
		}
		xs = append(xs, x)
		if i%3 == 0 {
			evs = append(evs, experiment.Event{EventID: "e" + u, Unit: u, Type: "purchase", TS: t0.Add(time.Hour), Value: 1})
		}
	}
	ctx := context.Background()
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}
