package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSRMConcentrationChoice is the evidence for DefaultSRMConcentration: the
// sequential SRM's false-alarm rate and power, at the alarm threshold 0.001
// over 14 daily looks, for the candidate concentrations 10,000 (Optimizely's
// ssrm and GrowthBook's gbstats ssrm.py), 1,000 and 100. Every candidate keeps
// its false alarms below the threshold (Ville's inequality); they differ in
// power. 10,000 puts the prior's mass on mismatches of about a percent
// (prior sd of a share sqrt(θ(1−θ)/(c+1)) = 0.5%), and so misses gross
// mismatches in small samples: 1,000 against 1,300 units, a chi-square
// p-value of 9e-10, is found in under 5% of runs. 1,000 finds it in over 90%
// and loses little on large samples (a 49/51 split of 100,000 units). The
// rates are printed with -v; docs/results.md quotes them.
func TestSRMConcentrationChoice(t *testing.T) {
	const looks, threshold = 14, DefaultSRMThreshold
	cands := []float64{10000, 1000, 100}
	w := []float64{1, 1}
	// rates simulates runs experiments of n units over the looks, each unit in
	// the first arm with probability share, and returns each candidate's
	// share of runs that ever alarm.
	rates := func(share float64, n, runs int, seed uint64) []float64 {
		r := rand.New(rand.NewPCG(seed, 5627))
		hits := make([]int, len(cands))
		per := n / looks
		for range runs {
			var c [2]float64
			ls := make([][]float64, 0, looks)
			for range looks {
				for range per {
					if r.Float64() < share {
						c[0]++
					} else {
						c[1]++
					}
				}
				ls = append(ls, []float64{c[0], c[1]})
			}
			for i, k := range cands {
				if SequentialSRM(ls, w, k, threshold).Mismatch {
					hits[i]++
				}
			}
		}
		out := make([]float64, len(cands))
		for i, h := range hits {
			out[i] = float64(h) / float64(runs)
		}
		return out
	}
	const nullRuns = 4000
	null := rates(0.5, 2300, nullRuns, 1)
	small := rates(1000.0/2300, 2300, 1000, 2)
	large := rates(0.49, 100_000, 300, 3)
	t.Logf("concentration %v", cands)
	t.Logf("false alarms, 2,300 units, 50/50: %v", null)
	t.Logf("power, 1,000 vs 1,300 expected (2,300 units): %v", small)
	t.Logf("power, 49/51 of 100,000 units: %v", large)
	// A false alarm is a binomial draw with rate at most the threshold: 6
	// standard deviations above it a false failure is negligible.
	bound := threshold + 6*math.Sqrt(threshold*(1-threshold)/nullRuns)
	for i, k := range cands {
		if null[i] > bound {
			t.Errorf("concentration %g: false-alarm rate %.4f > %.4f", k, null[i], bound)
		}
	}
	def := -1
	for i, k := range cands {
		if k == DefaultSRMConcentration {
			def = i
		}
	}
	if def < 0 {
		t.Fatalf("the default %g is not among the candidates %v", float64(DefaultSRMConcentration), cands)
	}
	// Power is a binomial share: at 1,000 runs its sd is at most 0.016, at 300
	// at most 0.029; the bounds sit far from the simulated rates (0.95, 0.98).
	if small[def] < 0.9 || large[def] < 0.9 {
		t.Errorf("the default %g: power %.3f on 1,000 vs 1,300 and %.3f on 49/51 of 100,000, want ≥ 0.9 each", cands[def], small[def], large[def])
	}
	if small[0] > 0.05 {
		t.Errorf("concentration 10,000 finds 1,000 vs 1,300 in %.3f of runs: the reason for the default is gone", small[0])
	}
}
