package analysis

import (
	"bufio"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/liftlab/lift/internal/refdata"
)

// readLalonde reads a Dehejia–Wahba NSW file: tab-separated treat age educ black
// hisp married nodegree re74 re75 re78 u74 u75.
func readLalonde(t *testing.T, file string) [][]float64 {
	t.Helper()
	f, err := os.Open(refdata.File(t, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		row := make([]float64, len(fields))
		for i, s := range fields {
			if row[i], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestLinRegressionLalonde(t *testing.T) {
	rows := append(readLalonde(t, "lalonde-nswre74-treated.tsv"), readLalonde(t, "lalonde-nswre74-controls.tsv")...)
	n := len(rows)
	y := make([]float64, n)
	tr := make([]bool, n)
	var y1, y0 []float64
	covCols := []int{1, 2, 3, 4, 5, 6, 7, 8} // age educ black hisp married nodegree re74 re75
	x := mat.NewDense(n, len(covCols), nil)
	for i, r := range rows {
		y[i], tr[i] = r[9], r[0] == 1
		if tr[i] {
			y1 = append(y1, y[i])
		} else {
			y0 = append(y0, y[i])
		}
		for j, c := range covCols {
			x.Set(i, j, r[c])
		}
	}
	// Dehejia & Wahba (1999), JASA 94:1053–1062, Table 3, NSW experimental
	// estimate: testdata/dehejia-wahba-1999-table3.csv.
	pub := refdata.Table(t, "dehejia-wahba-1999-table3.csv")[0]
	if float64(len(y1)) != pub.Float(t, "treated") || float64(len(y0)) != pub.Float(t, "controls") {
		t.Fatalf("read %d treated and %d controls, want %s and %s", len(y1), len(y0), pub["treated"], pub["controls"])
	}

	// No covariates: τ̂ is the difference in mean 1978 earnings, published as
	// 1794 (whole dollars, so ±0.5); on these files it is 1794.3424 (numpy:
	// y1.mean() - y0.mean()). The HC2 standard error equals Welch's (an
	// algebraic identity for a binary regressor), 671.0 here; the paper's 633
	// is not the Welch standard error and is not checked.
	plain, err := LinRegression(y, tr, nil, LinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "difference in means vs Table 3", plain.Estimate, pub.Float(t, "estimate"), 0.5)
	near(t, "difference in means", plain.Estimate, 1794.3424, 0.00005)
	w, err := WelchFromSamples(y1, y0, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "HC2 se = Welch se", plain.SE, w.SE, 1e-9*w.SE)

	// With covariates: Lin's τ̂ equals the difference of the two arms' separate OLS
	// fits evaluated at the full-sample covariate mean (Lin 2013, section 2).
	adj, err := LinRegression(y, tr, x, LinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	xbar := make([]float64, len(covCols))
	for j := range covCols {
		xbar[j] = mat.Sum(x.ColView(j)) / float64(n)
	}
	fitAt := func(treated bool) float64 {
		var xs [][]float64
		var ys []float64
		for i := range n {
			if tr[i] == treated {
				xs = append(xs, append([]float64{1}, x.RawRowView(i)...))
				ys = append(ys, y[i])
			}
		}
		a := mat.NewDense(len(xs), len(covCols)+1, nil)
		for i, r := range xs {
			a.SetRow(i, r)
		}
		var b mat.VecDense
		if err := b.SolveVec(a, mat.NewVecDense(len(ys), ys)); err != nil {
			t.Fatal(err)
		}
		return mat.Dot(&b, mat.NewVecDense(len(covCols)+1, append([]float64{1}, xbar...)))
	}
	near(t, "Lin estimate = separate fits", adj.Estimate, fitAt(true)-fitAt(false), 1e-6)
	if adj.DF != float64(n-2-2*len(covCols)) {
		t.Errorf("dof = %g, want n − p = %d", adj.DF, n-2-2*len(covCols))
	}
	// HC1 is HC0 scaled by n/(n−p).
	h0, _ := LinRegression(y, tr, x, LinOptions{HC: HC0})
	h1, _ := LinRegression(y, tr, x, LinOptions{HC: HC1})
	near(t, "HC1/HC0", h1.SE/h0.SE, math.Sqrt(float64(n)/float64(n-2-2*len(covCols))), 1e-12)
}

func TestLinRegressionErrors(t *testing.T) {
	y := []float64{1, 2, 3, 4, 5, 6}
	tr := []bool{true, true, true, false, false, false}
	// A constant covariate is collinear with the intercept.
	if _, err := LinRegression(y, tr, mat.NewDense(6, 1, []float64{1, 1, 1, 1, 1, 1}), LinOptions{}); err == nil {
		t.Error("constant covariate: no error")
	}
	if _, err := LinRegression(y, []bool{true, false, false, false, false, false}, nil, LinOptions{}); err == nil {
		t.Error("one treated unit: no error")
	}
	defer func() {
		if recover() == nil {
			t.Error("mismatched lengths did not panic")
		}
	}()
	LinRegression(y, tr[:5], nil, LinOptions{})
}

// On correlated data Lin's adjustment never gives a wider interval than the
// unadjusted difference in means (seeded simulation, ρ = 0.7, n = 400).
func TestLinRegressionNarrower(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 400
	for run := range 50 {
		y := make([]float64, n)
		tr := make([]bool, n)
		x := mat.NewDense(n, 1, nil)
		for i := range n {
			pre := r.NormFloat64()
			x.Set(i, 0, pre)
			tr[i] = i%2 == 0
			y[i] = 0.7*pre + math.Sqrt(1-0.49)*r.NormFloat64()
		}
		a, err := LinRegression(y, tr, x, LinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := LinRegression(y, tr, nil, LinOptions{})
		if a.SE > u.SE {
			t.Errorf("run %d: adjusted se %g > unadjusted %g", run, a.SE, u.SE)
		}
	}
}

// Lin's estimate does not depend on the offset of the outcome or of the
// covariates (the intercept and the centring absorb them), so it must not lose
// digits to it (issue 14 item 1, for the estimator that reads rows): before,
// lift analyze --covariates at 1e12 was 4e-4 off statsmodels on the same
// float64 values. Every value below is exact in float64 at each offset.
// statsmodels 0.13 (HC2; its interval and p-value are normal, so those are
// recomputed with scipy 1.10's t on n − p = 34 degrees of freedom):
//
//	import pandas as pd, statsmodels.formula.api as smf
//	from scipy import stats
//	rows = []
//	for i in range(40):
//	    t = i % 2; a = ((7*i) % 13)/4; b = ((5*i) % 11)/8
//	    rows.append((((3*i) % 17)/8 + a/2 + t*(0.75 + a/4) + ((11*i) % 7)/16, t, a, b))
//	df = pd.DataFrame(rows, columns=['y', 't', 'a', 'b'])
//	df['ac'] = df.a - df.a.mean(); df['bc'] = df.b - df.b.mean()
//	r = smf.ols('y ~ t*(ac + bc)', df).fit(cov_type='HC2')
//	est, se = r.params['t'], r.bse['t']        # 1.1561958969001302 0.22367572659646145
//	h = stats.t.ppf(0.975, 34)*se
//	print(est - h, est + h, 2*stats.t.sf(est/se, 34))   # 0.7016321296568204 1.61075966414344 1.0365762808004352e-05
func TestLinRegressionLargeOffset(t *testing.T) {
	w := want{1.1561958969001302, 0.7016321296568204, 1.61075966414344, 0.22367572659646145, 1.0365762808004352e-05}
	for _, off := range []struct{ y, x float64 }{{0, 0}, {1e9, 1e9}, {1e12, 1e6}} {
		var y []float64
		var tr []bool
		x := mat.NewDense(40, 2, nil)
		for i := range 40 {
			ti := i % 2
			a, b := float64((7*i)%13)/4, float64((5*i)%11)/8
			y = append(y, off.y+float64((3*i)%17)/8+a/2+float64(ti)*(0.75+a/4)+float64((11*i)%7)/16)
			tr = append(tr, ti == 1)
			x.Set(i, 0, off.x+a)
			x.Set(i, 1, b)
		}
		e, err := LinRegression(y, tr, x, LinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkEffect(t, "lin @"+strconv.FormatFloat(off.y, 'g', -1, 64), e, w, 1e-9*w.se)
	}
}

// An outcome the treatment and covariates fit exactly has no residual
// variance: its HC2 standard error is rounding noise (lift analyze
// --covariates printed se 2.1e-17, p 6e-254 before). statsmodels 0.13 on these
// rows:
//
//	import numpy as np, statsmodels.api as sm
//	t = np.arange(20) % 2; a = (7*np.arange(20)) % 5
//	X = np.column_stack([np.ones(20), t, a - a.mean(), t*(a - a.mean())])
//	r = sm.OLS(2 + 0.5*t + a, X).fit(cov_type='HC2'); print(r.ssr, r.bse[1])   # 2.7610131682735413e-29 5.99413306036497e-16
//
// a fit exact to rounding. Lift refuses it, as lift did does (issue 14 item 6).
func TestLinRegressionPerfectFit(t *testing.T) {
	var y []float64
	var tr []bool
	x := mat.NewDense(20, 1, nil)
	for i := range 20 {
		a := float64((7 * i) % 5)
		y = append(y, 2+0.5*float64(i%2)+a)
		tr = append(tr, i%2 == 1)
		x.Set(i, 0, a)
	}
	if e, err := LinRegression(y, tr, x, LinOptions{}); !errors.Is(err, ErrZeroVariance) || !strings.Contains(err.Error(), "exactly") {
		t.Errorf("LinRegression = %+v, %v; want ErrZeroVariance saying the fit is exact", e, err)
	}
	y[3] += 1e-6
	if _, err := LinRegression(y, tr, x, LinOptions{}); err != nil {
		t.Errorf("near-exact fit: %v", err)
	}
}
