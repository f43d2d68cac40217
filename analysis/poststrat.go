package analysis

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/liftlab/lift/experiment"
)

// Post-stratification combined with regression adjustment (CUPED): GrowthBook's
// "CUPEDps", as gbstats' EffectMomentsPostStratification computes it for mean
// and proportion metrics (docs/segments.md). Within each cell (segment) the
// metric is regressed on the treatment indicator and the pre-exposure
// covariate, y = γ₀ + γ₁w + γ₂x (ordinary least squares), giving the cell's
// adjusted control mean γ₀ + γ₂x̄ and effect γ₁ with their covariance; the cell
// estimates are averaged with the cells' shares of the units, and the variance
// adds the randomness of those shares (multinomial) to the cells' own.

// PSArm is one arm's sums in one cell: units, Σy, Σy², Σx, Σx², Σxy, y the
// metric and x the pre-exposure covariate (zero without one).
type PSArm struct {
	N, Y, YY, X, XX, XY float64
}

func (a *PSArm) add(b PSArm) {
	a.N += b.N
	a.Y += b.Y
	a.YY += b.YY
	a.X += b.X
	a.XX += b.XX
	a.XY += b.XY
}

// variance is the sample variance (n − 1) of y, 0 below two units.
func (a PSArm) variance() float64 {
	if a.N < 2 {
		return 0
	}
	return math.Max(0, (a.YY-a.Y*a.Y/a.N)/(a.N-1))
}

// covariateVariance is the sample variance of x, 0 below two units.
func (a PSArm) covariateVariance() float64 {
	if a.N < 2 {
		return 0
	}
	return math.Max(0, (a.XX-a.X*a.X/a.N)/(a.N-1))
}

// PSCell is one cell (segment): the sums of its control and treated units.
type PSCell struct {
	Name             string
	Control, Treated PSArm
}

// PostStratified is the effect post-stratified on the cells (PostStratify).
type PostStratified struct {
	// CUPED: the cells' effects are regression-adjusted on the pre-exposure
	// covariate (GrowthBook's CUPEDps); false: plain post-stratification.
	CUPED    bool   `json:"cuped"`
	Absolute Effect `json:"absolute"`
	// Relative is the effect over the post-stratified control mean (delta
	// method); nil when that mean is 0.
	Relative *Effect `json:"relative,omitempty"`
	// Cells are the cells estimated; Merged the cells merged into the largest
	// because an arm had fewer than two units or no variance (gbstats'
	// combine_cells_for_analysis); Adjusted the cells regression-adjusted
	// (a cell whose covariate does not vary in an arm is not).
	Cells    int `json:"cells"`
	Merged   int `json:"merged_cells"`
	Adjusted int `json:"adjusted_cells"`
}

// PostStratify estimates the treatment effect post-stratified on cells, with
// each cell's effect regression-adjusted on the covariate when cuped (the
// method of gbstats' EffectMomentsPostStratification; TestPostStratifyGBStats
// checks GrowthBook's published vectors). The sums may be over values shifted by
// constants (exact whatever the offset): shift is the constant subtracted from
// y, added back to the control mean of the relative effect; the shift of x
// changes nothing. Intervals and p-values are normal (dof 0) at level 1 − alpha.
// InsufficientData when an arm overall has no variance, Invalid for a bad alpha.
func PostStratify(cells []PSCell, cuped bool, alpha, shift float64) (*PostStratified, error) {
	const op = "analysis.PostStratify"
	if err := checkAlpha(op, alpha); err != nil {
		return nil, err
	}
	var total PSCell
	for _, c := range cells {
		total.Control.add(c.Control)
		total.Treated.add(c.Treated)
	}
	if total.Control.variance() <= 0 || total.Treated.variance() <= 0 {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Errorf("each arm needs two units and some variance, have %g and %g units", total.Control.N, total.Treated.N))
	}
	// gbstats: without covariate variance in an arm overall, no cell is adjusted.
	if total.Control.covariateVariance() <= 0 || total.Treated.covariateVariance() <= 0 {
		cuped = false
	}
	// Cells largest first; a cell that cannot be estimated on its own joins
	// the largest.
	sorted := slices.Clone(cells)
	slices.SortStableFunc(sorted, func(a, b PSCell) int {
		return cmp.Compare(b.Control.N+b.Treated.N, a.Control.N+a.Treated.N)
	})
	use := []PSCell{sorted[0]}
	merged := 0
	for _, c := range sorted[1:] {
		if c.Control.variance() > 0 && c.Treated.variance() > 0 {
			use = append(use, c)
			continue
		}
		if c.Control.N+c.Treated.N > 0 {
			merged++
		}
		use[0].Control.add(c.Control)
		use[0].Treated.add(c.Treated)
	}
	out := &PostStratified{CUPED: cuped, Cells: len(use), Merged: merged}
	type cellResult struct {
		n     float64
		alpha [2]float64    // control mean, effect
		v     [2][2]float64 // their covariance, times the cell's units
	}
	results := make([]cellResult, 0, len(use))
	var n float64
	for _, c := range use {
		r, adjusted, ok := psCell(c, cuped)
		if !ok {
			return nil, experiment.E(op, experiment.InsufficientData, experiment.Errorf("cell %q: the regression on the covariate is singular", c.Name))
		}
		if adjusted {
			out.Adjusted++
		}
		results = append(results, cellResult{n: c.Control.N + c.Treated.N, alpha: r.alpha, v: r.v})
		n += c.Control.N + c.Treated.N
	}
	var mean [2]float64
	for _, r := range results {
		nu := r.n / n
		for i := range 2 {
			mean[i] += nu * r.alpha[i]
		}
	}
	var cov [2][2]float64
	for _, r := range results {
		nu := r.n / n
		for i := range 2 {
			for j := range 2 {
				cov[i][j] += nu*(r.alpha[i]-mean[i])*(r.alpha[j]-mean[j])/n + nu*r.v[i][j]/n
			}
		}
	}
	z := distuv.UnitNormal
	q := z.Quantile(1 - alpha/2)
	effect := func(est, v float64) Effect {
		se := math.Sqrt(math.Max(v, 0))
		e := Effect{Estimate: est, SE: se, CILow: est - q*se, CIHigh: est + q*se, PValue: 1}
		if se > 0 {
			e.PValue = 2 * z.Survival(math.Abs(est)/se)
		}
		return e
	}
	out.Absolute = effect(mean[1], cov[1][1])
	if mu := mean[0] + shift; mu != 0 {
		g := [2]float64{-mean[1] / (mu * mu), 1 / mu}
		v := g[0]*g[0]*cov[0][0] + 2*g[0]*g[1]*cov[0][1] + g[1]*g[1]*cov[1][1]
		rel := effect(mean[1]/mu, v)
		out.Relative = &rel
	}
	return out, nil
}

type psResult struct {
	alpha [2]float64
	v     [2][2]float64
}

// psCell is gbstats' Algorithm 1 for one cell: the control mean and effect,
// and their covariance times the cell's units, regression-adjusted (OLS of y
// on 1, w, x) when cuped and the covariate varies in both arms, else the arms'
// means. ok is false for a singular regression.
func psCell(c PSCell, cuped bool) (r psResult, adjusted, ok bool) {
	a, b := c.Control, c.Treated
	n := a.N + b.N
	if !cuped || a.covariateVariance() <= 0 || b.covariateVariance() <= 0 || n <= 3 {
		va, vb := a.variance()*n/a.N, b.variance()*n/b.N
		r.alpha = [2]float64{a.Y / a.N, b.Y/b.N - a.Y/a.N}
		r.v = [2][2]float64{{va, -va}, {-va, va + vb}}
		return r, false, true
	}
	sx, sxx := a.X+b.X, a.XX+b.XX
	xtx := mat.NewDense(3, 3, []float64{
		n, b.N, sx,
		b.N, b.N, b.X,
		sx, b.X, sxx,
	})
	var inv mat.Dense
	if err := inv.Inverse(xtx); err != nil {
		return r, false, false
	}
	xty := mat.NewVecDense(3, []float64{a.Y + b.Y, b.Y, a.XY + b.XY})
	var g mat.VecDense
	g.MulVec(&inv, xty)
	sigma := (a.YY + b.YY - mat.Inner(xty, &inv, xty)) / (n - 3)
	xbar := sx / n
	sx2 := (sxx - sx*sx/n) / (n - 1)
	cc := func(i, j int) float64 { return sigma * inv.At(i, j) }
	m0 := [3]float64{1, 0, xbar}
	quad := func(u, w [3]float64) float64 {
		var s float64
		for i := range 3 {
			for j := range 3 {
				s += u[i] * cc(i, j) * w[j]
			}
		}
		return s
	}
	m1 := [3]float64{0, 1, 0}
	g2 := g.AtVec(2)
	r.alpha = [2]float64{g.AtVec(0) + g2*xbar, g.AtVec(1)}
	r.v[0][0] = n * (quad(m0, m0) + cc(2, 2)*sx2/n + g2*g2*sx2/n)
	r.v[1][1] = n * quad(m1, m1)
	r.v[0][1] = n * quad(m1, m0)
	r.v[1][0] = r.v[0][1]
	return r, true, true
}
