package analysis

import "math"

// Sequential returns an always-valid (asymptotic) confidence sequence for an
// effect estimate est with standard error se, after n units in total, following
// Waudby-Smith, Arnold, Wu, Howard, Ramdas & Sherman (2023), "Time-uniform central
// limit theory and asymptotic confidence sequences", arXiv:2103.06476v7, as
// GrowthBook implements it. With the tuning parameter N* (the sample size where
// the sequence is tightest) and s² = se²·n:
//
//	ρ = sqrt((−2 ln α + ln(−2 ln α + 1))/N*)
//	halfwidth = s·sqrt(2(nρ² + 1)·ln(sqrt(nρ² + 1)/α)/(nρ)²)          (eq. 9)
//
// The two-sided p-value is the inverse of the e-value (eq. 155), capped at 1:
//
//	p = min(1, sqrt(nρ² + 1)·exp(−ρ²·t²n/(2(nρ² + 1))))  with t = est/se.
//
// One-sided sequences use ρ at 2α and the halfwidth (eq. 161)
//
//	s·sqrt(2(nρ² + 1)/(nρ)²·ln(1 + sqrt(nρ² + 1)/(2α)))
//
// and their p-value is the α at which the bound touches 0, found by bisection on
// [1e−5, 0.4999] and clamped to it (gbstats). ok is false when the bisection did
// not converge; the p-value is then the last bracket's midpoint.
//
// The interval may be read at any n without inflating the error rate.
func Sequential(est, se, n, tuning, alpha float64, alt Alternative) (e Effect, ok bool) {
	e = Effect{Estimate: est, SE: se}
	s2 := se * se * n
	if alt == Greater || alt == Less {
		rho := sequentialRho(2*alpha, tuning)
		lo, hi := oneSidedBounds(est, s2, n, rho, alpha, alt)
		e.CILow, e.CIHigh = lo, hi
		e.PValue, ok = oneSidedSequentialP(est, s2, n, rho, alt)
		return e, ok
	}
	rho := sequentialRho(alpha, tuning)
	nr2 := n*rho*rho + 1
	h := math.Sqrt(s2) * math.Sqrt(2*nr2*math.Log(math.Sqrt(nr2)/alpha)/math.Pow(n*rho, 2))
	e.CILow, e.CIHigh = est-h, est+h
	st2 := est * est * n / (se * se)
	evalue := math.Exp(rho*rho*st2/(2*nr2)) / math.Sqrt(nr2)
	e.PValue = math.Min(1/evalue, 1)
	return e, true
}

func sequentialRho(alpha, tuning float64) float64 {
	l := -2 * math.Log(alpha)
	return math.Sqrt((l + math.Log(l+1)) / tuning)
}

func oneSidedBounds(est, s2, n, rho, alpha float64, alt Alternative) (lo, hi float64) {
	nr2 := n*rho*rho + 1
	h := math.Sqrt(s2 * 2 * nr2 / math.Pow(n*rho, 2) * math.Log(1+math.Sqrt(nr2)/(2*alpha)))
	if alt == Less {
		return math.Inf(-1), est + h
	}
	return est - h, math.Inf(1)
}

// oneSidedSequentialP is gbstats' bisection for the one-sided sequential p-value.
func oneSidedSequentialP(est, s2, n, rho float64, alt Alternative) (float64, bool) {
	const tol, maxIters = 1e-6, 100
	minA, maxA := 1e-5, 0.4999
	// bound returns the finite end of the interval at level a.
	bound := func(a float64) float64 {
		lo, hi := oneSidedBounds(est, s2, n, rho, a, alt)
		if alt == Less {
			return hi
		}
		return lo
	}
	less := alt == Less
	if b := bound(minA); (less && b < 0) || (!less && b > 0) {
		return minA, true
	}
	if b := bound(maxA); (less && b > 0) || (!less && b < 0) {
		return maxA, true
	}
	a := 0.5 * (minA + maxA)
	var diff float64
	iters := 0
	for i := 0; i < maxIters; i++ {
		iters = i
		diff = bound(a)
		if (less && diff > 0) || (!less && diff < 0) {
			minA = a
		} else {
			maxA = a
		}
		a = 0.5 * (minA + maxA)
		if math.Abs(diff) < tol {
			break
		}
	}
	return a, math.Abs(diff) < tol && iters != maxIters
}
