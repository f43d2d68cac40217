package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// seedSRM stores a running 50/50 experiment whose exposures are 1,000 control vs
// 1,300 treatment (chi-square p ≈ 4e-10, an SRM), with an "unsubscribes" guardrail
// that treatment raises from 5% to 20% of units, all on 2026-11-10.
func seedSRM(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	lower := false
	if _, err := db.CreateMetric(ctx, "test", &experiment.Metric{Name: "unsubscribes", EventType: "unsubscribe", Aggregation: experiment.Binary, Higher: &lower}); err != nil {
		t.Fatal(err)
	}
	e := &experiment.Experiment{Key: "promo", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}, Metrics: []experiment.MetricRef{{Name: "unsubscribes"}}}
	if _, err := db.CreateExperiment(ctx, "test", e); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartExperiment(ctx, "test", "promo"); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for i := 0; i < 2300; i++ {
		v, rate := "control", 20
		if i >= 1000 {
			v, rate = "treatment", 5
		}
		u := fmt.Sprintf("u%d", i)
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: v, TS: ts})
		if i%rate == 0 {
			evs = append(evs, experiment.Event{EventID: "e" + u, Unit: u, Type: "unsubscribe", TS: ts.Add(time.Hour), Value: 1})
		}
	}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func TestMonitorAlerts(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seedSRM(t, db)

	var mu sync.Mutex
	var got []webhookBody
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var wb webhookBody
		if err := json.Unmarshal(b, &wb); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		mu.Lock()
		got = append(got, wb)
		mu.Unlock()
	}))
	defer hook.Close()

	now := time.Date(2026, 11, 16, 6, 0, 0, 0, time.UTC) // six days after the last data
	d := Deps{Store: db, Now: func() time.Time { return now }, Webhooks: loopbackHooks(t)}
	// The SRM alert is the sequential one. With concentration 100 its p-value at
	// 1,000 vs 1,300 is 3.337063362199139e-08 (scipy, with lbf of
	// analysis/health_test.go: np.exp(-lbf([1000,1300],[.5,.5],[50,50]))), an
	// alert; TestMonitorSequentialSRM has the default.
	params, _ := json.Marshal(MonitorParams{Webhook: hook.URL, StaleAfter: experiment.Duration(48 * time.Hour), SRMConcentration: 100})
	j := &experiment.Job{Name: "watch", Kind: experiment.JobMonitor, Every: experiment.Duration(6 * time.Hour), Params: params}
	for run := 0; run < 2; run++ { // the second run of the same period must not alert again
		if _, err := Kinds(d)[experiment.JobMonitor](ctx, j, now); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	kinds := map[string]int{}
	for _, b := range got {
		kinds[b.Alert.Kind]++
		if !strings.Contains(b.Text, "promo") {
			t.Errorf("Slack text %q does not name the experiment", b.Text)
		}
	}
	if len(got) != 3 || kinds["srm"] != 1 || kinds["guardrail"] != 1 || kinds["stale_data"] != 1 {
		t.Errorf("webhook got %v alerts (%d), want one srm, one guardrail, one stale_data", kinds, len(got))
	}
	as, err := db.ListAlerts(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 {
		t.Fatalf("alert log has %d alerts, want 3", len(as))
	}
	for _, a := range as {
		if !a.Delivered || a.Attempts != 1 {
			t.Errorf("alert %d (%s): delivered %v after %d attempts, want delivered after 1", a.ID, a.Kind, a.Delivered, a.Attempts)
		}
	}
}

// loopbackHooks is the webhook policy of tests, whose webhooks are httptest
// servers on 127.0.0.1 (lift serve --webhook-allow 127.0.0.1).
func loopbackHooks(t *testing.T) *WebhookPolicy {
	t.Helper()
	p, err := ParseWebhookAllow("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The monitor runs again and again, so its SRM check is the sequential one:
// 1,000 vs 1,300 units (the one-shot chi-square's p is 3.96e-10,
// scipy.stats.chisquare([1000,1300]).pvalue) give at the default
// concentration (1,000) the sequential p-value 2.1239698674368496e-06, an
// alert at 0.001; at ssrm's 10,000 it is 0.028561797865701052, no alert (the
// reason for the default: analysis.TestSRMConcentrationChoice); at 100 it is
// 3.337063362199139e-08.
func TestMonitorSequentialSRM(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seedSRM(t, db)
	now := time.Date(2026, 11, 10, 18, 0, 0, 0, time.UTC)
	d := Deps{Store: db, Now: func() time.Time { return now }, Webhooks: loopbackHooks(t)}
	for _, c := range []struct {
		name          string
		concentration float64
		alert         bool
		want          float64 // scipy: exp(-lbf((1000, 1300), [.5, .5], c)) with gammaln (analysis/health_test.go)
	}{
		{"default (1,000)", 0, true, 2.1239698674368496e-06},
		{"concentration 10,000 (ssrm's) misses it", 10000, false, 0.028561797865701052},
		{"concentration 100", 100, true, 3.337063362199139e-08},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := d.results().ExperimentResults(ctx, "promo", results.Options{NoSnapshot: true})
			if err != nil {
				t.Fatal(err)
			}
			if !r.SRM.Mismatch {
				t.Fatalf("fixture: the chi-square should flag (p = %g)", r.SRM.PValue)
			}
			srm, ok, err := d.sequentialSRM(ctx, "promo", r, c.concentration)
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			if srm.Mismatch != c.alert || math.Abs(srm.PValue-c.want) > 1e-9*c.want {
				t.Errorf("sequential SRM %+v, want p %g", srm, c.want)
			}
		})
	}
}
