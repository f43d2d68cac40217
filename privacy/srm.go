package privacy

import "math"

// SRM is the sample-ratio check of a release's noised unit counts.
type SRM struct {
	PValue    float64 `json:"p_value"`
	Mismatch  bool    `json:"mismatch"` // PValue < Threshold
	Threshold float64 `json:"threshold"`
	// Method says how the count noise was accounted for, for readers of the JSON.
	Method string `json:"method"`
}

// SRMMethod is the Method of every SRM this package computes.
const SRMMethod = "deviation of each noised count from its expected share, with the Laplace count noise in its null distribution"

// SRMTest checks the noised counts of a release against the expected shares
// weights (normalized to sum to 1) at the threshold (0.001 when 0), accounting
// for the noise the counts carry.
//
// Under no mismatch the counts are multinomial(N, w) plus independent noise of
// variance σ² each (NoisyCount.NoiseSD). The deviation of arm i from its expected
// share of the released total, D_i = ñ_i − w_i Σñ, has mean 0 and variance
//
//	N w_i (1 − w_i) + σ² ((1 − w_i)² + (k − 1) w_i²),
//
// sampling plus noise, with N estimated by Σñ. D_i is standardized and its
// two-sided p-value taken from the normal-Laplace distribution with the noise's
// share of that variance (mixPValue), which is conservative for the sum of Laplace
// terms D_i holds. With two arms D_1 = −D_2 and the test is the chi-square test of
// analysis.SRM plus the noise (exactly it when σ = 0); with k > 2 arms the
// smallest of the k p-values is multiplied by k (Bonferroni).
//
// The plain chi-square test on noised counts ignores σ² and raises false alarms
// when the noise is not small against √N (p = 0.004 where the exact counts gave
// 0.27); this one keeps the false-alarm rate at the threshold or below, at the cost
// of power when the noise dominates.
func SRMTest(units []NoisyCount, weights []float64, threshold float64) SRM {
	if threshold == 0 {
		threshold = 0.001
	}
	out := SRM{PValue: 1, Threshold: threshold, Method: SRMMethod}
	k := len(units)
	if k < 2 || len(weights) != k {
		return out
	}
	var total, wsum float64
	for i, u := range units {
		total += float64(max(u.N, 0))
		wsum += weights[i]
	}
	if !(wsum > 0) {
		return out
	}
	kf := float64(k)
	best := 1.0
	for i, u := range units {
		w := weights[i] / wsum
		s2 := u.NoiseSD * u.NoiseSD
		sampling := total * w * (1 - w)
		noise := s2 * ((1-w)*(1-w) + (kf-1)*w*w)
		v := sampling + noise
		if !(v > 0) {
			continue
		}
		d := float64(max(u.N, 0)) - w*total
		best = min(best, mixPValue(d/math.Sqrt(v), noise/v))
		if k == 2 {
			break // D_2 = −D_1 with the same variance
		}
	}
	if k > 2 {
		best = min(1, kf*best)
	}
	out.PValue = best
	out.Mismatch = best < threshold
	return out
}
