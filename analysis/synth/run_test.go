package synth

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPredictors: with predictors the weights match them, not the outcomes.
// By hand: treated predictors (1, 1), donors (0, 0), (2, 2), (5, 0): (1, 1)
// is the midpoint of the first two, so w = (½, ½, 0) whatever the outcomes.
// With a non-diagonal-unit V on random predictors the weights equal the
// brute-force optimum of Σₖ Vₖ(x₁ₖ − X₀ₖw)² (bruteForce of simplex_test.go
// on the √V-scaled rows).
func TestPredictors(t *testing.T) {
	p := Panel{Units: []string{"t", "a", "b", "c"}, Periods: []string{"1", "2", "3", "4"},
		Y: [][]float64{{5, 6, 7, 9}, {1, 2, 3, 4}, {9, 8, 7, 6}, {4, 4, 4, 4}}}
	rep, err := Run(p, Options{Treated: []int{0}, Start: 3, Predictors: [][]float64{{1, 1}, {0, 0}, {2, 2}, {5, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	w := rep.Average.fit.W
	near(t, "w_a", w[0], 0.5, 1e-12)
	near(t, "w_b", w[1], 0.5, 1e-12)
	near(t, "w_c", w[2], 0, 1e-12)
	// Synthetic = ½a + ½b = 5 in every period; effect in period 4: 9 − 5.
	near(t, "effect", rep.Average.Effect, 4, 1e-12)

	rng := rand.New(rand.NewPCG(3, 3))
	for range 50 {
		const J, K = 5, 3
		pred := make([][]float64, J+1)
		for u := range pred {
			pred[u] = []float64{rng.NormFloat64(), 10 * rng.NormFloat64(), rng.NormFloat64()}
		}
		v := []float64{1, 0.01, 25}
		q := Panel{Units: make([]string, J+1), Periods: []string{"1", "2", "3"}, Y: make([][]float64, J+1)}
		for u := range q.Y {
			q.Units[u] = string(rune('a' + u))
			q.Y[u] = []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		}
		rep, err := Run(q, Options{Treated: []int{0}, Start: 2, Predictors: pred, V: v})
		if err != nil {
			t.Fatal(err)
		}
		a, b := make([]float64, K*J), make([]float64, K)
		for k := range K {
			s := math.Sqrt(v[k])
			b[k] = s * pred[0][k]
			for j := range J {
				a[k*J+j] = s * pred[j+1][k]
			}
		}
		want := bruteForce(a, b, J)
		near(t, "weighted predictor loss", residual(a, b, rep.Average.fit.W), want, 1e-9*(1+want))
	}
}

// TestPlaceboInterval checks the placebo test's closed-form interval
// against its definition: shifting the treated's post-period outcomes by θ
// and rerunning the whole test, θ just inside either end keeps p > α, θ
// just outside gives p ≤ α.
func TestPlaceboInterval(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	p, _ := simPanel(rng, 3)
	// 19 more donors, each with its own post-period level shift (large
	// placebo ratios), and α = 0.3, so that the interval is bounded (k = 9: θ
	// is kept while r(θ) is at most the 9th largest placebo ratio).
	for j := range 19 {
		y := make([]float64, len(p.Periods))
		shock := 5 * rng.NormFloat64() // a level shift in the post-period
		for tt := range y {
			y[tt] = p.Y[1+j%10][tt] + rng.NormFloat64()
			if tt >= 30 {
				y[tt] += shock
			}
		}
		p.Units = append(p.Units, "extra"+string(rune('a'+j)))
		p.Y = append(p.Y, y)
	}
	o := Options{Treated: []int{0}, Start: 30, Placebo: true, Alpha: 0.3}
	rep, err := Run(p, o)
	if err != nil {
		t.Fatal(err)
	}
	iv := rep.Average.Placebo.Interval
	if iv.Low == nil || iv.High == nil {
		t.Fatalf("interval %+v, want bounded", iv)
	}
	pAt := func(theta float64) float64 {
		q := Panel{Units: p.Units, Periods: p.Periods, Y: append([][]float64{nil}, p.Y[1:]...)}
		q.Y[0] = append([]float64(nil), p.Y[0]...)
		for tt := 30; tt < len(q.Periods); tt++ {
			q.Y[0][tt] -= theta
		}
		r, err := Run(q, o)
		if err != nil {
			t.Fatal(err)
		}
		return r.Average.Placebo.PValue
	}
	const eps = 1e-6
	for _, c := range []struct {
		theta float64
		keep  bool
	}{{*iv.Low + eps, true}, {*iv.Low - eps, false}, {*iv.High - eps, true}, {*iv.High + eps, false}} {
		if pv := pAt(c.theta); (pv > o.Alpha) != c.keep {
			t.Errorf("θ = %g: p %g, kept %v, want %v", c.theta, pv, pv > o.Alpha, c.keep)
		}
	}
}

// TestHullWarning: a treated series above every donor in every pre-period
// is outside their convex hull; the report counts the periods and warns,
// and the intercept (matching changes, not levels) removes the cause here.
func TestHullWarning(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	p, _ := simPanel(rng, 0)
	for tt := range p.Y[0] {
		hi := math.Inf(-1)
		for _, y := range p.Y[1:] {
			hi = math.Max(hi, y[tt])
		}
		p.Y[0][tt] = hi + 5 + 0.1*rng.NormFloat64()
	}
	rep, err := Run(p, Options{Treated: []int{0}, Start: 30})
	if err != nil {
		t.Fatal(err)
	}
	e := rep.Average
	if e.HullPeriods != 30 || len(e.Warnings) == 0 || !strings.Contains(e.Warnings[0], "convex hull") {
		t.Errorf("outside-hull periods %d, warnings %q; want 30 and a warning", e.HullPeriods, e.Warnings)
	}
	// The placebo and conformal options are off: no inference reported.
	if e.Conformal != nil || e.Placebo != nil {
		t.Errorf("inference reported without being asked for")
	}
}

// TestRunErrors: data conditions are errors wrapping ErrInsufficient.
func TestRunErrors(t *testing.T) {
	p := Panel{Units: []string{"t", "a", "b"}, Periods: []string{"1", "2", "3"}, Y: [][]float64{{1, 2, 3}, {1, 1, 1}, {2, 2, 2}}}
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"no treated", Options{Start: 2}},
		{"one donor", Options{Treated: []int{0, 1}, Start: 2}},
		{"one pre-period", Options{Treated: []int{0}, Start: 1}},
		{"no post-period", Options{Treated: []int{0}, Start: 3}},
		{"augmented cross-validation on two periods", Options{Treated: []int{0}, Start: 2, Method: Augmented}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Run(p, c.o); err == nil || !strings.Contains(err.Error(), "insufficient") {
				t.Errorf("err %v, want ErrInsufficient", err)
			}
		})
	}
}
