package analysis

import "math"

// Shifted sums.
//
// Variances computed from raw sums, (Σy² − (Σy)²/n)/(n−1), lose every digit
// the mean has beyond the spread: at mean 1e9 and standard deviation 1 the two
// terms agree in their first 18 digits, more than a float64 holds, and the
// difference is noise (often negative). An Arm therefore carries, for each
// variable, a shift c (a pilot value near the data) and sums of the shifted
// values: Sum = Σ(y − c), SumSquares = Σ(y − c)², CrossSum = Σ(x − c_x)(y − c),
// and so on. Centred moments do not depend on c,
//
//	Σ(u−ū)(v−v̄) = Σu'v' − Σu'Σv'/n     with u' = u − c_u, v' = v − c_v,
//
// and lose nothing when c is within a few standard deviations of the mean;
// means are c + Σu'/n. Any c works (0 gives the raw sums), so a warehouse that
// can only sum computes the same statistics: the store takes c from a first
// pass over the per-unit values (their mean), a file reader may take the
// engine's own centred moments (c = the arm's mean, Σy' = 0).

// The variables of an arm, in the order of gbstats' ratio CUPED (y, d, x, d₀).
const (
	vY = iota
	vD
	vX
	vD0
)

// armMoments are an arm's shifts, mean deviations and centred co-moments.
type armMoments struct {
	n     float64
	shift [4]float64    // c
	dev   [4]float64    // mean − c
	co    [4][4]float64 // Σ(u−ū)(v−v̄)
	scale [4]float64    // Σ(u−c_u)²: the size of the rounding error of co[u][u]
}

// zeroTol is the relative size below which a centred sum of squares is
// rounding noise of the sums it came from (about 45 ulps): it is taken as 0.
const zeroTol = 1e-14

func momentsOf(a *Arm) armMoments {
	m := armMoments{n: float64(a.N)}
	m.shift = [4]float64{a.Shift, a.DenominatorShift, a.CovariateShift, a.DenominatorCovariateShift}
	sums := [4]float64{a.Sum, a.DenominatorSum, a.CovariateSum, a.DenominatorCovariateSum}
	var cross [4][4]float64
	cross[vY][vY] = a.SumSquares
	cross[vD][vD] = a.DenominatorSumSquares
	cross[vX][vX] = a.CovariateSumSquares
	cross[vD0][vD0] = a.DenominatorCovariateSumSquares
	cross[vY][vD] = a.MetricDenominatorSum
	cross[vY][vX] = a.CrossSum
	cross[vY][vD0] = a.MetricDenominatorCovariateSum
	cross[vD][vX] = a.CovariateDenominatorSum
	cross[vD][vD0] = a.DenominatorDenominatorCovariateSum
	cross[vX][vD0] = a.CovariateDenominatorCovariateSum
	if m.n == 0 {
		return m
	}
	for i := range 4 {
		m.dev[i] = sums[i] / m.n
		m.scale[i] = cross[i][i]
		for j := i; j < 4; j++ {
			c := cross[i][j] - sums[i]*sums[j]/m.n
			m.co[i][j], m.co[j][i] = c, c
		}
	}
	m.clamp()
	m.snap()
	return m
}

// snapTol is the relative size, against the shift, below which a constant
// variable's mean is taken as exactly 0 or 1: Σ(y−c) of n values y = v summed
// with a shift c ≠ v carries a rounding error of up to about n·ε·|c|.
const snapTol = 1e-10

// snap sets the mean of a constant variable (centred sum of squares 0) that is
// within rounding of 0 or 1 to exactly that. A control that is all zeros,
// summed with the pooled mean as its shift (as the store sums), has a mean
// c + Σ(y−c)/n of ±1e-16 otherwise: its relative effect would be ~1e15 instead
// of undefined, and a proportion's variance p(1−p) would be ±1e-16 instead of 0.
func (m *armMoments) snap() {
	if m.n == 0 {
		return
	}
	for i := range 4 {
		if m.co[i][i] != 0 {
			continue
		}
		for _, v := range [2]float64{0, 1} {
			if mean := m.mean(i); mean != v && math.Abs(mean-v) <= snapTol*math.Max(math.Abs(m.shift[i]), v) {
				m.shift[i], m.dev[i] = v, 0
			}
		}
	}
}

// clamp sets centred sums of squares that are within rounding noise of 0 to 0,
// and their covariances with them (|cov| ≤ sd·sd).
func (m *armMoments) clamp() {
	for i := range 4 {
		if math.Abs(m.co[i][i]) <= zeroTol*m.scale[i] {
			for j := range 4 {
				m.co[i][j], m.co[j][i] = 0, 0
			}
		}
	}
}

func (m *armMoments) mean(i int) float64 { return m.shift[i] + m.dev[i] }

// variance is gbstats' SampleMeanStatistic.variance (prop false) or
// ProportionStatistic.variance p(1−p) (prop true).
func (m *armMoments) variance(i int, prop bool) float64 {
	if prop {
		if m.n == 0 {
			return 0
		}
		p := m.mean(i)
		return p * (1 - p)
	}
	if m.n <= 1 {
		return 0
	}
	return m.co[i][i] / (m.n - 1)
}

// cov is gbstats' compute_covariance: Σ(u−ū)(v−v̄)/n when both are
// proportions, else /(n−1).
func (m *armMoments) cov(i, j int, prop bool) float64 {
	if m.n <= 1 {
		return 0
	}
	if prop {
		return m.co[i][j] / m.n
	}
	return m.co[i][j] / (m.n - 1)
}

// meanDiff is mean_b(i) − mean_a(i), exact in the shifts.
func meanDiff(a, b *armMoments, i int) float64 {
	return (b.shift[i] - a.shift[i]) + (b.dev[i] - a.dev[i])
}

// pool returns the moments of the union of two arms (Chan, Golub & LeVeque
// 1979): co = co_a + co_b + n_a·n_b/n·δ_uδ_v with δ the difference of means.
func pool(a, b *armMoments) armMoments {
	p := armMoments{n: a.n + b.n, shift: a.shift}
	if p.n == 0 {
		return p
	}
	var delta [4]float64
	for i := range 4 {
		delta[i] = meanDiff(a, b, i)
		p.dev[i] = (a.n*a.dev[i] + b.n*(b.dev[i]+(b.shift[i]-a.shift[i]))) / p.n
	}
	w := a.n * b.n / p.n
	for i := range 4 {
		p.scale[i] = a.scale[i] + b.scale[i] + w*delta[i]*delta[i]
		for j := range 4 {
			p.co[i][j] = a.co[i][j] + b.co[i][j] + w*delta[i]*delta[j]
		}
	}
	p.clamp()
	return p
}
