package privacy

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g (±%g)", name, got, want, tol)
	}
}

// smallInput: control values {1,2,3,4,10} and treatment {2,4,6,8,−1}, bounds [0, 8],
// so 10 clamps to 8 and −1 to 0.
func smallInput() *Input {
	b := experiment.Bounds{Lower: 0, Upper: 8}
	return &Input{
		Control: "control",
		Units:   []Count{{"control", 5}, {"treatment", 5}},
		Metrics: []MetricStats{{Metric: "revenue", Bounds: b, Variants: []Stats{
			Summarize("control", []float64{1, 2, 3, 4, 10}, b),
			Summarize("treatment", []float64{2, 4, 6, 8, -1}, b),
		}}},
	}
}

func TestReleaseZeroNoiseExact(t *testing.T) {
	r, err := NewRelease(smallInput(), Params{Epsilon: 1}, Options{Noise: zeroNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Units[0].N != 5 || r.Units[1].N != 5 {
		t.Errorf("units = %+v, want 5 and 5", r.Units)
	}
	// Hand-computed from the clamped values {1,2,3,4,8} and {2,4,6,8,0}:
	// means 3.6 and 4; sample variances 29.2/4 = 7.3 and 40/4 = 10.
	c, tr := r.Metrics[0].Variants[0], r.Metrics[0].Variants[1]
	near(t, "control mean", c.Mean, 3.6, 1e-12)
	near(t, "control variance", c.Variance, 7.3, 1e-12)
	near(t, "treatment mean", tr.Mean, 4, 1e-12)
	near(t, "treatment variance", tr.Variance, 10, 1e-12)
	near(t, "control sum", c.Sum, 18, 1e-12)
	// Noise variances, by hand: 3 queries (counts, Σ(y−c), Σ(y−c)²) so ε_q = 1/3;
	// h = 4, Laplace variance 2(h/ε_q)² = 288 for the sum and 2·3² = 18 for the count.
	// Control deviation from the centre 4 is −0.4: (288 + 0.16·18)/25 = 11.6352;
	// treatment: 288/25 = 11.52.
	near(t, "control noise var", c.NoiseVar, 11.6352, 1e-9)
	near(t, "treatment noise var", tr.NoiseVar, 11.52, 1e-9)
	cmp := r.Metrics[0].Comparisons[0]
	near(t, "lift", cmp.Absolute.Estimate, 0.4, 1e-12)
	// se = sqrt(7.3/5 + 10/5 + 11.6352 + 11.52) = sqrt(26.6152)
	near(t, "lift se", cmp.Absolute.SE, math.Sqrt(26.6152), 1e-9)
	near(t, "ci low", cmp.Absolute.CILow, 0.4-1.959963984540054*math.Sqrt(26.6152), 1e-9)
	near(t, "relative", cmp.Relative.Estimate, 0.4/3.6, 1e-12)
	if r.Epsilon != 1 || r.Delta != 0 || r.Mechanism != Laplace {
		t.Errorf("release spends (%g, %g) with %s, want (1, 0) laplace", r.Epsilon, r.Delta, r.Mechanism)
	}
}

func TestReleaseGaussianZeroNoise(t *testing.T) {
	r, err := NewRelease(smallInput(), Params{Epsilon: 1, Delta: 1e-6}, Options{Mechanism: Gaussian, Noise: zeroNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	// Means are exact with zero noise. The noise on the centred sum (h = 4, ε_q = 1/3,
	// δ_q = 1e-6/3) is that of the analytic Gaussian mechanism (Balle and Wang 2018),
	// never above the classical σ = h·sqrt(2 ln(1.25/δ_q))/ε_q ≈ 66.0 (Dwork and Roth
	// 2014, Thm A.1) and not far below it at this ε. The treatment mean sits at the
	// centre, so its noise variance is σ²_T/n².
	tr := r.Metrics[0].Variants[1]
	near(t, "treatment mean", tr.Mean, 4, 1e-12)
	sigma := math.Sqrt(tr.NoiseVar) * 5
	classical := 4 * math.Sqrt(2*math.Log(1.25/(1e-6/3))) * 3
	if !(sigma <= classical && sigma > 0.5*classical) {
		t.Errorf("Gaussian σ of the sum %g, want in (%g, %g]", sigma, 0.5*classical, classical)
	}
	near(t, "delta spent", r.Delta, 1e-6, 1e-18)
}

func TestReleaseInvalid(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(in *Input, p *Params, o *Options)
		want  string
		field string
	}{
		{"no bounds", func(in *Input, p *Params, o *Options) { in.Metrics[0].Bounds = experiment.Bounds{} }, "needs finite per-unit bounds", "metrics[0].bounds"},
		{"unknown control", func(in *Input, p *Params, o *Options) { in.Control = "ctl" }, `control variant "ctl"`, "control"},
		{"n mismatch", func(in *Input, p *Params, o *Options) { in.Metrics[0].Variants[1].N = 4 }, "set own_count", "metrics[0].variants[1].n"},
		{"zero epsilon", func(in *Input, p *Params, o *Options) { p.Epsilon = 0 }, "must be positive", "epsilon"},
		{"gaussian without delta", func(in *Input, p *Params, o *Options) { o.Mechanism = Gaussian }, "needs δ > 0", "delta"},
		{"bad mechanism", func(in *Input, p *Params, o *Options) { o.Mechanism = "cauchy" }, `got "cauchy"`, "mechanism"},
		{"one variant", func(in *Input, p *Params, o *Options) { in.Units = in.Units[:1] }, "at least two", "units"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, p, o := smallInput(), Params{Epsilon: 1}, Options{Noise: zeroNoise{}}
			c.edit(in, &p, &o)
			_, err := NewRelease(in, p, o)
			if !experiment.Is(err, experiment.Invalid) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("err = %v, want Invalid naming %s with %q", err, c.field, c.want)
			}
		})
	}
}

// TestNoiseVarianceMatchesEmpirical checks the noise variance the intervals rely on
// against the empirical variance of released means over 20,000 seeded releases.
func TestNoiseVarianceMatchesEmpirical(t *testing.T) {
	for _, gauss := range []bool{false, true} {
		nz := newSeeded(7, gauss)
		p := Params{Epsilon: 0.5}
		opt := Options{Noise: nz}
		if gauss {
			p.Delta, opt.Mechanism = 1e-5, Gaussian
		}
		// n = 1000 per arm, so the noised count never reaches the clamp at 1.
		b := experiment.Bounds{Lower: 0, Upper: 8}
		in := &Input{Control: "control", Units: []Count{{"control", 1000}, {"treatment", 1000}}, Metrics: []MetricStats{{
			Metric: "revenue", Bounds: b, Variants: []Stats{{"control", 1000, 3600, 20000}, {"treatment", 1000, 4000, 26000}},
		}}}
		const reps = 20000
		var s, ss float64
		for range reps {
			r, err := NewRelease(in, p, opt)
			if err != nil {
				t.Fatal(err)
			}
			m := r.Metrics[0].Variants[0]
			s += m.Sum
			ss += m.Sum * m.Sum
		}
		mean := s / reps
		got := ss/reps - mean*mean
		// The released sum is Σ̃(y−c) + ñc: its variance is σ²_T + c²σ²_n.
		mech := mechanism{opt: Options{Mechanism: opt.Mechanism}, q: query{eps: p.Epsilon / 3, delta: p.Delta / 3}}
		want := mech.variance(4) + 16*mech.variance(1)
		if math.Abs(got/want-1) > 0.05 {
			t.Errorf("gauss=%v: empirical noise variance of the sum %g, model %g", gauss, got, want)
		}
	}
}

// TestCoverage simulates 2,000 experiments with 300 units per arm, revenue uniform
// on [0, 10] in control and [0, 11] clamped to [0, 10] in treatment, released at
// ε = 0.3 so that the noise variance (2·(5/0.1)²/300² ≈ 0.056 for Laplace) is about
// twice the sampling variance (100/12/300 ≈ 0.028). The 95% interval must
// cover the true difference 95% of the time: within [0.935, 0.965] (3 binomial
// standard errors of 0.0049). An interval that ignores the noise must under-cover,
// which shows the test can fail.
func TestCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte-Carlo simulation; skipped with -short")
	}
	for _, gauss := range []bool{false, true} {
		name := "laplace"
		if gauss {
			name = "gaussian"
		}
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			nz := newSeeded(3, gauss)
			b := experiment.Bounds{Lower: 0, Upper: 10}
			// True means: control 5; treatment E[min(U(0,11), 10)] = (10·10/2 + 1·10)/11 = 60/11.
			trueDiff := 60.0/11 - 5
			const sims, n = 2000, 300
			p, opt := Params{Epsilon: 0.3}, Options{Noise: nz}
			if gauss {
				p.Delta, opt.Mechanism = 1e-3, Gaussian
			}
			covered, naive := 0, 0
			xs, ys := make([]float64, n), make([]float64, n)
			for range sims {
				for i := range n {
					xs[i] = 10 * rng.Float64()
					ys[i] = 11 * rng.Float64()
				}
				in := &Input{Control: "c", Units: []Count{{"c", n}, {"t", n}}, Metrics: []MetricStats{{
					Metric: "revenue", Bounds: b, Variants: []Stats{Summarize("c", xs, b), Summarize("t", ys, b)},
				}}}
				r, err := NewRelease(in, p, opt)
				if err != nil {
					t.Fatal(err)
				}
				a := r.Metrics[0].Comparisons[0].Absolute
				if a.CILow <= trueDiff && trueDiff <= a.CIHigh {
					covered++
				}
				v := r.Metrics[0].Variants
				se := math.Sqrt(v[0].SamplingVar + v[1].SamplingVar)
				if math.Abs(a.Estimate-trueDiff) <= 1.959963984540054*se {
					naive++
				}
			}
			cov, ncov := float64(covered)/sims, float64(naive)/sims
			if cov < 0.935 || cov > 0.965 {
				t.Errorf("coverage %.4f, want within [0.935, 0.965]", cov)
			}
			if ncov > 0.90 {
				t.Errorf("sampling-only coverage %.4f: the noise is too small for this test to tell", ncov)
			}
			t.Logf("coverage %.4f; ignoring noise %.4f", cov, ncov)
		})
	}
}

// TestPrivacyLoss releases from two neighbouring datasets, D and D plus one unit at
// the upper bound (the worst case for the sum), 200,000 times each with seeded
// Laplace noise, and estimates the privacy loss max |ln P(out ∈ bin | D)/P(out ∈ bin | D')|
// over histogram bins of the released sum and unit count. Each of those is one of the
// three queries of the release, so its loss must stay within ε/3 (plus four standard
// errors of the log-ratio estimate); and it must come close to ε/3, or the test could
// not detect a sensitivity that is too small.
func TestPrivacyLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte-Carlo simulation; skipped with -short")
	}
	b := experiment.Bounds{Lower: -5, Upper: 5} // centre 0: the released sum is Σy + noise
	base := []float64{1, -2, 3, 0.5, -4, 5, 2}
	mk := func(vals []float64) *Input {
		ctl := []float64{0, 1}
		return &Input{Control: "c", Units: []Count{{"c", int64(len(ctl))}, {"t", int64(len(vals))}}, Metrics: []MetricStats{{
			Metric: "m", Bounds: b, Variants: []Stats{Summarize("c", ctl, b), Summarize("t", vals, b)},
		}}}
	}
	d, d2 := mk(base), mk(append(append([]float64{}, base...), 5))
	const eps, reps = 3.0, 200000
	epsQ := eps / 3
	type out struct{ sum, n []float64 }
	run := func(in *Input, seed uint64) out {
		nz := newSeeded(seed, false)
		var o out
		for range reps {
			r, err := NewRelease(in, Params{Epsilon: eps}, Options{Noise: nz})
			if err != nil {
				t.Fatal(err)
			}
			v := r.Metrics[0].Variants[1]
			o.sum = append(o.sum, v.Sum)
			o.n = append(o.n, float64(r.Units[1].N))
		}
		return o
	}
	o1, o2 := run(d, 11), run(d2, 12)
	check := func(name string, a, c []float64, width float64) {
		h1, h2 := map[int]float64{}, map[int]float64{}
		for _, x := range a {
			h1[int(math.Floor(x/width))]++
		}
		for _, x := range c {
			h2[int(math.Floor(x/width))]++
		}
		worst, excess := 0.0, math.Inf(-1)
		for k, n1 := range h1 {
			n2 := h2[k]
			if n1 < 500 || n2 < 500 {
				continue
			}
			l := math.Abs(math.Log(n1 / n2))
			slack := 4 * math.Sqrt(1/n1+1/n2)
			worst = max(worst, l)
			excess = max(excess, l-slack-epsQ)
		}
		if excess > 0 {
			t.Errorf("%s: privacy loss exceeds ε/3 = %g by %g beyond sampling slack", name, epsQ, excess)
		}
		if worst < 0.8*epsQ {
			t.Errorf("%s: largest observed loss %g is far below ε/3 = %g: the test has no power", name, worst, epsQ)
		}
		t.Logf("%s: largest observed loss %.3f, ε/3 = %.3f", name, worst, epsQ)
	}
	check("sum", o1.sum, o2.sum, 1)
	check("count", o1.n, o2.n, 1)
}
