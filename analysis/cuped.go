package analysis

import "math"

// CUPED (Deng, Xu, Kohavi & Walker 2013, "Improving the sensitivity of online
// controlled experiments by utilizing pre-experiment data", WSDM) replaces each
// arm's mean ȳ by ȳ − θx̄ for a covariate x measured before exposure. Following
// GrowthBook's RegressionAdjustedStatistic, θ is pooled over the two arms being
// compared:
//
//	θ = Cov(y, x)/Var(x)   on the pooled sums of both arms
//
// Each arm's adjusted per-unit variance is
//
//	v_adj = Var(y) + θ²Var(x) − 2θ·Cov(y, x)
//
// and the relative effect (ȳ_b,adj − ȳ_a,adj)/|ȳ_a| keeps the unadjusted control
// mean in the denominator, with gbstats' frequentist_variance_relative_cuped:
//
//	Var_rel = v_adj,b/(n_b ȳ_a²) + [Var(y_a)·ȳ_b²/ȳ_a² − 2θ·Cov_a(y,x)·ȳ_b/ȳ_a + θ²Var(x_a)]/(n_a ȳ_a²)
//
// (the sign of the middle term follows from const = −ȳ_b in gbstats).

// cupedArm is one arm's CUPED pieces.
type cupedArm struct {
	n, my, mx, vy, vx, cov float64
}

func (in *Input) cupedArm(a *Arm) cupedArm {
	n := float64(a.N)
	py, px := in.Type == Proportion, in.CovariateType == Proportion
	return cupedArm{
		n: n, my: mean(a.Sum, n), mx: mean(a.CovariateSum, n),
		vy:  sampleVariance(n, a.Sum, a.SumSquares, py),
		vx:  sampleVariance(n, a.CovariateSum, a.CovariateSumSquares, px),
		cov: covariance(n, a.Sum, a.CovariateSum, a.CrossSum, py && px),
	}
}

// theta returns CUPED's θ pooled over arms a and b (gbstats compute_theta), or 0
// when the pooled metric or covariate has no variance.
func (in *Input) theta(a, b *Arm) float64 {
	n := float64(a.N + b.N)
	py, px := in.Type == Proportion, in.CovariateType == Proportion
	vy := sampleVariance(n, a.Sum+b.Sum, a.SumSquares+b.SumSquares, py)
	vx := sampleVariance(n, a.CovariateSum+b.CovariateSum, a.CovariateSumSquares+b.CovariateSumSquares, px)
	if vx == 0 || vy == 0 {
		return 0
	}
	return covariance(n, a.Sum+b.Sum, a.CovariateSum+b.CovariateSum, a.CrossSum+b.CrossSum, py && px) / vx
}

// meanCUPED fills m for a mean or proportion metric; false when θ = 0 (gbstats
// then reverts to the unadjusted analysis).
func (in *Input) meanCUPED(ca, cb *Arm, m *moments) bool {
	th := in.theta(ca, cb)
	if th == 0 || math.IsNaN(th) {
		return false
	}
	a, b := in.cupedArm(ca), in.cupedArm(cb)
	adj := func(c cupedArm) armStat {
		s := armStat{n: c.n, mean: c.my - th*c.mx, unadj: c.my}
		if c.n > 1 {
			s.v = c.vy + th*th*c.vx - 2*th*c.cov
		}
		return s
	}
	m.theta = th
	m.a, m.b = adj(a), adj(b)
	m.abs = m.b.mean - m.a.mean
	m.absVar = m.b.v/m.b.n + m.a.v/m.a.n
	ua := a.my
	if ua != 0 {
		m.rel = m.abs / math.Abs(ua)
		vTrt := m.b.v / (b.n * ua * ua)
		c := -b.my
		vCtrl := (a.vy*c*c/(a.my*a.my) + 2*th*a.cov*c/a.my + th*th*a.vx) / (a.n * ua * ua)
		m.relVar = vTrt + vCtrl
	}
	return true
}

// ratioCUPEDArm holds one arm of a ratio metric with CUPED: the means β of
// (y, d, x, d₀) and their 4×4 covariance matrix Λ, as gbstats'
// RegressionAdjustedRatioStatistic.
type ratioCUPEDArm struct {
	n      float64
	beta   [4]float64
	lambda [4][4]float64
	sums   [4]float64 // Σy, Σd, Σx, Σd₀
}

func ratioCUPEDStat(a *Arm) ratioCUPEDArm {
	n := float64(a.N)
	r := ratioCUPEDArm{n: n, sums: [4]float64{a.Sum, a.DenominatorSum, a.CovariateSum, a.DenominatorCovariateSum}}
	ss := [4]float64{a.SumSquares, a.DenominatorSumSquares, a.CovariateSumSquares, a.DenominatorCovariateSumSquares}
	// cross products Σ(i·j) for i < j in the order y, d, x, d₀.
	var cross [4][4]float64
	cross[0][1] = a.MetricDenominatorSum
	cross[0][2] = a.CrossSum
	cross[0][3] = a.MetricDenominatorCovariateSum
	cross[1][2] = a.CovariateDenominatorSum
	cross[1][3] = a.DenominatorDenominatorCovariateSum
	cross[2][3] = a.CovariateDenominatorCovariateSum
	for i := range 4 {
		r.beta[i] = mean(r.sums[i], n)
		r.lambda[i][i] = sampleVariance(n, r.sums[i], ss[i], false)
		for j := i + 1; j < 4; j++ {
			c := covariance(n, r.sums[i], r.sums[j], cross[i][j], false)
			r.lambda[i][j], r.lambda[j][i] = c, c
		}
	}
	return r
}

// nabla is the gradient of (ȳ/d̄) − θ(x̄/d̄₀) with respect to β.
func (r *ratioCUPEDArm) nabla(theta float64) [4]float64 {
	b := r.beta
	if b[1] == 0 || b[3] == 0 {
		return [4]float64{}
	}
	return [4]float64{1 / b[1], -b[0] / (b[1] * b[1]), -theta / b[3], theta * b[2] / (b[3] * b[3])}
}

// quad returns uᵀΛ[I, J]v over the index sets I (for u) and J (for v).
func (r *ratioCUPEDArm) quad(u [4]float64, I []int, v [4]float64, J []int) float64 {
	var s float64
	for _, i := range I {
		for _, j := range J {
			s += u[i] * r.lambda[i][j] * v[j]
		}
	}
	return s
}

var all4, post2, pre2 = []int{0, 1, 2, 3}, []int{0, 1}, []int{2, 3}

func (r *ratioCUPEDArm) meanPost() float64 {
	if r.sums[1] == 0 {
		return 0
	}
	return r.sums[0] / r.sums[1]
}

func (r *ratioCUPEDArm) mean(theta float64) float64 {
	if r.sums[1] == 0 || r.sums[3] == 0 {
		return 0
	}
	return r.sums[0]/r.sums[1] - theta*r.sums[2]/r.sums[3]
}

// ratioCUPED fills m for a ratio metric with CUPED, as gbstats:
//
//	θ = −(c_a + c_b)/(w_a + w_b),  with ∇ = ∇(θ=1), c = ∇_preᵀΛ_pre,post∇_post, w = ∇_preᵀΛ_pre∇_pre
//
// per-arm variance ∇ᵀΛ∇ and the relative variance of
// frequentist_variance_relative_cuped_ratio. False when |θ| < 1e-8.
func (in *Input) ratioCUPED(ca, cb *Arm, m *moments) bool {
	a, b := ratioCUPEDStat(ca), ratioCUPEDStat(cb)
	na1, nb1 := a.nabla(1), b.nabla(1)
	w := a.quad(na1, pre2, na1, pre2) + b.quad(nb1, pre2, nb1, pre2)
	if w == 0 {
		return false
	}
	th := -(a.quad(na1, pre2, na1, post2) + b.quad(nb1, pre2, nb1, post2)) / w
	if math.Abs(th) < 1e-8 || math.IsNaN(th) {
		return false
	}
	na, nb := a.nabla(th), b.nabla(th)
	m.theta = th
	m.a = armStat{n: a.n, mean: a.mean(th), unadj: a.meanPost(), v: a.quad(na, all4, na, all4)}
	m.b = armStat{n: b.n, mean: b.mean(th), unadj: b.meanPost(), v: b.quad(nb, all4, nb, all4)}
	m.abs = m.b.mean - m.a.mean
	m.absVar = m.b.v/m.b.n + m.a.v/m.a.n
	ua, dPost := m.a.unadj, a.beta[1]
	if ua == 0 || dPost == 0 {
		return true
	}
	g := math.Abs(ua)
	m.rel = m.abs / g
	yPost := a.beta[0]
	gradA := [4]float64{
		-(g + m.abs) / dPost / (g * g),
		(yPost*g/(dPost*dPost) + yPost*m.abs/(dPost*dPost)) / (g * g),
		-na[2] / g,
		-na[3] / g,
	}
	var gradB [4]float64
	for i := range 4 {
		gradB[i] = nb[i] / g
	}
	m.relVar = a.quad(gradA, all4, gradA, all4)/a.n + b.quad(gradB, all4, gradB, all4)/b.n
	return true
}
