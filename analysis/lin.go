package analysis

import (
	"fmt"
	"math"

	"github.com/liftlab/lift/experiment"
	"gonum.org/v1/gonum/mat"
)

// HC is a heteroskedasticity-consistent ("sandwich") covariance estimator
// (White 1980; MacKinnon & White 1985), differing in how squared residuals e_i²
// are weighted: HC0 by 1, HC1 by n/(n−p), HC2 by 1/(1−h_ii), HC3 by 1/(1−h_ii)²,
// h_ii being the leverage.
type HC int

// The sandwich estimators. HC2 is the default: with no covariates its standard
// error equals Welch's sqrt(s₁²/n₁ + s₀²/n₀) exactly.
const (
	HC2 HC = iota
	HC0
	HC1
	HC3
)

// LinOptions configure LinRegression.
type LinOptions struct {
	Alpha float64 // default 0.05
	HC    HC      // default HC2
}

// LinRegression estimates the average treatment effect by Lin's (2013)
// regression adjustment, "Agnostic notes on regression adjustments to
// experimental data: reexamining Freedman's critique", Annals of Applied
// Statistics 7(1):295–318: ordinary least squares of
//
//	y = α + τ·T + β'(x − x̄) + γ'·T·(x − x̄) + ε
//
// with the covariates centered at their full-sample means and interacted with
// the treatment indicator T, so that τ̂ is the ATE estimate. Its standard error
// is the sandwich (X'X)⁻¹ X'diag(w_i e_i²)X (X'X)⁻¹ of o.HC, with a Student-t
// interval on n − p degrees of freedom.
//
// Unlike Analyze it is a row-level estimator: y and treated hold one entry per
// unit and x is an n×k matrix of covariates (nil for none). Mismatched lengths
// panic; too few units in an arm or a singular design give an InsufficientData
// error.
func LinRegression(y []float64, treated []bool, x mat.Matrix, o LinOptions) (Effect, error) {
	const op = "analysis.LinRegression"
	n := len(y)
	if len(treated) != n {
		panic(fmt.Sprintf("analysis: LinRegression: %d outcomes but %d treatment flags", n, len(treated)))
	}
	k := 0
	if x != nil {
		r, c := x.Dims()
		if r != n {
			panic(fmt.Sprintf("analysis: LinRegression: %d outcomes but %d covariate rows", n, r))
		}
		k = c
	}
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if err := checkAlpha(op, o.Alpha); err != nil {
		return Effect{}, err
	}
	var n1 int
	for _, t := range treated {
		if t {
			n1++
		}
	}
	p := 2 + 2*k
	if n1 < 2 || n-n1 < 2 || n <= p {
		return Effect{}, experiment.E(op, experiment.InsufficientData,
			experiment.Errorf("need at least 2 treated and 2 control units and more units than the %d coefficients, got %d treated of %d", p, n1, n))
	}
	// Means by shifted sums (the first row as the pilot), and the outcome
	// centred at its mean: the coefficients but the intercept do not depend on
	// either offset, and a metric at 1e12 keeps its digits.
	// The mean is kept as pilot + deviation and a value centred as
	// (v − pilot) − deviation, since the mean itself may not be representable
	// to the data's precision.
	pilot, dev := make([]float64, k), make([]float64, k)
	for j := range k {
		pilot[j] = x.At(0, j)
		for i := range n {
			dev[j] += x.At(i, j) - pilot[j]
		}
		dev[j] /= float64(n)
	}
	yc := make([]float64, n)
	{
		c := y[0]
		var d float64
		for _, v := range y {
			d += v - c
		}
		d /= float64(n)
		for i, v := range y {
			yc[i] = (v - c) - d
		}
	}
	y = yc
	z := mat.NewDense(n, p, nil)
	for i := range n {
		t := 0.0
		if treated[i] {
			t = 1
		}
		z.Set(i, 0, 1)
		z.Set(i, 1, t)
		for j := range k {
			c := (x.At(i, j) - pilot[j]) - dev[j]
			z.Set(i, 2+j, c)
			z.Set(i, 2+k+j, t*c)
		}
	}
	var ztz mat.SymDense
	ztz.SymOuterK(1, z.T())
	var chol mat.Cholesky
	if ok := chol.Factorize(&ztz); !ok {
		return Effect{}, experiment.E(op, experiment.InsufficientData, experiment.Errorf("singular design: a covariate is constant or collinear"))
	}
	var bread mat.SymDense
	if err := chol.InverseTo(&bread); err != nil {
		return Effect{}, experiment.E(op, experiment.InsufficientData, experiment.Errorf("singular design: %v", err))
	}
	if c := mat.Cond(&ztz, 2); c > 1e12 || math.IsInf(c, 0) {
		return Effect{}, experiment.E(op, experiment.InsufficientData, experiment.Errorf("singular design: condition number %.3g", c))
	}
	yv := mat.NewVecDense(n, y)
	var zty, beta mat.VecDense
	zty.MulVec(z.T(), yv)
	beta.MulVec(&bread, &zty)
	var fitted mat.VecDense
	fitted.MulVec(z, &beta)
	// An exact fit (residuals within rounding of 0, as did's perfect fit:
	// under 1e−16 of the centred outcome's sum of squares) has no standard
	// error, only rounding noise.
	var rss, tss float64
	for i := range n {
		e := y[i] - fitted.AtVec(i)
		rss += e * e
		tss += y[i] * y[i]
	}
	if rss <= 1e-16*tss {
		return Effect{}, experiment.E(op, experiment.InsufficientData,
			fmt.Errorf("the treatment and covariates fit the outcome exactly (residual sum of squares %.3g): %w", rss, ErrZeroVariance))
	}
	meat := mat.NewSymDense(p, nil)
	row := mat.NewVecDense(p, nil)
	var hrow mat.VecDense
	for i := range n {
		e := y[i] - fitted.AtVec(i)
		row.CopyVec(z.RowView(i))
		w := 1.0
		switch o.HC {
		case HC1:
			w = float64(n) / float64(n-p)
		case HC2, HC3:
			hrow.MulVec(&bread, row)
			h := mat.Dot(row, &hrow)
			if h >= 1 {
				return Effect{}, experiment.E(op, experiment.InsufficientData, experiment.Errorf("unit %d has leverage 1", i))
			}
			w = 1 / (1 - h)
			if o.HC == HC3 {
				w *= w
			}
		}
		meat.SymRankOne(meat, w*e*e, row)
	}
	var tmp, v mat.Dense
	tmp.Mul(&bread, meat)
	v.Mul(&tmp, &bread)
	se := math.Sqrt(v.At(1, 1))
	if !(se > 0) {
		return Effect{}, experiment.E(op, experiment.InsufficientData, ErrZeroVariance)
	}
	return TTest(beta.AtVec(1), se, float64(n-p), o.Alpha, TwoSided), nil
}
