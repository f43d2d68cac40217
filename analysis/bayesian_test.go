package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/internal/refdata"
)

// TestBayesianGBStats reproduces GrowthBook's Bayesian vectors
// (testdata/gbstats-0.8.0-bayesian.csv, cited there): posterior mean, credible
// interval, posterior sd, chance to win and both risks of the relative effect.
// They are rounded to 5 decimals, so the tolerance is half a unit of the last.
func TestBayesianGBStats(t *testing.T) {
	for _, r := range refdata.Table(t, "gbstats-0.8.0-bayesian.csv") {
		t.Run(r["case"], func(t *testing.T) {
			f := func(c string) float64 { return r.Float(t, c) }
			prior := Prior{Mean: f("prior_mean"), Variance: f("prior_variance"), Proper: f("proper") == 1}
			in := Input{Type: Type(r["type"]), Bayesian: &prior, Arms: []Arm{
				{Name: "a", N: int64(f("n_a")), Sum: f("sum_a"), SumSquares: f("ss_a")},
				{Name: "b", N: int64(f("n_b")), Sum: f("sum_b"), SumSquares: f("ss_b")},
			}}
			res, err := Analyze(in)
			if err != nil {
				t.Fatal(err)
			}
			b := res.Comparisons[0].Bayesian
			if b == nil {
				t.Fatal("no Bayesian view")
			}
			rel := b.Relative
			const tol = 5e-6 + 1e-12
			near(t, "expected", rel.Expected, f("expected"), tol)
			near(t, "ci_low", rel.CILow, f("ci_low"), tol)
			near(t, "ci_high", rel.CIHigh, f("ci_high"), tol)
			near(t, "sd", rel.SD, f("sd"), tol)
			near(t, "chance_to_win", rel.ChanceToWin, f("chance_to_win"), tol)
			near(t, "risk_ctrl", rel.RiskControl, f("risk_ctrl"), tol)
			near(t, "risk_trt", rel.RiskTreatment, f("risk_trt"), tol)
			// An inverse (lower-is-better) metric, as gbstats flips it
			// (BayesianABTest.chance_to_win: 1 − P(δ > 0); relative_risk:
			// risk[1], risk[0]): the same posterior, the chance to win and
			// the risks of the published case flipped.
			in.LowerIsBetter = true
			inv, err := Analyze(in)
			if err != nil {
				t.Fatal(err)
			}
			ib := inv.Comparisons[0].Bayesian
			if !ib.Inverse || b.Inverse {
				t.Errorf("inverse %v, not inverse %v", ib.Inverse, b.Inverse)
			}
			near(t, "inverse expected", ib.Relative.Expected, f("expected"), tol)
			near(t, "inverse chance_to_win", ib.Relative.ChanceToWin, 1-f("chance_to_win"), tol)
			near(t, "inverse risk_ctrl", ib.Relative.RiskControl, f("risk_trt"), tol)
			near(t, "inverse risk_trt", ib.Relative.RiskTreatment, f("risk_ctrl"), tol)
		})
	}
}

// TestPosteriorRisk checks the closed-form risks against a seeded Monte-Carlo
// draw of the posterior, as GrowthBook's TestEffectBayesianABTest does with
// numpy: 10⁶ normal draws give each risk within 6 of its standard errors
// (computed from the same draws: a false failure is negligible).
func TestPosteriorRisk(t *testing.T) {
	for _, tc := range []struct{ est, se float64 }{{0.5365, 0.5}, {-0.2, 0.1}, {0.05, 0.0357}} {
		p := Posterior(tc.est, tc.se, Prior{}, 0.05)
		r := rand.New(rand.NewPCG(20240329, 1))
		const n = 1_000_000
		var s1, s1q, s2, s2q float64
		for range n {
			y := tc.est + tc.se*r.NormFloat64()
			a, b := math.Max(y, 0), math.Max(-y, 0)
			s1, s1q, s2, s2q = s1+a, s1q+a*a, s2+b, s2q+b*b
		}
		m1, m2 := s1/n, s2/n
		se1, se2 := math.Sqrt((s1q/n-m1*m1)/n), math.Sqrt((s2q/n-m2*m2)/n)
		near(t, "risk_control", p.RiskControl, m1, 6*se1)
		near(t, "risk_treatment", p.RiskTreatment, m2, 6*se2)
		// The chance to win and interval of a flat prior are the normal's.
		near(t, "chance_to_win", p.ChanceToWin, 1-0.5*math.Erfc(tc.est/tc.se/math.Sqrt2), 1e-12)
		near(t, "ci_low", p.CILow, tc.est-1.959963984540054*tc.se, 1e-12) // z₀.₉₇₅: scipy.stats.norm.ppf(0.975)
	}
}
