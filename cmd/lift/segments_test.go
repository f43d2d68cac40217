package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestSegmentsCLIMatchesAPI: "lift segments" on a CSV and POST
// /v1/analyses/segments on the same units stored as exposures, events and
// attributes (per-unit values from the metric engine) answer the same JSON:
// one pipeline, analysis.SegmentRun. Its numbers are checked against scipy and
// statsmodels in analysis.TestSegmentRunReference.
func TestSegmentsCLIMatchesAPI(t *testing.T) {
	hs, data, _ := unitsFixture(t)
	for _, tc := range []struct {
		name string
		args []string
		body map[string]any
	}{
		{"defaults", nil, nil},
		{"bh capped", []string{"--correction", "bh", "--max-segments", "4"}, map[string]any{"correction": "bh", "max_segments": 4}},
		// CUPEDps: the file's pre column is each unit's order before exposure,
		// which the API reads as revenue's 14-day covariate.
		{"cuped", []string{"--covariate", "pre"}, map[string]any{"cuped": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"segments", "--data", data, "--treatment", "arm", "--outcome", "revenue", "--segment", "country"}, tc.args...)
			code, out, errs := runQuasi(t, args...)
			if code != 0 {
				t.Fatalf("lift segments: exit %d: %s", code, errs)
			}
			var cli map[string]any
			if err := json.Unmarshal([]byte(out), &cli); err != nil {
				t.Fatal(err)
			}
			body := map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "country"}
			for k, v := range tc.body {
				body[k] = v
			}
			got := postJSON(t, hs, "/v1/analyses/segments", body)
			if tc.name == "cuped" {
				// The covariate's name is the file's column or the metric's window.
				if cli["covariate"] != "pre" || got["covariate"] != "revenue over the 14 days before exposure" {
					t.Errorf("covariate: CLI %v, API %v", cli["covariate"], got["covariate"])
				}
				delete(cli, "covariate")
				c, _ := got["cuped_post_stratified"].(map[string]any)
				if c == nil || c["adjusted_cells"] != 7.0 {
					t.Fatalf("cuped_post_stratified %v", got["cuped_post_stratified"])
				}
				// The pre-exposure order predicts revenue: CUPEDps is narrower.
				if se, ps := c["absolute"].(map[string]any)["se"].(float64), got["post_stratified"].(map[string]any)["se"].(float64); se >= ps {
					t.Errorf("CUPEDps SE %v not below the post-stratified %v", se, ps)
				}
			} else if _, ok := got["cuped_post_stratified"]; ok {
				t.Errorf("cuped_post_stratified without cuped")
			}
			sameFields(t, "segments", got, cli)
			segs, _ := got["segments"].([]any)
			var names []string
			for _, s := range segs {
				names = append(names, s.(map[string]any)["segment"].(string))
			}
			want := 7 // six countries and "(missing)"
			if tc.name == "bh capped" {
				want = 4
			}
			if len(names) != want {
				t.Errorf("segments %v, want %d", names, want)
			}
			if tc.name == "defaults" && !strings.Contains(strings.Join(names, ","), "(missing)") {
				t.Errorf("segments %v lack (missing)", names)
			}
		})
	}
}

func TestSegmentsErrors(t *testing.T) {
	data := writeTemp(t, "s.csv", "arm,y,c\ncontrol,1,a\ntreatment,2,a\ncontrol,3,b\ntreatment,,b\n")
	good := writeTemp(t, "g.csv", "arm,y,c\ncontrol,1,a\ntreatment,2,a\ncontrol,3,b\ntreatment,5,b\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--treatment", "arm", "--outcome", "y", "--segment", "c"}, "--data: is required"},
		{[]string{"--data", data, "--treatment", "arm", "--outcome", "y"}, "--segment: is required"},
		{[]string{"--data", data, "--treatment", "arm", "--outcome", "y", "--segment", "nope"}, `--segment: `},
		{[]string{"--data", data, "--treatment", "arm", "--outcome", "y", "--segment", "c"}, "--outcome: "},
		{[]string{"--data", good, "--treatment", "arm", "--outcome", "y", "--segment", "c", "--alpha", "2"}, "--alpha: must be in (0, 1)"},
		{[]string{"--data", good, "--treatment", "arm", "--outcome", "y", "--segment", "c", "--max-segments", "1"}, "--max-segments: must be at least 2"},
		{[]string{"--data", good, "--treatment", "arm", "--outcome", "y", "--segment", "c", "--correction", "x"}, "--correction: must be holm or bh"},
	} {
		code, _, errs := runQuasi(t, append([]string{"segments"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("lift segments %v: exit %d, stderr %q; want an error containing %q", tc.args, code, errs, tc.want)
		}
	}
}

// unitsFixture stores 800 units of experiment "promo" (exposures, "order" events
// of metric "revenue", attribute "country", missing for every 50th unit) and
// writes the same units to a CSV (unit,arm,revenue,country,pre) and their
// post-exposure orders to another (unit,arm,revenue), for comparing the CLI
// with the API.
func unitsFixture(t *testing.T) (*httptest.Server, string, string) {
	t.Helper()
	ctx := context.Background()
	db, hs := pipelineServer(t)
	if _, err := db.CreateMetric(ctx, "test", &experiment.Metric{Name: "revenue", EventType: "order", Aggregation: experiment.Sum,
		Covariate: &experiment.Covariate{Days: 14}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "test", &experiment.Experiment{Key: "promo", Name: "Promo",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(5, 6))
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	var b strings.Builder
	b.WriteString("unit,arm,revenue,country,pre\n")
	var ev strings.Builder
	ev.WriteString("unit,arm,revenue\n")
	countries := []string{"de", "fr", "us", "jp", "br", "in"}
	for i := range 800 {
		u := fmt.Sprintf("u%05d", i) // sorted as the store returns them
		arm := []string{"control", "treatment"}[r.IntN(2)]
		c := countries[r.IntN(len(countries))]
		pre := 5 + 2*r.NormFloat64()
		y := 10 + 0.5*(pre-5) + r.NormFloat64()
		if arm == "treatment" && c == "us" {
			y += 2
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: start})
		evs = append(evs, experiment.Event{EventID: u, Unit: u, Type: "order", TS: start.Add(time.Hour), Value: y},
			experiment.Event{EventID: u + "-pre", Unit: u, Type: "order", TS: start.Add(-48 * time.Hour), Value: pre})
		fmt.Fprintf(&ev, "%s,%s,%s\n", u, arm, strconv.FormatFloat(y, 'g', -1, 64))
		if i%3 == 0 { // a second order: revenue is their sum
			y2 := float64(1 + i%7)
			evs = append(evs, experiment.Event{EventID: u + "-2", Unit: u, Type: "order", TS: start.Add(2 * time.Hour), Value: y2})
			fmt.Fprintf(&ev, "%s,%s,%s\n", u, arm, strconv.FormatFloat(y2, 'g', -1, 64))
			y += y2
		}
		if i%50 == 0 { // no attribute: the "(missing)" segment
			c = ""
		} else {
			attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"country": c}})
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s\n", u, arm, strconv.FormatFloat(y, 'g', -1, 64), c, strconv.FormatFloat(pre, 'g', -1, 64))
	}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	return hs, writeTemp(t, "units.csv", b.String()), writeTemp(t, "orders.csv", ev.String())
}

// TestQuantilesCLIMatchesAPI: "lift quantiles" on a CSV and POST
// /v1/analyses/quantiles on the same units (per-unit values from the metric
// engine) answer the same JSON: one pipeline, analysis.QuantileRun, whose
// numbers are checked against scipy and R in analysis.TestQuantileRunReference.
func TestQuantilesCLIMatchesAPI(t *testing.T) {
	hs, data, events := unitsFixture(t)
	for _, tc := range []struct {
		name string
		args []string
		body map[string]any
	}{
		{"defaults", nil, nil},
		{"p25 p75 at 90%", []string{"--quantiles", "0.25,0.75", "--alpha", "0.1"}, map[string]any{"quantiles": []float64{0.25, 0.75}, "alpha": 0.1}},
		// The orders themselves (the file's rows are events, --cluster their
		// unit), against per_event on the store's orders in revenue's window
		// (the pre-exposure orders are outside it).
		{"per event", []string{"--data", events, "--cluster", "unit", "--quantiles", "0.5,0.9"}, map[string]any{"per_event": true, "quantiles": []float64{0.5, 0.9}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runQuasi(t, append([]string{"quantiles", "--data", data, "--treatment", "arm", "--outcome", "revenue"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("lift quantiles: exit %d: %s", code, errs)
			}
			var cli map[string]any
			if err := json.Unmarshal([]byte(out), &cli); err != nil {
				t.Fatal(err)
			}
			body := map[string]any{"experiment": "promo", "metric": "revenue"}
			for k, v := range tc.body {
				body[k] = v
			}
			got := postJSON(t, hs, "/v1/analyses/quantiles", body)
			sameFields(t, "quantiles", got, cli)
			want := 3
			if tc.args != nil {
				want = 2
			}
			if qs, _ := got["quantiles"].([]any); len(qs) != want {
				t.Errorf("%d quantiles, want %d", len(qs), want)
			}
		})
	}
}

func TestQuantilesErrors(t *testing.T) {
	data := writeTemp(t, "q.csv", "arm,y\ncontrol,1\ntreatment,2\ncontrol,3\ntreatment,4\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--treatment", "arm", "--outcome", "y"}, "--data: is required"},
		{[]string{"--data", data, "--outcome", "y"}, "--treatment: is required"},
		{[]string{"--data", data, "--treatment", "arm", "--outcome", "y", "--quantiles", "0.5,x"}, `--quantiles: "x" is not a number`},
		{[]string{"--data", data, "--treatment", "arm", "--outcome", "y", "--quantiles", "0.5,1"}, "--quantiles: quantiles[1]: must be in (0, 1)"},
		{[]string{"--data", data, "--treatment", "arm", "--outcome", "y", "--alpha", "0"}, "--alpha: must be in (0, 1)"},
		{[]string{"--data", data, "--treatment", "arm", "--outcome", "z"}, "--outcome: "},
	} {
		code, _, errs := runQuasi(t, append([]string{"quantiles"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("lift quantiles %v: exit %d, stderr %q; want an error containing %q", tc.args, code, errs, tc.want)
		}
	}
}
