package did

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
)

// simPanel draws a balanced panel y_it = α_i + λ_t + τ(i,t) + pre(i,t) + ε,
// ε ~ N(0,1), where the cohort of each unit is drawn from cohorts (NeverTreated
// allowed) and τ and pre are given.
func simPanel(rng *rand.Rand, units, periods int, cohorts []int, tau, pre func(g, t int) float64) (Panel, []int) {
	var p Panel
	var cohort []int
	lambda := make([]float64, periods)
	for t := range lambda {
		lambda[t] = 0.2 * float64(t)
	}
	for u := 0; u < units; u++ {
		g := cohorts[rng.IntN(len(cohorts))]
		a := rng.NormFloat64() * 2
		for t := 0; t < periods; t++ {
			y := a + lambda[t] + rng.NormFloat64()
			if g != NeverTreated {
				if t >= g {
					y += tau(g, t)
				} else if pre != nil {
					y += pre(g, t)
				}
			}
			p.Unit, p.Time, p.Y = append(p.Unit, u), append(p.Time, t), append(p.Y, y)
			cohort = append(cohort, g)
		}
	}
	return p, cohort
}

func TestEventStudy(t *testing.T) {
	dynamic := func(g, t int) float64 { return 1 + 0.5*float64(t-g) } // same for every cohort
	for _, c := range []struct {
		name     string
		pre      func(g, t int) float64
		wantWarn bool
	}{
		{"parallel trends", nil, false},
		{"treated units trend up before treatment", func(g, t int) float64 { return 0.25 * float64(t-g+1) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			p, cohort := simPanel(rng, 400, 10, []int{4, 6, NeverTreated}, dynamic, c.pre)
			es, err := EventStudy(p, cohort, EventStudyOptions{TWFEOptions: DefaultTWFEOptions()})
			if err != nil {
				t.Fatal(err)
			}
			if !es.PreTrend.Tested || es.PreTrend.Q != 5 {
				t.Fatalf("pre-trend test %+v; want the 5 leads −6…−2 tested", es.PreTrend)
			}
			if got := es.PreTrend.Warning != ""; got != c.wantWarn {
				t.Errorf("warning = %q (p = %.4g); want warning %v", es.PreTrend.Warning, es.PreTrend.PValue, c.wantWarn)
			}
			if c.pre != nil {
				return
			}
			for _, k := range es.Coefs {
				want := 0.0
				if k.RelTime >= 0 {
					want = dynamic(0, k.RelTime)
				}
				// Truth by construction of simPanel; 4 SE leaves a false-alarm
				// rate of 6e-5 per coefficient.
				if math.Abs(k.Estimate-want) > 4*k.SE {
					t.Errorf("δ(%d) = %.3f ± %.3f, truth %.3f", k.RelTime, k.Estimate, k.SE, want)
				}
			}
		})
	}
}

func TestCallawaySantAnnaStaggered(t *testing.T) {
	// Heterogeneous, growing effects: cohort g has τ = (1 + g/4)(1 + e), e = t − g.
	// Static TWFE is biased here (it uses early-treated units as controls for
	// later ones); the group-time estimates are not.
	tau := func(g, t int) float64 { return (1 + float64(g)/4) * (1 + float64(t-g)) }
	rng := rand.New(rand.NewPCG(3, 4))
	const periods = 8
	p, cohort := simPanel(rng, 1200, periods, []int{3, 5, 7, NeverTreated}, tau, nil)
	cs, err := CallawaySantAnna(p, cohort, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cs.NUnits != 1200 || cs.Dropped != 0 {
		t.Errorf("units %d dropped %d; want 1200, 0", cs.NUnits, cs.Dropped)
	}
	for _, a := range cs.ATT {
		want := 0.0
		if a.Post() {
			want = tau(a.Group, a.Time)
		}
		if math.Abs(a.Estimate-want) > 4*a.SE {
			t.Errorf("%s = %.3f ± %.3f, truth %.3f", a.Name, a.Estimate, a.SE, want)
		}
	}
	// Truth of the simple aggregation: cohort-size-weighted mean of τ over post
	// cells, with this sample's cohort sizes.
	size := map[int]float64{}
	for i, g := range cohort {
		if p.Time[i] == 0 && g != NeverTreated {
			size[g]++
		}
	}
	var num, den float64
	for g, n := range size {
		for tt := g; tt < periods; tt++ {
			num += n * tau(g, tt)
			den += n
		}
	}
	if math.Abs(cs.Simple.Estimate-num/den) > 4*cs.Simple.SE {
		t.Errorf("simple = %.3f ± %.3f, truth %.3f", cs.Simple.Estimate, cs.Simple.SE, num/den)
	}
	for _, d := range cs.Dynamic {
		var num, den float64
		for g, n := range size {
			if g+d.RelTime >= 0 && g+d.RelTime < periods {
				if d.RelTime >= 0 {
					num += n * tau(g, g+d.RelTime)
				}
				den += n
			}
		}
		if math.Abs(d.Estimate-num/den) > 4*d.SE {
			t.Errorf("θ(%d) = %.3f ± %.3f, truth %.3f", d.RelTime, d.Estimate, d.SE, num/den)
		}
	}
	// The static TWFE coefficient on D_it = 1{t ≥ g} is pulled away from the
	// truth; this guards the premise of the test.
	d := make([]float64, len(p.Y))
	for i, g := range cohort {
		d[i] = indicator(g != NeverTreated && p.Time[i] >= g)
	}
	fit, err := TWFE(p, [][]float64{d}, []string{"D"}, DefaultTWFEOptions())
	if err != nil {
		t.Fatal(err)
	}
	if c := fit.Coef(0); math.Abs(c.Estimate-num/den) < 4*c.SE && math.Abs(c.Estimate-cs.Simple.Estimate) < 0.5 {
		t.Errorf("static TWFE %.3f ± %.3f is not biased against the simple ATT %.3f; the test lost its point", c.Estimate, c.SE, cs.Simple.Estimate)
	}
}

// TestCallawaySantAnnaTwoPeriods: with one cohort and two periods ATT(g,t) is
// the 2×2 DiD; on Card & Krueger's balanced panel it must be Table 3 row 4's
// 2.75, equal the first difference, and its influence-function SE must equal
// the HC0 SE of the first-difference regression (the CR1 SE of TestTWFETwoPeriods
// without its small-sample factor).
func TestCallawaySantAnnaTwoPeriods(t *testing.T) {
	var p Panel
	var cohort []int
	for i, s := range loadCK(t) {
		a, b := s.fte(""), s.fte("2")
		if math.IsNaN(a) || math.IsNaN(b) {
			continue
		}
		g := NeverTreated
		if s["state"] == 1 {
			g = 1
		}
		for w, v := range []float64{a, b} {
			p.Unit, p.Time, p.Y = append(p.Unit, i), append(p.Time, w), append(p.Y, v)
			cohort = append(cohort, g)
		}
	}
	cs, err := CallawaySantAnna(p, cohort, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.ATT) != 1 {
		t.Fatalf("%d cells, want 1", len(cs.ATT))
	}
	x := make([]float64, len(p.Y))
	for i, g := range cohort {
		x[i] = indicator(g == 1 && p.Time[i] == 1)
	}
	fit, _ := TWFE(p, [][]float64{x}, []string{"nj:post"}, DefaultTWFEOptions())
	c := fit.Coef(0)
	g, n := float64(fit.G), float64(fit.N)
	near(t, "ATT(1,1) vs Table 3 row 4", cs.ATT[0].Estimate, 2.75, 0.005)
	near(t, "ATT(1,1) vs TWFE", cs.ATT[0].Estimate, c.Estimate, 1e-9)
	near(t, "ATT(1,1) SE vs CR0", cs.ATT[0].SE, c.SE/math.Sqrt(g/(g-1)*(n-1)/(n-float64(fit.K))), 1e-9)
	near(t, "simple = ATT(1,1)", cs.Simple.Estimate, cs.ATT[0].Estimate, 1e-12)
	near(t, "simple SE = ATT(1,1) SE (one cohort: weights are fixed)", cs.Simple.SE, cs.ATT[0].SE, 1e-12)
}

func TestErrors(t *testing.T) {
	if _, err := Regress([]float64{1, 2, 3}, []bool{true, true, false}, []bool{false, true, false}, nil, Classical, 0); err == nil {
		t.Error("missing control_post cell: want an error")
	}
	one := []float64{1, 1, 1, 1}
	if _, err := OLS(Regression{X: [][]float64{one, one}, Names: []string{"a", "b"}, Y: []float64{1, 2, 3, 5}}, Classical, 0); err == nil {
		t.Error("collinear columns: want ErrSingular")
	}
	p := Panel{Unit: []int{1, 1, 2}, Time: []int{0, 1, 0}, Y: []float64{1, 2, 3}}
	if _, err := CallawaySantAnna(p, []int{1, 1, NeverTreated}, 0); err == nil {
		t.Error("unbalanced panel: want an error")
	}
}

// BenchmarkTWFE fits y ~ D with unit and period effects absorbed and CR1 by
// unit on 100,000 units × 20 periods (goal: under 5 s).
//
//	go test ./analysis/did -run '^$' -bench TWFE -benchtime 1x
func BenchmarkTWFE(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	const units, periods = 100_000, 20
	p := Panel{Unit: make([]int, 0, units*periods), Time: make([]int, 0, units*periods), Y: make([]float64, 0, units*periods)}
	d := make([]float64, 0, units*periods)
	for u := 0; u < units; u++ {
		a := rng.NormFloat64()
		g := 5 + rng.IntN(20)
		for t := 0; t < periods; t++ {
			x := indicator(t >= g)
			p.Unit, p.Time = append(p.Unit, u), append(p.Time, t)
			p.Y, d = append(p.Y, a+0.1*float64(t)+2*x+rng.NormFloat64()), append(d, x)
		}
	}
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for range b.N {
		fit, err := TWFE(p, [][]float64{d}, []string{"D"}, DefaultTWFEOptions())
		if err != nil {
			b.Fatal(err)
		}
		if c := fit.Coef(0); math.Abs(c.Estimate-2) > 5*c.SE {
			b.Fatalf("D = %v", c)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
}

// cpuSeconds is the process's user + system CPU time: on a shared machine it
// is a steadier measure of the work than the wall clock.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
