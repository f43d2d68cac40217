package privacy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// coverageCorner simulates sims releases of two metrics over n units per arm at ε:
// revenue, uniform on [0, 10] in control and min(U(0, 11), 10) in treatment, bounds
// [0, 10] (true means 5 and 60/11); and converted, Bernoulli(0.2) against
// Bernoulli(0.25), bounds [0, 1]. It returns how often the intervals covered the
// true absolute and relative lifts, how often the delta method's relative interval
// with z_{0.975} (the former release) covered, and how many comparisons said "not
// enough signal"; it fails on a relative lower bound below −100% or a variance of 0.
type coverage struct {
	abs, rel, naive, nes float64 // shares of the 2·sims comparisons
	// few is the share of comparisons with too few units for the count noise
	// (the interval is then every value the bounds allow, and covers by
	// construction); noisy the share of the others whose noise variance exceeds
	// their sampling variance; published the number of comparisons with an
	// interval of their own (not few).
	few, noisy float64
	published  int
}

func coverageCorner(t *testing.T, eps float64, n, sims int, seed uint64, gauss bool) coverage {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	opt := Options{Noise: newSeeded(seed+100, gauss)}
	p := Params{Epsilon: eps}
	if gauss {
		opt.Mechanism, p.Delta = Gaussian, 1e-6
	}
	rb, cb := experiment.Bounds{Lower: 0, Upper: 10}, experiment.Bounds{Lower: 0, Upper: 1}
	trueAbs := []float64{60.0/11 - 5, 0.05}
	trueRel := []float64{(60.0/11)/5 - 1, 0.25/0.2 - 1}
	var abs, rel, naive, nes, few, noisy int
	xs, ys := make([]float64, n), make([]float64, n)
	bx, by := make([]float64, n), make([]float64, n)
	for range sims {
		for i := range n {
			xs[i], ys[i] = 10*rng.Float64(), 11*rng.Float64()
			bx[i], by[i] = 0, 0
			if rng.Float64() < 0.2 {
				bx[i] = 1
			}
			if rng.Float64() < 0.25 {
				by[i] = 1
			}
		}
		in := &Input{Control: "c", Units: []Count{{"c", int64(n)}, {"t", int64(n)}}, Metrics: []MetricStats{
			{Metric: "revenue", Bounds: rb, Variants: []Stats{Summarize("c", xs, rb), Summarize("t", ys, rb)}},
			{Metric: "converted", Bounds: cb, Variants: []Stats{Summarize("c", bx, cb), Summarize("t", by, cb)}},
		}}
		r, err := NewRelease(in, p, opt)
		if err != nil {
			t.Fatal(err)
		}
		for k, m := range r.Metrics {
			for _, v := range m.Variants {
				if !(v.Variance > 0) {
					t.Fatalf("ε=%g n=%d %s: released variance %g, want > 0 under noise", eps, n, m.Metric, v.Variance)
				}
			}
			c := m.Comparisons[0]
			if c.NotEnoughSignal {
				nes++
			}
			vc, vt := m.Variants[0], m.Variants[1]
			if c.Note == NoteFewUnits {
				few++
			} else if vc.NoiseVar+vt.NoiseVar > vc.SamplingVar+vt.SamplingVar {
				noisy++
			}
			if c.Absolute.CILow <= trueAbs[k] && trueAbs[k] <= c.Absolute.CIHigh {
				abs++
			}
			// No relative interval means every lift is possible: it covers.
			if c.Relative == nil || (c.Relative.CILow <= trueRel[k] && trueRel[k] <= c.Relative.CIHigh) {
				rel++
			}
			if c.Relative != nil && c.Relative.CILow < -1 {
				t.Fatalf("ε=%g n=%d %s: relative lift interval starts at %g, below −100%%", eps, n, m.Metric, c.Relative.CILow)
			}
			// The former interval: Δ/m_c ± 1.96·se by the delta method.
			if vc.Mean != 0 {
				mc2 := vc.Mean * vc.Mean
				se := math.Sqrt((vt.SamplingVar+vt.NoiseVar)/mc2 + vt.Mean*vt.Mean*(vc.SamplingVar+vc.NoiseVar)/(mc2*mc2))
				if math.Abs((vt.Mean-vc.Mean)/vc.Mean-trueRel[k]) <= 1.959963984540054*se {
					naive++
				}
			}
		}
	}
	all := float64(2 * sims)
	out := coverage{abs: float64(abs) / all, rel: float64(rel) / all, naive: float64(naive) / all, nes: float64(nes) / all, few: float64(few) / all, published: 2*sims - few}
	if out.published > 0 {
		out.noisy = float64(noisy) / float64(out.published)
	}
	return out
}

// TestCoverage simulates releases across ε ∈ {0.05, 0.1, 1} and n ∈ {50, 200, 2000}
// units per arm, the corners where the noise dominates included, and further
// corners (below) where it dominates while the release still publishes
// intervals. The 95% intervals of the absolute and the relative lift must cover
// the truth at least 95% of the time, within 3.5 binomial standard errors of the
// 2·1,500 comparisons per corner (√(0.95·0.05/3000) = 0.40%, so at least 93.6%; a
// false failure has probability about 2e-4 per corner). The delta-method interval
// the release used before must under-cover somewhere, or this test could not tell.
//
// At the smallest corners (ε ≤ 0.1 with n ≤ 200, Laplace or Gaussian) every
// comparison has too few units for the count noise: the release says "not enough
// signal" with the whole range the bounds allow, which covers by construction, so
// there the test checks that nothing else is published; the noise-aware interval
// itself (mixture quantile, Fieller) is checked where the noise variance exceeds
// the sampling variance for at least 90% of the published comparisons (ε = 0.05
// with 2,000 and 10,000 units, ε = 0.1 with 2,000 and 5,000, Gaussian ε = 0.1
// with 5,000).
func TestCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte-Carlo simulation; skipped with -short")
	}
	const sims = 1500
	tol := 3.5 * math.Sqrt(0.95*0.05/(2*sims))
	// regime: "few" when every comparison must have too few units (covering by
	// construction), "noisy" when at least 90% must publish an interval of their
	// own and at least 90% of those be dominated by the noise; "" says nothing.
	type corner struct {
		eps    float64
		n      int
		gauss  bool
		regime string
		seed   uint64
	}
	var corners []corner
	seed := uint64(1)
	for _, eps := range []float64{0.05, 0.1, 1} {
		for _, n := range []int{50, 200, 2000} {
			seed++
			c := corner{eps: eps, n: n, seed: seed}
			switch {
			case eps <= 0.1 && n <= 200:
				c.regime = "few"
			case eps <= 0.1:
				c.regime = "noisy"
			}
			corners = append(corners, c)
		}
	}
	corners = append(corners,
		corner{eps: 0.05, n: 10000, regime: "noisy", seed: 201},
		corner{eps: 0.1, n: 5000, regime: "noisy", seed: 202},
		corner{eps: 0.05, n: 50, gauss: true, regime: "few", seed: 203},
		corner{eps: 0.1, n: 200, gauss: true, regime: "few", seed: 204},
		corner{eps: 0.1, n: 5000, gauss: true, regime: "noisy", seed: 205},
		corner{eps: 0.3, n: 300, gauss: true, seed: 99},
	)
	worstNaive := 1.0
	for _, k := range corners {
		name := fmt.Sprintf("eps=%g/n=%d", k.eps, k.n)
		if k.gauss {
			name = "gaussian/" + name
		}
		t.Run(name, func(t *testing.T) {
			c := coverageCorner(t, k.eps, k.n, sims, k.seed, k.gauss)
			if c.abs < 0.95-tol || c.rel < 0.95-tol {
				t.Errorf("coverage absolute %.4f, relative %.4f; want both ≥ %.4f", c.abs, c.rel, 0.95-tol)
			}
			switch k.regime {
			case "few":
				if c.few < 1 {
					t.Errorf("%.4f of the comparisons have too few units, want all: %d publish an interval this corner does not check", c.few, c.published)
				}
			case "noisy":
				if c.published < 2*sims*9/10 || c.noisy < 0.9 {
					t.Errorf("%d of %d comparisons publish an interval, %.3f of them noise-dominated; want at least 90%% and 90%%, or the corner does not test the noise-aware interval", c.published, 2*sims, c.noisy)
				}
			}
			if !k.gauss {
				worstNaive = min(worstNaive, c.naive)
			}
			t.Logf("absolute %.4f relative %.4f (delta method before: %.4f); not enough signal %.3f; too few units %.3f; noise-dominated %.3f of the %d others", c.abs, c.rel, c.naive, c.nes, c.few, c.noisy, c.published)
		})
	}
	if worstNaive > 0.95-tol {
		t.Errorf("the former delta-method interval covered at least %.4f everywhere: the simulation cannot tell a bad interval", worstNaive)
	}
}
