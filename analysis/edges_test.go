package analysis

import (
	"math"
	"slices"
	"strconv"
	"testing"
)

// Numerical edges: each expected value is computed outside Lift, with the
// snippet next to it.

// want is an expected effect; NaN fields are not checked.
type want struct{ est, lo, hi, se, p float64 }

func checkEffect(t *testing.T, what string, got Effect, w want, tol float64) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want float64
	}{{"estimate", got.Estimate, w.est}, {"ci_low", got.CILow, w.lo}, {"ci_high", got.CIHigh, w.hi}, {"se", got.SE, w.se}, {"p_value", got.PValue, w.p}} {
		if !math.IsNaN(f.want) {
			near(t, what+"."+f.name, f.got, f.want, tol)
		}
	}
}

// offsetRows is the data set of the large-offset tests: unit i of an arm has
//
//	x = off + ((53i) mod 97)/4
//	y = off + ((37i) mod 101)/8 + ((53i) mod 97)/8 + 3/4 (treated only)
//	d = 1 + (13i) mod 7
//
// Every value is exact in float64 up to off = 1e9 and beyond.
func offsetRows(off float64, n int, treated bool) (y, x, d []float64) {
	for i := range n {
		xi := off + float64((i*53)%97)/4
		yi := off + float64((i*37)%101)/8 + float64((i*53)%97)/8
		if treated {
			yi += 0.75
		}
		y, x, d = append(y, yi), append(x, xi), append(d, float64(1+(i*13)%7))
	}
	return y, x, d
}

// shiftedArm sums the rows shifted by cy, cx and cd.
func shiftedArm(name string, y, x, d []float64, cy, cx, cd float64) Arm {
	a := Arm{Name: name, N: int64(len(y)), Shift: cy, CovariateShift: cx, DenominatorShift: cd}
	for i := range y {
		yi, xi, di := y[i]-cy, x[i]-cx, d[i]-cd
		a.Sum += yi
		a.SumSquares += yi * yi
		a.CovariateSum += xi
		a.CovariateSumSquares += xi * xi
		a.CrossSum += xi * yi
		a.DenominatorSum += di
		a.DenominatorSumSquares += di * di
		a.MetricDenominatorSum += yi * di
	}
	return a
}

// Item 1 of issue 14: statistics from shifted sums are exact whatever the offset
// of the data (before, variances came from raw sums: 10–30% off at 1e7, negative
// at 1e9). Expected values: /tmp/ref14_offset.py below, exact moments by
// fractions.Fraction and scipy 1.10's t distribution:
//
//	from fractions import Fraction as F
//	from scipy import stats
//	import math
//	def data(off, n, treated):
//	    rows = []
//	    for i in range(n):
//	        x = F(off) + F((i*53) % 97, 4)
//	        y = F(off) + F((i*37) % 101, 8) + F((i*53) % 97, 8) + (F(3, 4) if treated else 0)
//	        d = F(1 + (i*13) % 7)
//	        rows.append((y, x, d))
//	    return rows
//	def mom(rows, u, v):
//	    n = len(rows); mu = sum(r[u] for r in rows)/n; mv = sum(r[v] for r in rows)/n
//	    return sum((r[u]-mu)*(r[v]-mv) for r in rows)/(n-1)
//	def mean(rows, u): return sum(r[u] for r in rows)/len(rows)
//	def welch(est, va, na, vb, nb):
//	    se = math.sqrt(vb/nb + va/na)
//	    df = (vb/nb+va/na)**2/(vb**2/(nb**2*(nb-1)) + va**2/(na**2*(na-1)))
//	    h = stats.t.ppf(0.975, df)*se
//	    return [float(est), se, float(est)-h, float(est)+h, 2*stats.t.sf(abs(float(est)/se), df)]
//	for off in (0, 10**7, 10**9, 10**13):
//	    A, B = data(off, 400, False), data(off, 500, True)
//	    na, nb = len(A), len(B)
//	    w = welch(mean(B,0)-mean(A,0), float(mom(A,0,0)), na, float(mom(B,0,0)), nb)
//	    P = A + B                                    # CUPED, gbstats: θ on the pooled arms
//	    th = mom(P,0,1)/mom(P,1,1)
//	    va = mom(A,0,0) + th*th*mom(A,1,1) - 2*th*mom(A,0,1)
//	    vb = mom(B,0,0) + th*th*mom(B,1,1) - 2*th*mom(B,0,1)
//	    c = welch((mean(B,0)-th*mean(B,1)) - (mean(A,0)-th*mean(A,1)), float(va), na, float(vb), nb)
//	    def rv(R):                                   # ratio y/d, delta method per arm
//	        my, md = mean(R,0), mean(R,2)
//	        return my/md, mom(R,0,0)/md**2 + mom(R,2,2)*my**2/md**4 - 2*mom(R,0,2)*my/md**3
//	    ra, vra = rv(A); rb, vrb = rv(B)
//	    r = welch(rb-ra, float(vra), na, float(vrb), nb)
//	    print(off, w, float(th), c, r)
func TestLargeOffset(t *testing.T) {
	// want{estimate, ci_low, ci_high, se, p} (the script prints estimate, se,
	// ci_low, ci_high, p); the mean and CUPED effects do not depend on the offset.
	welch := want{0.7615625, 0.07844446854759946, 1.4446805314524007, 0.34804313491789635, 0.028930079089069447}
	cuped := want{0.7604452153351946, 0.28007034200987146, 1.2408200886605179, 0.24474666042904658, 0.0019519627601325942}
	const theta = 0.5257810187319641
	cases := []struct {
		off   float64
		ratio want
	}{
		{0, want{0.18141521127588756, -0.08597113129195882, 0.44880155384373394, 0.13623388443077744, 0.1833263503346385}},
		{1e7, want{-7193.626655240501, -172486.73420192942, 158099.4808914484, 84215.14519376827, 0.9319478243448607}},
		{1e9, want{-719380.6256299665, -17248671.031599633, 15809909.7803397, 8421504.151477406, 0.9319460458624168}},
		{1e13, want{-7193808070.270362, -172486710074.7493, 158099093934.2086, 84215040467.61667, 0.9319460278997239}},
	}
	for _, c := range cases {
		ya, xa, da := offsetRows(c.off, 400, false)
		yb, xb, db := offsetRows(c.off, 500, true)
		// The same shifts in both arms (a pilot per metric, as the store uses), and
		// different ones (the arms' own means, as a file reader may use).
		shared := []Arm{shiftedArm("a", ya, xa, da, c.off, c.off, 4), shiftedArm("b", yb, xb, db, c.off, c.off, 4)}
		own := []Arm{shiftedArm("a", ya, xa, da, avg(ya), avg(xa), avg(da)), shiftedArm("b", yb, xb, db, avg(yb)+3, avg(xb)-2, 0)}
		for name, arms := range map[string][]Arm{"shared shift": shared, "own shifts": own} {
			what := func(s string) string { return name + " " + s + " @" + fmtG(c.off) }
			rel := func(w want) float64 { return 1e-9 * math.Abs(w.se) }
			res, err := Analyze(Input{Arms: slices.Clone(arms)})
			if err != nil {
				t.Fatal(err)
			}
			checkEffect(t, what("welch"), res.Comparisons[0].Absolute, welch, rel(welch))
			res, err = Analyze(Input{Arms: slices.Clone(arms), Covariate: "x"})
			if err != nil {
				t.Fatal(err)
			}
			checkEffect(t, what("cuped"), res.Comparisons[0].Absolute, cuped, rel(cuped))
			near(t, what("theta"), res.Comparisons[0].CUPED.Theta, theta, 1e-12)
			res, err = Analyze(Input{Type: Ratio, Arms: slices.Clone(arms)})
			if err != nil {
				t.Fatal(err)
			}
			checkEffect(t, what("ratio"), res.Comparisons[0].Absolute, c.ratio, rel(c.ratio))
		}
	}
}

// Raw sums (shift 0) of data at offset 1e9 have lost the variance: the
// comparison is flagged, not reported as a number.
func TestLargeOffsetRawSumsFlagged(t *testing.T) {
	ya, xa, da := offsetRows(1e9, 400, false)
	yb, xb, db := offsetRows(1e9, 500, true)
	res, err := Analyze(Input{Arms: []Arm{shiftedArm("a", ya, xa, da, 0, 0, 0), shiftedArm("b", yb, xb, db, 0, 0, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Comparisons[0]; !slices.Contains(c.Flags, FlagZeroVariance) || c.Absolute != (Effect{PValue: 1}) {
		t.Errorf("raw sums at 1e9: %+v, want the flagged default", c)
	}
}

func avg(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func fmtG(x float64) string {
	switch x {
	case 0:
		return "0"
	case 1e7:
		return "1e7"
	case 1e9:
		return "1e9"
	}
	return "1e13"
}

// Item 2 of issue 14: a constant arm no longer makes the comparison "0 [0, 0],
// p = 1": the absolute effect is Welch with the other arm's variance; only a
// relative effect that is undefined is flagged. Expected values: scipy 1.10,
//
//	import numpy as np
//	from scipy import stats
//	b = np.array([1.0 if i%5==0 else 0.0 for i in range(200)]); a = np.zeros(150)
//	r = stats.ttest_ind(b, a, equal_var=False)        # df = 199, the treated n − 1
//	se = np.sqrt(b.var(ddof=1)/200); h = stats.t.ppf(0.975, 199)*se
//	print(b.mean(), se, b.mean()-h, b.mean()+h, r.pvalue)
//	# 0.2 0.028355248200333437 0.1440846827475366 0.2559153172524634 2.8226228559371076e-11
//	pa, pb = 1.0, 108/120                             # proportions, gbstats' variance p(1−p)
//	se = np.sqrt(pb*(1-pb)/120); est = pb-pa; h = stats.t.ppf(0.975, 119)*se
//	print(est, se, est-h, est+h, 2*stats.t.sf(abs(est/se), 119))
//	# -0.09999999999999998 0.027386127875258303 -0.15422726842158574 -0.04577273157841421 0.0003887840931032358
//	se = np.sqrt(0.2*0.8/200); est = -0.2; h = stats.t.ppf(0.975, 199)*se   # treatment at 0, control 40/200
//	print(est, se, est-h, est+h, 2*stats.t.sf(abs(est/se), 199))
//	# -0.2 0.028284271247461905 -0.2557753537857575 -0.14422464621424252 2.5492614359662784e-11
//
// For the proportions the relative effect (p_b − p_a)/p_a has the delta-method
// variance v_b/(n_b p_a²) + 0 = the absolute one's, since p_a = 1.
func TestZeroVarianceArm(t *testing.T) {
	allZero := want{0.2, 0.1440846827475366, 0.2559153172524634, 0.028355248200333437, 2.8226228559371076e-11}
	atOne := want{-0.09999999999999998, -0.15422726842158574, -0.04577273157841421, 0.027386127875258303, 0.0003887840931032358}
	atZero := want{-0.2, -0.2557753537857575, -0.14422464621424252, 0.028284271247461905, 2.5492614359662784e-11}
	cases := []struct {
		name      string
		in        Input
		abs, rel  want
		relFlag   string
		wantFlags []string
	}{
		{"control all zeros", Input{Arms: []Arm{{Name: "a", N: 150}, mean3("b", 200, 40, 40)}}, allZero, want{}, FlagZeroControlMean,
			[]string{FlagZeroVarianceArm, FlagZeroControlMean}},
		{"control proportion at 1", Input{Type: Proportion, Arms: []Arm{{Name: "a", N: 100, Sum: 100}, {Name: "b", N: 120, Sum: 108}}}, atOne, atOne, "",
			[]string{FlagZeroVarianceArm}},
		{"treatment proportion at 0", Input{Type: Proportion, Arms: []Arm{{Name: "a", N: 200, Sum: 40}, {Name: "b", N: 150}}},
			atZero, want{}, FlagRelativeZeroVariance, []string{FlagZeroVarianceArm, FlagRelativeZeroVariance}},
	}
	for _, c := range cases {
		res, err := Analyze(c.in)
		if err != nil {
			t.Fatal(err)
		}
		cmp := res.Comparisons[0]
		if !slices.Equal(cmp.Flags, c.wantFlags) {
			t.Errorf("%s: flags %v, want %v", c.name, cmp.Flags, c.wantFlags)
		}
		checkEffect(t, c.name+" absolute", cmp.Absolute, c.abs, 1e-12)
		if c.relFlag == "" {
			checkEffect(t, c.name+" relative", cmp.Relative, c.rel, 1e-12)
		} else if cmp.Relative != (Effect{PValue: 1}) {
			t.Errorf("%s: relative %+v, want the flagged default", c.name, cmp.Relative)
		}
	}
}

// Item 3 of issue 14: Welch–Satterthwaite with one variance 0 is the other
// arm's n − 1, not 1 (lift uplift's ATE interval was [−0.16, 0.32] where scipy
// gives [0.04, 0.12]). Expected values: the snippet of TestZeroVarianceArm
// (scipy's ttest_ind(b, a, equal_var=False) on the same rows).
func TestWelchOneZeroVariance(t *testing.T) {
	var treated, control []float64
	for i := range 200 {
		treated = append(treated, map[bool]float64{true: 1, false: 0}[i%5 == 0])
	}
	control = make([]float64, 150)
	e, err := WelchFromSamples(treated, control, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	checkEffect(t, "welch", e, want{0.2, 0.1440846827475366, 0.2559153172524634, 0.028355248200333437, 2.8226228559371076e-11}, 1e-12)
	near(t, "dof", e.DF, 199, 1e-9)
	near(t, "WelchDF(0, 150, v, 200)", WelchDF(0, 150, 0.16, 200), 199, 1e-9)
	near(t, "WelchDF(v, 150, 0, 200)", WelchDF(0.16, 150, 0, 200), 149, 1e-9)
}

// Item 4 of issue 14: the one-sided sequential p-value does not depend on the
// metric's units. Expected values: the root of gbstats' one-sided bound (eq. 134
// of Waudby-Smith et al., ρ at 2α held fixed, as gbstats' bisection does) by
// scipy 1.10's brentq with a relative tolerance:
//
//	import numpy as np
//	from scipy import optimize
//	def p1(est, se, n, tuning, alpha=0.05, greater=True):
//	    l = -2*np.log(2*alpha); rho = np.sqrt((l+np.log(l+1))/tuning)
//	    s2 = se*se*n; nr2 = n*rho**2+1
//	    def bound(x):
//	        h = np.sqrt(s2*2*nr2/(n*rho)**2*np.log(1+np.sqrt(nr2)/(2*x)))
//	        return (est-h) if greater else (est+h)
//	    lo, hi = 1e-5, 0.4999
//	    if (bound(lo) > 0) == greater: return lo
//	    if (bound(hi) < 0) == greater: return hi
//	    return optimize.brentq(lambda x: bound(x)/se, lo, hi, xtol=1e-300, rtol=1e-15)
//	for s in (1.0, 1e-6):
//	    print(p1(0.23437666666666668*s, 0.12983081254184736*s, 6461, 5000))   # 0.46304735779462625
//	print(p1(0.08, 0.03, 20000, 5000), p1(0.09, 0.03, 20000, 5000))          # 0.08670294309883621 0.0342592519415304
//	print(p1(0.1, 0.03, 2000, 5000))                                          # 0.01784743940317089
//	print(p1(-0.09, 0.03, 20000, 5000, greater=False))                        # 0.0342592519415304
func TestSequentialOneSidedScaleFree(t *testing.T) {
	// Through Analyze: gbstats' case #5 (armsA5), absolute effect, data × s.
	for _, s := range []float64{1, 1e-6, 1e6} {
		arms := armsA5()
		for i := range arms {
			arms[i].Sum *= s
			arms[i].SumSquares *= s * s
		}
		res, err := Analyze(Input{Arms: arms, SequentialTuning: 5000, Alternative: Greater})
		if err != nil {
			t.Fatal(err)
		}
		near(t, "p(armsA5 × "+fmtS(s)+")", res.Comparisons[0].Absolute.PValue, 0.46304735779462625, 1e-9)
	}
	cases := []struct {
		est, se, n float64
		alt        Alternative
		p          float64
	}{
		{0.08, 0.03, 20000, Greater, 0.08670294309883621},
		{0.09, 0.03, 20000, Greater, 0.0342592519415304},
		{0.1, 0.03, 2000, Greater, 0.01784743940317089},
		{-0.09, 0.03, 20000, Less, 0.0342592519415304},
		{-0.09, 0.03, 20000, Greater, 0.4999}, // the wrong way: gbstats' upper clamp
	}
	for _, c := range cases {
		for _, s := range []float64{1, 1e-6, 1e6} {
			e := Sequential(c.est*s, c.se*s, c.n, 5000, 0.05, c.alt)
			near(t, "p", e.PValue, c.p, 1e-12)
		}
	}
}

func fmtS(s float64) string {
	switch s {
	case 1:
		return "1"
	case 1e-6:
		return "1e-6"
	}
	return "1e6"
}

// Ratio metrics with CUPED use every cross sum of (y, d, x, d₀). Shifted sums
// must give the same result whatever the shifts (here: none at offset 0, where
// raw sums are exact and gbstats' vectors hold, against the offset-0 data
// shifted by their means; and at offset 1e9, a shared pilot against each arm's
// own means), to 1e-9 of the standard error.
func TestRatioCUPEDShiftInvariance(t *testing.T) {
	arm := func(name string, off float64, n int, treated bool, c [4]float64) Arm {
		y, x, d := offsetRows(off, n, treated)
		a := Arm{Name: name, N: int64(n), Shift: c[0], DenominatorShift: c[1], CovariateShift: c[2], DenominatorCovariateShift: c[3]}
		for i := range y {
			d0 := float64(1 + (i*11)%5)
			v := [4]float64{y[i] - c[0], d[i] - c[1], x[i] - c[2], d0 - c[3]}
			a.Sum += v[0]
			a.SumSquares += v[0] * v[0]
			a.DenominatorSum += v[1]
			a.DenominatorSumSquares += v[1] * v[1]
			a.MetricDenominatorSum += v[0] * v[1]
			a.CovariateSum += v[2]
			a.CovariateSumSquares += v[2] * v[2]
			a.CrossSum += v[2] * v[0]
			a.DenominatorCovariateSum += v[3]
			a.DenominatorCovariateSumSquares += v[3] * v[3]
			a.MetricDenominatorCovariateSum += v[0] * v[3]
			a.CovariateDenominatorSum += v[2] * v[1]
			a.CovariateDenominatorCovariateSum += v[2] * v[3]
			a.DenominatorDenominatorCovariateSum += v[1] * v[3]
		}
		return a
	}
	for _, off := range []float64{0, 1e9} {
		ref := [4]float64{}
		if off != 0 {
			ref = [4]float64{off, 4, off, 3}
		}
		own := func(n int, treated bool) [4]float64 {
			y, x, d := offsetRows(off, n, treated)
			return [4]float64{avg(y), avg(d), avg(x), 3.2}
		}
		base, err := Analyze(Input{Type: Ratio, Covariate: "x", Arms: []Arm{arm("a", off, 400, false, ref), arm("b", off, 500, true, ref)}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Analyze(Input{Type: Ratio, Covariate: "x", Arms: []Arm{arm("a", off, 400, false, own(400, false)), arm("b", off, 500, true, own(500, true))}})
		if err != nil {
			t.Fatal(err)
		}
		b, g := base.Comparisons[0], got.Comparisons[0]
		if b.CUPED == nil || b.CUPED.Theta == 0 || len(b.Flags) != 0 {
			t.Fatalf("offset %g: CUPED not applied: %+v", off, b)
		}
		for _, e := range [][2]Effect{{b.Absolute, g.Absolute}, {b.Relative, g.Relative}} {
			w := e[0]
			checkEffect(t, "ratio cuped @"+fmtG(off), e[1], want{w.Estimate, w.CILow, w.CIHigh, w.SE, w.PValue}, 1e-9*w.SE)
		}
		near(t, "theta @"+fmtG(off), g.CUPED.Theta, b.CUPED.Theta, 1e-9*math.Abs(b.CUPED.Theta))
	}
}

// Item 2 of issue 14 as the store sums: each metric's shift is its mean over
// all analyzed units, so a control that is all zeros has Σ(y−c) = −n·c, and its
// mean c + Σ(y−c)/n comes out as rounding noise (−3e-16 through the HTTP API
// before), not 0. A proportion then had variance p(1−p) < 0 and the comparison
// was "0 [0, 0], p = 1"; a mean metric reported a relative effect of 7.6e14.
// The data and expected values are TestZeroVarianceArm's (scipy 1.10): the
// treatment (200 units, every fifth 1) against a control of 150 zeros, for the
// proportion with gbstats' variance p(1−p),
//
//	se = np.sqrt(0.2*0.8/200); h = stats.t.ppf(0.975, 199)*se
//	print(0.2, se, 0.2-h, 0.2+h, 2*stats.t.sf(0.2/se, 199))
//	# 0.2 0.028284271247461905 0.14422464621424252 0.2557753537857575 2.5492614359662784e-11
//
// and for the mean, the "control all zeros" case of TestZeroVarianceArm.
func TestZeroVarianceArmShifted(t *testing.T) {
	var a, b []float64
	for i := range 200 {
		b = append(b, map[bool]float64{true: 1, false: 0}[i%5 == 0])
	}
	a = make([]float64, 150)
	for _, c := range []float64{40.0 / 350, 0.3} {
		arm := func(name string, y []float64) Arm {
			r := Arm{Name: name, N: int64(len(y)), Shift: c}
			for _, v := range y {
				r.Sum += v - c
				r.SumSquares += (v - c) * (v - c)
			}
			return r
		}
		for _, x := range []struct {
			typ Type
			abs want
		}{
			{Mean, want{0.2, 0.1440846827475366, 0.2559153172524634, 0.028355248200333437, 2.8226228559371076e-11}},
			{Proportion, want{0.2, 0.14422464621424252, 0.2557753537857575, 0.028284271247461905, 2.5492614359662784e-11}},
		} {
			res, err := Analyze(Input{Type: x.typ, Arms: []Arm{arm("a", a), arm("b", b)}})
			if err != nil {
				t.Fatal(err)
			}
			cmp := res.Comparisons[0]
			what := string(x.typ) + " shift " + strconv.FormatFloat(c, 'g', -1, 64)
			if res.Variants[0].Mean != 0 || res.Variants[0].Variance != 0 {
				t.Errorf("%s: control mean %g, variance %g; want exactly 0", what, res.Variants[0].Mean, res.Variants[0].Variance)
			}
			if want := []string{FlagZeroVarianceArm, FlagZeroControlMean}; !slices.Equal(cmp.Flags, want) {
				t.Errorf("%s: flags %v, want %v", what, cmp.Flags, want)
			}
			checkEffect(t, what, cmp.Absolute, x.abs, 1e-12)
			if cmp.Relative != (Effect{PValue: 1}) {
				t.Errorf("%s: relative %+v, want the flagged default", what, cmp.Relative)
			}
		}
	}
	// A proportion at 1 in the control, shifted by the pooled mean: variance 0,
	// the atOne case of TestZeroVarianceArm.
	ones := make([]float64, 100)
	for i := range ones {
		ones[i] = 1
	}
	var tb []float64
	for i := range 120 {
		tb = append(tb, map[bool]float64{true: 0, false: 1}[i%10 == 0])
	}
	c := 208.0 / 220
	arm := func(name string, y []float64) Arm {
		r := Arm{Name: name, N: int64(len(y)), Shift: c}
		for _, v := range y {
			r.Sum += v - c
			r.SumSquares += (v - c) * (v - c)
		}
		return r
	}
	res, err := Analyze(Input{Type: Proportion, Arms: []Arm{arm("a", ones), arm("b", tb)}})
	if err != nil {
		t.Fatal(err)
	}
	atOne := want{-0.09999999999999998, -0.15422726842158574, -0.04577273157841421, 0.027386127875258303, 0.0003887840931032358}
	if cmp := res.Comparisons[0]; !slices.Equal(cmp.Flags, []string{FlagZeroVarianceArm}) {
		t.Errorf("proportion at 1: flags %v, want [%s]", cmp.Flags, FlagZeroVarianceArm)
	}
	checkEffect(t, "proportion at 1", res.Comparisons[0].Absolute, atOne, 1e-12)
	checkEffect(t, "proportion at 1 relative", res.Comparisons[0].Relative, atOne, 1e-12)
}
