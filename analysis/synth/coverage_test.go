package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// simPanel draws a panel with a planted effect and known weights: 10 donors
// Y_jt = μ_j + λ_j f_t + e_jt (two factors, e ~ N(0, 1)), and a treated unit
// Y_1t = Σ_j w*_j Y_jt + ε_t + θ·1{t ≥ T₀}, ε ~ N(0, 0.25²), with w* = (0.5, 0.3,
// 0.2, 0, …): the treated unit is inside the donors' hull and its
// counterfactual is exactly the w*-combination plus noise. T₀ = 30, T₁ = 6.
func simPanel(rng *rand.Rand, theta float64) (Panel, []float64) {
	const J, T0, T = 10, 30, 36
	wStar := []float64{0.5, 0.3, 0.2, 0, 0, 0, 0, 0, 0, 0}
	f1, f2 := make([]float64, T), make([]float64, T)
	for t := range T {
		f1[t] = math.Sin(float64(t)/4) + rng.NormFloat64()*0.5
		f2[t] = float64(t) / 10
	}
	p := Panel{Units: []string{"treated"}}
	for t := range T {
		p.Periods = append(p.Periods, fmt.Sprintf("t%02d", t))
	}
	y1 := make([]float64, T)
	p.Y = append(p.Y, y1)
	for j := range J {
		mu, l1, l2 := 10+rng.NormFloat64()*2, 1+rng.NormFloat64(), rng.NormFloat64()
		y := make([]float64, T)
		for t := range T {
			y[t] = mu + l1*f1[t] + l2*f2[t] + rng.NormFloat64()
			y1[t] += wStar[j] * y[t]
		}
		p.Units = append(p.Units, fmt.Sprintf("d%d", j))
		p.Y = append(p.Y, y)
	}
	for t := range T {
		y1[t] += 0.25 * rng.NormFloat64()
		if t >= T0 {
			y1[t] += theta
		}
	}
	return p, wStar
}

func covers(iv *Interval, x float64) bool {
	return !iv.Empty && (iv.Low == nil || *iv.Low <= x) && (iv.High == nil || x <= *iv.High)
}

// TestConformalCoverage: over 1,000 seeded simulated panels (simPanel) the
// 95% conformal interval of the average effect covers the planted θ = 2 in
// at least 93% of them (the bar; CWZ 2021's moving-block test is
// exact under exchangeable residuals, and its p-value has granularity 1/36
// here, so the nominal coverage is about 1 − 1/36 = 97%; the Monte-Carlo SD
// of a 95% coverage over 1,000 runs is 0.007). The per-period intervals
// (granularity 1/31) must cover at the same rate, and the SCM weights must
// recover w*: mean |ŵ − w*| summed over donors below 0.2 (about 0.14 in
// this design, where the treated noise has SD 0.25). The augmented method
// runs 300 panels, its refits being dearer (SD of a 95% coverage 0.013).
func TestConformalCoverage(t *testing.T) {
	for _, m := range []Method{SCM, Augmented} {
		t.Run(string(m), func(t *testing.T) {
			runs := 1000
			if m == Augmented {
				runs = 300 // the same test, its refits dearer; SD 0.013
			}
			if testing.Short() {
				runs = 100
			}
			const theta = 2.0
			rng := rand.New(rand.NewPCG(2021, uint64(len(m))))
			cover, coverPath, nPath, werr := 0, 0, 0, 0.0
			for range runs {
				p, wStar := simPanel(rng, theta)
				rep, err := Run(p, Options{Treated: []int{0}, Start: 30, Method: m, Conformal: true})
				if err != nil {
					t.Fatal(err)
				}
				e := rep.Average
				if covers(&e.Conformal.Interval, theta) {
					cover++
				}
				for _, pt := range e.Path[30:] {
					nPath++
					if covers(pt.Interval, theta) {
						coverPath++
					}
				}
				w := e.fit.SCMW
				for j := range wStar {
					werr += math.Abs(w[j] - wStar[j])
				}
			}
			c, cp := float64(cover)/float64(runs), float64(coverPath)/float64(nPath)
			t.Logf("%s: average-effect coverage %.3f, per-period %.3f, mean Σ|ŵ − w*| %.3f", m, c, cp, werr/float64(runs))
			bar := 0.93
			if testing.Short() {
				bar = 0.88 // 100 runs: SD 0.022
			}
			if c < bar || cp < bar {
				t.Errorf("coverage %.3f (average), %.3f (per period), want ≥ %.2f", c, cp, bar)
			}
			if werr/float64(runs) > 0.2 {
				t.Errorf("mean Σ|ŵ − w*| = %.3f", werr/float64(runs))
			}
		})
	}
}
