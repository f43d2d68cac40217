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

// cupedArm is one arm's CUPED pieces: the means as shift + deviation, and the
// variances and covariance of y and x.
type cupedArm struct {
	n, cy, dy, cx, dx, vy, vx, cov float64
}

func (c cupedArm) my() float64 { return c.cy + c.dy }

func (in *Input) cupedArm(m *armMoments) cupedArm {
	py, px := in.Type == Proportion, in.CovariateType == Proportion
	return cupedArm{
		n: m.n, cy: m.shift[vY], dy: m.dev[vY], cx: m.shift[vX], dx: m.dev[vX],
		vy: m.variance(vY, py), vx: m.variance(vX, px), cov: m.cov(vY, vX, py && px),
	}
}

// theta returns CUPED's θ pooled over arms a and b (gbstats compute_theta, on
// the moments of the union of the two arms), or 0 when the pooled metric or
// covariate has no variance.
func (in *Input) theta(a, b *armMoments) float64 {
	p := pool(a, b)
	py, px := in.Type == Proportion, in.CovariateType == Proportion
	vy, vx := p.variance(vY, py), p.variance(vX, px)
	if vx == 0 || vy == 0 {
		return 0
	}
	return p.cov(vY, vX, py && px) / vx
}

// meanCUPED fills m for a mean or proportion metric; false when θ = 0 (gbstats
// then reverts to the unadjusted analysis).
func (in *Input) meanCUPED(ca, cb *Arm, m *moments) bool {
	ma, mb := momentsOf(ca), momentsOf(cb)
	th := in.theta(&ma, &mb)
	if th == 0 || math.IsNaN(th) {
		return false
	}
	a, b := in.cupedArm(&ma), in.cupedArm(&mb)
	adj := func(c cupedArm) armStat {
		s := armStat{n: c.n, cy: c.cy, cx: c.cx, theta: th, dev: c.dy - th*c.dx, unadj: c.my()}
		if c.n > 1 {
			s.v = c.vy + th*th*c.vx - 2*th*c.cov
			if math.Abs(s.v) <= zeroTol*(c.vy+th*th*c.vx) {
				s.v = 0
			}
		}
		return s
	}
	m.theta = th
	m.a, m.b = adj(a), adj(b)
	m.abs = diff(m.a, m.b)
	m.absVar = m.b.v/m.b.n + m.a.v/m.a.n
	ua := a.my()
	if ua != 0 {
		m.rel = m.abs / math.Abs(ua)
		vTrt := m.b.v / (b.n * ua * ua)
		c := -b.my()
		vCtrl := (a.vy*c*c/(ua*ua) + 2*th*a.cov*c/ua + th*th*a.vx) / (a.n * ua * ua)
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
}

func ratioCUPEDStat(a *Arm) ratioCUPEDArm {
	m := momentsOf(a)
	r := ratioCUPEDArm{n: m.n}
	for i := range 4 {
		r.beta[i] = m.mean(i)
		for j := range 4 {
			r.lambda[i][j] = m.cov(i, j, false)
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
	if r.beta[1] == 0 {
		return 0
	}
	return r.beta[0] / r.beta[1]
}

func (r *ratioCUPEDArm) mean(theta float64) float64 {
	if r.beta[1] == 0 || r.beta[3] == 0 {
		return 0
	}
	return r.beta[0]/r.beta[1] - theta*r.beta[2]/r.beta[3]
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
	m.a = armStat{n: a.n, dev: a.mean(th), unadj: a.meanPost(), v: a.quad(na, all4, na, all4)}
	m.b = armStat{n: b.n, dev: b.mean(th), unadj: b.meanPost(), v: b.quad(nb, all4, nb, all4)}
	m.abs = diff(m.a, m.b)
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
