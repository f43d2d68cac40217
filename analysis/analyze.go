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
	// Mean is a mean metric: variance Σ(y−ȳ)²/(n−1).
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

// Flags set on a comparison whose data are degenerate. An effect that cannot
// be estimated holds GrowthBook's uninformative default (estimate 0, interval
// [0, 0], p-value 1); which effects those are is said for each flag.
const (
	FlagZeroVariance     = "zero_variance"     // both effects: an arm's variance is negative (inconsistent sums), or both arms have none
	FlagInsufficientData = "insufficient_data" // both effects: an arm has fewer than 2 units
	// FlagZeroVarianceArm: one arm is constant (a control that cannot use the
	// feature, a proportion at 0 or 1). The absolute effect is estimated with
	// the other arm's variance (Welch, n − 1 degrees of freedom of that arm);
	// the relative one too unless FlagZeroControlMean or
	// FlagRelativeZeroVariance says otherwise.
	FlagZeroVarianceArm      = "zero_variance_arm"
	FlagZeroControlMean      = "zero_control_mean"      // relative effect only: undefined, control mean 0
	FlagRelativeZeroVariance = "relative_zero_variance" // relative effect only: its delta-method variance is 0 (a treatment arm constant at 0)
	FlagCUPEDNotApplied      = "cuped_not_applied"      // θ = 0 (no variance in the covariate): unadjusted analysis
)

// Sentinel errors, wrapped in experiment.Error values with a kind.
var (
	ErrZeroVariance = errors.New("zero or negative variance")
)

// Arm holds one variant's sufficient statistics. Which sums are needed depends
// on the analysis: y is the metric, x its covariate (for CUPED, usually the same
// metric before exposure), d the denominator of a ratio metric and d₀ the
// denominator's covariate (ratio metrics with CUPED).
//
// Every sum is over shifted values y − c_y, x − c_x, d − c_d, d₀ − c_d₀, the
// shifts being the Shift fields (see the package doc's "shifted sums"): with
// shifts 0 they are the raw sums Σy, Σy², Σxy, …; with a shift near each
// variable's mean the variances stay exact whatever the offset of the data
// (a balance in cents, a timestamp). The shift is per variable, not per arm:
// arms may use different shifts, but one shared by the arms keeps the
// difference of means exact too.
type Arm struct {
	Name   string  `json:"name"`             // variant name, unique within an Input
	Weight float64 `json:"weight,omitempty"` // configured traffic share for the SRM check; arms with weight 0 are skipped there
	N      int64   `json:"n"`                // number of units

	Shift      float64 `json:"shift,omitempty"`       // c_y, subtracted from y before summing
	Sum        float64 `json:"sum,omitempty"`         // Σ(y−c_y)
	SumSquares float64 `json:"sum_squares,omitempty"` // Σ(y−c_y)²

	// CUPED (Input.Covariate set).
	CovariateShift      float64 `json:"covariate_shift,omitempty"`       // c_x
	CovariateSum        float64 `json:"covariate_sum,omitempty"`         // Σ(x−c_x)
	CovariateSumSquares float64 `json:"covariate_sum_squares,omitempty"` // Σ(x−c_x)²
	CrossSum            float64 `json:"cross_sum,omitempty"`             // Σ(x−c_x)(y−c_y)

	// Ratio metrics (Type Ratio).
	DenominatorShift      float64 `json:"denominator_shift,omitempty"`       // c_d
	DenominatorSum        float64 `json:"denominator_sum,omitempty"`         // Σ(d−c_d)
	DenominatorSumSquares float64 `json:"denominator_sum_squares,omitempty"` // Σ(d−c_d)²
	MetricDenominatorSum  float64 `json:"metric_denominator_sum,omitempty"`  // Σ(y−c_y)(d−c_d)

	// Ratio metrics with CUPED: the denominator's covariate d₀ and the cross
	// products (of shifted values, as above).
	DenominatorCovariateShift          float64 `json:"denominator_covariate_shift,omitempty"`           // c_d₀
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
	// Bayesian, when set, adds GrowthBook's Bayesian view of every comparison
	// under this prior on the relative effect (Comparison.Bayesian).
	Bayesian *Prior `json:"bayesian,omitempty"`
	// LowerIsBetter marks a metric whose desired direction is down
	// (GrowthBook's inverse metrics): the Bayesian view's chance to win is
	// then P(effect < 0) and its two risks swap.
	LowerIsBetter bool `json:"lower_is_better,omitempty"`
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
	Bayesian *Bayesian     `json:"bayesian,omitempty"` // Input.Bayesian set: the posterior view
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
		res.Variants[i] = VariantSummary{Name: a.Name, N: a.N, Mean: finite(s.mean()), Variance: finite(s.v), Weight: a.Weight}
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
		if in.Bayesian != nil {
			c.Bayesian = bayesian(&c, res.Variants[ctrl].Mean, *in.Bayesian, in.Alpha, in.LowerIsBetter)
		}
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
	if b := in.Bayesian; b != nil {
		if math.IsNaN(b.Mean) || math.IsInf(b.Mean, 0) {
			return experiment.E(experiment.Invalid, experiment.Field("bayesian.mean"), experiment.Errorf("must be finite, got %g", b.Mean))
		}
		if b.Proper && !(b.Variance > 0 && !math.IsInf(b.Variance, 0)) {
			return experiment.E(experiment.Invalid, experiment.Field("bayesian.variance"), experiment.Errorf("a proper prior needs a positive finite variance, got %g", b.Variance))
		}
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
		for name, v := range map[string]float64{
			"shift": a.Shift, "sum": a.Sum, "sum_squares": a.SumSquares,
			"covariate_shift": a.CovariateShift, "covariate_sum": a.CovariateSum,
			"covariate_sum_squares": a.CovariateSumSquares, "cross_sum": a.CrossSum,
			"denominator_shift": a.DenominatorShift, "denominator_sum": a.DenominatorSum,
			"denominator_sum_squares": a.DenominatorSumSquares, "metric_denominator_sum": a.MetricDenominatorSum,
			"denominator_covariate_shift": a.DenominatorCovariateShift, "denominator_covariate_sum": a.DenominatorCovariateSum,
			"denominator_covariate_sum_squares":     a.DenominatorCovariateSumSquares,
			"metric_denominator_covariate_sum":      a.MetricDenominatorCovariateSum,
			"covariate_denominator_sum":             a.CovariateDenominatorSum,
			"covariate_denominator_covariate_sum":   a.CovariateDenominatorCovariateSum,
			"denominator_denominator_covariate_sum": a.DenominatorDenominatorCovariateSum,
		} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return experiment.E(experiment.Invalid, f(name), experiment.Errorf("must be finite, got %g", v))
			}
		}
		if in.Type == Proportion {
			// Σy = n·c + Σ(y−c), within rounding of the shifted sum.
			n := float64(a.N)
			total := n*a.Shift + a.Sum
			slack := 1e-9 * math.Max(1, n)
			if !(total >= -slack && total <= n+slack) {
				return experiment.E(experiment.Invalid, f("sum"), experiment.Errorf("a proportion metric needs 0 ≤ Σy ≤ n, got Σy %g (shift %g, sum %g) with n %d", total, a.Shift, a.Sum, a.N))
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

// armStat is an arm reduced to what a comparison needs: n, the (adjusted) mean
// ȳ − θx̄ as (c_y − θc_x) + dev, the shifts kept apart so that the difference of
// two arms' means is exact (c_b − c_a is exact), the unadjusted mean and the
// per-unit variance of the (adjusted) mean.
type armStat struct {
	n, cy, cx, theta, dev, unadj, v float64
}

func (s armStat) mean() float64 { return s.cy - s.theta*s.cx + s.dev }

// diff is the difference of the (adjusted) means b − a of two arms with the same θ.
func diff(a, b armStat) float64 {
	return ((b.cy - a.cy) - b.theta*(b.cx-a.cx)) + (b.dev - a.dev)
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
	m := momentsOf(a)
	if in.Type == Ratio {
		s := armStat{n: m.n}
		md := m.mean(vD)
		if m.n == 0 || md == 0 {
			return s
		}
		s.dev = m.mean(vY) / md
		s.unadj = s.dev
		if m.n <= 1 {
			return s
		}
		s.v = varianceOfRatios(m.mean(vY), m.variance(vY, false), md, m.variance(vD, false), m.cov(vY, vD, false))
		return s
	}
	return armStat{n: m.n, cy: m.shift[vY], dev: m.dev[vY], unadj: m.mean(vY), v: m.variance(vY, in.Type == Proportion)}
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
	case m.a.v < 0 || m.b.v < 0 || !(m.absVar > 0) || math.IsNaN(m.a.v) || math.IsNaN(m.b.v):
		// A negative variance (inconsistent sums) or none at all in either arm.
		c.Flags = append(c.Flags, FlagZeroVariance)
		c.Absolute, c.Relative = uninformative, uninformative
		return c
	case m.a.v == 0 || m.b.v == 0:
		// One constant arm (a control that cannot use the feature, a
		// proportion at 0 or 1): Welch with the other arm's variance alone,
		// on its n − 1 degrees of freedom.
		c.Flags = append(c.Flags, FlagZeroVarianceArm)
	}
	dof := WelchDF(m.a.v, m.a.n, m.b.v, m.b.n)
	var flags []string
	c.Absolute, flags = in.test(m.abs, math.Sqrt(m.absVar), dof, m.a.n+m.b.n)
	c.Flags = append(c.Flags, flags...)
	if m.a.unadj == 0 || !(m.relVar > 0) {
		if m.a.unadj == 0 {
			c.Flags = append(c.Flags, FlagZeroControlMean)
		} else {
			c.Flags = append(c.Flags, FlagRelativeZeroVariance)
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
		e := Sequential(est, se, n, in.SequentialTuning, in.Alpha, in.Alternative)
		e.DF = dof
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
	m.abs = diff(a, b)
	m.absVar = m.unadjustedVar
	if a.unadj != 0 {
		m.rel = m.abs / math.Abs(a.unadj)
		m.relVar = varianceOfRatios(b.unadj, b.v/b.n, a.unadj, a.v/a.n, 0)
	}
	return m
}
