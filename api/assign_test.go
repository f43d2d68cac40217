package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
)

// planFromStore compiles the experiment as stored, independently of the API's cache.
func planFromStore(t *testing.T, ts *tserver, key string) *assign.Plan {
	t.Helper()
	ctx := context.Background()
	e, err := ts.db.GetExperiment(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var h *experiment.Holdout
	if e.Holdout != "" {
		if h, err = ts.db.GetHoldout(ctx, e.Holdout); err != nil {
			t.Fatal(err)
		}
	}
	p, err := assign.Compile(e, h)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sameAssignment(t *testing.T, got, want experiment.Assignment) {
	t.Helper()
	want.VariantIndex, got.VariantIndex = 0, 0 // not part of the JSON answer
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Fatalf("assignment\n got %s\nwant %s", gb, wb)
	}
}

func TestAssign(t *testing.T) {
	ts := newTestServer(t)
	ingest := ts.key("checkout-service", experiment.RoleIngest)
	ts.must(http.StatusCreated, "POST", "/v1/layers", map[string]any{"name": "site"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.05}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": twoArms, "layer": "site",
		"layer_range": map[string]float64{"start": 0, "end": 0.8}, "holdout": "global"}, nil)

	// A draft is not assigned.
	ts.mustAs(ingest, http.StatusConflict, "GET", "/v1/assign?experiment=checkout&unit=u1", nil, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	plan := planFromStore(t, ts, "checkout")

	// GET answers what the assign package computes, for every kind of unit.
	const n = 2000
	units := make([]string, n)
	kinds := map[string]int{}
	for i := range units {
		units[i] = fmt.Sprintf("user-%d", i)
	}
	units[7] = "josé & <用户>" // escaping in the hand-written JSON
	for _, u := range units[:300] {
		var got experiment.Assignment
		ts.mustAs(ingest, http.StatusOK, "GET", "/v1/assign?experiment=checkout&unit="+url.QueryEscape(u), nil, &got)
		sameAssignment(t, got, plan.Assign(u))
	}

	// The batch answers the same, in order, and logs exposures for units in the
	// experiment and in the holdout only.
	var batch assignBatchResponse
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/assign", map[string]any{"experiment": "checkout", "units": units, "expose": true}, &batch)
	if batch.Experiment != "checkout" || len(batch.Assignments) != n {
		t.Fatalf("batch: experiment %q, %d answers", batch.Experiment, len(batch.Assignments))
	}
	want := map[string]int64{}
	for i, u := range units {
		a := plan.Assign(u)
		sameAssignment(t, batch.Assignments[i], a)
		switch {
		case a.InExperiment:
			want[*a.Variant]++
			kinds["in"]++
		case a.Holdout.InHoldout:
			want[""]++
			kinds["holdout"]++
		default:
			kinds["outside the layer slice"]++
		}
	}
	// All three kinds must occur for the test to mean anything (5% holdout, 20% of the layer unused).
	if len(kinds) != 3 {
		t.Fatalf("unit kinds %v: want units in, held out and outside", kinds)
	}
	if got := int64(batch.Exposed); got != want["control"]+want["treatment"]+want[""] {
		t.Errorf("exposed %d, want %d", got, want["control"]+want["treatment"]+want[""])
	}
	counts, err := ts.db.ExposureCounts(context.Background(), "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("stored exposure counts %v, want %v", counts, want)
	}
	// Holdout exposures carry in_holdout and the holdout version.
	var held, v1 int
	if err := ts.db.SQL().QueryRow(`SELECT count(*), count(*) FILTER (WHERE holdout_version = 1) FROM exposures WHERE in_holdout AND variant IS NULL`).Scan(&held, &v1); err != nil {
		t.Fatal(err)
	}
	if held != int(want[""]) || v1 != held {
		t.Errorf("holdout rows %d (version 1: %d), want %d", held, v1, want[""])
	}

	// A rotation invalidates the cached plan at once: answers use version 2.
	ts.must(http.StatusOK, "POST", "/v1/holdouts/global/rotate", nil, nil)
	plan2 := planFromStore(t, ts, "checkout")
	var got experiment.Assignment
	ts.mustAs(ingest, http.StatusOK, "GET", "/v1/assign?experiment=checkout&unit=user-1", nil, &got)
	if got.Holdout == nil || got.Holdout.Version != 2 {
		t.Fatalf("after rotation: holdout %+v, want version 2", got.Holdout)
	}
	sameAssignment(t, got, plan2.Assign("user-1"))

	// Stopped: everyone gets control (variant null, not in the experiment), nothing is logged.
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/stop", nil, nil)
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/assign", map[string]any{"experiment": "checkout", "units": units[:50], "expose": true}, &batch)
	for _, a := range batch.Assignments {
		if a.Variant != nil || a.InExperiment {
			t.Fatalf("stopped experiment answered %+v", a)
		}
	}
	if batch.Exposed != 0 {
		t.Errorf("stopped experiment logged %d exposures", batch.Exposed)
	}
}

// TestPlanTTL checks that a change made behind the server's back (straight in
// the store, as a scheduled job would) is seen once the plan expires.
func TestPlanTTL(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.PlanTTL = 50 * time.Millisecond })
	ts.setupRunning()
	var a experiment.Assignment
	ts.must(http.StatusOK, "GET", "/v1/assign?experiment=checkout&unit=u1", nil, &a)
	if a.Holdout.Version != 1 {
		t.Fatalf("holdout version %d, want 1", a.Holdout.Version)
	}
	if _, err := ts.db.RotateHoldout(context.Background(), "test", "global"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	ts.must(http.StatusOK, "GET", "/v1/assign?experiment=checkout&unit=u1", nil, &a)
	if a.Holdout.Version != 2 {
		t.Fatalf("holdout version %d after the TTL, want 2", a.Holdout.Version)
	}
}

func TestExposures(t *testing.T) {
	ts0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ts := newTestServerAt(t, ts0.Add(-time.Hour)) // the experiment starts an hour before its exposures
	ingest := ts.key("sdk-relay", experiment.RoleIngest)
	ts.setupRunning()
	var xs []map[string]any
	want := map[string]int64{}
	for i := 0; i < 500; i++ {
		x := map[string]any{"experiment": "checkout", "unit": fmt.Sprintf("u%d", i), "ts": ts0.Add(time.Duration(i) * time.Second)}
		switch i % 5 {
		case 0:
			x["in_holdout"] = true
			want[""]++
		case 1, 2:
			x["variant"] = "control"
			want["control"]++
		default:
			x["variant"] = "treatment"
			want["treatment"]++
		}
		xs = append(xs, x)
	}
	var acc exposureAccepted
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, &acc)
	if acc.Accepted != 500 {
		t.Fatalf("accepted %d, want 500", acc.Accepted)
	}
	counts, err := ts.db.ExposureCounts(context.Background(), "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	var first time.Time
	var hv int
	var source string
	if err := ts.db.SQL().QueryRow(`SELECT ts, holdout_version, source FROM exposures WHERE unit = 'u0'`).Scan(&first, &hv, &source); err != nil {
		t.Fatal(err)
	}
	if !first.Equal(ts0) || hv != 1 || source != "client" {
		t.Errorf("u0 stored with ts %v, holdout version %d, source %q; want %v, 1 (current), client", first, hv, source, ts0)
	}
	// An analyst key may not write exposures.
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	ts.mustAs(analyst, http.StatusForbidden, "POST", "/v1/exposures", map[string]any{"exposures": xs[:1]}, nil)
}
