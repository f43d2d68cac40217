package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/jsoncmp"
	"github.com/liftlab/lift/store"
)

// seedHealth stores, at a clock of 2026-03-01 07:00, experiment "checkout"
// (layer site, holdout global at 10%) and "banner" (layer promo) on revenue
// with a 7-day CUPED covariate, and 400 units over four days exposed to both
// (api/health_test.go's fixture, smaller in words).
func seedHealth(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	opt := store.DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	opt.Now = func() time.Time { return t0 }
	opt.MaxClockSkew = -1
	db, err := store.Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateMetric(ctx, "t", &experiment.Metric{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum, Covariate: &experiment.Covariate{Days: 7}}))
	must(db.CreateLayer(ctx, "t", &experiment.Layer{Name: "site"}))
	must(db.CreateLayer(ctx, "t", &experiment.Layer{Name: "promo"}))
	must(db.CreateHoldout(ctx, "t", &experiment.Holdout{Name: "global", Fraction: 0.1}))
	must(db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "checkout", Holdout: "global", Layer: "site", LayerRange: &experiment.Range{Start: 0, End: 1},
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}, Metrics: []experiment.MetricRef{{Name: "revenue"}}}))
	must(db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "banner", Layer: "promo", LayerRange: &experiment.Range{Start: 0, End: 1},
		Variants: []experiment.Variant{{Name: "off", Weight: 0.5}, {Name: "on", Weight: 0.5}}, Metrics: []experiment.MetricRef{{Name: "revenue"}}}))
	must(db.StartExperiment(ctx, "t", "checkout"))
	must(db.StartExperiment(ctx, "t", "banner"))
	start := t0.Add(time.Hour)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for u := range 400 {
		unit := fmt.Sprintf("u%d", u)
		at := start.Add(time.Duration(u) * 10 * time.Minute)
		x := experiment.Exposure{Experiment: "checkout", Unit: unit, TS: at}
		switch {
		case u%10 == 0:
			x.InHoldout = true
		case u%2 == 0:
			x.Variant = "control"
		default:
			x.Variant = "treatment"
		}
		xs = append(xs, x, experiment.Exposure{Experiment: "banner", Unit: unit, TS: at, Variant: []string{"off", "on"}[(u/2)%2]})
		if u == 0 || u == 10 {
			xs = append(xs, experiment.Exposure{Experiment: "checkout", Unit: unit, TS: at.Add(time.Minute), Variant: "treatment"})
		}
		if u%3 != 0 {
			pre := float64(u%7 + 1)
			evs = append(evs, experiment.Event{EventID: unit + "-pre", Unit: unit, Type: "purchase", TS: start.Add(-24 * time.Hour), Value: pre},
				experiment.Event{EventID: unit + "-post", Unit: unit, Type: "purchase", TS: at.Add(time.Hour), Value: pre + float64(u%2) + float64((u*u)%5)/4})
		}
	}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

// withoutClock decodes a JSON document and drops what depends on the time
// it was computed at.
func withoutClock(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	delete(m, "computed_at")
	delete(m, "age_days")
	delete(m, "rotation_due")
	return m
}

// TestAnalyzeHealthMatchesAPI: "lift analyze health" answers, on the same
// DuckDB file, the JSON of GET /v1/experiments/KEY/health, …/overlaps and
// GET /v1/holdouts/NAME/health (one pipeline: results.Service), apart from
// the time it was computed at; its flags are checked.
func TestAnalyzeHealthMatchesAPI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lift.duckdb")
	seedHealth(t, path)
	cases := []struct {
		args  []string
		route string
	}{
		{[]string{"--experiment", "checkout"}, "/v1/experiments/checkout/health"},
		{[]string{"--experiment", "checkout", "--overlaps"}, "/v1/experiments/checkout/overlaps"},
		{[]string{"--holdout", "global", "--version", "1"}, "/v1/holdouts/global/health?version=1"},
	}
	cli := make([][]byte, len(cases))
	for i, c := range cases {
		code, out, errOut := runLift(t, append([]string{"analyze", "health", "--db", path}, c.args...)...)
		if code != 0 {
			t.Fatalf("%v: %d %s", c.args, code, errOut)
		}
		cli[i] = []byte(out)
	}

	ctx := context.Background()
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, path, sopt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.EnsureAdminKey(ctx, pipelineKey); err != nil {
		t.Fatal(err)
	}
	opt := api.DefaultOptions()
	opt.Store, opt.Logger = db, sopt.Logger
	srv, err := api.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	for i, c := range cases {
		req, _ := http.NewRequest("GET", hs.URL+c.route, nil)
		req.Header.Set("Authorization", "Bearer "+pipelineKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", c.route, resp.StatusCode, b)
		}
		got, want := withoutClock(t, cli[i]), withoutClock(t, b)
		// Numbers within 1e-12 relative: DuckDB aggregates in parallel
		// threads, and its compensated sums (fsum) of the same values in
		// another order can differ in the last bit, which the variance's
		// cancellation brings up to about 1e-15.
		if d := jsoncmp.Diff(got, want, 1e-12); d != "" {
			t.Errorf("%v: %s", c.args, d)
			t.Logf("the CLI answers\n%s\nthe API\n%s", cli[i], b)
		}
	}
	// The data exercise the checks: overlaps were found, the holdout has
	// contamination and the experiment a covariate to check.
	if !strings.Contains(string(cli[1]), `"experiment": "banner"`) || !strings.Contains(string(cli[2]), `"contaminated": 2`) || !strings.Contains(string(cli[0]), `"covariate": "revenue over 7 days before exposure"`) {
		t.Errorf("the fixture does not exercise the checks:\n%s\n%s\n%s", cli[0], cli[1], cli[2])
	}
	db.Close()

	for _, c := range []struct {
		args  []string
		field string
	}{
		{[]string{"--experiment", "checkout"}, "--db"},
		{[]string{"--db", path}, "--experiment"},
		{[]string{"--db", path, "--experiment", "checkout", "--holdout", "global"}, "--experiment"},
		{[]string{"--db", path, "--holdout", "global", "--overlaps"}, "--overlaps"},
		{[]string{"--db", path, "--experiment", "checkout", "--version", "2"}, "--version"},
		{[]string{"--db", path, "--holdout", "global", "--version", "-1"}, "--version"},
		{[]string{"--db", path, "--holdout", "global", "--version", "9"}, "version"},
		{[]string{"--db", path, "--experiment", "nope"}, "nope"},
	} {
		code, _, errOut := runLift(t, append([]string{"analyze", "health"}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.field) {
			t.Errorf("%v: exit %d, %q; want an error naming %s", c.args, code, errOut, c.field)
		}
	}
}
