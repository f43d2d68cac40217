package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestAnalyzeLin: "lift analyze --covariates" estimates each comparison by
// Lin's (2013) regression adjustment with HC2 errors. The data: rows i = 0…59,
// arm control/a/b by i mod 3, x1 = sin i, x2 = cos 1.3i, x3 = (i mod 7)/7,
//
//	y = 1 + 0.5·[a] − 0.3·[b] + x1 + 2·x2·[a or b] + 0.3·x3 + 0.4·sin(5.1i + 0.7).
//
// Reference: statsmodels 0.13 OLS of y on [1, T, x − x̄, T·(x − x̄)] over the
// two arms, fit(cov_type="HC2", use_t=True) (t on n − p dof):
//
//	m = (arm == "control") | (arm == v); X = np.column_stack([x1, x2, x3])[m]; Xc = X - X.mean(axis=0)
//	d = (arm[m] == v).astype(float); Z = sm.add_constant(np.column_stack([d, Xc, d[:, None] * Xc]))
//	f = sm.OLS(y[m], Z).fit(cov_type="HC2", use_t=True)   # params[1], bse[1], conf_int(0.05)[1], pvalues[1]
func TestAnalyzeLin(t *testing.T) {
	var b strings.Builder
	b.WriteString("unit,arm,y,x1,x2,x3\n")
	for i := range 60 {
		fi := float64(i)
		arm := []string{"control", "a", "b"}[i%3]
		x1, x2, x3 := math.Sin(fi), math.Cos(1.3*fi), float64(i%7)/7
		y := 1 + x1 + 0.3*x3 + 0.4*math.Sin(5.1*fi+0.7)
		switch arm {
		case "a":
			y += 0.5 + 2*x2
		case "b":
			y += -0.3 + 2*x2
		}
		g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		fmt.Fprintf(&b, "u%d,%s,%s,%s,%s,%s\n", i, arm, g(y), g(x1), g(x2), g(x3))
	}
	data := writeTemp(t, "lin.csv", b.String())
	code, out, errs := runQuasi(t, "analyze", "--data", data, "--variant", "arm", "--metric", "y", "--covariates", "x1, x2,x3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res analyzeOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	want := map[string][5]float64{ // estimate, se, ci_low, ci_high, p from statsmodels
		"a": {0.5708639297815523, 0.09042534040245037, 0.38667353882207134, 0.7550543207410333, 4.398318874372048e-07},
		"b": {-0.30388328460018477, 0.06752585844667074, -0.4414289572159753, -0.16633761198439423, 8.436513065924336e-05},
	}
	if len(res.Lin) != 2 || len(res.Comparisons) != 2 {
		t.Fatalf("%d Lin comparisons, %d plain; want 2 and 2", len(res.Lin), len(res.Comparisons))
	}
	for _, l := range res.Lin {
		w, e := want[l.Variant], l.Absolute
		if l.N != 40 || l.HC != "HC2" || strings.Join(l.Covariates, ",") != "x1,x2,x3" {
			t.Errorf("%s: n %d hc %s covariates %v; want 40, HC2, x1,x2,x3", l.Variant, l.N, l.HC, l.Covariates)
		}
		for k, got := range []float64{e.Estimate, e.SE, e.CILow, e.CIHigh, e.PValue} {
			if math.Abs(got-w[k]) > 1e-9*math.Max(1, math.Abs(w[k])) {
				t.Errorf("%s: value %d = %.15g, want %.15g (statsmodels)", l.Variant, k, got, w[k])
			}
		}
	}
	// Text output has the Lin table.
	code, out, _ = runQuasi(t, "analyze", "--data", data, "--variant", "arm", "--metric", "y", "--covariates", "x1,x2,x3", "--format", "text")
	if code != 0 || !strings.Contains(out, "Lin (2013)") {
		t.Errorf("text: %d %q", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--covariates", "x1,,x2"}, "--covariates"},
		{[]string{"--covariates", "x1,x1"}, "--covariates"},
		{[]string{"--covariates", "nope"}, "nope"},
		{[]string{"--covariates", "x1", "--denominator", "x2"}, "--covariates"},
	} {
		code, _, errs := runQuasi(t, append([]string{"analyze", "--data", data, "--variant", "arm", "--metric", "y"}, c.args...)...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d %q; want an error naming %s", c.args, code, errs, c.want)
		}
	}
}

// TestAnalyzeLinErrors: the regression's errors name their flag and the
// comparison. The data: rows i = 0…39, arm control/a by i mod 2, x1 = sin i,
// x2 = 2·x1 (collinear with x1), c = 3 (constant), y = x1 + 0.2·cos 3i + 0.5·[a]
// and yfit = 1 + x1 + 0.5·[a] (fitted exactly by the treatment and x1).
func TestAnalyzeLinErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("arm,y,yfit,x1,x2,c\n")
	for i := range 40 {
		fi := float64(i)
		arm, eff := []string{"control", "a"}[i%2], 0.5*float64(i%2)
		x1 := math.Sin(fi)
		g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,3\n", arm, g(x1+0.2*math.Cos(3*fi)+eff), g(1+x1+eff), g(x1), g(2*x1))
	}
	data := writeTemp(t, "linerr.csv", b.String())
	for _, c := range []struct {
		name, metric, covariates, want string
	}{
		{"collinear", "y", "x1,x2", "singular design"},
		{"constant", "y", "c", "singular design"},
		{"exact fit", "yfit", "x1", "fit the outcome exactly"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runQuasi(t, "analyze", "--data", data, "--variant", "arm", "--metric", c.metric, "--covariates", c.covariates)
			if code == 0 || !strings.HasPrefix(errs, "lift analyze: --covariates: a vs control: ") || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d %q; want \"lift analyze: --covariates: a vs control: …%s…\"", code, errs, c.want)
			}
		})
	}
}
