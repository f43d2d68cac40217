package journey_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/results"
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

	if err := f.dec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	day := f.now.Truncate(24 * time.Hour)
	cmp, err := journey.Compare(ctx, f.db, results.New(f.db, f.db, f.db.Engine(), f.db.Now), "home", day, day.Add(24*time.Hour))
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
	// A window inside the day is widened to the whole day: the stored roll-up
	// keeps every decision of the day.
	part, err := journey.Compare(ctx, f.db, results.New(f.db, f.db, f.db.Engine(), f.db.Now), "home", f.now.Add(time.Hour), f.now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !part.From.Equal(day) || !part.To.Equal(day.Add(24*time.Hour)) || part.Summary.Decisions != 120 {
		t.Errorf("partial window: [%s, %s) with %d decisions, want the whole day's 120", part.From, part.To, part.Summary.Decisions)
	}
	if saved, err := f.db.SavedJourneyDays(ctx, "home", day, day.Add(24*time.Hour)); err != nil || len(saved) != 1 || saved[0].Decisions != 120 {
		t.Errorf("journey_daily after a partial window %+v %v", saved, err)
	}
	// No outcomes yet: the results say why rather than failing the comparison.
	if cmp.Results == nil && cmp.ResultsError == "" {
		t.Errorf("neither results nor a results error")
	}
	if cmp.Holdout != "perm" || (cmp.HoldoutResults == nil && cmp.HoldoutError == "") {
		t.Errorf("holdout part %q %v %q", cmp.Holdout, cmp.HoldoutResults, cmp.HoldoutError)
	}
	if _, err := journey.Compare(ctx, f.db, results.New(f.db, f.db, f.db.Engine(), f.db.Now), "home", day, day); experiment.KindOf(err) != experiment.Invalid {
		t.Errorf("empty window: %v, want Invalid", err)
	}
	if _, err := journey.Compare(ctx, f.db, results.New(f.db, f.db, f.db.Engine(), f.db.Now), "nope", day, day.Add(time.Hour)); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("unknown journey: %v, want NotFound", err)
	}
}

// TestScheduledCompare runs the journey_comparison job kind over decisions and
// simulated purchases, and checks its results against the per-unit revenue the
// test generated: unadjusted arm means and difference, a CUPED adjustment that
// reduces variance (the pre-period revenue is the unit's spending level plus
// noise), and a cumulative trend whose last day is the full-data result.
func TestScheduledCompare(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{K: 3, Exploration: experiment.Exploration{Kind: experiment.ExploreNone}})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	sums := map[string]float64{}
	ns := map[string]float64{}
	var evs []experiment.Event
	for i := range 400 {
		unit := "v-" + strconv.Itoa(i)
		d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit,
			Context: journey.Context{RecentItems: []string{"item-" + strconv.Itoa(i%50)}, ConsentTier: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if d.Variant == nil {
			continue // holdout: not in the experiment
		}
		level := 10 + 4*rng.NormFloat64()
		post := level + rng.NormFloat64()
		if *d.Variant == "personalized" {
			post += 2
		}
		evs = append(evs,
			experiment.Event{EventID: "pre-" + unit, Unit: unit, Type: "purchase", TS: f.now.Add(-48 * time.Hour), Value: level + rng.NormFloat64()},
			experiment.Event{EventID: "post-" + unit, Unit: unit, Type: "purchase", TS: f.now.Add(24 * time.Hour), Value: post})
		sums[*d.Variant] += post
		ns[*d.Variant]++
	}
	if _, _, err := f.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := f.dec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	run := journey.ScheduledCompare(f.db, results.New(f.db, f.db, f.db.Engine(), f.db.Now), f.dec)
	job := &experiment.Job{Name: "weekly", Kind: experiment.JobJourneyComparison, Params: []byte(`{"window":"7d"}`)}
	out, err := run(ctx, job, f.now.Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cs := out.(map[string]any)["comparisons"].([]journey.ScheduledComparison)
	if len(cs) != 1 || cs[0].Journey != "home" || cs[0].Results == nil {
		t.Fatalf("comparisons %+v", cs)
	}
	c := cs[0]
	if c.Summary.Decisions != 400 {
		t.Errorf("%d decisions in the window, want 400", c.Summary.Decisions)
	}
	m := c.Results.Metrics[0]
	if m.Name != "revenue" || m.Error != "" || m.CUPED == nil || len(m.Unadjusted) != 1 {
		t.Fatalf("metric %+v", m)
	}
	means := map[string]float64{}
	for _, v := range m.Variants {
		means[v.Name] = v.Mean
		if want := sums[v.Name] / ns[v.Name]; math.Abs(v.Mean-want) > 1e-9 || float64(v.N) != ns[v.Name] {
			t.Errorf("%s: n %d mean %.12g, want %g and %.12g", v.Name, v.N, v.Mean, ns[v.Name], want)
		}
	}
	if got, want := m.Unadjusted[0].Absolute.Estimate, means["personalized"]-means["control"]; math.Abs(got-want) > 1e-9 {
		t.Errorf("unadjusted difference %.12g, want %.12g", got, want)
	}
	if m.CUPED.VarianceReduction < 0.5 {
		t.Errorf("CUPED variance reduction %g, want > 0.5 (covariate correlation about 0.94)", m.CUPED.VarianceReduction)
	}
	adj, raw := m.Comparisons[0].Absolute, m.Unadjusted[0].Absolute
	if adj.CIHigh-adj.CILow >= raw.CIHigh-raw.CILow || adj.CILow > 2 || adj.CIHigh < 2 {
		t.Errorf("CUPED interval [%g, %g] (unadjusted [%g, %g]), want narrower and containing the true +2", adj.CILow, adj.CIHigh, raw.CILow, raw.CIHigh)
	}
	if c.Trend == nil || len(c.Trend.Days) < 2 {
		t.Fatalf("trend %+v (%s)", c.Trend, c.TrendError)
	}
	last := c.Trend.Days[len(c.Trend.Days)-1]
	if len(last.Comparisons) != 1 || math.Abs(last.Comparisons[0].Absolute.Estimate-adj.Estimate) > 1e-9 {
		t.Errorf("trend's last day %+v, want the full-data estimate %g", last, adj.Estimate)
	}
	if _, err := run(ctx, &experiment.Job{Name: "bad", Target: "nope"}, f.now); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("unknown target journey: %v, want NotFound", err)
	}
	if _, err := run(ctx, &experiment.Job{Name: "bad", Params: []byte(`{"window":"soon"}`)}, f.now); experiment.KindOf(err) != experiment.Invalid {
		t.Errorf("bad params: %v, want Invalid", err)
	}
}
