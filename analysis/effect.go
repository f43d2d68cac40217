package analysis

import (
	"encoding/json"
	"math"

	"github.com/liftlab/lift/experiment"
	"gonum.org/v1/gonum/stat/distuv"
)

// Effect is an estimated treatment effect with its standard error, confidence
// interval, p-value and degrees of freedom.
//
// For one-sided tests one bound of the interval is infinite; it is written as
// JSON null. No field is ever NaN.
type Effect struct {
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"se"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
	DF       float64 `json:"dof"`
}

// MarshalJSON writes infinite bounds (one-sided intervals) as null.
func (e Effect) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Estimate float64  `json:"estimate"`
		SE       float64  `json:"se"`
		CILow    *float64 `json:"ci_low"`
		CIHigh   *float64 `json:"ci_high"`
		PValue   float64  `json:"p_value"`
		DF       float64  `json:"dof"`
	}{finite(e.Estimate), finite(e.SE), bound(e.CILow), bound(e.CIHigh), finite(e.PValue), finite(e.DF)})
}

// UnmarshalJSON reads null bounds back as −∞ (ci_low) and +∞ (ci_high).
func (e *Effect) UnmarshalJSON(b []byte) error {
	var v struct {
		Estimate float64  `json:"estimate"`
		SE       float64  `json:"se"`
		CILow    *float64 `json:"ci_low"`
		CIHigh   *float64 `json:"ci_high"`
		PValue   float64  `json:"p_value"`
		DF       float64  `json:"dof"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Effect{Estimate: v.Estimate, SE: v.SE, PValue: v.PValue, DF: v.DF, CILow: math.Inf(-1), CIHigh: math.Inf(1)}
	if v.CILow != nil {
		e.CILow = *v.CILow
	}
	if v.CIHigh != nil {
		e.CIHigh = *v.CIHigh
	}
	return nil
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func bound(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// Alternative is the alternative hypothesis of a test about the effect of a
// treatment b over a control a.
type Alternative string

// The alternatives.
const (
	TwoSided Alternative = "two-sided" // H₁: effect ≠ 0
	Greater  Alternative = "greater"   // H₁: effect > 0; the interval is (low, +∞)
	Less     Alternative = "less"      // H₁: effect < 0; the interval is (−∞, high)
)

func (a Alternative) valid() bool { return a == "" || a == TwoSided || a == Greater || a == Less }

// TTest returns the Student-t interval and p-value for an estimate with standard
// error se and dof degrees of freedom at level alpha:
//
//	two-sided: est ± t₁₋α/₂(dof)·se,   p = 2(1 − F_t(|est/se|))
//	greater:   (est − t₁₋α(dof)·se, +∞), p = 1 − F_t(est/se)
//	less:      (−∞, est + t₁₋α(dof)·se), p = F_t(est/se)
//
// as GrowthBook's TwoSidedTTest / OneSidedTreatment{Greater,Lesser}TTest. It
// panics if se ≤ 0 or dof ≤ 0: callers check data conditions first.
func TTest(est, se, dof, alpha float64, alt Alternative) Effect {
	if !(se > 0) || !(dof > 0) {
		panic("analysis: TTest needs se > 0 and dof > 0")
	}
	// Beyond 1e7 degrees of freedom t is the normal distribution to double
	// precision, and gonum's t quantile loses accuracy.
	var t interface {
		CDF(float64) float64
		Survival(float64) float64
		Quantile(float64) float64
	} = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: dof}
	if dof > 1e7 {
		t = distuv.UnitNormal
	}
	z := est / se
	e := Effect{Estimate: est, SE: se, DF: dof}
	switch alt {
	case Greater:
		e.CILow, e.CIHigh = est-t.Quantile(1-alpha)*se, math.Inf(1)
		e.PValue = t.Survival(z)
	case Less:
		e.CILow, e.CIHigh = math.Inf(-1), est+t.Quantile(1-alpha)*se
		e.PValue = t.CDF(z)
	default:
		h := t.Quantile(1-alpha/2) * se
		e.CILow, e.CIHigh = est-h, est+h
		e.PValue = 2 * t.Survival(math.Abs(z))
	}
	e.PValue = math.Max(0, math.Min(1, e.PValue))
	return e
}

// WelchDF is the Welch–Satterthwaite degrees of freedom for two arms with
// per-unit variances v (not variances of the mean) and sizes n:
//
//	dof = (v_b/n_b + v_a/n_a)² / (v_b²/(n_b²(n_b−1)) + v_a²/(n_a²(n_a−1)))
//
// See Welch (1947), Biometrika 34:28–35, and Satterthwaite (1946). The formula
// holds when one variance is 0: it gives the other arm's n − 1 (as scipy's
// ttest_ind(equal_var=False)). It returns 1 when an arm has n ≤ 1 or both
// variances are 0, where it is undefined (callers flag those cases).
func WelchDF(va, na, vb, nb float64) float64 {
	if na <= 1 || nb <= 1 || (va == 0 && vb == 0) {
		return 1
	}
	num := math.Pow(vb/nb+va/na, 2)
	den := vb*vb/(nb*nb*(nb-1)) + va*va/(na*na*(na-1))
	return num / den
}

// Welch returns the absolute difference ȳ_b − ȳ_a of two arms given their means,
// per-unit sample variances and sizes, with the unpooled standard error
//
//	se = sqrt(v_b/n_b + v_a/n_a)
//
// Welch–Satterthwaite degrees of freedom and a two-sided Student-t interval. See
// Welch (1947), Biometrika 34:28–35. It returns an InsufficientData error when an
// arm has fewer than 2 units or the standard error is zero.
func Welch(meanA, varA, nA, meanB, varB, nB, alpha float64) (Effect, error) {
	const op = "analysis.Welch"
	if nA < 2 || nB < 2 {
		return Effect{}, experiment.E(op, experiment.InsufficientData, experiment.Errorf("each arm needs at least 2 units, got %g and %g", nA, nB))
	}
	if err := checkAlpha(op, alpha); err != nil {
		return Effect{}, err
	}
	v := varB/nB + varA/nA
	if !(v > 0) || math.IsInf(v, 0) {
		return Effect{}, experiment.E(op, experiment.InsufficientData, ErrZeroVariance)
	}
	return TTest(meanB-meanA, math.Sqrt(v), WelchDF(varA, nA, varB, nB), alpha, TwoSided), nil
}

// WelchFromSamples is Welch on raw samples: the absolute difference of means
// mean(treated) − mean(control), two-sided at level alpha.
func WelchFromSamples(treated, control []float64, alpha float64) (Effect, error) {
	mb, vb := meanVar(treated)
	ma, va := meanVar(control)
	e, err := Welch(ma, va, float64(len(control)), mb, vb, float64(len(treated)), alpha)
	if err != nil {
		return Effect{}, experiment.E("analysis.WelchFromSamples", err)
	}
	return e, nil
}

// meanVar returns the mean and the (n−1) sample variance, by Welford's update for
// accuracy on large or offset data.
func meanVar(x []float64) (mean, variance float64) {
	var m2 float64
	for i, v := range x {
		d := v - mean
		mean += d / float64(i+1)
		m2 += d * (v - mean)
	}
	if len(x) < 2 {
		return mean, 0
	}
	return mean, m2 / float64(len(x)-1)
}

func checkAlpha(op string, alpha float64) error {
	if !(alpha > 0 && alpha < 1) {
		return experiment.E(op, experiment.Invalid, experiment.Field("alpha"), experiment.Errorf("must be in (0, 1), got %g", alpha))
	}
	return nil
}
