package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
)

// runDigestJob schedules a digest job, runs it by hand and returns its one digest.
func runDigestJob(t *testing.T, ts *tserver, job map[string]any) (*experiment.Digest, *reports.Digest) {
	t.Helper()
	ts.must(http.StatusCreated, "POST", "/v1/jobs", job, nil)
	var run experiment.JobRun
	ts.must(http.StatusOK, "POST", "/v1/jobs/"+job["name"].(string)+"/run", nil, &run)
	if run.Status != experiment.RunSucceeded {
		t.Fatalf("digest run %+v", run)
	}
	var out struct {
		Digests []string `json:"digests"`
	}
	if err := json.Unmarshal(run.Output, &out); err != nil || len(out.Digests) != 1 {
		t.Fatalf("run output %s (%v)", run.Output, err)
	}
	var d experiment.Digest
	ts.must(http.StatusOK, "GET", "/v1/summaries/"+out.Digests[0], nil, &d)
	var rd reports.Digest
	if err := json.Unmarshal(d.JSON, &rd); err != nil {
		t.Fatal(err)
	}
	return &d, &rd
}

// informative fails the test for any interval of the digest that says nothing
// by the rule of docs/jobs.md: one reaching −100% or below, or one that cannot
// tell a halving from a doubling ((1+high)/(1+low) > 4).
func informative(t *testing.T, rd *reports.Digest) {
	t.Helper()
	check := func(what string, iv reports.Interval) {
		if !(iv.Low > -1 && (1+iv.High)/(1+iv.Low) <= 4) {
			t.Errorf("%s: the digest publishes the interval %+.1f%% to %+.1f%%, which says nothing", what, 100*iv.Low, 100*iv.High)
		}
	}
	if rd.Headline != nil {
		check("headline", rd.Headline.Lift)
	}
	for _, g := range rd.Guardrails {
		if g.Lift != nil {
			check("guardrail "+g.Metric, *g.Lift)
		}
	}
	for _, p := range rd.Trend {
		check("trend "+p.Time.String(), p.Interval)
	}
}

// TestHoldoutDigestAfterRotation publishes a holdout digest right after a
// rotation: the new cohort has no units, so the digest reports the previous
// cohort (which has the data) and says why, and never publishes an interval
// that says nothing. A holdout whose only cohort is empty says so.
func TestHoldoutDigestAfterRotation(t *testing.T) {
	ts := newJobServer(t)
	setupPrivate(t, ts)
	setupHoldout(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/holdouts/global/privacy", map[string]any{"epsilon": 4, "release_epsilon": 1}, nil)
	ts.must(http.StatusOK, "POST", "/v1/holdouts/global/rotate", nil, nil)

	d, rd := runDigestJob(t, ts, map[string]any{"name": "long-run", "kind": "digest", "every": "168h", "target": "global", "params": map[string]any{"subject": "holdout"}})
	informative(t, rd)
	if !strings.Contains(d.Title, "cohort v1") || rd.Headline == nil || rd.Headline.Metric != "converted" {
		t.Errorf("digest %q headline %+v, want cohort v1's converted", d.Title, rd.Headline)
	}
	if !strings.Contains(strings.Join(rd.Notes, " "), "Cohort v2") {
		t.Errorf("notes %q do not say why cohort v2 is not reported", rd.Notes)
	}
	if browse := chromium(t); browse != nil {
		viewer := ts.key("exec", experiment.RoleViewer)
		page := htmlText(string(browse("--dump-dom", ts.http.URL+"/summaries/"+d.ID+"?key="+viewer)))
		for _, want := range []string{"cohort v1", "exposed vs holdout", "Units: holdout", "Cohort v2 began"} {
			if !strings.Contains(page, want) {
				t.Errorf("the holdout summary rendered by Chromium lacks %q", want)
			}
		}
		screenshot(t, browse, ts.http.URL+"/summaries/"+d.ID+"?key="+viewer, "holdout-summary.png")
	}
	// setupHoldout: every tenth of 2,000 units held out, every third converted in
	// both arms, so the true lift is 0 (by construction of the data).
	if l := rd.Headline.Lift; !(l.Low <= 0 && 0 <= l.High) {
		t.Errorf("cohort v1's lift %+v does not cover the true 0", l)
	}
	// Both releases are spent from the holdout's budget and the digest says so.
	var acct experiment.PrivacyAccount
	ts.must(http.StatusOK, "GET", "/v1/holdouts/global/privacy", nil, &acct)
	if acct.EpsilonSpent != 2 || rd.Privacy.Epsilon != 2 {
		t.Errorf("ε spent %g, digest says %g; want 2 (a release of each cohort)", acct.EpsilonSpent, rd.Privacy.Epsilon)
	}

	// A holdout whose one cohort has no units yet: no headline, a plain sentence.
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "fresh", "fraction": 0.1}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "late", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"holdout": "fresh", "metrics": []string{"converted"}}, nil)
	ts.must(http.StatusOK, "PUT", "/v1/holdouts/fresh/privacy", map[string]any{"epsilon": 4, "release_epsilon": 1}, nil)
	_, rd = runDigestJob(t, ts, map[string]any{"name": "fresh-run", "kind": "digest", "every": "168h", "target": "fresh", "params": map[string]any{"subject": "holdout"}})
	informative(t, rd)
	if rd.Headline != nil || !strings.Contains(rd.Verdict, "no units yet") {
		t.Errorf("empty cohort: headline %+v, verdict %q; want none and \"no units yet\"", rd.Headline, rd.Verdict)
	}
}

// TestDigestGuardrailRule checks the guardrail rule of docs/jobs.md on three
// guardrails (lower is better) whose truths are far from every boundary, with a
// release of ε = 8 so that the noise is small next to the sampling error:
//   - flat (30% vs 30%, no margin): the interval holds 0, so harm is not ruled
//     out: "unclear", never "holding";
//   - flat with a 50% margin: the interval (about ±21%) rules out a 50% rise: "holding";
//   - up (20% vs 50%, +150%): the interval lies above 0: "breached".
//
// The flat intervals miss 0 only if the noise moves a count sum by about 25 where
// its Laplace scale is about 1.1 (probability under 1e-6).
func TestDigestGuardrailRule(t *testing.T) {
	ts := newJobServer(t)
	for _, m := range []map[string]any{
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "bounds": map[string]float64{"lower": 0, "upper": 50}},
		{"name": "refunds", "event_type": "refund", "aggregation": "binary", "higher_is_better": false},
		{"name": "complaints", "event_type": "complaint", "aggregation": "binary", "higher_is_better": false, "guardrail_margin": 0.5},
		{"name": "returns", "event_type": "return", "aggregation": "binary", "higher_is_better": false},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	for _, bad := range []float64{-0.1, 1.5} {
		status, b := ts.do("POST", "/v1/metrics", ts.admin, map[string]any{"name": "bad", "event_type": "x", "aggregation": "binary", "guardrail_margin": bad})
		if e := errorOf(t, b); status != 400 || !strings.Contains(e.Message, "guardrail_margin") {
			t.Errorf("guardrail_margin %g: %d %+v, want 400 naming guardrail_margin", bad, status, e)
		}
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "guard", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"metrics": []any{map[string]any{"name": "revenue", "primary": true}, "refunds", "complaints", "returns"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/guard/start", nil, nil)
	logPurchases(t, ts, "guard", 800)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var evs []experiment.Event
	for i := range 800 {
		u := fmt.Sprintf("guard-u%d", i)
		k := i / 2    // the unit's rank within its arm, 0..399
		if k%10 < 3 { // 30% in both arms
			evs = append(evs, experiment.Event{EventID: "r" + u, Unit: u, Type: "refund", TS: t0, Value: 1},
				experiment.Event{EventID: "c" + u, Unit: u, Type: "complaint", TS: t0, Value: 1})
		}
		if i%2 == 0 && k%10 < 2 || i%2 == 1 && k%10 < 5 { // 20% in control, 50% in treatment
			evs = append(evs, experiment.Event{EventID: "x" + u, Unit: u, Type: "return", TS: t0, Value: 1})
		}
	}
	if _, _, err := ts.db.IngestEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/guard/privacy", map[string]any{"epsilon": 16, "release_epsilon": 8}, nil)
	_, rd := runDigestJob(t, ts, map[string]any{"name": "weekly", "kind": "digest", "every": "168h", "target": "guard"})
	informative(t, rd)
	want := map[string]experiment.GuardrailStatus{"refunds": experiment.GuardrailUnclear, "complaints": experiment.GuardrailHolding, "returns": experiment.GuardrailBreached}
	if len(rd.Guardrails) != len(want) {
		t.Fatalf("guardrails %+v, want %d", rd.Guardrails, len(want))
	}
	for _, g := range rd.Guardrails {
		if g.Status != want[g.Metric] || g.Breach != (g.Status == experiment.GuardrailBreached) {
			t.Errorf("guardrail %s %+v: status %q, want %q", g.Metric, g.Lift, g.Status, want[g.Metric])
		}
	}
	if !strings.Contains(rd.Verdict, "returns") {
		t.Errorf("verdict %q does not name the breached guardrail", rd.Verdict)
	}
	// The monitor, on the same release, alerts on the breached guardrail only.
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "watcher", "kind": "monitor", "every": "6h", "target": "guard"}, nil)
	alerts := guardrailAlerts(t, ts, "watcher", "guard", []string{"revenue", "refunds", "complaints", "returns"})
	if fmt.Sprint(alerts) != "map[returns:true]" {
		t.Errorf("monitor guardrail alerts %v, want returns only", alerts)
	}
}

// guardrailAlerts runs a monitor job by hand and returns the metrics its
// guardrail alerts name for experiment key.
func guardrailAlerts(t *testing.T, ts *tserver, job, key string, metrics []string) map[string]bool {
	t.Helper()
	var run experiment.JobRun
	ts.must(http.StatusOK, "POST", "/v1/jobs/"+job+"/run", nil, &run)
	if run.Status != experiment.RunSucceeded {
		t.Fatalf("monitor run %+v", run)
	}
	var as alertList
	ts.must(http.StatusOK, "GET", "/v1/alerts", nil, &as)
	out := map[string]bool{}
	for _, a := range as.Alerts {
		if a.Kind != "guardrail" || a.Target != key {
			continue
		}
		for _, m := range metrics {
			if strings.Contains(a.Message, " "+m+" ") {
				out[m] = true
			}
		}
	}
	return out
}

// TestMonitorAgreesWithDigest: refunds rise from 30% to 36% (2,000 units per
// arm), which the exact data show clearly (z = 0.06/0.0148 = 4.05, p ≈ 5e-5),
// while a release of ε = 0.01 is all noise. The digest and the monitor run at
// the same moment on the same data must not contradict each other: the monitor
// raises a guardrail alert for a metric exactly when the digest shows it
// breached, and never while the digest shows it holding.
func TestMonitorAgreesWithDigest(t *testing.T) {
	ts := newJobServer(t)
	for _, m := range []map[string]any{
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "bounds": map[string]float64{"lower": 0, "upper": 50}},
		{"name": "refunds", "event_type": "refund", "aggregation": "binary", "higher_is_better": false},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "watch", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"metrics": []any{map[string]any{"name": "revenue", "primary": true}, "refunds"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/watch/start", nil, nil)
	logPurchases(t, ts, "watch", 4000)
	var evs []experiment.Event
	for i := range 4000 {
		u := fmt.Sprintf("watch-u%d", i)
		if k := i / 2; i%2 == 0 && k%50 < 15 || i%2 == 1 && k%50 < 18 { // 30% in control, 36% in treatment
			evs = append(evs, experiment.Event{EventID: "r" + u, Unit: u, Type: "refund", TS: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Value: 1})
		}
	}
	if _, _, err := ts.db.IngestEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	// The exact results the monitor would read see the harm.
	var res struct {
		Metrics []struct {
			Name        string `json:"name"`
			Comparisons []struct {
				Absolute struct {
					PValue float64 `json:"p_value"`
				} `json:"absolute"`
			} `json:"comparisons"`
		} `json:"metrics"`
	}
	ts.must(http.StatusOK, "GET", "/v1/experiments/watch/results", nil, &res)
	for _, m := range res.Metrics {
		if m.Name == "refunds" && !(m.Comparisons[0].Absolute.PValue < 1e-3) {
			t.Fatalf("exact refunds p = %g, want a clear harm", m.Comparisons[0].Absolute.PValue)
		}
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/watch/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.01}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "watcher", "kind": "monitor", "every": "6h", "target": "watch"}, nil)
	_, rd := runDigestJob(t, ts, map[string]any{"name": "weekly", "kind": "digest", "every": "168h", "target": "watch"})
	alerts := guardrailAlerts(t, ts, "watcher", "watch", []string{"revenue", "refunds"})
	if len(rd.Guardrails) != 1 {
		t.Fatalf("guardrails %+v, want refunds", rd.Guardrails)
	}
	for _, g := range rd.Guardrails {
		if alerts[g.Metric] != (g.Status == experiment.GuardrailBreached) {
			t.Errorf("%s: the digest shows %q while the monitor alert is %v", g.Metric, g.Status, alerts[g.Metric])
		}
	}
	var acct experiment.PrivacyAccount
	ts.must(http.StatusOK, "GET", "/v1/experiments/watch/privacy", nil, &acct)
	if acct.EpsilonSpent != 0.01 {
		t.Errorf("ε spent %g, want 0.01: the monitor reads the digest's release of unchanged data", acct.EpsilonSpent)
	}
}

// TestVerdict: the verdict reads the headline by the metric's wanted direction
// and names the exposure, not an arm called "exposed", for a holdout.
func TestVerdict(t *testing.T) {
	up := reports.Interval{Estimate: 0.05, Low: 0.02, High: 0.08}
	for _, c := range []struct {
		name   string
		h      *reports.Headline
		higher bool
		why    string
		want   string
	}{
		{"gain", &reports.Headline{Metric: "revenue", Variant: "treatment", Lift: up}, true, "", "Treatment raised revenue by about 5.0% (between 2.0% and 8.0%): the gain is statistically clear."},
		{"rise of a cost", &reports.Headline{Metric: "latency", Variant: "treatment", Lift: up}, false, "", "Treatment raised latency by about 5.0% (between 2.0% and 8.0%): the loss is statistically clear; consider stopping it."},
		{"fall of a cost", &reports.Headline{Metric: "latency", Variant: "treatment", Lift: reports.Interval{Estimate: -0.05, Low: -0.08, High: -0.02}}, false, "", "Treatment lowered latency by about 5.0% (between 2.0% and 8.0%): the gain is statistically clear."},
		{"holdout", &reports.Headline{Metric: "revenue", Variant: "exposed", Control: "holdout", Lift: reports.Interval{Estimate: 0.01, Low: -0.02, High: 0.04}}, true, "", "No clear effect of exposure on revenue yet: the change lies between -2.0% and +4.0%."},
		{"none", nil, true, "cohort v1 has no units yet", "Cohort v1 has no units yet."},
	} {
		if got := verdict(&reports.Digest{Headline: c.h}, c.higher, c.why); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
