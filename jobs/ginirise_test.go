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
	"github.com/liftlab/lift/store"
)

// pairwiseGini is the Gini coefficient by its pairwise definition,
// G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n² x̄), computed here independently of scorer.Gini.
func pairwiseGini(x []int64) float64 {
	var num, sum float64
	for _, a := range x {
		sum += float64(a)
		for _, b := range x {
			num += math.Abs(float64(a - b))
		}
	}
	if sum == 0 {
		return 0
	}
	return num / (2 * float64(len(x)) * sum)
}

// seedGini stores two journeys whose decisions show four items with these
// counts per day (2026-11-10 …): "home" narrows every day from the 11th (Gini by
// the pairwise definition 0, 0.15, 0.3, 0.45 for the 11th to the 14th);
// "side" dips on the 13th.
func seedGini(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.CreateExperiment(ctx, "test", &experiment.Experiment{Key: "feed", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	counts := map[string][][]int64{
		"home": {{20, 0, 0, 0}, {5, 5, 5, 5}, {8, 4, 4, 4}, {12, 4, 2, 2}, {16, 2, 1, 1}},
		"side": {{20, 0, 0, 0}, {5, 5, 5, 5}, {8, 4, 4, 4}, {5, 5, 5, 5}, {16, 2, 1, 1}},
	}
	var ds []store.Decision
	for _, key := range []string{"home", "side"} {
		if _, err := db.CreateJourney(ctx, "test", &experiment.Journey{Key: key, Experiment: "feed", Model: "shop",
			ControlPolicy: experiment.ControlPolicy{Kind: experiment.ControlFixed, Items: []string{"i0"}}}); err != nil {
			t.Fatal(err)
		}
		for day, cs := range counts[key] {
			ts := time.Date(2026, 11, 10+day, 9, 0, 0, 0, time.UTC)
			for item, n := range cs {
				for r := range n {
					ds = append(ds, store.Decision{ID: fmt.Sprintf("%s-%d-%d-%d", key, day, item, r), TS: ts.Add(time.Duration(r) * time.Minute), Journey: key,
						Experiment: "feed", Unit: fmt.Sprintf("u%d", r), Policy: "control", Items: json.RawMessage(fmt.Sprintf(`[{"id":"i%d","score":0,"reason":""}]`, item))})
				}
			}
		}
	}
	if err := db.LogDecisions(ctx, ds); err != nil {
		t.Fatal(err)
	}
}

func TestGiniRiseAlert(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seedGini(t, db)
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
	now := time.Date(2026, 11, 15, 6, 0, 0, 0, time.UTC)
	d := Deps{Store: db, Now: func() time.Time { return now }, Webhooks: loopbackHooks(t),
		JourneyDays: func(ctx context.Context, key string, from, to time.Time) ([]store.JourneyDay, error) {
			days, err := db.JourneyDays(ctx, key, from, to)
			for i := range days {
				days[i].Gini = pairwiseGini(days[i].ItemCounts)
			}
			return days, err
		}}
	for _, tc := range []struct {
		days  int
		alert []string // journeys alerted
	}{
		{3, []string{"home"}}, // 11th → 14th: three rises for home; side dips on the 13th
		{4, nil},              // the 10th shows one item (Gini 0 over the items shown), the 11th is 0 too: no rise
		{1, []string{"home", "side"}},
	} {
		got = nil
		params, _ := json.Marshal(GiniRiseParams{Days: tc.days, Webhook: hook.URL})
		j := &experiment.Job{Name: fmt.Sprintf("narrowing-%d", tc.days), Kind: experiment.JobJourneyGiniRise, Every: experiment.Duration(24 * time.Hour), Params: params}
		if err := Checks(d)[experiment.JobJourneyGiniRise](ctx, j); err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 2; run++ { // a second run of the same period alerts nothing new
			if _, err := Kinds(d)[experiment.JobJourneyGiniRise](ctx, j, now); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		var targets []string
		for _, b := range got {
			targets = append(targets, b.Alert.Target)
			if b.Alert.Kind != "gini_rise" || !strings.Contains(b.Text, "rose "+fmt.Sprint(tc.days)+" days in a row") {
				t.Errorf("days=%d: alert %+v (%q)", tc.days, b.Alert, b.Text)
			}
		}
		mu.Unlock()
		if fmt.Sprint(targets) != fmt.Sprint(tc.alert) {
			t.Errorf("days=%d: alerts for %v, want %v", tc.days, targets, tc.alert)
		}
	}
	bad, _ := json.Marshal(map[string]any{"days": 61})
	if err := Checks(d)[experiment.JobJourneyGiniRise](ctx, &experiment.Job{Name: "x", Kind: experiment.JobJourneyGiniRise, Params: bad}); err == nil || !strings.Contains(err.Error(), "params.days") {
		t.Errorf("days 61: %v, want an error naming params.days", err)
	}
	if err := Checks(d)[experiment.JobJourneyGiniRise](ctx, &experiment.Job{Name: "x", Kind: experiment.JobJourneyGiniRise, Target: "nope"}); err == nil || !strings.Contains(err.Error(), "target") {
		t.Errorf("unknown journey: %v, want an error naming target", err)
	}
}

func TestRisingGini(t *testing.T) {
	from := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	day := func(i int, g float64) store.JourneyDay { return store.JourneyDay{Day: from.AddDate(0, 0, i), Gini: g} }
	for _, tc := range []struct {
		name string
		days []store.JourneyDay
		n    int
		want bool
	}{
		{"three rises", []store.JourneyDay{day(0, .1), day(1, .2), day(2, .3), day(3, .4)}, 3, true},
		{"a flat day", []store.JourneyDay{day(0, .1), day(1, .2), day(2, .2), day(3, .4)}, 3, false},
		{"a missing day", []store.JourneyDay{day(0, .1), day(1, .2), day(3, .4)}, 3, false},
		{"a gap filled by a later day", []store.JourneyDay{day(0, .1), day(1, .2), day(2, .3), day(4, .4)}, 3, false},
		{"one rise", []store.JourneyDay{day(0, .1), day(1, .2)}, 1, true},
		{"no data", nil, 1, false},
	} {
		if got := RisingGini(tc.days, from, tc.n); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
