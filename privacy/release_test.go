package privacy

import (
	"math"
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
	// ε = 300 makes the noise small but not nil: ε_q = 100 for the 3 queries.
	r, err := NewRelease(smallInput(), Params{Epsilon: 300}, Options{Noise: zeroNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Units[0].N != 5 || r.Units[1].N != 5 {
		t.Errorf("units = %+v, want 5 and 5", r.Units)
	}
	// Hand-computed from the clamped values {1,2,3,4,8} and {2,4,6,8,0}:
	// means 3.6 and 4; sample variances 29.2/4 = 7.3 and 40/4 = 10.
	// Laplace noise variances 2(s/ε_q)²: sum (s = h = 4) 0.0032, centred squares
	// (s = h²/2 = 8) 0.0128, count (s = 1) 0.0002. The released variance adds
	// 1.96 sd of its own noise, sd = √(0.0128 + 4·dev²·0.0032)/n, dev = mean − 4.
	c, tr := r.Metrics[0].Variants[0], r.Metrics[0].Variants[1]
	vc := 7.3 + 1.959963984540054*math.Sqrt(0.0128+4*0.16*0.0032)/5
	vt := 10 + 1.959963984540054*math.Sqrt(0.0128)/5
	near(t, "control mean", c.Mean, 3.6, 1e-12)
	near(t, "control variance", c.Variance, vc, 1e-12)
	near(t, "treatment mean", tr.Mean, 4, 1e-12)
	near(t, "treatment variance", tr.Variance, vt, 1e-12)
	near(t, "control sum", c.Sum, 18, 1e-12)
	// Noise variance of the means (σ²_T + dev²σ²_n)/n²: control
	// (0.0032 + 0.16·0.0002)/25, treatment 0.0032/25.
	near(t, "control noise var", c.NoiseVar, (0.0032+0.16*0.0002)/25, 1e-15)
	near(t, "treatment noise var", tr.NoiseVar, 0.0032/25, 1e-15)
	if c.FewUnits || tr.FewUnits {
		t.Errorf("few units flagged at a count noise sd of 0.014")
	}
	cmp := r.Metrics[0].Comparisons[0]
	near(t, "lift", cmp.Absolute.Estimate, 0.4, 1e-12)
	se := math.Sqrt(vc/5 + vt/5 + c.NoiseVar + tr.NoiseVar)
	near(t, "lift se", cmp.Absolute.SE, se, 1e-12)
	// The noise share is 1e-4, where the normal-Laplace quantile is z_{0.975} to 1e-8.
	near(t, "ci low", cmp.Absolute.CILow, 0.4-1.959963984540054*se, 1e-6)
	near(t, "relative", cmp.Relative.Estimate, 0.4/3.6, 1e-12)
	// Fieller's ends solve (m_t − ρ m_c)² = q²(V_t + ρ² V_c).
	for _, end := range []float64{cmp.Relative.CILow, cmp.Relative.CIHigh} {
		rho := end + 1
		lhs := math.Pow(4-rho*3.6, 2)
		rhs := 1.959963984540054 * 1.959963984540054 * (vt/5 + tr.NoiseVar + rho*rho*(vc/5+c.NoiseVar))
		near(t, "Fieller equation at the interval's end", lhs, rhs, 1e-5)
	}
	if r.Epsilon != 300 || r.Delta != 0 || r.Mechanism != Laplace {
		t.Errorf("release spends (%g, %g) with %s, want (300, 0) laplace", r.Epsilon, r.Delta, r.Mechanism)
	}
}

// TestCompareClipsAndFlags: a relative interval reaching below −100% is clipped
// for a metric that cannot be negative; a control mean that cannot be told from
// zero gives no relative interval; noise above the sampling error with zero in the
// interval and too few units are flagged, each with its note.
func TestCompareClipsAndFlags(t *testing.T) {
	nonneg := experiment.Bounds{Lower: 0, Upper: 10}
	for _, c := range []struct {
		name      string
		t, c      VariantRelease
		b         experiment.Bounds
		wantRel   bool
		wantLow   float64 // relative CI low, when wantRel
		wantNote  string
		wantRange bool // absolute interval is [L−U, U−L]
	}{
		// Fieller: ρ from (0.1 − 1·ρ)² ≤ 1.96²(1 + 0.0001ρ²) reaches −1.86: clipped to 0.
		{"clipped", VariantRelease{Variant: "t", Mean: 0.1, SamplingVar: 1}, VariantRelease{Variant: "c", Mean: 1, SamplingVar: 0.0001}, nonneg, true, -1, "", false},
		{"zero control", VariantRelease{Variant: "t", Mean: 1, SamplingVar: 0.01}, VariantRelease{Variant: "c", Mean: 0.1, SamplingVar: 0.01, NoiseVar: 0.01}, nonneg, false, 0, NoteZeroControl, false},
		{"noisy", VariantRelease{Variant: "t", Mean: 5.1, SamplingVar: 0.01, NoiseVar: 0.05}, VariantRelease{Variant: "c", Mean: 5, SamplingVar: 0.01, NoiseVar: 0.05}, nonneg, true, -10, NoteNoisy, false},
		{"few units", VariantRelease{Variant: "t", Mean: 5.1, FewUnits: true}, VariantRelease{Variant: "c", Mean: 5}, nonneg, false, 0, NoteFewUnits, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Compare(c.t, c.c, c.b, 0.05)
			if (got.Relative != nil) != c.wantRel {
				t.Fatalf("relative = %+v, want present: %v", got.Relative, c.wantRel)
			}
			if c.wantRel && c.wantLow == -1 && got.Relative.CILow != -1 {
				t.Errorf("relative low %g, want −1 (−100%%)", got.Relative.CILow)
			}
			if c.wantRel && got.Relative.CILow < -1 {
				t.Errorf("relative low %g below −100%%", got.Relative.CILow)
			}
			if got.Note != c.wantNote || got.NotEnoughSignal != (c.wantNote != "") {
				t.Errorf("note %q (flag %v), want %q", got.Note, got.NotEnoughSignal, c.wantNote)
			}
			if c.wantRange && (got.Absolute.CILow != -10 || got.Absolute.CIHigh != 10 || got.Absolute.PValue != 1) {
				t.Errorf("absolute %+v, want [−10, 10] with p = 1", got.Absolute)
			}
		})
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
