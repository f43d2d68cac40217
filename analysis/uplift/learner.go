package uplift

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// Model predicts one number per row of a feature matrix.
type Model interface {
	// Predict writes the prediction for row i of x into dst[i].
	Predict(x *mat.Dense, dst []float64)
}

// Learner fits a Model to the rows of x and the targets y.
type Learner interface {
	Fit(x *mat.Dense, y []float64) (Model, error)
}

var (
	_ Learner = Boosting{}
	_ Learner = Ridge{}
	_ Learner = Logistic{}
)

func checkPredict(rows, cols, p int, dst []float64) {
	if cols != p {
		panic(fmt.Sprintf("uplift: predicting on %d features, model has %d", cols, p))
	}
	if len(dst) != rows {
		panic(fmt.Sprintf("uplift: dst has %d slots for %d rows", len(dst), rows))
	}
}

// standardize returns the column means and standard deviations of x (sd 1 for
// a constant column, which then gets a zero coefficient under the penalty).
func standardize(x *mat.Dense) (mean, sd []float64) {
	n, p := x.Dims()
	mean, sd = make([]float64, p), make([]float64, p)
	for i := 0; i < n; i++ {
		for j, v := range x.RawRowView(i) {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := 0; i < n; i++ {
		for j, v := range x.RawRowView(i) {
			d := v - mean[j]
			sd[j] += d * d
		}
	}
	for j := range sd {
		sd[j] = math.Sqrt(sd[j] / float64(n))
		if sd[j] == 0 {
			sd[j] = 1
		}
	}
	return mean, sd
}

// Linear is a fitted linear model f(x) = b₀ + Σ bⱼxⱼ, optionally passed
// through the logistic function.
type Linear struct {
	Intercept float64
	Coef      []float64
	Logit     bool // predict 1/(1+e^−f) instead of f
}

// Predict writes f(x) (or its logistic transform) for each row into dst.
func (m *Linear) Predict(x *mat.Dense, dst []float64) {
	r, c := x.Dims()
	checkPredict(r, c, len(m.Coef), dst)
	for i := 0; i < r; i++ {
		f := m.Intercept
		for j, v := range x.RawRowView(i) {
			f += m.Coef[j] * v
		}
		if m.Logit {
			f = 1 / (1 + math.Exp(-f))
		}
		dst[i] = f
	}
}

// Ridge is least squares with an L2 penalty on standardized coefficients:
//
//	min_b Σ(yᵢ − b₀ − zᵢ'b)² + Lambda·‖b‖²,  zᵢⱼ = (xᵢⱼ − x̄ⱼ)/sⱼ,
//
// solved by a Cholesky factorization of Z'Z + Lambda·I (the intercept is not
// penalized). Lambda = 0 is ordinary least squares.
type Ridge struct {
	Lambda float64
}

// Fit fits the ridge regression.
func (r Ridge) Fit(x *mat.Dense, y []float64) (Model, error) {
	n, p := x.Dims()
	if len(y) != n {
		panic(fmt.Sprintf("uplift: %d targets for %d rows", len(y), n))
	}
	if n < 2 {
		return nil, errors.New("uplift: ridge needs at least 2 rows")
	}
	if r.Lambda < 0 {
		return nil, fmt.Errorf("uplift: ridge lambda must be ≥ 0, got %g", r.Lambda)
	}
	mean, sd := standardize(x)
	var ybar float64
	for _, v := range y {
		ybar += v
	}
	ybar /= float64(n)
	a := mat.NewSymDense(p, nil)
	bv := mat.NewVecDense(p, nil)
	z := make([]float64, p)
	for i := 0; i < n; i++ {
		for j, v := range x.RawRowView(i) {
			z[j] = (v - mean[j]) / sd[j]
		}
		a.SymRankOne(a, 1, mat.NewVecDense(p, z))
		bv.AddScaledVec(bv, y[i]-ybar, mat.NewVecDense(p, z))
	}
	for j := 0; j < p; j++ {
		a.SetSym(j, j, a.At(j, j)+r.Lambda)
	}
	var chol mat.Cholesky
	if !chol.Factorize(a) {
		return nil, errors.New("uplift: ridge system is singular; use Lambda > 0")
	}
	var b mat.VecDense
	if err := chol.SolveVecTo(&b, bv); err != nil {
		return nil, fmt.Errorf("uplift: ridge: %w", err)
	}
	m := &Linear{Intercept: ybar, Coef: make([]float64, p)}
	for j := 0; j < p; j++ {
		m.Coef[j] = b.AtVec(j) / sd[j]
		m.Intercept -= m.Coef[j] * mean[j]
	}
	return m, nil
}

// Logistic is L2-penalized logistic regression for 0/1 targets,
//
//	max_b Σ [yᵢ log pᵢ + (1−yᵢ) log(1−pᵢ)] − Lambda/2·‖b‖²,  pᵢ = 1/(1+e^−(b₀+zᵢ'b)),
//
// on standardized features, fitted by Newton's method (iteratively
// reweighted least squares) until the largest step is below 1e-8. Its
// predictions are probabilities. Lambda defaults to 1e-4 (only enough to keep
// separable data finite).
type Logistic struct {
	Lambda  float64
	MaxIter int // default 50
}

// Fit fits the logistic regression; every target must be 0 or 1.
func (l Logistic) Fit(x *mat.Dense, y []float64) (Model, error) {
	n, p := x.Dims()
	if len(y) != n {
		panic(fmt.Sprintf("uplift: %d targets for %d rows", len(y), n))
	}
	if l.Lambda == 0 {
		l.Lambda = 1e-4
	}
	if l.MaxIter == 0 {
		l.MaxIter = 50
	}
	var ones float64
	for i, v := range y {
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("uplift: logistic target row %d is %g, want 0 or 1", i, v)
		}
		ones += v
	}
	if ones == 0 || ones == float64(n) {
		return nil, errors.New("uplift: logistic regression needs both 0 and 1 targets")
	}
	mean, sd := standardize(x)
	k := p + 1
	b := make([]float64, k)
	b[0] = math.Log(ones / (float64(n) - ones))
	z := make([]float64, k)
	z[0] = 1
	for it := 0; it < l.MaxIter; it++ {
		h := mat.NewSymDense(k, nil)
		g := mat.NewVecDense(k, nil)
		for i := 0; i < n; i++ {
			f := b[0]
			for j, v := range x.RawRowView(i) {
				z[j+1] = (v - mean[j]) / sd[j]
				f += b[j+1] * z[j+1]
			}
			pi := 1 / (1 + math.Exp(-f))
			zv := mat.NewVecDense(k, z)
			h.SymRankOne(h, pi*(1-pi), zv)
			g.AddScaledVec(g, y[i]-pi, zv)
		}
		for j := 1; j < k; j++ {
			h.SetSym(j, j, h.At(j, j)+l.Lambda)
			g.SetVec(j, g.AtVec(j)-l.Lambda*b[j])
		}
		var chol mat.Cholesky
		if !chol.Factorize(h) {
			return nil, errors.New("uplift: logistic Hessian is singular; raise Lambda")
		}
		var step mat.VecDense
		if err := chol.SolveVecTo(&step, g); err != nil {
			return nil, fmt.Errorf("uplift: logistic: %w", err)
		}
		var big float64
		for j := range b {
			b[j] += step.AtVec(j)
			big = math.Max(big, math.Abs(step.AtVec(j)))
		}
		if big < 1e-8 {
			break
		}
	}
	m := &Linear{Intercept: b[0], Coef: make([]float64, p), Logit: true}
	for j := 0; j < p; j++ {
		m.Coef[j] = b[j+1] / sd[j]
		m.Intercept -= m.Coef[j] * mean[j]
	}
	return m, nil
}

// parallel runs f(0), …, f(n−1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// parallelRange splits [0, n) into contiguous chunks run concurrently.
func parallelRange(n int, f func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), max(1, n/4096))
	if w <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range w {
		lo, hi := k*n/w, (k+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
