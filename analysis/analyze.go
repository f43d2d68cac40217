package analysis

import (
	"errors"
	"fmt"
	"math"

	"github.com/liftlab/lift/experiment"
)

// Type is the kind of a metric, which decides its per-unit variance.
type Type string

// The metric types.
const (
	// Mean is a mean metric: variance (Σy² − (Σy)²/n)/(n−1).
	Mean Type = "mean"
	// Proportion is a binomial metric (every y is 0 or 1): variance p(1−p) with
	// p = Σy/n, as GrowthBook's ProportionStatistic.
	Proportion Type = "proportion"
	// Ratio is Σy/Σd (e.g. revenue per session, sessions being the
	// denominator d), with its variance by the delta method.
	Ratio Type = "ratio"
)

// Correction is a multiple-testing correction of p-values.
type Correction string

// The corrections.
const (
	NoCorrection      Correction = ""
	Holm              Correction = "holm" // Holm (1979) step-down, controls the family-wise error rate
	BenjaminiHochberg Correction = "bh"   // Benjamini & Hochberg (1995) step-up, controls the false discovery rate
)

// Default values used when the corresponding Input field is zero.
const (
	DefaultAlpha        = 0.05
	DefaultSRMThreshold = 0.001
	// DefaultSequentialTuning is GrowthBook's default N* for sequential testing.
	DefaultSequentialTuning = 5000
)

// Flags set on a comparison whose data are degenerate. A flagged effect holds
// GrowthBook's uninformative default (estimate 0, interval [0, 0], p-value 1).
const (
	FlagZeroVariance       = "zero_variance"         // an arm's (or the difference's) variance is ≤ 0
	FlagInsufficientData   = "insufficient_data"     // an arm has fewer than 2 units
	FlagZeroControlMean    = "zero_control_mean"     // the relative effect is undefined: control mean 0
	FlagCUPEDNotApplied    = "cuped_not_applied"     // θ = 0 (no variance in the covariate): unadjusted analysis
	FlagPValueNotConverged = "p_value_not_converged" // sequential one-sided p-value: bisection did not converge
)

// Sentinel errors, wrapped in experiment.Error values with a kind.
var (
	ErrZeroVariance = errors.New("zero or negative variance")
)

// Arm holds one variant's sufficient statistics. Which sums are needed depends
// on the analysis: y is the metric, x its covariate (for CUPED, usually the same
// metric before exposure), d the denominator of a ratio metric and d₀ the
// denominator's covariate (ratio metrics with CUPED).
type Arm struct {
	Name   string  `json:"name"`             // variant name, unique within an Input
	Weight float64 `json:"weight,omitempty"` // configured traffic share for the SRM check; arms with weight 0 are skipped there
	N      int64   `json:"n"`                // number of units

	Sum        float64 `json:"sum,omitempty"`         // Σy
	SumSquares float64 `json:"sum_squares,omitempty"` // Σy²

	// CUPED (Input.Covariate set).
	CovariateSum        float64 `json:"covariate_sum,omitempty"`         // Σx
	CovariateSumSquares float64 `json:"covariate_sum_squares,omitempty"` // Σx²
	CrossSum            float64 `json:"cross_sum,omitempty"`             // Σxy

	// Ratio metrics (Type Ratio).
	DenominatorSum        float64 `json:"denominator_sum,omitempty"`         // Σd
	DenominatorSumSquares float64 `json:"denominator_sum_squares,omitempty"` // Σd²
	MetricDenominatorSum  float64 `json:"metric_denominator_sum,omitempty"`  // Σyd

	// Ratio metrics with CUPED: the denominator's covariate d₀ and the cross products.
	DenominatorCovariateSum            float64 `json:"denominator_covariate_sum,omitempty"`             // Σd₀
	DenominatorCovariateSumSquares     float64 `json:"denominator_covariate_sum_squares,omitempty"`     // Σd₀²
	MetricDenominatorCovariateSum      float64 `json:"metric_denominator_covariate_sum,omitempty"`      // Σy·d₀
	CovariateDenominatorSum            float64 `json:"covariate_denominator_sum,omitempty"`             // Σx·d
	CovariateDenominatorCovariateSum   float64 `json:"covariate_denominator_covariate_sum,omitempty"`   // Σx·d₀
	DenominatorDenominatorCovariateSum float64 `json:"denominator_denominator_covariate_sum,omitempty"` // Σd·d₀
}

// Input is one metric of one experiment, as per-variant sufficient statistics,
// with the analysis plan. Zero values mean the documented defaults.
type Input struct {
	Metric string `json:"metric,omitempty"` // metric name, copied to the result
	Type   Type   `json:"type,omitempty"`   // Mean (default), Proportion or Ratio
	Arms   []Arm  `json:"arms"`             // at least two, control included
	// Control names the control arm; empty means the first arm.
	Control string `json:"control,omitempty"`
	// Alpha is the significance level (default 0.05): intervals have coverage 1−α.
	Alpha float64 `json:"alpha,omitempty"`
	// Alternative is the alternative hypothesis (default TwoSided).
	Alternative Alternative `json:"alternative,omitempty"`
	// Covariate, when not empty, turns CUPED on and names the covariate x in the
	// result. θ is pooled over the control and each compared variant.
	Covariate string `json:"covariate,omitempty"`
	// CovariateType is the statistic type of x: Proportion or Mean. Empty means
	// Proportion for a Proportion metric (as gbstats) and Mean otherwise.
	CovariateType Type `json:"covariate_type,omitempty"`
	// SequentialTuning is the tuning parameter N* of the sequential confidence
	// sequences; 0 means fixed-horizon tests. GrowthBook's default is 5000: the
	// total sample size at which the sequence is tightest.
	SequentialTuning float64 `json:"sequential_tuning,omitempty"`
	// SRMThreshold is the p-value below which the sample ratio is flagged as a
	// mismatch (default 0.001).
	SRMThreshold float64 `json:"srm_threshold,omitempty"`
	// Correction adjusts the p-values across this metric's comparisons. Use
	// Adjust to correct across several metrics.
	Correction Correction `json:"correction,omitempty"`
}

// VariantSummary describes one arm: its size, its (unadjusted) mean and per-unit
// variance (for a ratio metric, Σy/Σd and its delta-method variance).
type VariantSummary struct {
	Name     string  `json:"name"`
	N        int64   `json:"n"`
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
	Weight   float64 `json:"weight"`
}

// SRMResult is the sample-ratio-mismatch check.
type SRMResult struct {
	PValue    float64 `json:"p_value"`
	Mismatch  bool    `json:"mismatch"` // PValue < Threshold
	Threshold float64 `json:"threshold"`
}

// CUPEDSummary describes a CUPED adjustment: θ and the variance reduction of the
// absolute effect, 1 − Var_adjusted/Var_unadjusted.
type CUPEDSummary struct {
	Covariate         string  `json:"covariate"`
	Theta             float64 `json:"theta"`
	VarianceReduction float64 `json:"variance_reduction"`
}

// Adjusted holds multiple-testing adjusted p-values of a comparison.
type Adjusted struct {
	Method   Correction `json:"method"`
	Absolute float64    `json:"absolute"`
	Relative float64    `json:"relative"`
}

// Comparison is one variant against the control.
type Comparison struct {
	Variant  string        `json:"variant"`
	Absolute Effect        `json:"absolute"` // ȳ_b − ȳ_a
	Relative Effect        `json:"relative"` // (ȳ_b − ȳ_a)/|ȳ_a|
	CUPED    *CUPEDSummary `json:"cuped,omitempty"`
	Adjusted *Adjusted     `json:"adjusted_p_value,omitempty"`
	Flags    []string      `json:"flags,omitempty"`
}

// MetricResult is the analysis of one metric: the JSON printed by
// "lift analyze" and served by the results API.
type MetricResult struct {
	Metric      string           `json:"metric"`
	Type        Type             `json:"type"`
	Control     string           `json:"control"`
	Alpha       float64          `json:"alpha"`
	Alternative Alternative      `json:"alternative"`
	Sequential  bool             `json:"sequential,omitempty"`
	Tuning      float64          `json:"sequential_tuning,omitempty"`
	Variants    []VariantSummary `json:"variants"`
	SRM         SRMResult        `json:"srm"`
	// CUPED is the adjustment of the first comparison (each comparison has its own
	// θ, pooled over its two arms, in Comparisons[i].CUPED).
	CUPED       *CUPEDSummary `json:"cuped,omitempty"`
	Comparisons []Comparison  `json:"comparisons"`
}

// Analyze compares every arm of in with the control. Bad input (fewer than two
// arms, unknown control, duplicate names, negative counts, non-finite sums, a
// bad alpha) returns an Invalid error naming the field; degenerate data (n < 2,
// zero variance, zero control mean) gives a flagged comparison instead.
func Analyze(in Input) (MetricResult, error) {
	const op = "analysis.Analyze"
	if err := in.normalize(); err != nil {
		return MetricResult{}, experiment.E(op, err)
	}
	ctrl := in.controlIndex()
	res := MetricResult{
		Metric: in.Metric, Type: in.Type, Control: in.Arms[ctrl].Name, Alpha: in.Alpha,
		Alternative: in.Alternative, Sequential: in.SequentialTuning > 0, Tuning: in.SequentialTuning,
		Variants: make([]VariantSummary, len(in.Arms)), Comparisons: []Comparison{},
	}
	users := make([]float64, len(in.Arms))
	weights := make([]float64, len(in.Arms))
	allZero := true
	for i, a := range in.Arms {
		s := in.plain(&a)
		res.Variants[i] = VariantSummary{Name: a.Name, N: a.N, Mean: finite(s.mean), Variance: finite(s.v), Weight: a.Weight}
		users[i], weights[i] = float64(a.N), a.Weight
		allZero = allZero && a.Weight == 0
	}
	if allZero {
		for i := range weights {
			weights[i] = 1 / float64(len(weights))
			res.Variants[i].Weight = weights[i]
		}
	}
	p := SRM(users, weights)
	res.SRM = SRMResult{PValue: p, Mismatch: p < in.SRMThreshold, Threshold: in.SRMThreshold}
	for i := range in.Arms {
		if i == ctrl {
			continue
		}
		c := in.compare(&in.Arms[ctrl], &in.Arms[i])
		res.Comparisons = append(res.Comparisons, c)
		if res.CUPED == nil && c.CUPED != nil {
			res.CUPED = c.CUPED
		}
	}
	if in.Correction != NoCorrection {
		Adjust([]*MetricResult{&res}, in.Correction)
	}
	return res, nil
}

func (in *Input) normalize() error {
	if in.Type == "" {
		in.Type = Mean
	}
	switch in.Type {
	case Mean, Proportion, Ratio:
	default:
		return experiment.E(experiment.Invalid, experiment.Field("type"), experiment.Errorf(`must be "mean", "proportion" or "ratio", got %q`, in.Type))
	}
	if in.CovariateType == "" {
		in.CovariateType = Mean
		if in.Type == Proportion {
			in.CovariateType = Proportion
		}
	}
	if in.CovariateType != Mean && in.CovariateType != Proportion {
		return experiment.E(experiment.Invalid, experiment.Field("covariate_type"), experiment.Errorf(`must be "mean" or "proportion", got %q`, in.CovariateType))
	}
	if in.Alpha == 0 {
		in.Alpha = DefaultAlpha
	}
	if err := checkAlpha("", in.Alpha); err != nil {
		return err
	}
	if in.Alternative == "" {
		in.Alternative = TwoSided
	}
	if !in.Alternative.valid() {
		return experiment.E(experiment.Invalid, experiment.Field("alternative"), experiment.Errorf(`must be "two-sided", "greater" or "less", got %q`, in.Alternative))
	}
	if in.SequentialTuning < 0 || math.IsNaN(in.SequentialTuning) || math.IsInf(in.SequentialTuning, 0) {
		return experiment.E(experiment.Invalid, experiment.Field("sequential_tuning"), experiment.Errorf("must be ≥ 0 (0 = fixed horizon), got %g", in.SequentialTuning))
	}
	if in.SequentialTuning > 0 && in.Alternative != TwoSided && in.Alpha >= 0.5 {
		return experiment.E(experiment.Invalid, experiment.Field("alpha"), experiment.Errorf("a sequential one-sided test needs alpha < 0.5, got %g", in.Alpha))
	}
	if in.SRMThreshold == 0 {
		in.SRMThreshold = DefaultSRMThreshold
	}
	if !(in.SRMThreshold > 0 && in.SRMThreshold < 1) {
		return experiment.E(experiment.Invalid, experiment.Field("srm_threshold"), experiment.Errorf("must be in (0, 1), got %g", in.SRMThreshold))
	}
	switch in.Correction {
	case NoCorrection, Holm, BenjaminiHochberg:
	default:
		return experiment.E(experiment.Invalid, experiment.Field("correction"), experiment.Errorf(`must be "holm" or "bh", got %q`, in.Correction))
	}
	if len(in.Arms) < 2 {
		return experiment.E(experiment.InsufficientData, experiment.Field("arms"), experiment.Errorf("need at least 2 arms (a control and a variant), got %d", len(in.Arms)))
	}
	seen := map[string]bool{}
	for i, a := range in.Arms {
		f := func(name string) experiment.Field { return experiment.Field(fmt.Sprintf("arms[%d].%s", i, name)) }
		if a.Name == "" {
			return experiment.E(experiment.Invalid, f("name"), experiment.Errorf("must not be empty"))
		}
		if seen[a.Name] {
			return experiment.E(experiment.Invalid, f("name"), experiment.Errorf("duplicate arm %q", a.Name))
		}
		seen[a.Name] = true
		if a.N < 0 {
			return experiment.E(experiment.Invalid, f("n"), experiment.Errorf("must be ≥ 0, got %d", a.N))
		}
		if !(a.Weight >= 0) || math.IsInf(a.Weight, 0) {
			return experiment.E(experiment.Invalid, f("weight"), experiment.Errorf("must be ≥ 0, got %g", a.Weight))
		}
		if in.Type == Proportion && !(a.Sum >= 0 && a.Sum <= float64(a.N)) {
			return experiment.E(experiment.Invalid, f("sum"), experiment.Errorf("a proportion metric needs 0 ≤ sum ≤ n, got sum %g with n %d", a.Sum, a.N))
		}
		for name, v := range map[string]float64{
			"sum": a.Sum, "sum_squares": a.SumSquares, "covariate_sum": a.CovariateSum,
			"covariate_sum_squares": a.CovariateSumSquares, "cross_sum": a.CrossSum,
			"denominator_sum": a.DenominatorSum, "denominator_sum_squares": a.DenominatorSumSquares,
			"metric_denominator_sum": a.MetricDenominatorSum,
		} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return experiment.E(experiment.Invalid, f(name), experiment.Errorf("must be finite, got %g", v))
			}
		}
	}
	if in.Control != "" && !seen[in.Control] {
		names := make([]string, len(in.Arms))
		for i, a := range in.Arms {
			names[i] = a.Name
		}
		return experiment.E(experiment.Invalid, experiment.Field("control"), experiment.Errorf("unknown control %q; arms are %q", in.Control, names))
	}
	return nil
}

func (in *Input) controlIndex() int {
	for i, a := range in.Arms {
		if a.Name == in.Control {
			return i
		}
	}
	return 0
}

// armStat is an arm reduced to what a comparison needs: n, the (adjusted) mean,
// the unadjusted mean and the per-unit variance of the (adjusted) mean.
type armStat struct {
	n, mean, unadj, v float64
}

// sampleVariance is gbstats' SampleMeanStatistic.variance (prop false) or
// ProportionStatistic.variance (prop true).
func sampleVariance(n, sum, ss float64, prop bool) float64 {
	if prop {
		if n == 0 {
			return 0
		}
		p := sum / n
		return p * (1 - p)
	}
	if n <= 1 {
		return 0
	}
	return (ss - sum*sum/n) / (n - 1)
}

// covariance is gbstats' compute_covariance: Σab/n − ΣaΣb/n² when both are
// proportions, else (Σab − ΣaΣb/n)/(n−1).
func covariance(n, sa, sb, sab float64, prop bool) float64 {
	if n <= 1 {
		return 0
	}
	if prop {
		return sab/n - sa*sb/(n*n)
	}
	return (sab - sa*sb/n) / (n - 1)
}

func mean(sum, n float64) float64 {
	if n == 0 {
		return 0
	}
	return sum / n
}

// varianceOfRatios is the delta-method variance of m/d for means m, d with
// variances vm, vd and covariance c:
//
//	Var(m/d) ≈ vm/d² + vd·m²/d⁴ − 2c·m/d³
//
// (gbstats utils.variance_of_ratios).
func varianceOfRatios(m, vm, d, vd, c float64) float64 {
	return vm/(d*d) + vd*m*m/(d*d*d*d) - 2*c*m/(d*d*d)
}

// plain reduces an arm without any CUPED adjustment.
func (in *Input) plain(a *Arm) armStat {
	n := float64(a.N)
	if in.Type == Ratio {
		s := armStat{n: n}
		if a.DenominatorSum != 0 {
			s.mean = a.Sum / a.DenominatorSum
		}
		s.unadj = s.mean
		md := mean(a.DenominatorSum, n)
		if md == 0 || n <= 1 {
			return s
		}
		s.v = varianceOfRatios(mean(a.Sum, n), sampleVariance(n, a.Sum, a.SumSquares, false),
			md, sampleVariance(n, a.DenominatorSum, a.DenominatorSumSquares, false),
			covariance(n, a.Sum, a.DenominatorSum, a.MetricDenominatorSum, false))
		return s
	}
	m := mean(a.Sum, n)
	return armStat{n: n, mean: m, unadj: m, v: sampleVariance(n, a.Sum, a.SumSquares, in.Type == Proportion)}
}

// moments is a comparison before the test: the point estimates and variances
// of the absolute and relative effects, the arms' variances for the degrees of
// freedom, and CUPED's θ (0 when not applied).
type moments struct {
	a, b           armStat
	abs, absVar    float64
	rel, relVar    float64
	theta          float64
	unadjustedVar  float64 // absVar without CUPED, for the variance reduction
	cupedRequested bool
}

func (in *Input) compare(ca, cb *Arm) Comparison {
	m := in.moments(ca, cb)
	c := Comparison{Variant: cb.Name}
	if m.cupedRequested {
		vr := 0.0
		if m.unadjustedVar > 0 && m.theta != 0 {
			vr = 1 - m.absVar/m.unadjustedVar
		}
		c.CUPED = &CUPEDSummary{Covariate: in.Covariate, Theta: m.theta, VarianceReduction: finite(vr)}
		if m.theta == 0 {
			c.Flags = append(c.Flags, FlagCUPEDNotApplied)
		}
	}
	uninformative := Effect{PValue: 1}
	switch {
	case m.a.n < 2 || m.b.n < 2:
		c.Flags = append(c.Flags, FlagInsufficientData)
		c.Absolute, c.Relative = uninformative, uninformative
		return c
	case !(m.a.v > 0) || !(m.b.v > 0) || !(m.absVar > 0):
		c.Flags = append(c.Flags, FlagZeroVariance)
		c.Absolute, c.Relative = uninformative, uninformative
		return c
	}
	dof := WelchDF(m.a.v, m.a.n, m.b.v, m.b.n)
	var flags []string
	c.Absolute, flags = in.test(m.abs, math.Sqrt(m.absVar), dof, m.a.n+m.b.n)
	c.Flags = append(c.Flags, flags...)
	if m.a.unadj == 0 || !(m.relVar > 0) {
		if m.a.unadj == 0 {
			c.Flags = append(c.Flags, FlagZeroControlMean)
		} else {
			c.Flags = append(c.Flags, FlagZeroVariance)
		}
		c.Relative = uninformative
		return c
	}
	c.Relative, flags = in.test(m.rel, math.Sqrt(m.relVar), dof, m.a.n+m.b.n)
	c.Flags = append(c.Flags, flags...)
	return c
}

// test turns an estimate into an Effect: a fixed-horizon t-test, or a
// sequential confidence sequence when SequentialTuning > 0.
func (in *Input) test(est, se, dof, n float64) (Effect, []string) {
	if in.SequentialTuning > 0 {
		e, ok := Sequential(est, se, n, in.SequentialTuning, in.Alpha, in.Alternative)
		e.DF = dof
		if !ok {
			return e, []string{FlagPValueNotConverged}
		}
		return e, nil
	}
	return TTest(est, se, dof, in.Alpha, in.Alternative), nil
}

func (in *Input) moments(ca, cb *Arm) moments {
	a, b := in.plain(ca), in.plain(cb)
	m := moments{a: a, b: b}
	m.unadjustedVar = b.v/b.n + a.v/a.n
	if in.Covariate != "" && a.n+b.n > 0 {
		m.cupedRequested = true
		var ok bool
		if in.Type == Ratio {
			ok = in.ratioCUPED(ca, cb, &m)
		} else {
			ok = in.meanCUPED(ca, cb, &m)
		}
		if ok {
			return m
		}
		m.theta = 0
		m.a, m.b = a, b
	}
	m.abs = b.mean - a.mean
	m.absVar = m.unadjustedVar
	if a.unadj != 0 {
		m.rel = (b.mean - a.mean) / math.Abs(a.unadj)
		m.relVar = varianceOfRatios(b.unadj, b.v/b.n, a.unadj, a.v/a.n, 0)
	}
	return m
}
