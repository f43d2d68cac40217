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
// and their p-value is the α at which the bound touches 0, clamped to
// [1e−5, 0.4999] as gbstats. gbstats finds it by bisection, stopping when the
// bound is within 1e−6 of 0 in the metric's units, so its p-value depends on
// the units; here ρ is held at the level asked for (as gbstats does) and the
// equation is solved in closed form. With A = 2(nρ² + 1)/(nρ)² and
// B = sqrt(nρ² + 1), the bound is 0 where est² = s²·A·ln(1 + B/(2α)):
//
//	p = B / (2·(exp(est²/(s²A)) − 1))      when est points the alternative's way,
//
// and 0.4999 when it does not. est²/s² is free of units, and so is p.
//
// The interval may be read at any n without inflating the error rate.
func Sequential(est, se, n, tuning, alpha float64, alt Alternative) Effect {
	e := Effect{Estimate: est, SE: se}
	s2 := se * se * n
	if alt == Greater || alt == Less {
		rho := sequentialRho(2*alpha, tuning)
		lo, hi := oneSidedBounds(est, s2, n, rho, alpha, alt)
		e.CILow, e.CIHigh = lo, hi
		e.PValue = oneSidedSequentialP(est, s2, n, rho, alt)
		return e
	}
	rho := sequentialRho(alpha, tuning)
	nr2 := n*rho*rho + 1
	h := math.Sqrt(s2) * math.Sqrt(2*nr2*math.Log(math.Sqrt(nr2)/alpha)/math.Pow(n*rho, 2))
	e.CILow, e.CIHigh = est-h, est+h
	st2 := est * est * n / (se * se)
	evalue := math.Exp(rho*rho*st2/(2*nr2)) / math.Sqrt(nr2)
	e.PValue = math.Min(1/evalue, 1)
	return e
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

// oneSidedSequentialP is the one-sided sequential p-value in closed form (see
// Sequential), clamped to gbstats' bracket [1e−5, 0.4999].
func oneSidedSequentialP(est, s2, n, rho float64, alt Alternative) float64 {
	const minA, maxA = 1e-5, 0.4999
	if (alt == Greater && !(est > 0)) || (alt == Less && !(est < 0)) {
		return maxA
	}
	nr2 := n*rho*rho + 1
	a := 2 * nr2 / math.Pow(n*rho, 2)
	p := math.Sqrt(nr2) / (2 * math.Expm1(est*est/(s2*a)))
	return math.Max(minA, math.Min(maxA, p))
}
