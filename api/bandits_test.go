package api

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
)

// TestBanditThroughAPI runs a bandit through the API: units assigned (and
// exposed), conversions, a recomputation, the same units asked again, and the
// state read back. Arm 2 converts 6 times in 10, the others once in 10.
func TestBanditThroughAPI(t *testing.T) {
	now := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	ts := newTestServerAt(t, now, func(o *Options) { o.Now = func() time.Time { return now } })
	ingest := ts.key("svc", experiment.RoleIngest)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "converted", "event_type": "purchase", "aggregation": "binary"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.1}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "fixed", "variants": twoArms, "metrics": []string{"converted"}}, nil)
	ts.must(http.StatusBadRequest, "POST", "/v1/experiments", map[string]any{
		"key": "bad", "variants": twoArms, "metrics": []string{"converted"},
		"allocation": map[string]any{"kind": "bandit", "reward": "revenue"}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "bandit", "holdout": "global", "metrics": []string{"converted"},
		"variants":   []map[string]any{{"name": "a", "weight": 0.4}, {"name": "b", "weight": 0.3}, {"name": "c", "weight": 0.3}},
		"allocation": map[string]any{"kind": "bandit", "reward": "converted", "min_share": 0.05, "burn_in": 10}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/bandit/start", nil, nil)

	units := make([]string, 600)
	for i := range units {
		units[i] = fmt.Sprintf("user-%d", i)
	}
	var first assignBatchResponse
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/assign", map[string]any{"experiment": "bandit", "units": units, "expose": true}, &first)
	arms := map[string]string{}
	var evs []map[string]any
	inHoldout := 0
	for i, a := range first.Assignments {
		if !a.InExperiment {
			if a.Holdout != nil && a.Holdout.InHoldout {
				inHoldout++
			}
			continue
		}
		arms[a.Unit] = *a.Variant
		rate := 1
		if *a.Variant == "c" {
			rate = 6
		}
		if i%10 < rate {
			evs = append(evs, map[string]any{"event_id": a.Unit, "unit": a.Unit, "type": "purchase", "ts": "2026-03-01T08:00:00Z", "value": 1})
		}
	}
	if inHoldout == 0 {
		t.Fatal("no unit fell in the holdout: the test shows nothing about it")
	}
	var acc eventsAccepted
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, &acc)
	t.Logf("events %d: %+v", len(evs), acc)

	var v1 experiment.BanditVersion
	ts.must(http.StatusOK, "POST", "/v1/experiments/bandit/bandit/recompute", nil, &v1)
	if v1.Version != 1 || v1.BurnIn || !(v1.Weights[2] > v1.Weights[0] && v1.Weights[2] > v1.Weights[1]) || v1.Weights[0] < 0.05 {
		t.Fatalf("version 1 = %+v: want arm c ahead and every arm at the 0.05 floor or above", v1)
	}

	// Asked again under the new weights, every unit keeps its arm; new units
	// enter at version 1.
	more := append(append([]string(nil), units...), "new-1", "new-2", "new-3", "new-4")
	var again assignBatchResponse
	ts.mustAs(ingest, http.StatusOK, "GET", "/v1/assign?experiment=bandit&unit=user-1", nil, nil)
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/assign", map[string]any{"experiment": "bandit", "units": more}, &again)
	for _, a := range again.Assignments {
		if want, ok := arms[a.Unit]; ok && (a.Variant == nil || *a.Variant != want) {
			t.Fatalf("unit %s moved from %s to %v after the weights changed", a.Unit, want, a.Variant)
		}
	}
	var single experiment.Assignment
	ts.mustAs(ingest, http.StatusOK, "GET", "/v1/assign?experiment=bandit&unit=user-1", nil, &single)
	if want, ok := arms["user-1"]; ok && *single.Variant != want {
		t.Fatalf("GET: user-1 moved from %s to %s", want, *single.Variant)
	}

	var st jobs.BanditState
	ts.must(http.StatusOK, "GET", "/v1/experiments/bandit/bandit", nil, &st)
	if len(st.Versions) != 2 || len(st.Effects) != 2 || st.Effects[1].Variant != "c" {
		t.Fatalf("state: %d versions, effects %+v", len(st.Versions), st.Effects)
	}
	var n float64
	for _, a := range st.Cohorts[0].Arms {
		n += a.N
	}
	if int(n) != len(arms) {
		t.Errorf("cohort 0 holds %v units, want the %d exposed in the experiment (holdout units never enter)", n, len(arms))
	}
	if e := st.Effects[1]; !(e.Estimate > 0.3 && e.Lower > 0) || st.Regret <= 0 {
		t.Errorf("arm c: %+v, regret %v: want a clear positive effect and some regret", e, st.Regret)
	}
	ts.must(http.StatusBadRequest, "GET", "/v1/experiments/fixed/bandit", nil, nil)
	ts.must(http.StatusNotFound, "GET", "/v1/experiments/nope/bandit", nil, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/bandit/stop", nil, nil)
	ts.must(http.StatusConflict, "POST", "/v1/experiments/bandit/bandit/recompute", nil, nil)
}
