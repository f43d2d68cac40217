package did

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// VCE selects how the covariance of the coefficients is estimated.
type VCE int

// The covariance estimators; see the package documentation for the formulas.
const (
	Classical VCE = iota // homoskedastic, s²(X'X)⁻¹
	HC1                  // heteroskedasticity-robust with the N/(N−K) correction
	CR1                  // cluster-robust with the G/(G−1)·(N−1)/(N−K) correction
)

// String returns "classical", "hc1" or "cr1".
func (v VCE) String() string {
	switch v {
	case Classical:
		return "classical"
	case HC1:
		return "hc1"
	case CR1:
		return "cr1"
	}
	return fmt.Sprintf("VCE(%d)", int(v))
}

// Errors returned for data conditions.
var (
	ErrSingular     = errors.New("did: design matrix is singular (collinear regressors)")
	ErrTooFewRows   = errors.New("did: fewer observations than parameters")
	ErrTooFewGroups = errors.New("did: cluster-robust errors need at least 2 clusters")
	// ErrPerfectFit: the regressors fit the outcome exactly (the residuals are
	// rounding noise), so the standard errors, intervals and p-values are
	// undefined rather than ≈ 0.
	ErrPerfectFit = errors.New("did: the model fits the outcome exactly (zero residual variance): standard errors and p-values are undefined")
	// ErrZeroSE: a robust (HC1, CR1) standard error is zero to rounding
	// although the residuals are not: every score cancels within its cluster,
	// as when each unit's change is the same within each arm. The estimate is
	// exact, and its p-value and interval are undefined rather than ≈ 0.
	ErrZeroSE = errors.New("did: the standard error is zero to rounding (the scores cancel exactly within every cluster, as when each unit's change is the same within each arm): p-values and intervals are undefined")
)

// perfectFit reports whether the residual sum of squares is rounding noise:
// below 1e−16 of the outcome's total sum of squares about its mean (residuals
// under 1e−8 of its spread), or, for an outcome with no spread, below 1e−28 of
// its sum of squares.
func perfectFit(rss float64, y []float64) bool {
	var m, ss float64
	for _, v := range y {
		m += v
		ss += v * v
	}
	m /= float64(len(y))
	var tss float64
	for _, v := range y {
		tss += (v - m) * (v - m)
	}
	return rss <= 1e-16*tss+1e-28*ss
}

// Coef is one estimated coefficient with its standard error, t statistic,
// two-sided p-value and (1−α) confidence interval from a Student t with DF
// degrees of freedom.
type Coef struct {
	Name     string
	Estimate float64
	SE       float64
	T        float64
	PValue   float64
	CILow    float64
	CIHigh   float64
}

// Fit is an ordinary least-squares fit.
type Fit struct {
	Names []string      // regressor names, in the order of Coef
	Beta  []float64     // coefficients
	Cov   *mat.SymDense // covariance of Beta under VCE
	VCE   VCE
	N     int     // observations
	K     int     // parameters counted in the small-sample corrections (regressors plus absorbed effects)
	G     int     // clusters (0 unless VCE is CR1)
	DF    float64 // degrees of freedom of the t and F reference distributions
	Alpha float64 // 1 − confidence level of the intervals
	RSS   float64 // residual sum of squares
}

// Coef returns coefficient i with its inference.
func (f *Fit) Coef(i int) Coef {
	se := math.Sqrt(max(f.Cov.At(i, i), 0)) // round-off can make an exact zero slightly negative
	return coef(f.Names[i], f.Beta[i], se, f.DF, f.Alpha)
}

// Lookup returns the coefficient named name.
func (f *Fit) Lookup(name string) (Coef, bool) {
	for i, n := range f.Names {
		if n == name {
			return f.Coef(i), true
		}
	}
	return Coef{}, false
}

func coef(name string, b, se, df, alpha float64) Coef {
	c := Coef{Name: name, Estimate: b, SE: se, T: b / se}
	if math.IsInf(df, 1) || df > 1e7 {
		n := distuv.UnitNormal
		q := n.Quantile(1 - alpha/2)
		c.PValue = 2 * n.Survival(math.Abs(c.T))
		c.CILow, c.CIHigh = b-q*se, b+q*se
		return c
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	q := t.Quantile(1 - alpha/2)
	c.PValue = 2 * t.Survival(math.Abs(c.T))
	c.CILow, c.CIHigh = b-q*se, b+q*se
	return c
}

// Regression is the input to OLS: the columns of X (each of length N), their
// names, the outcome, and for CR1 the cluster of each row (any integers; equal
// values mean the same cluster).
type Regression struct {
	X       [][]float64
	Names   []string
	Y       []float64
	Cluster []int
	// Absorbed is the number of parameters partialled out of X and Y before the
	// fit (fixed effects) that count in K for the small-sample corrections.
	Absorbed int
}

// OLS fits Y = Xβ + e by least squares and estimates Cov(β̂) with vce. X must
// include the intercept column when one is wanted. alpha is 1 − the confidence
// level (0.05 when zero).
//
// K = len(X) + Absorbed; the degrees of freedom are N−K for Classical and HC1
// and G−1 for CR1, as Stata's regress does.
func OLS(r Regression, vce VCE, alpha float64) (*Fit, error) {
	if alpha == 0 {
		alpha = 0.05
	}
	n, p := len(r.Y), len(r.X)
	if len(r.Names) != p {
		panic(fmt.Sprintf("did: %d names for %d columns", len(r.Names), p))
	}
	for j, c := range r.X {
		if len(c) != n {
			panic(fmt.Sprintf("did: column %q has %d rows, want %d", r.Names[j], len(c), n))
		}
	}
	if vce == CR1 && len(r.Cluster) != n {
		panic(fmt.Sprintf("did: %d cluster ids for %d rows", len(r.Cluster), n))
	}
	k := p + r.Absorbed
	if n <= k {
		return nil, fmt.Errorf("%w: N=%d, K=%d", ErrTooFewRows, n, k)
	}
	xtx := crossprod(r.X)
	var chol mat.Cholesky
	if ok := chol.Factorize(xtx); !ok {
		return nil, ErrSingular
	}
	if c := chol.Cond(); c > 1e13 || math.IsNaN(c) {
		return nil, ErrSingular
	}
	xty := mat.NewVecDense(p, nil)
	for j, c := range r.X {
		xty.SetVec(j, dot(c, r.Y))
	}
	var beta mat.VecDense
	if err := chol.SolveVecTo(&beta, xty); err != nil {
		return nil, ErrSingular
	}
	b := make([]float64, p)
	for j := range b {
		b[j] = beta.AtVec(j)
	}
	e := make([]float64, n)
	copy(e, r.Y)
	for j, c := range r.X {
		bj := b[j]
		for i, v := range c {
			e[i] -= bj * v
		}
	}
	rss := dot(e, e)
	if math.IsInf(rss, 0) || math.IsNaN(rss) || math.IsInf(dot(r.Y, r.Y), 0) {
		var big float64
		for _, v := range r.Y {
			big = max(big, math.Abs(v))
		}
		return nil, fmt.Errorf("did: the outcome's values are finite, but their squares overflow float64 (largest |value| %g): rescale it (divide it by a power of ten)", big)
	}
	if perfectFit(rss, r.Y) {
		return nil, fmt.Errorf("%w (residual sum of squares %.3g)", ErrPerfectFit, rss)
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return nil, ErrSingular
	}
	f := &Fit{Names: r.Names, Beta: b, VCE: vce, N: n, K: k, Alpha: alpha, RSS: rss}
	switch vce {
	case Classical:
		s2 := rss / float64(n-k)
		cov := mat.NewSymDense(p, nil)
		cov.ScaleSym(s2, &inv)
		f.Cov, f.DF = cov, float64(n-k)
	case HC1:
		meat := mat.NewSymDense(p, nil)
		w := make([]float64, n)
		for i := range w {
			w[i] = e[i] * e[i]
		}
		for a := 0; a < p; a++ {
			for c := a; c < p; c++ {
				var s float64
				xa, xc := r.X[a], r.X[c]
				for i, wi := range w {
					s += wi * xa[i] * xc[i]
				}
				meat.SetSym(a, c, s)
			}
		}
		f.Cov = sandwich(&inv, meat, float64(n)/float64(n-k))
		f.DF = float64(n - k)
		rows := make([]int, n)
		for i := range rows {
			rows[i] = i
		}
		zeroNoise(f.Cov, &inv, r, e, rows, n, float64(n)/float64(n-k))
	case CR1:
		ids, g := denseCodes(r.Cluster)
		if g < 2 {
			return nil, ErrTooFewGroups
		}
		u := make([]float64, g*p)
		for j, c := range r.X {
			for i, v := range c {
				u[ids[i]*p+j] += v * e[i]
			}
		}
		meat := mat.NewSymDense(p, nil)
		for h := 0; h < g; h++ {
			ug := u[h*p : (h+1)*p]
			for a := 0; a < p; a++ {
				for c := a; c < p; c++ {
					meat.SetSym(a, c, meat.At(a, c)+ug[a]*ug[c])
				}
			}
		}
		scale := float64(g) / float64(g-1) * float64(n-1) / float64(n-k)
		f.Cov = sandwich(&inv, meat, scale)
		f.G, f.DF = g, float64(g-1)
		zeroNoise(f.Cov, &inv, r, e, ids, g, scale)
	default:
		panic(fmt.Sprintf("did: unknown VCE %d", vce))
	}
	return f, nil
}

// robustTol is the relative size below which a robust standard error is
// rounding noise of the scores it came from (about 90 ulps).
const robustTol = 1e-14

// zeroNoise sets to 0 the variances (and their covariances) of a sandwich
// scale·B(Σ_g u_g u_g')B whose scores u_g = Σ_{i∈g} x_i e_i cancel to rounding
// within every cluster g (ids[i] is row i's cluster). Computed scores are then
// noise of size ε·a_g with a_g = Σ_{i∈g} |x_i|(|e_i| + |y_i|), which gives a
// standard error of at most robustTol·sqrt(scale·Σ_g (|B|a_g)_j²) for β_j.
func zeroNoise(cov, bread *mat.SymDense, r Regression, e []float64, ids []int, g int, scale float64) {
	p := len(r.X)
	a := make([]float64, g*p)
	for j, c := range r.X {
		for i, v := range c {
			a[ids[i]*p+j] += math.Abs(v) * (math.Abs(e[i]) + math.Abs(r.Y[i]))
		}
	}
	for j := range p {
		var s float64
		for h := range g {
			var t float64
			for c := range p {
				t += math.Abs(bread.At(j, c)) * a[h*p+c]
			}
			s += t * t
		}
		if v := cov.At(j, j); v <= robustTol*robustTol*scale*s {
			for c := range p {
				cov.SetSym(j, c, 0)
			}
		}
	}
}

// sandwich returns scale · B M B for symmetric B and M.
func sandwich(bread, meat *mat.SymDense, scale float64) *mat.SymDense {
	p := bread.SymmetricDim()
	var t, v mat.Dense
	t.Mul(bread, meat)
	v.Mul(&t, bread)
	out := mat.NewSymDense(p, nil)
	for a := 0; a < p; a++ {
		for c := a; c < p; c++ {
			out.SetSym(a, c, scale*(v.At(a, c)+v.At(c, a))/2)
		}
	}
	return out
}

func crossprod(x [][]float64) *mat.SymDense {
	p := len(x)
	s := mat.NewSymDense(p, nil)
	for a := 0; a < p; a++ {
		for c := a; c < p; c++ {
			s.SetSym(a, c, dot(x[a], x[c]))
		}
	}
	return s
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// denseCodes maps arbitrary integer ids to 0..g−1 in order of first appearance.
func denseCodes(ids []int) ([]int, int) {
	out := make([]int, len(ids))
	if len(ids) == 0 {
		return out, 0
	}
	lo, hi := ids[0], ids[0]
	for _, v := range ids {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi-lo < 4*len(ids)+1024 {
		// Compact ids (the usual case): a lookup table instead of a map.
		code := make([]int32, hi-lo+1)
		g := 0
		for i, v := range ids {
			c := code[v-lo]
			if c == 0 {
				g++
				c = int32(g)
				code[v-lo] = c
			}
			out[i] = int(c) - 1
		}
		return out, g
	}
	m := make(map[int]int)
	for i, v := range ids {
		c, ok := m[v]
		if !ok {
			c = len(m)
			m[v] = c
		}
		out[i] = c
	}
	return out, len(m)
}

// Wald tests H₀: β_j = 0 for all j in idx jointly with
//
//	W = b' V⁻¹ b,  F = W/q,
//
// and returns F, q and the p-value from F(q, DF), as Stata's test command does
// after regress (for CR1, DF = G−1).
func (f *Fit) Wald(idx []int) (fstat float64, q int, p float64, err error) {
	q = len(idx)
	if q == 0 {
		return math.NaN(), 0, math.NaN(), errors.New("did: Wald test of no coefficients")
	}
	b := mat.NewVecDense(q, nil)
	v := mat.NewSymDense(q, nil)
	for a, i := range idx {
		b.SetVec(a, f.Beta[i])
		for c, j := range idx {
			if c >= a {
				v.SetSym(a, c, f.Cov.At(i, j))
			}
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(v) {
		return math.NaN(), q, math.NaN(), fmt.Errorf("did: Wald test: covariance of the %d tested coefficients is singular", q)
	}
	var x mat.VecDense
	if err := chol.SolveVecTo(&x, b); err != nil {
		return math.NaN(), q, math.NaN(), fmt.Errorf("did: Wald test: %w", err)
	}
	w := mat.Dot(b, &x)
	fstat = w / float64(q)
	dist := distuv.F{D1: float64(q), D2: f.DF}
	return fstat, q, dist.Survival(fstat), nil
}
