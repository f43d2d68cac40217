package analysis

import (
	"math"

	"github.com/liftlab/lift/experiment"
	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/stat/distuv"
)

// PowerOptions describe a planned two-arm test with equal arms. Zero values
// mean the defaults.
type PowerOptions struct {
	Alpha       float64     // significance level (default 0.05)
	Power       float64     // target power 1−β (default 0.8)
	SD          float64     // per-unit standard deviation σ of the metric (required); for a proportion p, sqrt(p(1−p))
	Alternative Alternative // TwoSided (default) or one-sided (Greater or Less: same power for |δ|)
	// VarianceReduction is CUPED's expected variance reduction ρ² in [0, 1),
	// where ρ is the correlation of the metric with its covariate: the adjusted
	// variance is σ²(1 − ρ²) (Deng, Xu, Kohavi & Walker 2013, WSDM), so every
	// sample size shrinks by the factor 1 − ρ².
	VarianceReduction float64
	// Normal uses the large-sample normal approximation
	//	n = 2σ²(1−ρ²)(z₁₋α/₂ + z₁₋β)²/δ²
	// instead of the exact noncentral t power of R's power.t.test.
	Normal bool
}

func (o *PowerOptions) normalize(op string) error {
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.Power == 0 {
		o.Power = 0.8
	}
	if o.Alternative == "" {
		o.Alternative = TwoSided
	}
	switch {
	case !(o.Alpha > 0 && o.Alpha < 1):
		return experiment.E(op, experiment.Invalid, experiment.Field("alpha"), experiment.Errorf("must be in (0, 1), got %g", o.Alpha))
	case !(o.Power > 0 && o.Power < 1):
		return experiment.E(op, experiment.Invalid, experiment.Field("power"), experiment.Errorf("must be in (0, 1), got %g", o.Power))
	case !(o.SD > 0) || math.IsInf(o.SD, 0):
		return experiment.E(op, experiment.Invalid, experiment.Field("sd"), experiment.Errorf("must be positive, got %g", o.SD))
	case !(o.VarianceReduction >= 0 && o.VarianceReduction < 1):
		return experiment.E(op, experiment.Invalid, experiment.Field("variance_reduction"), experiment.Errorf("must be in [0, 1), got %g", o.VarianceReduction))
	case !o.Alternative.valid():
		return experiment.E(op, experiment.Invalid, experiment.Field("alternative"), experiment.Errorf("unknown alternative %q", o.Alternative))
	}
	return nil
}

// sd is the effective (CUPED-adjusted) standard deviation.
func (o *PowerOptions) sd() float64 { return o.SD * math.Sqrt(1-o.VarianceReduction) }

// Power returns the power of a two-sample test with n units per arm against a
// true difference delta. The exact version is R's power.t.test(n, delta, sd,
// sig.level, type = "two.sample", strict = FALSE): with ν = 2(n−1) and
// noncentrality λ = sqrt(n/2)·|δ|/σ,
//
//	power = P(T'_ν,λ > t₁₋α/₂,ν)   (t₁₋α,ν one-sided)
//
// where T' is noncentral t. The normal version is Φ(λ − z₁₋α/₂).
func Power(n, delta float64, o PowerOptions) (float64, error) {
	const op = "analysis.Power"
	o.Power = 0.5 // not used; keeps normalize quiet
	if err := o.normalize(op); err != nil {
		return 0, err
	}
	if !(n >= 2) {
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("n"), experiment.Errorf("must be ≥ 2 per arm, got %g", n))
	}
	return power(n, math.Abs(delta), &o), nil
}

func power(n, delta float64, o *PowerOptions) float64 {
	a := o.Alpha
	if o.Alternative == TwoSided {
		a /= 2
	}
	lambda := math.Sqrt(n/2) * delta / o.sd()
	if o.Normal {
		return distuv.UnitNormal.CDF(lambda - distuv.UnitNormal.Quantile(1-a))
	}
	nu := 2 * (n - 1)
	crit := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: nu}.Quantile(1 - a)
	return noncentralTSurvival(crit, nu, lambda)
}

// noncentralTSurvival is P(T > t) for T noncentral t with ν degrees of freedom
// and noncentrality λ: T = (Z + λ)/sqrt(V/ν) with V ~ χ²_ν, so
//
//	P(T > t) = E[Φ̄(t·sqrt(V/ν) − λ)]
//
// integrated over V by Gauss–Legendre quadrature between its 1e−15 and
// 1 − 1e−15 quantiles.
func noncentralTSurvival(t, nu, lambda float64) float64 {
	chi := distuv.ChiSquared{K: nu}
	lo, hi := chi.Quantile(1e-15), chi.Quantile(1-1e-15)
	f := func(v float64) float64 {
		return distuv.UnitNormal.Survival(t*math.Sqrt(v/nu)-lambda) * chi.Prob(v)
	}
	return quad.Fixed(f, lo, hi, 2000, quad.Legendre{}, 0)
}

// SampleSize returns the number of units per arm for the target power against a
// true absolute difference delta (continuous, as R's power.t.test; round up to
// plan). With o.VarianceReduction = ρ² it is the CUPED-adjusted size, about
// (1 − ρ²) times the unadjusted one.
func SampleSize(delta float64, o PowerOptions) (float64, error) {
	const op = "analysis.SampleSize"
	if err := o.normalize(op); err != nil {
		return 0, err
	}
	if !(delta != 0) || math.IsInf(delta, 0) || math.IsNaN(delta) {
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("delta"), experiment.Errorf("must be a non-zero finite difference, got %g", delta))
	}
	delta = math.Abs(delta)
	if o.Normal {
		a := o.Alpha
		if o.Alternative == TwoSided {
			a /= 2
		}
		z := distuv.UnitNormal.Quantile(1-a) + distuv.UnitNormal.Quantile(o.Power)
		s := o.sd()
		return 2 * s * s * z * z / (delta * delta), nil
	}
	// power(n) increases in n: bisect on [2, hi].
	lo, hi := 2.0, 4.0
	for power(hi, delta, &o) < o.Power {
		hi *= 2
		if hi > 1e13 {
			return 0, experiment.E(op, experiment.Invalid, experiment.Errorf("no sample size below 1e13 reaches power %g", o.Power))
		}
	}
	if power(lo, delta, &o) >= o.Power {
		return lo, nil
	}
	for range 200 {
		mid := 0.5 * (lo + hi)
		if power(mid, delta, &o) < o.Power {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-9*hi {
			break
		}
	}
	return 0.5 * (lo + hi), nil
}

// MDE returns the minimum detectable absolute difference with n units per arm
// at the target power: the δ with Power(n, δ) = o.Power.
func MDE(n float64, o PowerOptions) (float64, error) {
	const op = "analysis.MDE"
	if err := o.normalize(op); err != nil {
		return 0, err
	}
	if !(n >= 2) || math.IsInf(n, 0) {
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("n"), experiment.Errorf("must be ≥ 2 per arm, got %g", n))
	}
	lo, hi := 0.0, o.sd()
	for power(n, hi, &o) < o.Power {
		hi *= 2
	}
	for range 200 {
		mid := 0.5 * (lo + hi)
		if power(n, mid, &o) < o.Power {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-12*hi {
			break
		}
	}
	return 0.5 * (lo + hi), nil
}

// Duration returns how many days an experiment must run for every one of arms
// arms to reach perArm units, when dailyUnits eligible units arrive per day and
// a fraction traffic of them (in (0, 1], 0 meaning 1) enters the experiment:
//
//	days = ⌈arms·perArm/(dailyUnits·traffic)⌉
func Duration(perArm float64, arms int, dailyUnits, traffic float64) (int, error) {
	const op = "analysis.Duration"
	if traffic == 0 {
		traffic = 1
	}
	switch {
	case !(perArm > 0) || math.IsInf(perArm, 0):
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("per_arm"), experiment.Errorf("must be positive, got %g", perArm))
	case arms < 2:
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("arms"), experiment.Errorf("must be ≥ 2, got %d", arms))
	case !(dailyUnits > 0) || math.IsInf(dailyUnits, 0):
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("daily_units"), experiment.Errorf("must be positive, got %g", dailyUnits))
	case !(traffic > 0 && traffic <= 1):
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("traffic"), experiment.Errorf("must be in (0, 1], got %g", traffic))
	}
	days := math.Ceil(float64(arms) * perArm / (dailyUnits * traffic))
	if !(days < maxDays) {
		return 0, experiment.E(op, experiment.Invalid, experiment.Field("daily_units"),
			experiment.Errorf("%g units a day at traffic %g give the %g units in %.3g days, more than any plan (%g)", dailyUnits, traffic, float64(arms)*perArm, days, float64(maxDays)))
	}
	return int(days), nil
}

// maxDays bounds Duration's answer (about 2.7 million years), well inside an int.
const maxDays = 1e9
