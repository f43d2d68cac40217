package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// setupUnbounded registers a running 50/50 experiment "feed" whose only metric
// (visits, a count) has no bounds, with n exposed units alternating between the arms.
func setupUnbounded(t *testing.T, ts *tserver, n int) {
	t.Helper()
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "visits", "event_type": "visit", "aggregation": "count"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "feed", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"metrics": []map[string]any{{"name": "visits", "primary": true}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/feed/start", nil, nil)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	xs := make([]experiment.Exposure, 0, n)
	for i := range n {
		xs = append(xs, experiment.Exposure{Experiment: "feed", Unit: fmt.Sprintf("u%d", i), Variant: []string{"control", "treatment"}[i%2], TS: t0})
	}
	if err := ts.db.LogExposures(context.Background(), xs); err != nil {
		t.Fatal(err)
	}
}

// TestPrivateUnitCountsWithoutBoundedMetrics is issue 13, item 1: an experiment whose
// metrics all lack bounds must still release its unit counts (30,000 per arm, not
// noised zeros), and the SRM check on them must not fire.
func TestPrivateUnitCountsWithoutBoundedMetrics(t *testing.T) {
	ts := newTestServer(t)
	setupUnbounded(t, ts, 60_000)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/feed/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.5}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	var r PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/feed/results/private", nil, &r)
	// One query (the counts) at ε = 0.5: Laplace sd √2/0.5 ≈ 2.83 units; six sd make a
	// false failure negligible.
	for _, v := range []string{"control", "treatment"} {
		if math.Abs(float64(r.Exposures[v])-30_000) > 6*2.83 {
			t.Errorf("noised units of %s: %d, want 30,000 ± 17", v, r.Exposures[v])
		}
	}
	if r.SRM.Mismatch {
		t.Errorf("SRM flagged on an exact 30,000/30,000 split: %+v", r.SRM)
	}
	if _, ok := r.Omitted["visits"]; !ok {
		t.Errorf("omitted = %v, want visits (no bounds)", r.Omitted)
	}
}

// TestPrivateReleaseSamePeriod is issue 13, items 2 and 4: within a release period
// every reader gets the same release, whether or not data arrived in between, and
// the answer carries nothing that tells whether the data changed.
func TestPrivateReleaseSamePeriod(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.4}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	_, first := ts.do("GET", "/v1/experiments/checkout/results/private", viewer, nil)
	if bytes.Contains(first, []byte(`"reused"`)) {
		t.Errorf("the answer has a reused flag: %s", first)
	}
	for i := range 5 {
		if _, _, err := ts.db.IngestEvents(context.Background(), []experiment.Event{{EventID: fmt.Sprintf("late%d", i), Unit: "u0", Type: "purchase",
			TS: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Value: 5}}); err != nil {
			t.Fatal(err)
		}
		status, b := ts.do("GET", "/v1/experiments/checkout/results/private", viewer, nil)
		if status != 200 || !bytes.Equal(b, first) {
			t.Fatalf("request %d after new data: %d\n%s\nwant the period's release\n%s", i, status, b, first)
		}
	}
	var acct experiment.PrivacyAccount
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if len(acct.Entries) != 1 || math.Abs(acct.EpsilonSpent-0.4) > 1e-12 {
		t.Errorf("ledger: %d entries, %g spent; want one release of 0.4", len(acct.Entries), acct.EpsilonSpent)
	}
}

// TestPrivateReleaseConcurrent is issue 13, item 3: 50 identical requests at once
// make exactly one spend, every answer is the same release, and none fails.
func TestPrivateReleaseConcurrent(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 10, "release_epsilon": 0.1}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	const n = 50
	bodies := make([][]byte, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i], bodies[i] = ts.do("GET", "/v1/experiments/checkout/results/private", viewer, nil)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if statuses[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Errorf("request %d: %d %s\nwant 200 and the body of request 0:\n%s", i, statuses[i], bodies[i], bodies[0])
		}
	}
	var acct experiment.PrivacyAccount
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if len(acct.Entries) != 1 || math.Abs(acct.EpsilonSpent-0.1) > 1e-12 {
		t.Errorf("ledger after %d concurrent requests: %d entries, %g spent; want one spend of 0.1", n, len(acct.Entries), acct.EpsilonSpent)
	}
}

// TestPrivacyParamsThatCannotWork: budgets and bounds that could only fail later
// (noise of infinite scale, overflowing sensitivities) are refused with 400 naming
// the field, and nothing is stored.
func TestPrivacyParamsThatCannotWork(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	for _, c := range []struct {
		path  string
		body  string
		field string
	}{
		{"/v1/experiments/checkout/privacy", `{"epsilon": 1e-300, "release_epsilon": 1e-300}`, "epsilon"},
		{"/v1/experiments/checkout/privacy", `{"epsilon": 1, "release_epsilon": 1e-300}`, "release_epsilon"},
		{"/v1/experiments/checkout/privacy", `{"epsilon": 1e999, "release_epsilon": 1}`, "epsilon"},
		{"/v1/experiments/checkout/privacy", `{"epsilon": 1, "release_epsilon": 0.1, "release_period": "1s"}`, "release_period"},
		{"/v1/experiments/checkout/privacy", `{"epsilon": 1, "release_epsilon": 0.1, "release_period": "400d"}`, "release_period"},
		{"/v1/metrics", `{"name": "huge", "event_type": "purchase", "aggregation": "sum", "bounds": {"lower": -1e308, "upper": 1e308}}`, "bounds"},
		{"/v1/metrics", `{"name": "huge2", "event_type": "purchase", "aggregation": "sum", "bounds": {"lower": 0, "upper": 1e308}}`, "bounds.upper"},
		{"/v1/metrics", `{"name": "inverted", "event_type": "purchase", "aggregation": "sum", "bounds": {"lower": 5, "upper": 1}}`, "bounds"},
		{"/v1/metrics", `{"name": "inf", "event_type": "purchase", "aggregation": "sum", "bounds": {"lower": 0, "upper": 1e999}}`, "bounds"},
	} {
		status, b := ts.do("POST", c.path, ts.admin, c.body)
		if strings.HasSuffix(c.path, "/privacy") {
			status, b = ts.do("PUT", c.path, ts.admin, c.body)
		}
		if status != http.StatusBadRequest {
			t.Errorf("%s %s: %d %s, want 400 naming %s", c.path, c.body, status, b, c.field)
			continue
		}
		if e := errorOf(t, b); !strings.HasPrefix(e.Message, c.field) {
			t.Errorf("%s %s: %q, want the message to start with the field %s", c.path, c.body, e.Message, c.field)
		}
	}
	if status, _ := ts.do("GET", "/v1/experiments/checkout/privacy", ts.admin, nil); status != http.StatusNotFound {
		t.Errorf("a refused budget was stored: GET privacy answers %d, want 404", status)
	}
	var ms struct {
		Metrics []json.RawMessage `json:"metrics"`
	}
	ts.must(http.StatusOK, "GET", "/v1/metrics", nil, &ms)
	if len(ms.Metrics) != 3 {
		t.Errorf("%d metrics after the refusals, want the 3 of the setup", len(ms.Metrics))
	}
}

// testClock is a settable clock for the server (Options.Now).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func withClock(c *testClock) func(*Options) { return func(o *Options) { o.Now = c.Now } }

// TestPrivateNotEnoughSignal is issue 13, item 5, as readers see it: 400 units per
// arm released at ε = 0.05 (ε/5 = 0.01 per query: count noise sd 141 units) carry
// more noise than signal. The JSON flags every comparison, gives no relative
// interval below −100%, no variance of 0, and the DP report page says "not enough
// signal" and bolds nothing.
func TestPrivateNotEnoughSignal(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.05}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	var r PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results/private", nil, &r)
	for _, m := range r.Metrics {
		for _, v := range m.Variants {
			if !(v.Variance > 0) {
				t.Errorf("%s %s: released variance %g, want > 0", m.Name, v.Variant, v.Variance)
			}
		}
		for _, c := range m.Comparisons {
			if !c.NotEnoughSignal || !strings.HasPrefix(c.Note, "not enough signal") {
				t.Errorf("%s %s: not_enough_signal %v, note %q; want flagged", m.Name, c.Variant, c.NotEnoughSignal, c.Note)
			}
			if c.Relative != nil && c.Relative.CILow < -1 {
				t.Errorf("%s %s: relative lift down to %g, below −100%% for a metric that cannot be negative", m.Name, c.Variant, c.Relative.CILow)
			}
		}
	}
	status, page := ts.do("GET", "/v1/experiments/checkout/report.html", viewer, nil)
	if status != 200 || !bytes.Contains(page, []byte("not enough signal")) || bytes.Contains(page, []byte(`class="sig"`)) {
		t.Errorf("DP report page: %d, says not enough signal: %v, bolds a row: %v", status, bytes.Contains(page, []byte("not enough signal")), bytes.Contains(page, []byte(`class="sig"`)))
	}
	if !bytes.Contains(page, []byte("every reader sees these same numbers until the next release")) {
		t.Errorf("the DP report page does not say when the numbers were released and until when they hold")
	}
}
