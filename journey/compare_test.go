package journey_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
)

// giniPairs is the Gini coefficient by its definition, the relative mean
// absolute difference G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n² x̄) (Gini 1912), independent
// of the sorted form scorer.Gini uses.
func giniPairs(x []float64) float64 {
	var sum, diff float64
	for _, a := range x {
		sum += a
		for _, b := range x {
			diff += math.Abs(a - b)
		}
	}
	n := float64(len(x))
	return diff / (2 * n * n * (sum / n))
}

func TestGuardrailsRollupCompare(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{K: 3, Exploration: experiment.Exploration{Kind: experiment.ExploreNone}})
	ctx := context.Background()
	shown := map[string]float64{}
	policies := map[string]int64{}
	for i := range 120 {
		consent := 2
		if i%10 == 0 {
			consent = 1
		}
		d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: "v-" + strconv.Itoa(i),
			Context: journey.Context{RecentItems: []string{"item-" + strconv.Itoa(i%50)}, ConsentTier: consent}})
		if err != nil {
			t.Fatal(err)
		}
		policies[d.Policy]++
		for _, it := range d.Items {
			shown[it.ID]++
		}
	}
	var counts []float64
	for _, n := range shown {
		counts = append(counts, n)
	}
	wantGini := giniPairs(counts)

	gs := f.dec.Guardrails()
	if len(gs) != 1 {
		t.Fatalf("guardrails %+v", gs)
	}
	g := gs[0]
	if g.Decisions[experiment.PolicyIneligible] != 12 || math.Abs(g.IneligibleShare-0.1) > 1e-12 {
		t.Errorf("ineligible %d share %g, want 12 and 0.1", g.Decisions[experiment.PolicyIneligible], g.IneligibleShare)
	}
	if math.Abs(g.Gini-wantGini) > 1e-9 || g.DistinctItems != len(shown) {
		t.Errorf("live Gini %g over %d items, want %g over %d", g.Gini, g.DistinctItems, wantGini, len(shown))
	}
	if !(g.LatencyP50 <= g.LatencyP95 && g.LatencyP95 <= g.LatencyP99 && g.LatencyP99 > 0) {
		t.Errorf("latency quantiles %g %g %g", g.LatencyP50, g.LatencyP95, g.LatencyP99)
	}

	day := f.now.Truncate(24 * time.Hour)
	cmp, err := journey.Compare(ctx, f.db, "home", day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := cmp.Summary
	if s.Decisions != 120 || s.Ineligible != policies[experiment.PolicyIneligible] || s.Holdout != policies[experiment.PolicyHoldout] ||
		s.Personalized != policies[experiment.PolicyPersonalized] || s.Control != policies[experiment.PolicyControl] {
		t.Errorf("summary %+v, want the policies decided %v", s, policies)
	}
	if len(cmp.Days) != 1 || math.Abs(cmp.Days[0].Gini-wantGini) > 1e-9 {
		t.Errorf("stored day %+v, want Gini %g", cmp.Days, wantGini)
	}
	saved, err := f.db.SavedJourneyDays(ctx, "home", day, day.Add(24*time.Hour))
	if err != nil || len(saved) != 1 || saved[0].Decisions != 120 {
		t.Errorf("journey_daily %+v %v", saved, err)
	}
	// The experiment has no metrics: its results say so rather than failing the comparison.
	if cmp.Results == nil && cmp.ResultsError == "" {
		t.Errorf("neither results nor a results error")
	}
	if cmp.Holdout != "perm" || (cmp.HoldoutResults == nil && cmp.HoldoutError == "") {
		t.Errorf("holdout part %q %v %q", cmp.Holdout, cmp.HoldoutResults, cmp.HoldoutError)
	}
	if _, err := journey.Compare(ctx, f.db, "home", day, day); experiment.KindOf(err) != experiment.Invalid {
		t.Errorf("empty window: %v, want Invalid", err)
	}
	if _, err := journey.Compare(ctx, f.db, "nope", day, day.Add(time.Hour)); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("unknown journey: %v, want NotFound", err)
	}
}
