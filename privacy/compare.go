package privacy

import (
	"math"

	"github.com/liftlab/lift/experiment"
)

// Interval is an estimate with its standard error, two-sided confidence interval and
// p-value against zero, the shape of the comparisons of `lift analyze`.
type Interval struct {
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"se"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
}

// Comparison is a variant against control: the absolute difference of means and,
// when it is bounded, the relative one. NotEnoughSignal says that the noise added
// for privacy dominates: Note says how, in words a reader can act on.
type Comparison struct {
	Variant  string    `json:"variant"`
	Absolute Interval  `json:"absolute"`
	Relative *Interval `json:"relative,omitempty"` // nil when no bounded interval exists (see Compare)
	// NotEnoughSignal is set when the noise dominates: too few units for the
	// noise of the counts, a control mean that cannot be told from zero (so no
	// relative interval), or noise larger than the sampling error with an
	// interval that includes zero.
	NotEnoughSignal bool   `json:"not_enough_signal"`
	Note            string `json:"note,omitempty"`
}

// The notes of comparisons without enough signal.
const (
	NoteFewUnits    = "not enough signal: too few units for the privacy noise of the counts; the interval is every value the bounds allow"
	NoteZeroControl = "not enough signal: the control mean cannot be told from zero under the privacy noise, so there is no bounded interval for the relative lift"
	NoteNoisy       = "not enough signal: the privacy noise is larger than the sampling error and the interval includes zero"
)

// Compare returns the lift of t over c from released means of a metric with
// per-unit bounds b. Each mean's variance is its sampling variance plus the variance
// of the noise added to it, V = s²/n + Var_noise(mean), and the critical value is
// the (1 − α/2) quantile of the normal-Laplace error with that noise share
// (mixQuantile), not z_{1−α/2}: Laplace noise has heavier tails than a normal
// error of the same variance.
//
// The absolute difference Δ = m_t − m_c has the interval Δ ± q·√(V_t + V_c), clipped
// to [L − U, U − L]. The relative lift ρ − 1, ρ = μ_t/μ_c, has Fieller's interval
// (Fieller 1954, J. R. Stat. Soc. B 16, 175–185): the ρ with
//
//	(m_t − ρ m_c)² ≤ q² (V_t + ρ² V_c),
//
// which keeps its coverage when the control mean is noisy (the delta method's
// Δ/m_c ± q·se does not: 87% at ε = 0.1 and 200 units per arm). When m_c² ≤ q²V_c
// the set is unbounded and no relative interval is given. The interval is clipped to
// what the bounds allow: for a metric that cannot be negative (L ≥ 0) the ratio of
// means is at least L/U, so the lift is never below −100%.
//
// When either arm's noised count is within five noise standard deviations of zero
// (VariantRelease.FewUnits) the means are unreliable and the interval is the whole
// range the bounds allow, with p = 1.
func Compare(t, c VariantRelease, b experiment.Bounds, alpha float64) Comparison {
	vt := t.SamplingVar + t.NoiseVar
	vc := c.SamplingVar + c.NoiseVar
	d := t.Mean - c.Mean
	w := b.Upper - b.Lower
	se := math.Sqrt(vt + vc)
	out := Comparison{Variant: t.Variant}
	if t.FewUnits || c.FewUnits {
		out.Absolute = Interval{Estimate: clamp(d, -w, w), SE: se, CILow: -w, CIHigh: w, PValue: 1}
		out.NotEnoughSignal, out.Note = true, NoteFewUnits
		return out
	}
	noise := t.NoiseVar + c.NoiseVar
	f := 0.0
	if vt+vc > 0 {
		f = noise / (vt + vc)
	}
	q := mixQuantile(alpha, f)
	p := 1.0
	switch {
	case se > 0:
		p = mixPValue(d/se, f)
	case d != 0:
		p = 0
	}
	out.Absolute = Interval{Estimate: d, SE: se, CILow: max(d-q*se, -w), CIHigh: min(d+q*se, w), PValue: p}

	lo, hi := ratioRange(b)
	qr := mixQuantile(alpha, max(share(t), share(c)))
	mt, mc := t.Mean, c.Mean
	a := mc*mc - qr*qr*vc
	if !(a > 0) {
		out.NotEnoughSignal, out.Note = true, NoteZeroControl
		return out
	}
	bb := mt * mc
	cc := mt*mt - qr*qr*vt
	disc := math.Sqrt(max(bb*bb-a*cc, 0))
	rlo, rhi := (bb-disc)/a, (bb+disc)/a
	mc2 := mc * mc
	rel := Interval{
		Estimate: clamp(mt/mc, lo, hi) - 1,
		SE:       math.Sqrt(vt/mc2 + mt*mt*vc/(mc2*mc2)), // delta method, for reference
		CILow:    clamp(rlo, lo, hi) - 1,
		CIHigh:   clamp(rhi, lo, hi) - 1,
		PValue:   p, // ρ = 1 exactly when Δ = 0
	}
	out.Relative = &rel
	if noise > vt+vc-noise && out.Absolute.CILow <= 0 && out.Absolute.CIHigh >= 0 {
		out.NotEnoughSignal, out.Note = true, NoteNoisy
	}
	return out
}

// share is the noise's share of the variance of a released mean.
func share(v VariantRelease) float64 {
	if s := v.SamplingVar + v.NoiseVar; s > 0 {
		return v.NoiseVar / s
	}
	return 0
}

// ratioRange is the range of μ_t/μ_c that means within the bounds b allow: [L/U,
// U/L] when L ≥ 0 (U/L = +∞ when L = 0), [U/L, L/U] when U ≤ 0, and the whole line
// when the bounds straddle zero.
func ratioRange(b experiment.Bounds) (lo, hi float64) {
	switch {
	case b.Lower >= 0:
		hi = math.Inf(1)
		if b.Lower > 0 {
			hi = b.Upper / b.Lower
		}
		return b.Lower / b.Upper, hi
	case b.Upper <= 0:
		hi = math.Inf(1)
		if b.Upper < 0 {
			hi = b.Lower / b.Upper
		}
		return b.Upper / b.Lower, hi
	}
	return math.Inf(-1), math.Inf(1)
}

func clamp(x, lo, hi float64) float64 { return min(max(x, lo), hi) }

func compareAll(vs []VariantRelease, control string, b experiment.Bounds, alpha float64) []Comparison {
	var c VariantRelease
	for _, v := range vs {
		if v.Variant == control {
			c = v
		}
	}
	var out []Comparison
	for _, v := range vs {
		if v.Variant != control {
			out = append(out, Compare(v, c, b, alpha))
		}
	}
	return out
}

// normalSurvival is 1 − Φ(x) = erfc(x/√2)/2.
func normalSurvival(x float64) float64 { return 0.5 * math.Erfc(x/math.Sqrt2) }

// normalQuantile is Φ⁻¹(p) = −√2 erfcinv(2p).
func normalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }
