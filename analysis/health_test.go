package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/liftlab/lift/internal/refdata"
)

// lbfRef is the log Bayes factor computed outside the project with scipy:
//
//	from scipy.special import gammaln
//	def lbf(n, theta, alpha):
//	    n=np.array(n,float); theta=np.array(theta,float); alpha=np.array(alpha,float)
//	    return gammaln(alpha.sum())-gammaln(alpha.sum()+n.sum())+np.sum(gammaln(alpha+n)-gammaln(alpha))-np.sum(n*np.log(theta))
func TestSRMLogBayesFactorReference(t *testing.T) {
	cases := []struct {
		name          string
		counts, w     []float64
		alpha         []float64 // the Dirichlet's parameters
		concentration float64
		want          float64
	}{
		// scipy: lbf([10123,9877],[.5,.5],[5000,5000])
		{"50/50 balanced", []float64{10123, 9877}, []float64{1, 1}, nil, 10000, 0.4593221141694812},
		// scipy: lbf([2510,2475,5015],[.25,.25,.5],[2500,2500,5000])
		{"three arms 1:1:2", []float64{2510, 2475, 5015}, []float64{1, 1, 2}, nil, 10000, -0.6085846639671217},
		// scipy: lbf([5200,4800],[.5,.5],[5000,5000])
		{"52/48", []float64{5200, 4800}, []float64{50, 50}, nil, 10000, 3.6538806657263194},
		// An arm with weight 0 is skipped, as in SRM: scipy as "50/50 balanced".
		{"weight 0 skipped", []float64{10123, 55, 9877}, []float64{1, 0, 1}, nil, 10000, 0.4593221141694812},
		{"one arm", []float64{10}, []float64{1}, nil, 10000, 0},
		{"no units", []float64{0, 0}, []float64{1, 1}, nil, 10000, 0},
	}
	// Optimizely's ssrm test vectors (testdata/ssrm-sequential-posteriors.csv):
	// ln BF = m1 − m0 after each look.
	for i, r := range refdata.Table(t, "ssrm-sequential-posteriors.csv") {
		cases = append(cases, struct {
			name          string
			counts, w     []float64
			alpha         []float64 // the Dirichlet's parameters
			concentration float64
			want          float64
		}{fmt.Sprintf("ssrm look %d", i+1), []float64{r.Float(t, "n1"), r.Float(t, "n2"), r.Float(t, "n3")}, []float64{.4, .4, .2}, []float64{1, 1, 1}, 1, r.Float(t, "m1") - r.Float(t, "m0")})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := SRMLogBayesFactorPrior(c.counts, c.w, c.alpha, c.concentration)
			if c.alpha == nil {
				if g := SRMLogBayesFactor(c.counts, c.w, c.concentration); g != got {
					t.Errorf("SRMLogBayesFactor = %v, SRMLogBayesFactorPrior = %v", g, got)
				}
			}
			if math.Abs(got-c.want) > 1e-9*math.Max(1, math.Abs(c.want)) {
				t.Errorf("ln BF = %.15g, want %.15g", got, c.want)
			}
		})
	}
}

// The p-value is the running minimum of 1/BF over the looks (as ssrm's
// sequential_p_values): a later look with a smaller Bayes factor does not
// raise it.
func TestSequentialSRMRunningMinimum(t *testing.T) {
	looks := [][]float64{{5000, 5000}, {5200, 4800}, {10123, 9877}}
	r := SequentialSRM(looks, []float64{1, 1}, 10000, 0)
	// scipy (lbf above): BF at look 2 is exp(3.6538806657263194); look 3's
	// larger p-value does not replace it.
	if want := math.Exp(-3.6538806657263194); math.Abs(r.PValue-want) > 1e-12 {
		t.Errorf("p = %v, want %v", r.PValue, want)
	}
	if r.LogBayesFactor != SRMLogBayesFactor(looks[2], []float64{1, 1}, 10000) || r.Looks != 3 || r.Concentration != 10000 || r.Threshold != DefaultSRMThreshold {
		t.Errorf("result %+v", r)
	}
	if d := SequentialSRM(looks, []float64{1, 1}, 0, 0); d.Concentration != DefaultSRMConcentration || d.LogBayesFactor != SRMLogBayesFactor(looks[2], []float64{1, 1}, 0) {
		t.Errorf("default concentration: %+v", d)
	}
	if r.Mismatch {
		t.Error("mismatch at p = 0.026 with threshold 0.001")
	}
}

// Repeated looks under the null: a monitor that checks after every 200 units,
// 100 times (20,000 units, 50/50), and alarms at the first p < α = 0.05. The
// sequential SRM's false-alarm rate over 2,000 simulated experiments is at
// most α (Ville's inequality) within 3 binomial standard errors; the repeated
// chi-square's is far above α (theory: about 0.3 for 100 looks; the bound here
// is α + 10 standard errors). A real 52/48 mismatch is detected by the end in
// more than 90% of runs.
func TestSequentialSRMRepeatedLooks(t *testing.T) {
	const runs, looks, step, alpha = 2000, 100, 200, 0.05
	w := []float64{1, 1}
	sim := func(share float64, seed uint64) (seqRate, chiRate float64) {
		r := rand.New(rand.NewPCG(seed, 20))
		var seqHits, chiHits int
		for range runs {
			var c [2]float64
			var ls [][]float64
			chi := false
			for range looks {
				for range step {
					if r.Float64() < share {
						c[0]++
					} else {
						c[1]++
					}
				}
				ls = append(ls, []float64{c[0], c[1]})
				chi = chi || SRM(ls[len(ls)-1], w) < alpha
			}
			if SequentialSRM(ls, w, 0, alpha).Mismatch {
				seqHits++
			}
			if chi {
				chiHits++
			}
		}
		return float64(seqHits) / runs, float64(chiHits) / runs
	}
	se := math.Sqrt(alpha * (1 - alpha) / runs)
	seq, chi := sim(0.5, 1)
	t.Logf("null: sequential %.4f, repeated chi-square %.4f", seq, chi)
	if seq > alpha+3*se {
		t.Errorf("sequential SRM false-alarm rate %.4f > %.4f", seq, alpha+3*se)
	}
	if chi < alpha+10*se {
		t.Errorf("repeated chi-square false-alarm rate %.4f, want well above α = %g", chi, alpha)
	}
	pow, _ := sim(0.52, 2)
	t.Logf("52/48: sequential power %.4f", pow)
	if pow < 0.9 {
		t.Errorf("sequential SRM power %.4f < 0.9 against a 52/48 split", pow)
	}
}

// armOf returns an arm whose covariate sums are those of xs (shift 0).
func armOf(name string, xs []float64) Arm {
	a := Arm{Name: name}
	for _, x := range xs {
		a.N++
		a.CovariateSum += x
		a.CovariateSumSquares += x * x
	}
	return a
}

func TestPreExposureImbalanceReference(t *testing.T) {
	var xa, xb, xc []float64
	for i := range 200 {
		xa = append(xa, float64((i*37)%101)/10)
	}
	for i := range 150 {
		xb = append(xb, float64((i*53)%97)/10+0.9)
	}
	for i := range 180 {
		xc = append(xc, float64((i*29)%89)/10+0.1)
	}
	cases := []struct {
		name    string
		arms    []Arm
		w, p    float64
		flagged bool
	}{
		// statsmodels: z, p = CompareMeans(DescrStatsW(xa), DescrStatsW(xb)).ztest_ind(usevar='unequal'); z*z, p
		{"two arms = Welch z²", []Arm{armOf("a", xa), armOf("b", xb)}, 3.9168830354873414, 0.04780343390424366, true},
		// numpy/scipy: w=[len(x)/x.var(ddof=1)]; m=[x.mean()]; bar=(w*m).sum()/w.sum();
		// W=(w*(m-bar)**2).sum(); chi2.sf(W, 2)
		{"three arms", []Arm{armOf("a", xa), armOf("b", xb), armOf("c", xc)}, 14.781327176903872, 0.0006169863925895406, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := PreExposureImbalance(c.arms, 0.05)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.Statistic-c.w) > 1e-9*c.w || math.Abs(got.PValue-c.p) > 1e-9*c.p || got.Imbalanced != c.flagged || got.DF != len(c.arms)-1 {
				t.Errorf("W = %.15g p = %.15g flagged %v df %d, want %.15g %.15g %v", got.Statistic, got.PValue, got.Imbalanced, got.DF, c.w, c.p, c.flagged)
			}
		})
	}
	// Shifted sums give the same answer (the engine's pilot shift).
	sh := armOf("b", nil)
	sh.CovariateShift = 5
	for _, x := range xb {
		sh.N++
		sh.CovariateSum += x - 5
		sh.CovariateSumSquares += (x - 5) * (x - 5)
	}
	got, err := PreExposureImbalance([]Arm{armOf("a", xa), sh}, 0.05)
	if err != nil || math.Abs(got.Statistic-3.9168830354873414) > 1e-9 {
		t.Errorf("shifted: %+v %v", got, err)
	}
	bad := []struct {
		name string
		arms []Arm
	}{
		{"one arm", []Arm{armOf("a", xa)}},
		{"an arm of one unit", []Arm{armOf("a", xa), armOf("b", []float64{1})}},
		{"constant in one arm only", []Arm{armOf("a", xa), armOf("b", []float64{1, 1, 1})}},
	}
	for _, c := range bad {
		if _, err := PreExposureImbalance(c.arms, 0.05); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if r, err := PreExposureImbalance([]Arm{armOf("a", []float64{2, 2}), armOf("b", []float64{2, 2, 2})}, 0); err != nil || r.Imbalanced || r.PValue != 1 {
		t.Errorf("equal constants: %+v %v", r, err)
	}
}

// Under randomization the covariate is balanced: over 4,000 simulated
// three-arm experiments (300 units each, a skewed covariate) the test flags
// at α = 0.05 within 4 binomial standard errors of α.
func TestPreExposureImbalanceFalseFlags(t *testing.T) {
	const runs, n, alpha = 4000, 300, 0.05
	r := rand.New(rand.NewPCG(3, 20))
	flags := 0
	for range runs {
		arms := []Arm{{Name: "a"}, {Name: "b"}, {Name: "c"}}
		for i := range 3 * n {
			x := math.Exp(r.NormFloat64() / 2)
			a := &arms[i%3]
			a.N++
			a.CovariateSum += x
			a.CovariateSumSquares += x * x
		}
		res, err := PreExposureImbalance(arms, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if res.Imbalanced {
			flags++
		}
	}
	rate, se := float64(flags)/runs, math.Sqrt(alpha*(1-alpha)/runs)
	t.Logf("false-flag rate %.4f", rate)
	if math.Abs(rate-alpha) > 4*se {
		t.Errorf("false-flag rate %.4f, want %g ± %.4f", rate, alpha, 4*se)
	}
}

func TestShareDriftReference(t *testing.T) {
	// scipy: chi2_contingency(np.array([[50,950],[62,938],[41,959],[70,930]]), correction=False)
	// → (9.360407754748769, 0.024863709146976592, 3, …)
	got := ShareDriftTest([][]float64{{50, 950}, {62, 938}, {0, 0}, {41, 959}, {70, 930}}, 0.05)
	if math.Abs(got.Statistic-9.360407754748769) > 1e-9 || math.Abs(got.PValue-0.024863709146976592) > 1e-12 || got.DF != 3 || !got.Drift {
		t.Errorf("drift %+v", got)
	}
	if g := ShareDriftTest([][]float64{{50, 950}}, 0.05); g.PValue != 1 || g.Drift {
		t.Errorf("one period: %+v", g)
	}
}

// A constant 5% share split over 10 periods: the homogeneity test flags at
// α = 0.05 in 4,000 runs within 4 binomial standard errors of α.
func TestShareDriftFalseFlags(t *testing.T) {
	const runs, periods, perPeriod, alpha = 4000, 10, 2000, 0.05
	r := rand.New(rand.NewPCG(4, 20))
	flags := 0
	for range runs {
		tab := make([][]float64, periods)
		for p := range tab {
			h := float64(distuv.Binomial{N: perPeriod, P: 0.05, Src: r}.Rand())
			tab[p] = []float64{h, perPeriod - h}
		}
		if ShareDriftTest(tab, alpha).Drift {
			flags++
		}
	}
	rate, se := float64(flags)/runs, math.Sqrt(alpha*(1-alpha)/runs)
	t.Logf("false-flag rate %.4f", rate)
	if math.Abs(rate-alpha) > 4*se {
		t.Errorf("false-flag rate %.4f, want %g ± %.4f", rate, alpha, 4*se)
	}
}

// interactionData is the data of the statsmodels reference: 400 units, a = i%2,
// b = (i//2)%2, the last 7 dropped so that the cells differ in size.
func interactionData() (a, b []int, y []float64) {
	for i := range 393 {
		ai, bi := i%2, (i/2)%2
		yi := float64((i*37)%101)/10 + 0.5*float64(ai) + 0.3*float64(bi) + 0.4*float64(ai*bi) + float64((i*i)%7)/5
		a, b, y = append(a, ai), append(b, bi), append(y, yi)
	}
	return a, b, y
}

func TestInteractionReference(t *testing.T) {
	a, b, y := interactionData()
	var cells [2][2]Cell
	cells[0][1].Shift, cells[1][1].Shift = 5, 7 // shifts change nothing
	for i := range y {
		cells[a[i]][b[i]].Add(y[i])
	}
	got, err := Interaction(cells, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	// statsmodels 0.13: the same rows as a DataFrame (a, b, y), f = smf.ols('y ~ a * b', df).fit();
	// f.params['a:b'], f.bse['a:b'], f.tvalues['a:b'], f.pvalues['a:b'], f.df_resid, f.conf_int().loc['a:b']
	want := []struct {
		name      string
		got, want float64
	}{
		{"estimate", got.Estimate, 0.5098433312718849},
		{"se", got.SE, 0.595549371429074},
		{"t", got.T, 0.8560891098725705},
		{"p", got.PValue, 0.39247551165877537},
		{"ci low", got.CILow, -0.661055010599688},
		{"ci high", got.CIHigh, 1.6807416731434577},
		{"df", float64(got.DF), 389},
	}
	for _, w := range want {
		if math.Abs(w.got-w.want) > 1e-9*math.Max(1, math.Abs(w.want)) {
			t.Errorf("%s = %.15g, want %.15g (statsmodels)", w.name, w.got, w.want)
		}
	}
	if got.Interacts {
		t.Error("flagged at p = 0.39")
	}
	var empty [2][2]Cell
	empty[0][0].Add(1)
	if _, err := Interaction(empty, 0.05); err == nil {
		t.Error("empty cells: no error")
	}
}

// Two experiments without interaction (additive effects, 2×2 with 100 units
// a cell, skewed noise): over 4,000 runs the interaction test flags at
// α = 0.05 within 4 binomial standard errors of α.
func TestInteractionFalseFlags(t *testing.T) {
	const runs, n, alpha = 4000, 100, 0.05
	r := rand.New(rand.NewPCG(5, 20))
	flags := 0
	for range runs {
		var cells [2][2]Cell
		for a := range 2 {
			for b := range 2 {
				for range n {
					cells[a][b].Add(1 + 0.3*float64(a) + 0.2*float64(b) + math.Exp(r.NormFloat64()/2))
				}
			}
		}
		res, err := Interaction(cells, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if res.Interacts {
			flags++
		}
	}
	rate, se := float64(flags)/runs, math.Sqrt(alpha*(1-alpha)/runs)
	t.Logf("false-flag rate %.4f", rate)
	if math.Abs(rate-alpha) > 4*se {
		t.Errorf("false-flag rate %.4f, want %g ± %.4f", rate, alpha, 4*se)
	}
}
