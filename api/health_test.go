package api

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// healthFixture registers, at 07:00 on 2026-03-01, experiment "checkout"
// (layer site, holdout global at 10%) and "banner" (layer promo), both on
// metric revenue (a sum with a 7-day CUPED covariate), and logs 400 units over
// four UTC days, unit u at 08:00 + 10u minutes: in checkout u%10 == 0 is held
// out, other even units control, odd treatment, and units 0 and 10 are also
// logged in treatment a minute later (contamination); in banner (u/2)%2 says on.
// Units with u%3 ≠ 0 spend u%7+1 a day before the start and
// (u%7+1) + u%2 + 0.5·((u/2)%2) + ((u·u)%5)/4 an hour after their exposure.
// The expected numbers come from Python (scipy 1.10, statsmodels 0.13) over
// the same units, rebuilt as
//
//	day = lambda u: (480 + 10*u) // 1440       # UTC day of the exposure
//	arm = {u: 'control' if u % 2 == 0 else 'treatment' for u in range(400) if u % 10}
//	arm[0] = arm[10] = 'treatment'              # the contaminating exposures
//	pre = lambda u: (u%7+1) if u%3 else 0
//	post = lambda u: ((u%7+1) + u%2 + 0.5*((u//2)%2) + ((u*u)%5)/4) if u%3 else 0
//
// and each number is quoted with the call that gave it.
func healthFixture(t *testing.T) *tserver {
	t.Helper()
	ts := newTestServerAt(t, time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC))
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "covariate": map[string]any{"days": 7}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/layers", map[string]any{"name": "site"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/layers", map[string]any{"name": "promo"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.1}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "holdout": "global", "metrics": []any{"revenue"}, "layer": "site", "layer_range": map[string]float64{"start": 0, "end": 1},
		"variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
	}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "banner", "metrics": []any{"revenue"}, "layer": "promo", "layer_range": map[string]float64{"start": 0, "end": 1},
		"variants": []map[string]any{{"name": "off", "weight": 0.5}, {"name": "on", "weight": 0.5}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/banner/start", nil, nil)
	start := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var xs, evs []map[string]any
	for u := range 400 {
		unit := fmt.Sprintf("u%d", u)
		at := start.Add(time.Duration(u) * 10 * time.Minute)
		x := map[string]any{"experiment": "checkout", "unit": unit, "ts": at}
		switch {
		case u%10 == 0:
			x["in_holdout"] = true
		case u%2 == 0:
			x["variant"] = "control"
		default:
			x["variant"] = "treatment"
		}
		xs = append(xs, x)
		if u == 0 || u == 10 {
			xs = append(xs, map[string]any{"experiment": "checkout", "unit": unit, "ts": at.Add(time.Minute), "variant": "treatment"})
		}
		b := "off"
		if (u/2)%2 == 1 {
			b = "on"
		}
		xs = append(xs, map[string]any{"experiment": "banner", "unit": unit, "ts": at, "variant": b})
		if u%3 != 0 {
			pre := float64(u%7 + 1)
			post := pre + float64(u%2) + 0.5*float64((u/2)%2) + float64((u*u)%5)/4
			evs = append(evs, map[string]any{"event_id": unit + "-pre", "unit": unit, "type": "purchase", "ts": start.Add(-24 * time.Hour), "value": pre})
			evs = append(evs, map[string]any{"event_id": unit + "-post", "unit": unit, "type": "purchase", "ts": at.Add(time.Hour), "value": post})
		}
	}
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)
	return ts
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(1, math.Abs(want))
}

func TestExperimentHealth(t *testing.T) {
	ts := healthFixture(t)
	var h results.Health
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/health", nil, &h)
	// Cumulative units at the end of each day (Python: day(u) = (480 + 10u) // 1440).
	wantLooks := [][2]int64{{38, 50}, {96, 122}, {153, 194}, {160, 202}}
	if len(h.Looks) != len(wantLooks) {
		t.Fatalf("looks %+v", h.Looks)
	}
	for i, w := range wantLooks {
		if got := [2]int64{h.Looks[i].Units["control"], h.Looks[i].Units["treatment"]}; got != w {
			t.Errorf("look %d: %v, want %v", i, got, w)
		}
	}
	// scipy: chisquare((160, 202)).pvalue = 0.027281171477618125: the one-shot
	// chi-square would flag at 0.05; the sequential p-value over the four
	// looks, min(1, min exp(-lbf(look, [.5,.5], [500,500]))) at the default
	// concentration 1,000 with scipy's gammaln (analysis/health_test.go), is
	// 0.6104174977840039, ln BF at the last look 0.4936121333283836.
	if !near(h.SRM.PValue, 0.027281171477618125, 1e-9) || h.SRM.Mismatch {
		t.Errorf("srm %+v", h.SRM)
	}
	s := h.SequentialSRM
	if !near(s.PValue, 0.6104174977840039, 1e-9) || !near(s.LogBayesFactor, 0.4936121333283836, 1e-9) || s.Looks != 4 || s.Mismatch {
		t.Errorf("sequential srm %+v", s)
	}
	// numpy: pre-period means by arm [2.65, 2.6683168316831685];
	// W = 0.00481981910117285, chi2.sf(W, 1) = 0.9446513958635873.
	if len(h.Imbalance) != 1 || h.Imbalance[0].Imbalance == nil {
		t.Fatalf("imbalance %+v", h.Imbalance)
	}
	im := h.Imbalance[0]
	if im.Metric != "revenue" || len(im.Means) != 2 || !near(im.Means[0].Mean, 2.65, 1e-12) || !near(im.Means[1].Mean, 2.6683168316831685, 1e-12) ||
		im.Means[0].N != 160 || !near(im.Statistic, 0.00481981910117285, 1e-9) || !near(im.PValue, 0.9446513958635873, 1e-9) || im.Imbalanced {
		t.Errorf("imbalance %+v", im)
	}
	if status, _ := ts.do("GET", "/v1/experiments/nope/health", ts.admin, nil); status != http.StatusNotFound {
		t.Errorf("unknown experiment: %d", status)
	}
	viewer := ts.key("exec", experiment.RoleViewer)
	if status, _ := ts.do("GET", "/v1/experiments/checkout/health", viewer, nil); status != http.StatusForbidden {
		t.Errorf("viewer: %d, want 403", status)
	}
}

func TestHoldoutHealth(t *testing.T) {
	ts := healthFixture(t)
	var h results.HoldoutHealth
	ts.must(http.StatusOK, "GET", "/v1/holdouts/global/health", nil, &h)
	// 40 units logged in the holdout, 2 of them also exposed: 38 holdout, 360
	// exposed, 2 contaminated of 40.
	if h.Version != 1 || h.Exposures["holdout"] != 38 || h.Exposures["exposed"] != 360 || h.Contaminated != 2 || !near(h.ContaminationRate, 0.05, 1e-12) || !near(h.Share, 38.0/398, 1e-12) {
		t.Errorf("holdout health %+v", h)
	}
	wantDays := [][2]int64{{8, 86}, {14, 130}, {15, 129}, {1, 15}}
	if len(h.Days) != 4 {
		t.Fatalf("days %+v", h.Days)
	}
	for i, w := range wantDays {
		if got := [2]int64{h.Days[i].Holdout, h.Days[i].Exposed}; got != w {
			t.Errorf("day %d: %v, want %v", i, got, w)
		}
	}
	// scipy: chi2_contingency([[8,86],[14,130],[15,129],[1,15]], correction=False)
	// → 0.4495231256826069, p 0.9298324594072727, df 3. Every look's Bayes
	// factor against 10/90 is below 1, so the sequential p-value is 1 (Python).
	if !near(h.Drift.Statistic, 0.4495231256826069, 1e-9) || !near(h.Drift.PValue, 0.9298324594072727, 1e-9) || h.Drift.DF != 3 || h.Drift.Drift {
		t.Errorf("drift %+v", h.Drift)
	}
	if h.SequentialSRM.PValue != 1 || h.SequentialSRM.Mismatch {
		t.Errorf("sequential srm %+v", h.SequentialSRM)
	}
	// The holdout was created (its cohort drawn) at the server's clock.
	drawn := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	if !h.DrawnAt.Equal(drawn) || !near(h.AgeDays, h.ComputedAt.Sub(drawn).Hours()/24, 1e-12) || h.RotationDue {
		t.Errorf("ageing: drawn %v, age %v days at %v", h.DrawnAt, h.AgeDays, h.ComputedAt)
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/v1/holdouts/global/health?version=2", http.StatusNotFound},
		{"/v1/holdouts/global/health?version=x", http.StatusBadRequest},
		{"/v1/holdouts/nope/health", http.StatusNotFound},
	} {
		if status, b := ts.do("GET", c.path, ts.admin, nil); status != c.status {
			t.Errorf("%s: %d %s, want %d", c.path, status, b, c.status)
		}
	}
}

func TestExperimentOverlaps(t *testing.T) {
	ts := healthFixture(t)
	var o results.Overlaps
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/overlaps", nil, &o)
	if len(o.Overlaps) != 1 || o.Overlaps[0].Experiment != "banner" || o.Overlaps[0].Units != 362 || len(o.Overlaps[0].Interactions) != 1 {
		t.Fatalf("overlaps %+v", o)
	}
	in := o.Overlaps[0].Interactions[0]
	if in.Error != "" || in.InteractionResult == nil {
		t.Fatalf("interaction %+v", in)
	}
	// statsmodels 0.13 on the same 362 units (a: checkout treatment, b: banner
	// on, y: revenue after the checkout exposure): smf.ols('y ~ a * b', df).fit()
	// → params['a:b'] -0.20077351485148692, bse 0.6452592014954773,
	// pvalues 0.75586637785133, df_resid 358.
	if in.Metric != "revenue" || in.Arm != "treatment" || in.Other != "on" || !near(in.Estimate, -0.20077351485148692, 1e-9) ||
		!near(in.SE, 0.6452592014954773, 1e-9) || !near(in.PValue, 0.75586637785133, 1e-9) || in.DF != 358 || in.Interacts {
		t.Errorf("interaction %+v", in.InteractionResult)
	}
	// The other way round: banner's overlap is checkout.
	ts.must(http.StatusOK, "GET", "/v1/experiments/banner/overlaps", nil, &o)
	if len(o.Overlaps) != 1 || o.Overlaps[0].Experiment != "checkout" {
		t.Errorf("banner overlaps %+v", o)
	}
}
