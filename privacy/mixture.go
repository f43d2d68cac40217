package privacy

import "math"

// The error of a released estimate is the sum of a sampling error, close to normal,
// and the noise added for privacy: Laplace noise, or a sum of several Laplace terms
// (the noise of two arms' sums and counts). Its tails are heavier than a normal
// distribution's of the same variance, so the normal quantile z_{1−α/2} makes
// intervals too narrow when the noise dominates (93.7% instead of 95% for pure
// Laplace noise). The functions here use the normal-Laplace distribution
//
//	X = √(1−f)·Z + √f·L,  Z ~ N(0, 1), L Laplace with variance 1,
//
// whose variance is 1 and whose noise share is f. Among sums of a normal and
// independent Laplace terms with a given total noise variance, one single Laplace
// term has the heaviest tails (checked numerically: the 97.5% quantile of two equal
// Laplace terms is 2.057 standard deviations, of one 2.118), so a quantile of X with
// f the noise share is a conservative critical value for every release's error.
//
// The CDF of the normal-Laplace distribution (Reed 2006, "The normal-Laplace
// distribution and its relatives", with α = β = 1/b) is
//
//	F(x) = Φ(x/σ) − ½ φ(x/σ) [R(σ/b − x/σ) − R(σ/b + x/σ)]
//
// where σ² = 1 − f, b = √(f/2) and R(t) = (1 − Φ(t))/φ(t) is Mills' ratio.

// mixSurvival is P(X > x) for the standardized normal-Laplace variable with noise
// share f in [0, 1].
func mixSurvival(x, f float64) float64 {
	switch {
	case f <= 0:
		return normalSurvival(x)
	case f >= 1:
		b := 1 / math.Sqrt2
		if x >= 0 {
			return 0.5 * math.Exp(-x/b)
		}
		return 1 - 0.5*math.Exp(x/b)
	}
	s := math.Sqrt(1 - f)
	b := math.Sqrt(f / 2)
	u := x / s
	k := s / b
	// ½ φ(u) R(t) computed as ½ exp(log φ(u) + log R(t)) so that neither factor
	// overflows when the noise share is small (k large).
	lphi := -u*u/2 - 0.5*math.Log(2*math.Pi)
	term := 0.5 * (math.Exp(lphi+logMills(k-u)) - math.Exp(lphi+logMills(k+u)))
	return normalSurvival(u) + term
}

// logMills is log R(t), R(t) = (1 − Φ(t))/φ(t), for any t.
func logMills(t float64) float64 {
	if t < 5 {
		return math.Log(normalSurvival(t)) + t*t/2 + 0.5*math.Log(2*math.Pi)
	}
	// Laplace's continued fraction R(t) = 1/(t + 1/(t + 2/(t + 3/(t + …)))),
	// evaluated from 40 terms down; for t ≥ 5 it converges to full precision.
	r := t
	for k := 40; k >= 1; k-- {
		r = t + float64(k)/r
	}
	return -math.Log(r)
}

// mixQuantile is the critical value q with P(|X| ≤ q) = 1 − alpha for the
// standardized normal-Laplace variable with noise share f: between z_{1−α/2}
// (f = 0) and ln(1/α)/√2 (f = 1, pure Laplace), found by bisection.
func mixQuantile(alpha, f float64) float64 {
	f = min(max(f, 0), 1)
	lo := normalQuantile(1 - alpha/2)
	if f == 0 {
		return lo
	}
	hi := math.Log(1/alpha)/math.Sqrt2 + 1e-9
	if f == 1 {
		return math.Log(1/alpha) / math.Sqrt2
	}
	hi = max(hi, lo)
	for range 60 {
		mid := (lo + hi) / 2
		if 2*mixSurvival(mid, f) > alpha {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// mixPValue is the two-sided p-value of the standardized statistic x.
func mixPValue(x, f float64) float64 {
	return min(1, 2*mixSurvival(math.Abs(x), min(max(f, 0), 1)))
}
