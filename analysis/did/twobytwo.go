package did

import (
	"fmt"
	"math"
)

// Cell summarizes the outcome in one of the four cells of a 2×2 design.
type Cell struct {
	N    int
	Mean float64
	SD   float64 // sample standard deviation (n−1 denominator); NaN when N < 2
}

// SE is the standard error of the cell mean, SD/√N.
func (c Cell) SE() float64 { return c.SD / math.Sqrt(float64(c.N)) }

// Cells holds the four cells of a 2×2 difference-in-differences design.
type Cells struct {
	TreatedPre, TreatedPost, ControlPre, ControlPost Cell
}

// DiD returns the difference in differences of the cell means,
//
//	(ȳ_T,post − ȳ_T,pre) − (ȳ_C,post − ȳ_C,pre).
func (c Cells) DiD() float64 {
	return (c.TreatedPost.Mean - c.TreatedPre.Mean) - (c.ControlPost.Mean - c.ControlPre.Mean)
}

// IndependentSE is the standard error of DiD when the four cells are
// independent samples (repeated cross-sections): √(Σ s²/n). On a panel the
// pre and post cells are correlated; use FirstDifference or Regress with CR1.
func (c Cells) IndependentSE() float64 {
	var v float64
	for _, x := range []Cell{c.TreatedPre, c.TreatedPost, c.ControlPre, c.ControlPost} {
		v += x.SD * x.SD / float64(x.N)
	}
	return math.Sqrt(v)
}

// CellMeans groups y by treated × post and returns the four cells. Every cell
// must hold at least one row.
func CellMeans(y []float64, treated, post []bool) (Cells, error) {
	if len(treated) != len(y) || len(post) != len(y) {
		panic(fmt.Sprintf("did: CellMeans: lengths %d, %d, %d differ", len(y), len(treated), len(post)))
	}
	var n [4]int
	var s, ss [4]float64
	for i, v := range y {
		k := cellIndex(treated[i], post[i])
		n[k]++
		s[k] += v
	}
	var mean [4]float64
	for k := range mean {
		if n[k] == 0 {
			return Cells{}, fmt.Errorf("did: cell %s has no rows", cellNames[k])
		}
		mean[k] = s[k] / float64(n[k])
	}
	for i, v := range y {
		k := cellIndex(treated[i], post[i])
		d := v - mean[k]
		ss[k] += d * d
	}
	var cells [4]Cell
	for k := range cells {
		sd := math.NaN()
		if n[k] > 1 {
			sd = math.Sqrt(ss[k] / float64(n[k]-1))
		}
		cells[k] = Cell{N: n[k], Mean: mean[k], SD: sd}
	}
	return Cells{TreatedPre: cells[0], TreatedPost: cells[1], ControlPre: cells[2], ControlPost: cells[3]}, nil
}

var cellNames = [4]string{"treated_pre", "treated_post", "control_pre", "control_post"}

func cellIndex(treated, post bool) int {
	k := 0
	if !treated {
		k = 2
	}
	if post {
		k++
	}
	return k
}

// TwoByTwo is the result of the regression form of the 2×2 design.
type TwoByTwo struct {
	Effect Coef  // the coefficient of treated×post
	Fit    *Fit  // the whole regression: const, treated, post, treated×post
	Cells  Cells // cell means; Cells.DiD() equals Effect.Estimate
}

// Regress fits the 2×2 difference-in-differences regression
//
//	y = β₀ + β₁·treated + β₂·post + δ·treated·post + e
//
// on all rows; δ̂ equals the difference in differences of the cell means.
// cluster is needed for CR1 only (nil otherwise). alpha is 1 − the confidence
// level (0.05 when zero).
func Regress(y []float64, treated, post []bool, cluster []int, vce VCE, alpha float64) (*TwoByTwo, error) {
	cells, err := CellMeans(y, treated, post)
	if err != nil {
		return nil, err
	}
	n := len(y)
	one, tr, po, tp := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range y {
		one[i] = 1
		if treated[i] {
			tr[i] = 1
		}
		if post[i] {
			po[i] = 1
		}
		tp[i] = tr[i] * po[i]
	}
	fit, err := OLS(Regression{
		X:       [][]float64{one, tr, po, tp},
		Names:   []string{"const", "treated", "post", "treated:post"},
		Y:       y,
		Cluster: cluster,
	}, vce, alpha)
	if err != nil {
		return nil, err
	}
	if fit.Cov.At(3, 3) == 0 {
		return nil, fmt.Errorf("treated×post (%v): %w", vce, ErrZeroSE)
	}
	return &TwoByTwo{Effect: fit.Coef(3), Fit: fit, Cells: cells}, nil
}

// FirstDifference is the 2×2 estimator on a balanced panel written in changes:
// with Δyᵢ = y_i,post − y_i,pre,
//
//	δ̂ = mean(Δy | treated) − mean(Δy | control),  se = √(s²_T/n_T + s²_C/n_C),
//
// the unpooled standard error Card & Krueger (1994) report in Table 3, row 4.
// The t reference uses Welch–Satterthwaite degrees of freedom.
func FirstDifference(dy []float64, treated []bool, alpha float64) (Coef, error) {
	if len(dy) != len(treated) {
		panic(fmt.Sprintf("did: FirstDifference: lengths %d, %d differ", len(dy), len(treated)))
	}
	if alpha == 0 {
		alpha = 0.05
	}
	var n [2]float64
	var s, ss [2]float64
	for i, v := range dy {
		k := 0
		if treated[i] {
			k = 1
		}
		n[k]++
		s[k] += v
	}
	if n[0] < 2 || n[1] < 2 {
		return Coef{}, fmt.Errorf("did: FirstDifference needs 2 treated and 2 control units, got %g and %g", n[1], n[0])
	}
	m := [2]float64{s[0] / n[0], s[1] / n[1]}
	for i, v := range dy {
		k := 0
		if treated[i] {
			k = 1
		}
		d := v - m[k]
		ss[k] += d * d
	}
	v0, v1 := ss[0]/(n[0]-1)/n[0], ss[1]/(n[1]-1)/n[1]
	if perfectFit(ss[0]+ss[1], dy) {
		return Coef{}, fmt.Errorf("%w: the changes are constant within each arm", ErrPerfectFit)
	}
	se := math.Sqrt(v0 + v1)
	df := (v0 + v1) * (v0 + v1) / (v0*v0/(n[0]-1) + v1*v1/(n[1]-1))
	return coef("treated", m[1]-m[0], se, df, alpha), nil
}

// Difference returns a − b for two independent estimates, each given by its
// estimate and standard error, with
//
//	se = √(se_a² + se_b²)
//
// and a normal-theory (1−α) interval (alpha 0.05 when zero). It is the
// difference column of a published 2×2 table computed from the other two: in
// Card & Krueger (1994), Table 3, column (iii) is column (ii) minus column (i),
// for the levels (rows 1–2) and for the changes (rows 3–5), so the
// difference in differences and its standard error can be rebuilt from
// published summary statistics alone.
func Difference(name string, a, b Coef, alpha float64) Coef {
	if alpha == 0 {
		alpha = 0.05
	}
	return coef(name, a.Estimate-b.Estimate, math.Hypot(a.SE, b.SE), math.Inf(1), alpha)
}
