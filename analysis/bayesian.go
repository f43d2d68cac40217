package analysis

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Bayesian results as GrowthBook's default engine computes them (gbstats 0.8,
// EffectBayesianABTest): a Gaussian prior on the effect, the frequentist
// estimate and its variance as a Gaussian likelihood, and the normal posterior
// summarized by its mean, a credible interval, the chance to win and the
// expected loss (risk) of shipping either arm.

// Prior is a Gaussian prior on the relative effect (GrowthBook's metric
// settings prior_mean, prior_stddev² and proper, prior_type "relative"). An
// improper prior (Proper false, GrowthBook's default) is flat: the posterior is
// the likelihood. For the absolute effect the prior is scaled by the control
// mean ȳ_a: mean·|ȳ_a|, variance·ȳ_a².
type Prior struct {
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
	Proper   bool    `json:"proper"`
}

// DefaultPriorStddev is the prior standard deviation used when none is given
// (GrowthBook's default metric prior: mean 0, stddev 0.3, improper).
const DefaultPriorStddev = 0.3

// PriorOf is the prior of GrowthBook's metric settings: mean, standard
// deviation (0: DefaultPriorStddev) and whether it is proper.
func PriorOf(mean, stddev float64, proper bool) *Prior {
	if stddev == 0 {
		stddev = DefaultPriorStddev
	}
	return &Prior{Mean: mean, Variance: stddev * stddev, Proper: proper}
}

// BayesianEffect is the posterior of an effect.
type BayesianEffect struct {
	Expected float64 `json:"expected"` // posterior mean
	SD       float64 `json:"sd"`       // posterior standard deviation
	CILow    float64 `json:"ci_low"`   // equal-tailed credible interval of mass 1−α
	CIHigh   float64 `json:"ci_high"`
	// ChanceToWin is P(effect > 0 | data).
	ChanceToWin float64 `json:"chance_to_win"`
	// RiskControl is the expected loss of keeping the control, E[max(δ, 0)];
	// RiskTreatment that of shipping the treatment, E[max(−δ, 0)] (gbstats'
	// risk = [risk_ctrl, risk_trt], in the effect's units).
	RiskControl   float64 `json:"risk_control"`
	RiskTreatment float64 `json:"risk_treatment"`
}

// Bayesian is the Bayesian view of a comparison.
type Bayesian struct {
	Prior Prior `json:"prior"`
	// Inverse: the metric is lower-is-better, so ChanceToWin is P(effect < 0)
	// and RiskControl, RiskTreatment are E[max(−δ, 0)] and E[max(δ, 0)]
	// (gbstats' inverse metrics: chance_to_win and risk flipped).
	Inverse  bool           `json:"inverse,omitempty"`
	Absolute BayesianEffect `json:"absolute"`
	Relative BayesianEffect `json:"relative"`
}

// defaultBayesian is gbstats' _default_output: no information.
func defaultBayesian() BayesianEffect { return BayesianEffect{ChanceToWin: 0.5} }

// Posterior combines a Gaussian likelihood (estimate est, standard error se)
// with a Gaussian prior (mean m₀, variance v₀; flat when not proper):
// precision 1/se² + 1/v₀, mean (est/se² + m₀/v₀)/precision. The chance to win
// is 1 − Φ(−μ/σ); the risks are the truncated-normal means gbstats uses,
// E[max(δ, 0)] = μΦ(μ/σ) + σφ(μ/σ) and E[max(−δ, 0)] = −μΦ(−μ/σ) + σφ(μ/σ).
// se must be positive.
func Posterior(est, se float64, prior Prior, alpha float64) BayesianEffect {
	mu, v := est, se*se
	if prior.Proper && prior.Variance > 0 {
		prec := 1/v + 1/prior.Variance
		mu = (est/v + prior.Mean/prior.Variance) / prec
		v = 1 / prec
	}
	sd := math.Sqrt(v)
	z := distuv.UnitNormal
	q := z.Quantile(1 - alpha/2)
	r := mu / sd
	return BayesianEffect{
		Expected: mu, SD: sd, CILow: mu - q*sd, CIHigh: mu + q*sd,
		ChanceToWin:   z.CDF(r),
		RiskControl:   mu*z.CDF(r) + sd*z.Prob(r),
		RiskTreatment: -mu*z.CDF(-r) + sd*z.Prob(r),
	}
}

// bayesian is the Bayesian view of comparison c, whose control mean is
// controlMean: the posteriors of the absolute and relative effects from the
// frequentist estimates and standard errors (as gbstats, which feeds its
// frequentist moments to the Bayesian test), or the uninformative default for
// an effect that could not be estimated. inverse flips the chance to win and
// swaps the risks, for a lower-is-better metric.
func bayesian(c *Comparison, controlMean float64, prior Prior, alpha float64, inverse bool) *Bayesian {
	b := &Bayesian{Prior: prior, Absolute: defaultBayesian(), Relative: defaultBayesian(), Inverse: inverse}
	if inverse {
		defer func() {
			for _, e := range []*BayesianEffect{&b.Absolute, &b.Relative} {
				e.ChanceToWin = 1 - e.ChanceToWin
				e.RiskControl, e.RiskTreatment = e.RiskTreatment, e.RiskControl
			}
		}()
	}
	bad := func(flags ...string) bool {
		for _, f := range c.Flags {
			for _, g := range flags {
				if f == g {
					return true
				}
			}
		}
		return false
	}
	if bad(FlagInsufficientData, FlagZeroVariance) {
		return b
	}
	if c.Absolute.SE > 0 {
		abs := prior
		abs.Mean *= math.Abs(controlMean)
		abs.Variance *= controlMean * controlMean
		b.Absolute = Posterior(c.Absolute.Estimate, c.Absolute.SE, abs, alpha)
	}
	if c.Relative.SE > 0 && !bad(FlagZeroControlMean, FlagRelativeZeroVariance) {
		b.Relative = Posterior(c.Relative.Estimate, c.Relative.SE, prior, alpha)
	}
	return b
}
