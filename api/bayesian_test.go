package api

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/results"
)

// TestBayesianEngine: an experiment whose analysis plan says engine "bayesian"
// gets GrowthBook's Bayesian view on every comparison of its results, the
// posterior of the same estimate and standard error the frequentist result
// shows (checked against gbstats' vectors in analysis.TestBayesianGBStats);
// a frequentist one does not; a bad engine or prior is 400 naming the field.
func TestBayesianEngine(t *testing.T) {
	ts := newTestServerAt(t, time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC))
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum"}, nil)
	// The same events as a metric that should go down: gbstats' inverse flip.
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "cost", "event_type": "purchase", "aggregation": "sum", "higher_is_better": false}, nil)
	arms := []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}
	for _, e := range []struct {
		key  string
		plan map[string]any
	}{
		{"bayes", map[string]any{"engine": "bayesian", "prior_mean": 0.1, "prior_stddev": 0.2, "prior_proper": true}},
		{"freq", map[string]any{}},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": e.key, "metrics": []string{"revenue", "cost"}, "variants": arms, "analysis": e.plan}, nil)
		ts.must(http.StatusOK, "POST", "/v1/experiments/"+e.key+"/start", nil, nil)
	}
	start := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var xs, evs []map[string]any
	for u := range 300 {
		unit := fmt.Sprintf("u%d", u)
		arm := []string{"control", "treatment"}[u%2]
		for _, key := range []string{"bayes", "freq"} {
			xs = append(xs, map[string]any{"experiment": key, "unit": unit, "variant": arm, "ts": start})
		}
		evs = append(evs, map[string]any{"event_id": unit, "unit": unit, "type": "purchase", "ts": start.Add(time.Hour), "value": float64(u%7) + 1 + float64(u%2)})
	}
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)

	var r results.Results
	ts.must(http.StatusOK, "GET", "/v1/experiments/bayes/results", nil, &r)
	c := r.Metrics[0].Comparisons[0]
	if c.Bayesian == nil {
		t.Fatalf("no Bayesian view: %+v", c)
	}
	prior := *analysis.PriorOf(0.1, 0.2, true) // variance 0.2²
	want := analysis.Posterior(c.Relative.Estimate, c.Relative.SE, prior, 0.05)
	if b := c.Bayesian.Relative; math.Abs(b.Expected-want.Expected) > 1e-12 || math.Abs(b.ChanceToWin-want.ChanceToWin) > 1e-12 || b.ChanceToWin < 0.99 {
		t.Errorf("relative posterior %+v, want %+v (a clear win)", b, want)
	}
	if c.Bayesian.Prior != prior || c.Bayesian.Inverse {
		t.Errorf("prior %+v, want %+v; inverse %v", c.Bayesian.Prior, prior, c.Bayesian.Inverse)
	}
	ci := r.Metrics[1].Comparisons[0].Bayesian
	if r.Metrics[1].Name != "cost" || ci == nil || !ci.Inverse || math.Abs(ci.Relative.ChanceToWin-(1-want.ChanceToWin)) > 1e-12 ||
		ci.Relative.RiskControl != want.RiskTreatment || ci.Relative.RiskTreatment != want.RiskControl {
		t.Errorf("lower-is-better metric %s: %+v, want chance to win %v and the risks swapped", r.Metrics[1].Name, ci, 1-want.ChanceToWin)
	}
	var fr results.Results
	ts.must(http.StatusOK, "GET", "/v1/experiments/freq/results", nil, &fr)
	if b := fr.Metrics[0].Comparisons[0].Bayesian; b != nil {
		t.Errorf("frequentist experiment has a Bayesian view %+v", b)
	}
	for _, c := range []struct {
		plan  map[string]any
		field string
	}{
		{map[string]any{"engine": "bootstrap"}, "analysis.engine"},
		{map[string]any{"engine": "bayesian", "prior_stddev": -1}, "analysis.prior_stddev"},
	} {
		st, b := ts.do("POST", "/v1/experiments", ts.admin, map[string]any{"key": "bad", "variants": arms, "analysis": c.plan})
		if st != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, b).Message, c.field+":") {
			t.Errorf("plan %v: %d %s; want 400 naming %s", c.plan, st, b, c.field)
		}
	}
}
