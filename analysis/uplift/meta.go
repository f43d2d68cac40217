package uplift

import (
	"errors"
	"fmt"
	"math"

	"github.com/liftlab/lift/analysis"
	"gonum.org/v1/gonum/mat"
)

// MetaLearner learns the conditional average treatment effect τ(x) from
// features x, treatment flags and outcomes; the returned Model predicts τ̂(x).
type MetaLearner interface {
	Fit(x *mat.Dense, treated []bool, y []float64) (Model, error)
}

var (
	_ MetaLearner = TLearner{}
	_ MetaLearner = SLearner{}
	_ MetaLearner = XLearner{}
)

// ErrEmptyArm is returned when the treated or the control group has no rows.
var ErrEmptyArm = errors.New("uplift: the treated and the control group each need rows")

// splitArms returns the rows of x and y in each arm.
func splitArms(x *mat.Dense, treated []bool, y []float64) (x0, x1 *mat.Dense, y0, y1 []float64, err error) {
	n, p := x.Dims()
	if len(treated) != n || len(y) != n {
		panic(fmt.Sprintf("uplift: %d rows, %d treatment flags, %d outcomes", n, len(treated), len(y)))
	}
	var n1 int
	for _, t := range treated {
		if t {
			n1++
		}
	}
	if n1 == 0 || n1 == n {
		return nil, nil, nil, nil, ErrEmptyArm
	}
	x0, x1 = mat.NewDense(n-n1, p, nil), mat.NewDense(n1, p, nil)
	var i0, i1 int
	for i, t := range treated {
		if t {
			copy(x1.RawRowView(i1), x.RawRowView(i))
			y1 = append(y1, y[i])
			i1++
		} else {
			copy(x0.RawRowView(i0), x.RawRowView(i))
			y0 = append(y0, y[i])
			i0++
		}
	}
	return x0, x1, y0, y1, nil
}

func predict(m Model, x *mat.Dense) []float64 {
	r, _ := x.Dims()
	out := make([]float64, r)
	m.Predict(x, out)
	return out
}

// TLearner fits one outcome model per arm, μ₁ on the treated and μ₀ on the
// controls, and predicts τ̂(x) = μ̂₁(x) − μ̂₀(x).
type TLearner struct {
	Base Learner
}

// Fit fits the two outcome models.
func (l TLearner) Fit(x *mat.Dense, treated []bool, y []float64) (Model, error) {
	x0, x1, y0, y1, err := splitArms(x, treated, y)
	if err != nil {
		return nil, err
	}
	m0, err := l.Base.Fit(x0, y0)
	if err != nil {
		return nil, fmt.Errorf("T-learner control model: %w", err)
	}
	m1, err := l.Base.Fit(x1, y1)
	if err != nil {
		return nil, fmt.Errorf("T-learner treated model: %w", err)
	}
	return difference{m1, m0}, nil
}

// difference predicts a(x) − b(x).
type difference struct{ a, b Model }

func (d difference) Predict(x *mat.Dense, dst []float64) {
	d.a.Predict(x, dst)
	tmp := predict(d.b, x)
	for i := range dst {
		dst[i] -= tmp[i]
	}
}

// SLearner fits a single outcome model μ(x, w) with the treatment flag w as
// an extra last feature and predicts τ̂(x) = μ̂(x, 1) − μ̂(x, 0). With trees
// the flag may never be split on when effects are small, shrinking τ̂ toward 0.
type SLearner struct {
	Base Learner
}

// Fit fits the single model.
func (l SLearner) Fit(x *mat.Dense, treated []bool, y []float64) (Model, error) {
	n, p := x.Dims()
	if len(treated) != n || len(y) != n {
		panic(fmt.Sprintf("uplift: %d rows, %d treatment flags, %d outcomes", n, len(treated), len(y)))
	}
	if _, _, _, _, err := splitArms(mat.NewDense(n, 1, nil), treated, y); err != nil {
		return nil, err
	}
	xw := mat.NewDense(n, p+1, nil)
	for i := 0; i < n; i++ {
		row := xw.RawRowView(i)
		copy(row, x.RawRowView(i))
		if treated[i] {
			row[p] = 1
		}
	}
	m, err := l.Base.Fit(xw, y)
	if err != nil {
		return nil, fmt.Errorf("S-learner: %w", err)
	}
	return sModel{m: m, p: p}, nil
}

type sModel struct {
	m Model
	p int
}

func (s sModel) Predict(x *mat.Dense, dst []float64) {
	n, p := x.Dims()
	checkPredict(n, p, s.p, dst)
	xw := mat.NewDense(n, p+1, nil)
	for i := 0; i < n; i++ {
		copy(xw.RawRowView(i), x.RawRowView(i))
	}
	y0 := make([]float64, n)
	s.m.Predict(xw, y0)
	for i := 0; i < n; i++ {
		xw.Set(i, p, 1)
	}
	s.m.Predict(xw, dst)
	for i := range dst {
		dst[i] -= y0[i]
	}
}

// XLearner is the X-learner of Künzel et al. (2019):
//
//  1. fit μ₀ on the controls and μ₁ on the treated (Outcome);
//  2. impute effects D₁ = Y − μ̂₀(X) on the treated and D₀ = μ̂₁(X) − Y on the
//     controls, and fit τ₁ to D₁ and τ₀ to D₀ (Effect);
//  3. predict τ̂(x) = g(x)·τ̂₀(x) + (1 − g(x))·τ̂₁(x), with g the propensity
//     score.
//
// g is the treated share of the training data when Propensity is nil (right
// for a randomized test with a fixed split), else Propensity fitted to the
// 0/1 treatment flags (e.g. Logistic{}), clipped to [0.01, 0.99].
type XLearner struct {
	Outcome    Learner
	Effect     Learner // default: Outcome
	Propensity Learner // default: nil, the treated share
}

// Fit fits the four (or five) models.
func (l XLearner) Fit(x *mat.Dense, treated []bool, y []float64) (Model, error) {
	x0, x1, y0, y1, err := splitArms(x, treated, y)
	if err != nil {
		return nil, err
	}
	eff := l.Effect
	if eff == nil {
		eff = l.Outcome
	}
	cache := map[*mat.Dense]*binned{}
	m0, err := fitWith(l.Outcome, x0, y0, cache)
	if err != nil {
		return nil, fmt.Errorf("X-learner control outcome model: %w", err)
	}
	m1, err := fitWith(l.Outcome, x1, y1, cache)
	if err != nil {
		return nil, fmt.Errorf("X-learner treated outcome model: %w", err)
	}
	d1 := predict(m0, x1)
	for i := range d1 {
		d1[i] = y1[i] - d1[i]
	}
	d0 := predict(m1, x0)
	for i := range d0 {
		d0[i] -= y0[i]
	}
	t1, err := fitWith(eff, x1, d1, cache)
	if err != nil {
		return nil, fmt.Errorf("X-learner treated effect model: %w", err)
	}
	t0, err := fitWith(eff, x0, d0, cache)
	if err != nil {
		return nil, fmt.Errorf("X-learner control effect model: %w", err)
	}
	xm := xModel{t0: t0, t1: t1}
	if l.Propensity == nil {
		n1, _ := x1.Dims()
		n, _ := x.Dims()
		xm.share = float64(n1) / float64(n)
	} else {
		w := make([]float64, len(treated))
		for i, t := range treated {
			if t {
				w[i] = 1
			}
		}
		g, err := l.Propensity.Fit(x, w)
		if err != nil {
			return nil, fmt.Errorf("X-learner propensity model: %w", err)
		}
		xm.g = g
	}
	return xm, nil
}

type xModel struct {
	t0, t1 Model
	g      Model // nil: constant share
	share  float64
}

func (m xModel) Predict(x *mat.Dense, dst []float64) {
	m.t1.Predict(x, dst)
	a := predict(m.t0, x)
	var g []float64
	if m.g != nil {
		g = predict(m.g, x)
	}
	for i := range dst {
		e := m.share
		if g != nil {
			e = math.Min(0.99, math.Max(0.01, g[i]))
		}
		dst[i] = e*a[i] + (1-e)*dst[i]
	}
}

// ATE is the average treatment effect as the Welch difference in means,
// mean(y | treated) − mean(y | control), with analysis.WelchFromSamples.
func ATE(y []float64, treated []bool, alpha float64) (analysis.Effect, error) {
	if len(y) != len(treated) {
		panic(fmt.Sprintf("uplift: %d outcomes, %d treatment flags", len(y), len(treated)))
	}
	var y0, y1 []float64
	for i, t := range treated {
		if t {
			y1 = append(y1, y[i])
		} else {
			y0 = append(y0, y[i])
		}
	}
	return analysis.WelchFromSamples(y1, y0, alpha)
}
