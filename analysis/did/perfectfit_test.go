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
