package privacy

import "math"

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
// when the control mean is not zero, the relative one.
type Comparison struct {
	Variant  string    `json:"variant"`
	Absolute Interval  `json:"absolute"`
	Relative *Interval `json:"relative,omitempty"`
}

// Compare returns the lift of t over c from released means. Each mean's variance is
// its sampling variance plus the variance of the noise added to it,
//
//	V = s²/n + Var_noise(mean)
//
// so the interval Δ ± z_{1−α/2} sqrt(V_t + V_c) for Δ = m_t − m_c keeps its nominal
// coverage however the error splits between sampling and noise (checked by
// simulation in the tests). The relative lift Δ/m_c has, by the delta method,
//
//	Var ≈ V_t/m_c² + m_t² V_c/m_c⁴.
//
// The p-values are two-sided normal ones.
func Compare(t, c VariantRelease, alpha float64) Comparison {
	z := normalQuantile(1 - alpha/2)
	vt := t.SamplingVar + t.NoiseVar
	vc := c.SamplingVar + c.NoiseVar
	d := t.Mean - c.Mean
	out := Comparison{Variant: t.Variant, Absolute: interval(d, math.Sqrt(vt+vc), z)}
	if c.Mean != 0 {
		mc2 := c.Mean * c.Mean
		se := math.Sqrt(vt/mc2 + t.Mean*t.Mean*vc/(mc2*mc2))
		r := interval(d/c.Mean, se, z)
		out.Relative = &r
	}
	return out
}

func compareAll(vs []VariantRelease, control string, alpha float64) []Comparison {
	var c VariantRelease
	for _, v := range vs {
		if v.Variant == control {
			c = v
		}
	}
	var out []Comparison
	for _, v := range vs {
		if v.Variant != control {
			out = append(out, Compare(v, c, alpha))
		}
	}
	return out
}

func interval(est, se, z float64) Interval {
	p := 1.0
	if se > 0 {
		p = 2 * normalSurvival(math.Abs(est)/se)
	} else if est != 0 {
		p = 0
	}
	return Interval{Estimate: est, SE: se, CILow: est - z*se, CIHigh: est + z*se, PValue: p}
}

// normalSurvival is 1 − Φ(x) = erfc(x/√2)/2.
func normalSurvival(x float64) float64 { return 0.5 * math.Erfc(x/math.Sqrt2) }

// normalQuantile is Φ⁻¹(p) = −√2 erfcinv(2p).
func normalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }
