package api

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/results"
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

// TestBanditHoldoutIncrementality: the permanent holdout measures the whole
// bandit as it was served. Two periods of 1,000 units each are assigned (and
// exposed) through /v1/assign; between them the weights move towards arm c.
// Holdout units and arms a and b convert 1 time in 10, arm c 6 in 10, so the
// exposed mean is the mix of the arms under the weights actually served, and
// the holdout comparison must equal that mix against the holdout: the test
// recounts both means from the assignments, and the interval is the
// unpooled (Welch) one of scipy for the counts it finds.
func TestBanditHoldoutIncrementality(t *testing.T) {
	now := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	ts := newTestServerAt(t, now, func(o *Options) { o.Now = func() time.Time { return now } })
	ingest := ts.key("svc", experiment.RoleIngest)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "converted", "event_type": "purchase", "aggregation": "binary"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.2}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "bandit", "holdout": "global", "metrics": []string{"converted"},
		"variants":   []map[string]any{{"name": "a", "weight": 0.34}, {"name": "b", "weight": 0.33}, {"name": "c", "weight": 0.33}},
		"allocation": map[string]any{"kind": "bandit", "reward": "converted", "min_share": 0.05, "burn_in": 10}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/bandit/start", nil, nil)

	type tally struct{ n, conv int }
	var held, exposed tally
	perPeriod := make([]map[string]int, 2) // units per arm in each period
	for period := range 2 {
		units := make([]string, 1000)
		for i := range units {
			units[i] = fmt.Sprintf("p%d-user-%d", period, i)
		}
		var r assignBatchResponse
		ts.mustAs(ingest, http.StatusOK, "POST", "/v1/assign", map[string]any{"experiment": "bandit", "units": units, "expose": true}, &r)
		perPeriod[period] = map[string]int{}
		var evs []map[string]any
		for i, a := range r.Assignments {
			rate, tl := 1, &exposed
			switch {
			case a.Holdout != nil && a.Holdout.InHoldout:
				tl = &held
			case !a.InExperiment:
				t.Fatalf("unit %s is neither in the holdout nor in the experiment (coverage is 1)", a.Unit)
			case *a.Variant == "c":
				rate = 6
				fallthrough
			default:
				perPeriod[period][*a.Variant]++
			}
			tl.n++
			if i%10 < rate {
				tl.conv++
				evs = append(evs, map[string]any{"event_id": a.Unit, "unit": a.Unit, "type": "purchase", "ts": "2026-03-01T08:00:00Z", "value": 1})
			}
		}
		ts.mustAs(ingest, http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)
		if period == 0 {
			ts.must(http.StatusOK, "POST", "/v1/experiments/bandit/bandit/recompute", nil, nil)
		}
	}
	if share := func(p int) float64 {
		return float64(perPeriod[p]["c"]) / float64(perPeriod[p]["a"]+perPeriod[p]["b"]+perPeriod[p]["c"])
	}; !(share(1) > share(0)+0.2) {
		t.Fatalf("arm c's share went from %.2f to %.2f: the bandit did not move, the test shows nothing", share(0), share(1))
	}
	t.Logf("holdout %+v, exposed %+v, arms per period %v", held, exposed, perPeriod)

	var h results.Results
	ts.must(http.StatusOK, "GET", "/v1/holdouts/global/results?metrics=converted", nil, &h)
	if h.Exposures["holdout"] != int64(held.n) || h.Exposures["exposed"] != int64(exposed.n) || len(h.Metrics) != 1 || h.Metrics[0].Error != "" {
		t.Fatalf("holdout results: exposures %v, metrics %+v; want holdout %d, exposed %d", h.Exposures, h.Metrics, held.n, exposed.n)
	}
	m := h.Metrics[0]
	means := map[string]float64{}
	for _, v := range m.Variants {
		means[v.Name] = v.Mean
	}
	wantHeld, wantExposed := float64(held.conv)/float64(held.n), float64(exposed.conv)/float64(exposed.n)
	c := m.Comparisons[0].Absolute
	if math.Abs(means["holdout"]-wantHeld) > 1e-12 || math.Abs(means["exposed"]-wantExposed) > 1e-12 || math.Abs(c.Estimate-(wantExposed-wantHeld)) > 1e-12 {
		t.Errorf("means %v, effect %v; want holdout %v, exposed %v (the bandit's mix of arms as served), effect %v", means, c.Estimate, wantHeld, wantExposed, wantExposed-wantHeld)
	}
	// The hash placed 381 units in the holdout (33 converted) and 1,619 in the
	// bandit (649 converted); the Welch interval for those counts, with a
	// binary metric's variance p(1 − p), from scipy 1.10:
	//   from scipy import stats; import numpy as np
	//   d = 649/1619 - 33/381; v1 = (649/1619)*(1-649/1619)/1619; v2 = (33/381)*(1-33/381)/381
	//   df = (v1+v2)**2/(v1**2/1618 + v2**2/380); t = stats.t.ppf(0.975, df)
	//   d - t*np.sqrt(v1+v2), d + t*np.sqrt(v1+v2)  # (0.27722564700448427, 0.3512754691700767)
	if held != (tally{381, 33}) || exposed != (tally{1619, 649}) {
		t.Fatalf("counts holdout %+v, exposed %+v: the assignment hash changed, recompute the interval below", held, exposed)
	}
	lo, hi := 0.27722564700448427, 0.3512754691700767
	if math.Abs(c.CILow-lo) > 1e-9 || math.Abs(c.CIHigh-hi) > 1e-9 {
		t.Errorf("interval [%v, %v], want scipy's [%v, %v]", c.CILow, c.CIHigh, lo, hi)
	}
}
