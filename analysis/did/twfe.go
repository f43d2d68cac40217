package did

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Panel is long-format panel data: row i is unit Unit[i] observed in period
// Time[i] with outcome Y[i]. Units and periods are arbitrary integers.
type Panel struct {
	Unit []int
	Time []int
	Y    []float64
}

func (p Panel) check() {
	if len(p.Unit) != len(p.Y) || len(p.Time) != len(p.Y) {
		panic(fmt.Sprintf("did: panel lengths unit=%d time=%d y=%d differ", len(p.Unit), len(p.Time), len(p.Y)))
	}
}

// TWFEOptions configures TWFE and EventStudy.
type TWFEOptions struct {
	VCE     VCE     // covariance estimator; DefaultTWFEOptions gives CR1
	Cluster []int   // cluster of each row for CR1; nil means the unit
	Alpha   float64 // 1 − confidence level; 0.05 when zero
	Tol     float64 // convergence of the alternating projections; 1e-10 when zero
	MaxIter int     // iteration limit of the alternating projections; 10,000 when zero
}

// DefaultTWFEOptions returns errors clustered by unit (CR1), α = 0.05.
func DefaultTWFEOptions() TWFEOptions { return TWFEOptions{VCE: CR1} }

func (o *TWFEOptions) fill() {
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	if o.Tol == 0 {
		o.Tol = 1e-10
	}
	if o.MaxIter == 0 {
		o.MaxIter = 10000
	}
}

// ErrNotConverged is returned when the alternating projections do not converge.
var ErrNotConverged = errors.New("did: fixed-effect projections did not converge")

// absorber partials unit and period effects out of a column by alternating
// projections (the method of Guimarães & Portugal 2010, also used by reghdfe
// and fixest): subtract unit means, then period means, until neither moves. On a
// balanced panel one sweep is exact; the second sweep only confirms it.
type absorber struct {
	unit, time []int // dense codes
	nu, nt     int
	cu, ct     []float64 // row counts per unit and per period
	tol        float64
	maxIter    int
}

func newAbsorber(p Panel, tol float64, maxIter int) *absorber {
	a := &absorber{tol: tol, maxIter: maxIter}
	a.unit, a.nu = denseCodes(p.Unit)
	a.time, a.nt = denseCodes(p.Time)
	a.cu, a.ct = make([]float64, a.nu), make([]float64, a.nt)
	for i := range a.unit {
		a.cu[a.unit[i]]++
		a.ct[a.time[i]]++
	}
	return a
}

// demean replaces v by its residual from the unit and period effects.
func (a *absorber) demean(v []float64) error {
	su, st := make([]float64, a.nu), make([]float64, a.nt)
	scale := 0.0
	for _, x := range v {
		scale = math.Max(scale, math.Abs(x))
	}
	if scale == 0 {
		return nil
	}
	for it := 0; it < a.maxIter; it++ {
		moved := sweep(v, a.unit, su, a.cu)
		moved = math.Max(moved, sweep(v, a.time, st, a.ct))
		if moved <= a.tol*scale {
			return nil
		}
	}
	return ErrNotConverged
}

// sweep subtracts the group means of v and returns the largest |mean|.
func sweep(v []float64, g []int, sum, cnt []float64) float64 {
	clear(sum)
	for i, x := range v {
		sum[g[i]] += x
	}
	moved := 0.0
	for k := range sum {
		sum[k] /= cnt[k]
		moved = math.Max(moved, math.Abs(sum[k]))
	}
	for i := range v {
		v[i] -= sum[g[i]]
	}
	return moved
}

// TWFE fits the two-way fixed-effects regression
//
//	y_it = α_i + λ_t + x_it'β + e_it
//
// with the unit effects α_i and period effects λ_t absorbed (partialled out by
// alternating projections, never expanded into dummies), so that panels of
// hundreds of thousands of units fit in memory and seconds. x holds the
// regressors (columns of length N) and names their names.
//
// Degrees of freedom follow Stata's xtreg, fe and reghdfe: when the unit
// effects are nested in the clusters (CR1 clustered by unit or coarser), they
// are not counted in K, so K = len(x) + T (T−1 period effects and the
// intercept); otherwise K = len(x) + U + T − 1.
func TWFE(p Panel, x [][]float64, names []string, opt TWFEOptions) (*Fit, error) {
	p.check()
	opt.fill()
	n := len(p.Y)
	for j, c := range x {
		if len(c) != n {
			panic(fmt.Sprintf("did: TWFE: column %q has %d rows, want %d", names[j], len(c), n))
		}
	}
	cluster := opt.Cluster
	if cluster == nil {
		cluster = p.Unit
	}
	a := newAbsorber(p, opt.Tol, opt.MaxIter)
	y := append([]float64(nil), p.Y...)
	if err := a.demean(y); err != nil {
		return nil, fmt.Errorf("outcome: %w", err)
	}
	xd := make([][]float64, len(x))
	errs := make([]error, len(x))
	parallel(len(x), func(j int) {
		xd[j] = append([]float64(nil), x[j]...)
		errs[j] = a.demean(xd[j])
	})
	for j, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[j], err)
		}
	}
	absorbed := a.nu + a.nt - 1
	if opt.VCE == CR1 && nested(a.unit, a.nu, cluster) {
		absorbed = a.nt
	}
	return OLS(Regression{X: xd, Names: names, Y: y, Cluster: cluster, Absorbed: absorbed}, opt.VCE, opt.Alpha)
}

// nested reports whether every unit lies in a single cluster.
func nested(unit []int, nu int, cluster []int) bool {
	first := make([]int, nu)
	seen := make([]bool, nu)
	for i, u := range unit {
		if !seen[u] {
			seen[u], first[u] = true, cluster[i]
		} else if first[u] != cluster[i] {
			return false
		}
	}
	return true
}

// NeverTreated marks, in a cohort slice, a unit that is never treated.
const NeverTreated = math.MaxInt

// Cohorts returns, for each row, the first period in which its unit is
// treated (treated[i] true), or NeverTreated.
func Cohorts(unit, time []int, treated []bool) []int {
	if len(time) != len(unit) || len(treated) != len(unit) {
		panic(fmt.Sprintf("did: Cohorts: lengths %d, %d, %d differ", len(unit), len(time), len(treated)))
	}
	first := make(map[int]int)
	for i, u := range unit {
		if !treated[i] {
			continue
		}
		if f, ok := first[u]; !ok || time[i] < f {
			first[u] = time[i]
		}
	}
	out := make([]int, len(unit))
	for i, u := range unit {
		if f, ok := first[u]; ok {
			out[i] = f
		} else {
			out[i] = NeverTreated
		}
	}
	return out
}

// EventStudyOptions configures EventStudy.
type EventStudyOptions struct {
	TWFEOptions
	// Leads and Lags bound the event window: relative times below −Leads are
	// binned into −Leads and those above Lags into Lags. Zero means no binning.
	Leads, Lags int
}

// EventCoef is the effect at one time relative to treatment start
// (0 = the first treated period).
type EventCoef struct {
	RelTime int
	Coef
}

// PreTrend is the joint Wald test that all leads (relative times ≤ −2) are
// zero: the parallel-trends check.
type PreTrend struct {
	Tested  bool    // false when there is no lead to test
	F       float64 // W/q
	Q       int     // number of leads tested
	DF      float64 // denominator degrees of freedom
	PValue  float64
	Warning string // non-empty when PValue < 0.05
}

// Events is the result of EventStudy.
type Events struct {
	Coefs    []EventCoef // sorted by RelTime; the reference period −1 is omitted (zero by construction)
	PreTrend PreTrend
	Fit      *Fit
}

// EventStudy fits the dynamic two-way fixed-effects regression
//
//	y_it = α_i + λ_t + Σ_{k≠−1} δ_k·1{t − g_i = k} + e_it
//
// where g_i is unit i's first treated period (cohort[i], NeverTreated for
// units never treated, whose indicators are all zero). The reference period
// is k = −1. The leads δ_k, k ≤ −2, are tested jointly with an F test on
// (q, DF) degrees of freedom; PreTrend.Warning is set when p < 0.05.
//
// With staggered adoption and heterogeneous effects these coefficients are
// contaminated by other periods' effects (Sun & Abraham 2021); prefer
// CallawaySantAnna there.
func EventStudy(p Panel, cohort []int, opt EventStudyOptions) (*Events, error) {
	p.check()
	if len(cohort) != len(p.Y) {
		panic(fmt.Sprintf("did: EventStudy: %d cohorts for %d rows", len(cohort), len(p.Y)))
	}
	rel := make([]int, len(p.Y))
	set := map[int]bool{}
	for i, g := range cohort {
		if g == NeverTreated {
			rel[i] = math.MinInt
			continue
		}
		k := p.Time[i] - g
		if opt.Leads > 0 && k < -opt.Leads {
			k = -opt.Leads
		}
		if opt.Lags > 0 && k > opt.Lags {
			k = opt.Lags
		}
		rel[i] = k
		if k != -1 {
			set[k] = true
		}
	}
	if len(set) == 0 {
		return nil, errors.New("did: event study has no treated unit observed away from the reference period −1")
	}
	ks := make([]int, 0, len(set))
	for k := range set {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	x := make([][]float64, len(ks))
	names := make([]string, len(ks))
	col := make(map[int]int, len(ks))
	for j, k := range ks {
		x[j] = make([]float64, len(p.Y))
		names[j] = "rel" + strconv.Itoa(k)
		col[k] = j
	}
	for i, k := range rel {
		if j, ok := col[k]; ok {
			x[j][i] = 1
		}
	}
	fit, err := TWFE(p, x, names, opt.TWFEOptions)
	if err != nil {
		return nil, err
	}
	es := &Events{Fit: fit}
	var leads []int
	for j, k := range ks {
		es.Coefs = append(es.Coefs, EventCoef{RelTime: k, Coef: fit.Coef(j)})
		if k <= -2 {
			leads = append(leads, j)
		}
	}
	if len(leads) > 0 {
		f, q, pv, err := fit.Wald(leads)
		if err != nil {
			return nil, err
		}
		es.PreTrend = PreTrend{Tested: true, F: f, Q: q, DF: fit.DF, PValue: pv}
		if pv < 0.05 {
			es.PreTrend.Warning = fmt.Sprintf("pre-trend test rejects parallel trends: F(%d, %g) = %.3f, p = %.4f; the leads are jointly non-zero, so the difference-in-differences estimate is suspect", q, fit.DF, f, pv)
		}
	}
	return es, nil
}
