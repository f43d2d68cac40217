package uplift

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.8g, want %.8g ± %g", what, got, want, tol)
	}
}

// TestCurvesByHand checks the curve definitions on six rows, worked by hand
// from causalml's get_cumgain / get_qini formulas (see eval.go):
//
//	k        1    2    3    4    5      6
//	arm      T    C    T    C    T      C
//	y        1    0    1    1    0      0
//	g(k)   (1)    2    3    2    5/6    2     (k=1 interpolated: C empty)
//	q(k)  (.5)    1    2    1    1/2    1     (k=1 interpolated: C empty)
//
// AUUC = (0+1+2+3+2+5/6+2)/|2|/7 = 65/84; Qini = (0+.5+1+2+1+.5+1)/|1|/7 − 1/2 = 5/14.
// Policy with e = 1/2: treat none = (1/.5)/6 = 1/3; treat all = (2/.5)/6 = 2/3;
// treat the top 3 = (2/.5 + 1/.5)/6 = 1.
func TestCurvesByHand(t *testing.T) {
	score := []float64{0.9, 0.8, 0.7, 0.6, 0.5, 0.4}
	y := []float64{1, 0, 1, 1, 0, 0}
	tr := []bool{true, false, true, false, true, false}
	// Shuffle the input order: the result must depend on the scores only.
	perm := []int{3, 0, 5, 1, 4, 2}
	ps, py, pt := make([]float64, 6), make([]float64, 6), make([]bool, 6)
	for i, j := range perm {
		ps[i], py[i], pt[i] = score[j], y[j], tr[j]
	}
	gain, qini, err := Curves(ps, py, pt)
	if err != nil {
		t.Fatal(err)
	}
	wantG := []float64{0, 1, 2, 3, 2, 5.0 / 6, 2}
	wantQ := []float64{0, 0.5, 1, 2, 1, 0.5, 1}
	for k := range wantG {
		near(t, "g", gain[k], wantG[k], 1e-12)
		near(t, "q", qini[k], wantQ[k], 1e-12)
	}
	ev, err := Evaluate(ps, py, pt, EvalOptions{Bins: 2, Fractions: []float64{0, 0.5, 1}, Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "AUUC", ev.AUUC, 65.0/84, 1e-12)
	near(t, "Qini", ev.Qini, 5.0/14, 1e-12)
	for _, c := range []struct {
		f, value, gain float64
	}{{0, 1.0 / 3, 0}, {0.5, 1, 2.0 / 3}, {1, 2.0 / 3, 1.0 / 3}} {
		for _, p := range ev.Policy {
			if p.Fraction == c.f {
				near(t, "policy value", p.Value, c.value, 1e-12)
				near(t, "policy gain", p.Gain, c.gain, 1e-12)
			}
		}
	}
	// Bins of 3: top (T1, C0, T1) uplift 1 − 0 = 1; bottom (C1, T0, C0) 0 − 1/2.
	near(t, "bin 1 uplift", ev.Bins[0].Uplift, 1, 1e-12)
	near(t, "bin 2 uplift", ev.Bins[1].Uplift, -0.5, 1e-12)
}

// TestQiniRandomIsZero: a ranking independent of the outcomes has a Qini
// coefficient near 0 (its expectation, by the definition of the random
// curve), and a ranking by the true effect has a clearly positive one.
func TestQiniRandomIsZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	score, truth, y := make([]float64, n), make([]float64, n), make([]float64, n)
	tr := make([]bool, n)
	for i := range y {
		x := rng.Float64()
		tr[i] = rng.IntN(2) == 1
		p := 0.1
		if tr[i] {
			p += 0.2 * x // effect grows with x
		}
		if rng.Float64() < p {
			y[i] = 1
		}
		truth[i], score[i] = x, rng.Float64()
	}
	qr, _ := QiniScore(score, y, tr)
	qt, _ := QiniScore(truth, y, tr)
	// The bootstrap spread of Qini at this size is about 0.03 (see the
	// Evaluate interval below); |random| < 0.1 is a 3-sigma bound.
	if math.Abs(qr) > 0.1 || qt < 0.1 {
		t.Errorf("Qini random %.4f, truth-ranked %.4f; want ≈ 0 and > 0.1", qr, qt)
	}
	ev, err := Evaluate(truth, y, tr, EvalOptions{Src: rand.NewPCG(3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if !(ev.QiniLow > 0 && ev.QiniLow < ev.Qini && ev.Qini < ev.QiniHigh) {
		t.Errorf("Qini %.4f, interval [%.4f, %.4f]; want an interval above 0 around it", ev.Qini, ev.QiniLow, ev.QiniHigh)
	}
	// Same seed, same interval.
	ev2, _ := Evaluate(truth, y, tr, EvalOptions{Src: rand.NewPCG(3, 4)})
	if ev2.QiniLow != ev.QiniLow || ev2.Policy[2].GainHigh != ev.Policy[2].GainHigh {
		t.Error("bootstrap is not reproducible with the same seed")
	}
}
