package analysis

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// SRM is the sample-ratio-mismatch test: Pearson's chi-square goodness of fit of
// the observed units per arm against the configured weights,
//
//	χ² = Σ (o_i − e_i)²/e_i,  e_i = N·w_i/Σw,  df = k − 1,
//
// returning its p-value. As GrowthBook's checkSrm, arms with weight ≤ 0 are
// skipped (their units do not count in N), arms beyond the shorter of the two
// slices are ignored, and the p-value is 1 when fewer than two arms remain or no
// unit was observed. Flag a mismatch when the p-value is below a small threshold
// (DefaultSRMThreshold, 0.001): with many experiments a looser one raises false
// alarms.
func SRM(users, weights []float64) float64 {
	var obs, w []float64
	var totalU, totalW float64
	for i := 0; i < len(users) && i < len(weights); i++ {
		if !(weights[i] > 0) {
			continue
		}
		obs = append(obs, users[i])
		w = append(w, weights[i])
		totalU += users[i]
		totalW += weights[i]
	}
	if len(obs) < 2 || totalU <= 0 {
		return 1
	}
	var x float64
	for i, o := range obs {
		e := w[i] / totalW * totalU
		x += (o - e) * (o - e) / e
	}
	p := distuv.ChiSquared{K: float64(len(obs) - 1)}.Survival(x)
	if math.IsNaN(p) {
		return 1
	}
	return p
}
