package did

import (
	"errors"
	"strings"
	"testing"
)

// Item 6 of issue 14: an outcome the model fits exactly has no residual
// variance, and its standard errors are rounding noise. Before, Regress
// returned se ≈ 1e-16 and p ≈ 1e-293. R 4 on the same rows warns instead:
//
//	tr <- rep(c(0,0,1,1), each=5); po <- rep(c(0,1,0,1), each=5)
//	y <- 1.1 + 2.3*tr + 0.7*po + 0.45*tr*po
//	summary(lm(y ~ tr*po))   # "essentially perfect fit: summary may be unreliable"
//	                         # tr:po 0.45, Std. Error 2.777e-16, Pr(>|t|) 3.7e-235
//
// and statsmodels 0.13's OLS gives a residual sum of squares of 3.97e-29 (se
// 1.4e-15): zero to rounding. Lift refuses with ErrPerfectFit.
func TestPerfectFit(t *testing.T) {
	var y []float64
	var treated, post []bool
	var cluster []int
	for cell, tp := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		for i := range 5 {
			v := 1.1
			if tp[0] {
				v += 2.3
			}
			if tp[1] {
				v += 0.7
			}
			if tp[0] && tp[1] {
				v += 0.45
			}
			y, treated, post, cluster = append(y, v), append(treated, tp[0]), append(post, tp[1]), append(cluster, cell*5+i)
		}
	}
	for _, vce := range []VCE{Classical, HC1, CR1} {
		r, err := Regress(y, treated, post, cluster, vce, 0.05)
		if !errors.Is(err, ErrPerfectFit) {
			t.Errorf("%v: Regress = %+v, %v; want ErrPerfectFit", vce, r, err)
		} else if !strings.Contains(err.Error(), "fits the outcome exactly") {
			t.Errorf("%v: message %q", vce, err)
		}
	}
	// Two-way fixed effects: y_it = α_i + λ_t + 0.5·D_it exactly on a balanced panel.
	var p Panel
	var d []float64
	for u := range 8 {
		for tt := range 4 {
			di := 0.0
			if u >= 4 && tt >= 2 {
				di = 1
			}
			p.Unit, p.Time = append(p.Unit, u), append(p.Time, tt)
			p.Y = append(p.Y, float64(u)*1.7+float64(tt)*0.3+0.5*di)
			d = append(d, di)
		}
	}
	if f, err := TWFE(p, [][]float64{d}, []string{"D"}, DefaultTWFEOptions()); !errors.Is(err, ErrPerfectFit) {
		t.Errorf("TWFE = %+v, %v; want ErrPerfectFit", f, err)
	}
	// First differences constant within each arm: no standard error either.
	if c, err := FirstDifference([]float64{0.7, 0.7, 0.7, 1.15, 1.15, 1.15}, []bool{false, false, false, true, true, true}, 0.05); !errors.Is(err, ErrPerfectFit) {
		t.Errorf("FirstDifference = %+v, %v; want ErrPerfectFit", c, err)
	}
	// Not a perfect fit: one row off by 1e-6 of the outcome's spread is estimated.
	y[0] += 1e-6
	if _, err := Regress(y, treated, post, cluster, Classical, 0.05); err != nil {
		t.Errorf("near-perfect fit: %v", err)
	}
}

// exactPanel is y_it = 1.5·u + 0.3·t + 0.5·D_it without noise, D_it = 1 from
// period start[u] on (0: never). Every unit's change is the same within each
// arm, so the difference in differences is exact although the residuals of
// the pooled 2×2 regression are not zero (they hold the unit effects).
func exactPanel(start []int, periods int) Data {
	var d Data
	for u, s := range start {
		for t := range periods {
			inForce := s > 0 && t >= s
			y := 1.5*float64(u) + 0.3*float64(t)
			if inForce {
				y += 0.5
			}
			d.Unit, d.Time, d.Y = append(d.Unit, u), append(d.Time, t), append(d.Y, y)
			d.Treated = append(d.Treated, s > 0)
			d.Post = append(d.Post, inForce || (s == 0 && t >= 2))
		}
	}
	return d
}

// Item 6 of issue 14, with unit effects: the 2×2 regression's residuals are
// the unit effects, so the residual variance is not zero, but the CR1
// variance of treated×post (clustered by unit) is rounding noise. Before, Regress and lift did
// returned se 7.4e-16, p 1.3e-73. statsmodels 0.13 on the same rows:
//
//	import numpy as np, statsmodels.api as sm
//	rows = [(u, t, 1.5*u + 0.3*t + 0.5*(u >= 3)*(t >= 2), int(u >= 3), int(t >= 2)) for u in range(6) for t in range(4)]
//	a = np.array(rows, float); y, tr, po = a[:, 2], a[:, 3], a[:, 4]
//	X = sm.add_constant(np.column_stack([tr, po, tr*po]))
//	r = sm.OLS(y, X).fit(cov_type='cluster', cov_kwds={'groups': a[:, 0].astype(int)})
//	print(r.params[3], r.bse[3], r.ssr)    # 0.4999999999999969 2.3620369921268394e-15 36.54
//	print(sm.OLS(y, X).fit().bse[3])       # 1.1036303729057115 (classical: the unit effects)
//	print(sm.OLS(y, X).fit(cov_type='HC1').bse[3])   # 1.1036303729057115
//
// a CR1 standard error of zero to rounding. Lift refuses it (ErrZeroSE); the
// classical and HC1 ones are estimated.
func TestPerfectFitWithinUnits(t *testing.T) {
	d := exactPanel([]int{0, 0, 0, 2, 2, 2}, 4)
	r, err := Regress(d.Y, d.Treated, d.Post, d.Unit, CR1, 0.05)
	if !errors.Is(err, ErrZeroSE) {
		t.Errorf("Regress = %+v, %v; want ErrZeroSE", r, err)
	}
	if _, err := Run(d, RunOptions{VCE: CR1}); !errors.Is(err, ErrZeroSE) {
		t.Errorf("Run: %v; want ErrZeroSE", err)
	}
	for _, vce := range []VCE{Classical, HC1} {
		r, err := Regress(d.Y, d.Treated, d.Post, d.Unit, vce, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		near(t, vce.String()+" se", r.Effect.SE, 1.1036303729057115, 1e-12)
	}
	// One value off by 1e-6: the CR1 error is estimated (not rounding noise).
	d.Y[len(d.Y)-1] += 1e-6
	if r, err := Regress(d.Y, d.Treated, d.Post, d.Unit, CR1, 0.05); err != nil || !(r.Effect.SE > 1e-8) {
		t.Errorf("near-exact: %+v, %v; want an estimated se", r, err)
	}
	// At offset 1e12 with unit-level noise of 1 the standard error is estimated.
	for i := range d.Y {
		d.Y[i] = 1e12 + float64((i*37)%11) + d.Y[i]
	}
	if _, err := Regress(d.Y, d.Treated, d.Post, d.Unit, CR1, 0.05); err != nil {
		t.Errorf("offset 1e12: %v", err)
	}
}

// Callaway & Sant'Anna on an exact staggered panel: the changes are constant
// within each cohort and its controls, so every ATT(g,t) is exact and its
// influence-function standard error is rounding noise (R's did::att_gt sets
// se ≤ sqrt(.Machine$double.eps)·10 to NA, att_gt.R). Before, lift did printed
// se 0.0000 with p-values 0 and 0.73. Lift's standard errors are exactly 0, so
// Run refuses them: asked for, an error; automatic, the warning says why the
// estimator could not run.
func TestStaggeredPerfectFit(t *testing.T) {
	d := exactPanel([]int{2, 2, 3, 3, 0, 0, 0}, 5)
	cohort := Cohorts(d.Unit, d.Time, func() []bool {
		in := make([]bool, len(d.Y))
		for i := range in {
			in[i] = d.Treated[i] && d.Post[i]
		}
		return in
	}())
	cs, err := CallawaySantAnna(Panel{Unit: d.Unit, Time: d.Time, Y: d.Y}, cohort, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cs.ATT {
		want := 0.0
		if a.Post() {
			want = 0.5
		}
		near(t, a.Name, a.Estimate, want, 1e-12)
		if a.SE != 0 {
			t.Errorf("%s: se %g, want 0 (the changes are constant)", a.Name, a.SE)
		}
	}
	if _, err := Run(d, RunOptions{Staggered: true}); !errors.Is(err, ErrExactFit) {
		t.Errorf("Run, staggered asked: %v; want ErrExactFit", err)
	}
	r, err := Run(d, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Staggered != nil || !strings.Contains(r.Warning, "could not run") || !strings.Contains(r.Warning, "standard error is zero") {
		t.Errorf("Run: staggered %+v, warning %q; want no CS result and a warning saying why", r.Staggered, r.Warning)
	}
}

// Item 7 of issue 14 for lift did: finite outcomes whose squares overflow
// float64 are said to overflow, not to fit exactly (before: "the model fits
// the outcome exactly (zero residual variance) … (residual sum of squares
// +Inf)"). ±1e308 is finite; (1e308)² is not (IEEE 754 double range ≈ 1.8e308).
func TestOverflowNamed(t *testing.T) {
	y := []float64{1, 1e308, 1, -1e308, 1, 2, 2, 5}
	treated := []bool{false, false, true, true, false, false, true, true}
	post := []bool{false, true, false, true, false, true, false, true}
	_, err := Regress(y, treated, post, []int{1, 1, 2, 2, 3, 3, 4, 4}, CR1, 0.05)
	if err == nil || errors.Is(err, ErrPerfectFit) || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("Regress: %v; want an error saying the squares overflow", err)
	}
}
