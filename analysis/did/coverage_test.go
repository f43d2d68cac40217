package did

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCoverage is a seeded Monte-Carlo check that the 95% intervals cover the
// true effect at the nominal rate when the errors are correlated within units
// (a unit effect and an AR-like shock shared across periods) and
// heteroskedastic across groups: 2,000 simulated 2×2 panels with 60 units,
// CR1 by unit with t(G−1); and 1,000 staggered panels for the Callaway &
// Sant'Anna simple aggregation (influence-function SE, normal interval).
// With 2,000 runs the Monte-Carlo SD of a 95% coverage is 0.005, so [0.93, 0.97]
// is a 4-SD band; with 1,000 runs (SD 0.007) [0.925, 0.975].
func TestCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte-Carlo coverage simulation; skipped with -short")
	}
	rng := rand.New(rand.NewPCG(1, 1))
	const effect = 1.5
	cover := 0
	const runs = 2000
	for r := 0; r < runs; r++ {
		var y []float64
		var tr, po []bool
		var cl []int
		for u := 0; u < 60; u++ {
			treated := u%2 == 0
			sd := 1.0
			if treated {
				sd = 2 // heteroskedastic across groups
			}
			a, shock := rng.NormFloat64(), rng.NormFloat64()
			for p := 0; p < 2; p++ {
				v := a + 0.5*float64(p) + sd*(0.7*shock+0.7*rng.NormFloat64())
				if treated && p == 1 {
					v += effect
				}
				y, tr, po, cl = append(y, v), append(tr, treated), append(po, p == 1), append(cl, u)
			}
		}
		res, err := Regress(y, tr, po, cl, CR1, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		if res.Effect.CILow <= effect && effect <= res.Effect.CIHigh {
			cover++
		}
	}
	t.Logf("CR1 coverage %.4f", float64(cover)/runs)
	if c := float64(cover) / runs; c < 0.93 || c > 0.97 {
		t.Errorf("CR1 coverage %.4f, want 0.95 ± 0.02", c)
	}

	tau := func(g, t int) float64 { return 1 + 0.5*float64(t-g) }
	cover = 0
	const csRuns = 1000
	for r := 0; r < csRuns; r++ {
		p, cohort := simPanel(rng, 200, 5, []int{2, 3, NeverTreated}, tau, nil)
		cs, err := CallawaySantAnna(p, cohort, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		// The estimand: cohort-size-weighted mean of τ over post cells.
		size := map[int]float64{}
		for i, g := range cohort {
			if p.Time[i] == 0 && g != NeverTreated {
				size[g]++
			}
		}
		var num, den float64
		for g, n := range size {
			for tt := g; tt < 5; tt++ {
				num += n * tau(g, tt)
				den += n
			}
		}
		truth := num / den
		if math.Abs(cs.Simple.Estimate-truth) <= cs.Simple.CIHigh-cs.Simple.Estimate {
			cover++
		}
	}
	t.Logf("Callaway–Sant'Anna coverage %.4f", float64(cover)/csRuns)
	if c := float64(cover) / csRuns; c < 0.925 || c > 0.975 {
		t.Errorf("Callaway–Sant'Anna simple ATT coverage %.4f, want 0.95 ± 0.025", c)
	}
}
