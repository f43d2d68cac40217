package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// geoPanel is a panel of n markets × T days: a common weekly cycle and
// trend whose loading has SD trend, market levels around 1,000, and
// idiosyncratic noise of SD noise[u] (10 when absent).
func geoPanel(rng *rand.Rand, n, T int, noise map[int]float64, trend float64) Panel {
	p := Panel{}
	f1, f2 := make([]float64, T), make([]float64, T)
	for t := range T {
		p.Periods = append(p.Periods, fmt.Sprintf("d%03d", t))
		f1[t] = math.Sin(2 * math.Pi * float64(t) / 7)
		f2[t] = float64(t) / float64(T)
	}
	for u := range n {
		p.Units = append(p.Units, fmt.Sprintf("m%02d", u))
		sd, ok := noise[u]
		if !ok {
			sd = 10
		}
		base, l1, l2 := 1000+100*rng.NormFloat64(), 50+10*rng.NormFloat64(), trend*rng.NormFloat64()
		y := make([]float64, T)
		for t := range T {
			y[t] = base + l1*f1[t] + l2*f2[t] + sd*rng.NormFloat64()
		}
		p.Y = append(p.Y, y)
	}
	return p
}

// TestMarketSelectionRanks: a market whose noise is 20 times the others'
// cannot be measured as precisely, so every candidate holding it ranks
// below every candidate without it (their MDEs are larger, or none); the
// required market is in every set and the excluded one in none; and the
// power curve rises to the target at the MDE.
func TestMarketSelectionRanks(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	p := geoPanel(rng, 16, 90, map[int]float64{3: 200}, 100)
	cands, err := MarketSelection(p, PowerOptions{Sizes: []int{2}, Durations: []int{14}, Candidates: 30, Lookback: 3,
		Include: []int{0}, Exclude: []int{5}, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cands) != 14 { // {m00} with each of the 14 other allowed markets
		t.Errorf("%d candidates, want the 14 possible sets", len(cands))
	}
	noisyRank, quietWorst := 0, 0
	for _, c := range cands {
		if !slices.Contains(c.Markets, "m00") || slices.Contains(c.Markets, "m05") {
			t.Errorf("candidate %v breaks include/exclude", c.Markets)
		}
		if slices.Contains(c.Markets, "m03") {
			noisyRank = c.Rank
		} else {
			quietWorst = max(quietWorst, c.Rank)
		}
		if c.MDE != nil {
			last := c.Curve[len(c.Curve)-1]
			if last.Effect != *c.MDE || last.Power < 0.8 {
				t.Errorf("%v: curve ends at %+v, MDE %g", c.Markets, last, *c.MDE)
			}
		}
	}
	if noisyRank < quietWorst {
		t.Errorf("the set with the noisy market ranks %d, a quiet set ranks %d", noisyRank, quietWorst)
	}
	if c := cands[0]; c.MDE == nil || *c.MDE > 0.05 {
		t.Errorf("best candidate %v: want an MDE of at most 5%% (noise 1%% of the level)", c)
	}
}

// TestMarketSelectionSize: with no planted effect (Effects = {0}) the share
// of simulated tests that reject is the test's size, at most α = 0.1 for
// the conformal test when the residuals are exchangeable: here the markets
// differ only in level (removed by the intercept) and in their weekly
// amplitude, so a synthetic control matches each up to noise; over 20 sets
// × 20 overlapping windows the estimate is correlated, hence the bound
// 0.15. (With market-specific trends a single market is often outside the
// donors' hull, the residuals trend, and the size exceeds α: the ranking's
// tie-breaker, the pre-period fit, is there for that.)
func TestMarketSelectionSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	p := geoPanel(rng, 20, 80, nil, 0)
	cands, err := MarketSelection(p, PowerOptions{Sizes: []int{1}, Durations: []int{7}, Effects: []float64{0}, Candidates: 20, Lookback: 20, Intercept: true,
		Rand: rand.New(rand.NewPCG(3, 4))})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, c := range cands {
		sum += c.Curve[0].Power
	}
	size := sum / float64(len(cands))
	t.Logf("rejection rate with no effect %.3f", size)
	if size > 0.15 {
		t.Errorf("rejection rate with no effect %.3f, want ≤ 0.15", size)
	}
}

// BenchmarkMarketSelection100 ranks 100 candidate sets of 3 markets for a
// 14-day test on 50 markets × 120 days, lifts 1%…30%.
func BenchmarkMarketSelection100(b *testing.B) {
	p := geoPanel(rand.New(rand.NewPCG(5, 5)), 50, 120, nil, 100)
	cpu0 := cpuSeconds()
	for range b.N {
		cands, err := MarketSelection(p, PowerOptions{Sizes: []int{3}, Durations: []int{14}, Candidates: 100, Rand: rand.New(rand.NewPCG(6, 6))})
		if err != nil {
			b.Fatal(err)
		}
		if len(cands) != 100 {
			b.Fatalf("%d candidates", len(cands))
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
}
