package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftlab/lift/analysis"
)

// analyzeRow is one unit of a test file.
type analyzeRow struct {
	variant string
	y, x, d float64
}

// writeAnalyzeCSV writes rows with columns unit,variant,y,x,d.
func writeAnalyzeCSV(t *testing.T, rows []analyzeRow) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("unit,variant,y,x,d\n")
	for i, r := range rows {
		fmt.Fprintf(&b, "u%d,%s,%g,%g,%g\n", i, r.variant, r.y, r.x, r.d)
	}
	path := filepath.Join(t.TempDir(), "units.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sampleRows draws a seeded three-arm experiment.
func sampleRows(binary bool) []analyzeRow {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"control", "red", "blue"}
	var rows []analyzeRow
	for i := range 600 {
		v := names[i%3]
		x := 10 + 2*r.NormFloat64()
		y := 0.6*x + r.NormFloat64()
		if v == "red" {
			y += 0.3
		}
		if binary {
			y = 0
			if r.Float64() < 0.3 {
				y = 1
			}
		}
		rows = append(rows, analyzeRow{v, y, x, 1 + float64(r.IntN(4))})
	}
	return rows
}

// sums builds the analysis arms directly from rows, in variant-name order.
func sums(rows []analyzeRow, names ...string) []analysis.Arm {
	arms := make([]analysis.Arm, len(names))
	for i, n := range names {
		arms[i].Name = n
	}
	for _, r := range rows {
		for i := range arms {
			if arms[i].Name != r.variant {
				continue
			}
			a := &arms[i]
			a.N++
			a.Sum += r.y
			a.SumSquares += r.y * r.y
			a.CovariateSum += r.x
			a.CovariateSumSquares += r.x * r.x
			a.CrossSum += r.x * r.y
			a.DenominatorSum += r.d
			a.DenominatorSumSquares += r.d * r.d
			a.MetricDenominatorSum += r.y * r.d
		}
	}
	return arms
}

func runLift(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), &env{args: args, stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

func closeEffect(t *testing.T, what string, got, want analysis.Effect) {
	t.Helper()
	for _, f := range []struct {
		n    string
		g, w float64
	}{{"estimate", got.Estimate, want.Estimate}, {"se", got.SE, want.SE}, {"ci_low", got.CILow, want.CILow}, {"ci_high", got.CIHigh, want.CIHigh}, {"p_value", got.PValue, want.PValue}} {
		if math.IsInf(f.w, 0) && f.g == f.w {
			continue
		}
		// DuckDB sums in its own order: allow rounding differences.
		if math.Abs(f.g-f.w) > 1e-9*math.Max(1, math.Abs(f.w)) {
			t.Errorf("%s.%s = %.15g, want %.15g", what, f.n, f.g, f.w)
		}
	}
}

// lift analyze equals the analysis package run on sums computed here.
func TestAnalyzeMatchesPackage(t *testing.T) {
	rows := sampleRows(false)
	bin := sampleRows(true)
	path, binPath := writeAnalyzeCSV(t, rows), writeAnalyzeCSV(t, bin)
	sorted := []string{"blue", "control", "red"}
	cases := []struct {
		name string
		args []string
		in   analysis.Input
	}{
		{"mean", []string{"--data", path, "--variant", "variant", "--metric", "y"},
			analysis.Input{Metric: "y", Type: analysis.Mean, Arms: sums(rows, sorted...), Control: "control"}},
		{"cuped", []string{"--data", path, "--variant", "variant", "--metric", "y", "--covariate", "x"},
			analysis.Input{Metric: "y", Type: analysis.Mean, Arms: sums(rows, sorted...), Control: "control", Covariate: "x"}},
		{"ratio", []string{"--data", path, "--variant", "variant", "--metric", "y", "--denominator", "d", "--control", "blue"},
			analysis.Input{Metric: "y", Type: analysis.Ratio, Arms: sums(rows, sorted...), Control: "blue"}},
		{"proportion auto", []string{"--data", binPath, "--variant", "variant", "--metric", "y"},
			analysis.Input{Metric: "y", Type: analysis.Proportion, Arms: sums(bin, sorted...), Control: "control"}},
		{"sequential one-sided", []string{"--data", path, "--variant", "variant", "--metric", "y", "--sequential", "--alternative", "greater", "--alpha", "0.1"},
			analysis.Input{Metric: "y", Type: analysis.Mean, Arms: sums(rows, sorted...), Control: "control", SequentialTuning: 5000, Alternative: analysis.Greater, Alpha: 0.1}},
		{"bayesian", []string{"--data", path, "--variant", "variant", "--metric", "y", "--engine", "bayesian", "--prior-mean", "0.05", "--prior-stddev", "0.1", "--prior-proper"},
			analysis.Input{Metric: "y", Type: analysis.Mean, Arms: sums(rows, sorted...), Control: "control", Bayesian: analysis.PriorOf(0.05, 0.1, true)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runLift(t, append([]string{"analyze"}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got analysis.MetricResult
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			for i := range c.in.Arms {
				c.in.Arms[i].Weight = 0 // equal weights by default
			}
			want, err := analysis.Analyze(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != want.Type || got.Control != want.Control || len(got.Comparisons) != 2 {
				t.Fatalf("got type %s control %s %d comparisons, want %s %s 2", got.Type, got.Control, len(got.Comparisons), want.Type, want.Control)
			}
			for i := range want.Comparisons {
				g, w := got.Comparisons[i], want.Comparisons[i]
				if g.Variant != w.Variant {
					t.Errorf("comparison %d: variant %s, want %s", i, g.Variant, w.Variant)
				}
				closeEffect(t, w.Variant+".absolute", g.Absolute, w.Absolute)
				closeEffect(t, w.Variant+".relative", g.Relative, w.Relative)
				if (g.Bayesian == nil) != (w.Bayesian == nil) {
					t.Fatalf("%s: Bayesian view %+v, want %+v", w.Variant, g.Bayesian, w.Bayesian)
				}
				if w.Bayesian != nil {
					gb, wb := g.Bayesian.Relative, w.Bayesian.Relative
					if math.Abs(gb.Expected-wb.Expected) > 1e-9 || math.Abs(gb.ChanceToWin-wb.ChanceToWin) > 1e-9 || math.Abs(gb.RiskControl-wb.RiskControl) > 1e-9 {
						t.Errorf("%s: Bayesian %+v, want %+v", w.Variant, gb, wb)
					}
				}
			}
			if (got.CUPED == nil) != (c.in.Covariate == "") {
				t.Errorf("cuped = %+v", got.CUPED)
			}
			if math.Abs(got.SRM.PValue-want.SRM.PValue) > 1e-12 {
				t.Errorf("srm p = %g, want %g", got.SRM.PValue, want.SRM.PValue)
			}
		})
	}
}

func TestAnalyzeWeightsAndText(t *testing.T) {
	path := writeAnalyzeCSV(t, sampleRows(false))
	code, out, errOut := runLift(t, "analyze", "--data", path, "--variant", "variant", "--metric", "y", "--weights", "control=0.5,red=0.25,blue=0.25")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got analysis.MetricResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	// 200 units per arm against 0.25/0.5/0.25 (blue, control, red).
	if want := analysis.SRM([]float64{200, 200, 200}, []float64{0.25, 0.5, 0.25}); got.SRM.PValue != want || !got.SRM.Mismatch {
		t.Errorf("srm = %+v, want p %g and a mismatch", got.SRM, want)
	}
	code, out, errOut = runLift(t, "analyze", "--data", path, "--variant", "variant", "--metric", "y", "--covariate", "x", "--format", "text")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, out2, errOut := runLift(t, "analyze", "--data", path, "--variant", "variant", "--metric", "y", "--engine", "bayesian", "--format", "text")
	if code != 0 || !strings.Contains(out2, "chance to win") || !strings.Contains(out2, "95% credible") {
		t.Errorf("--engine bayesian text: exit %d %s\n%s", code, errOut, out2)
	}
	for _, s := range []string{"red vs control", "blue vs control", "absolute", "relative", "CUPED on x", "95% CI", "variance reduction"} {
		if !strings.Contains(out, s) {
			t.Errorf("text output lacks %q:\n%s", s, out)
		}
	}
}

func TestAnalyzeErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "variant,y\na,1\nb,2\na,3\nb,5\n")
	cases := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"missing column", []string{"--data", good, "--variant", "variant", "--metric", "revenue"}, []string{`"revenue"`, "variant, y"}},
		{"non-numeric", []string{"--data", write("bad.csv", "variant,y\na,1\nb,2\na,oops\nb,4\n"), "--variant", "variant", "--metric", "y"}, []string{`"y"`, "row 3", "oops"}},
		{"empty value", []string{"--data", write("empty.csv", "variant,y\na,1\nb,\na,3\n"), "--variant", "variant", "--metric", "y"}, []string{`"y"`, "row 2", "empty"}},
		{"single arm", []string{"--data", write("one.csv", "variant,y\na,1\na,2\n"), "--variant", "variant", "--metric", "y"}, []string{"single variant", `"a"`}},
		{"unknown control", []string{"--data", good, "--variant", "variant", "--metric", "y", "--control", "c"}, []string{"--control", `"c"`, "a, b"}},
		{"unknown weight", []string{"--data", good, "--variant", "variant", "--metric", "y", "--weights", "a=0.5,z=0.5"}, []string{"--weights", `"z"`}},
		{"bad weight", []string{"--data", good, "--variant", "variant", "--metric", "y", "--weights", "a=half"}, []string{"--weights", "half"}},
		{"proportion on non-binary", []string{"--data", good, "--variant", "variant", "--metric", "y", "--type", "proportion"}, []string{"0 or 1"}},
		{"missing data", []string{"--variant", "variant", "--metric", "y"}, []string{"--data", "required"}},
		{"no such file", []string{"--data", filepath.Join(dir, "nope.csv"), "--variant", "v", "--metric", "y"}, []string{"nope.csv"}},
		{"unknown extension", []string{"--data", write("x.xlsx", "hi"), "--variant", "v", "--metric", "y"}, []string{"x.xlsx", "unknown file type"}},
		{"bad format", []string{"--data", good, "--variant", "variant", "--metric", "y", "--format", "xml"}, []string{"--format"}},
		{"bad engine", []string{"--data", good, "--variant", "variant", "--metric", "y", "--engine", "mcmc"}, []string{"--engine", "mcmc"}},
		{"bad prior", []string{"--data", good, "--variant", "variant", "--metric", "y", "--engine", "bayesian", "--prior-stddev", "0"}, []string{"--prior-stddev", "positive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runLift(t, append([]string{"analyze"}, c.args...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (stdout %q, stderr %q)", code, out, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			for _, s := range c.want {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
		})
	}
}

// lift analyze --covariate tests the covariate's balance across the arms, on
// the data of analysis.TestPreExposureImbalanceReference: numpy/scipy give
// W = 14.781327176903872 and chi2.sf(W, 2) = 0.0006169863925895406 (the
// snippet is quoted there).
func TestAnalyzeImbalance(t *testing.T) {
	var rows []analyzeRow
	add := func(v string, n, mul, mod int, off float64) {
		for i := range n {
			x := float64((i*mul)%mod)/10 + off
			rows = append(rows, analyzeRow{variant: v, y: x + 1, x: x, d: 1})
		}
	}
	add("a", 200, 37, 101, 0)
	add("b", 150, 53, 97, 0.9)
	add("c", 180, 29, 89, 0.1)
	path := writeAnalyzeCSV(t, rows)
	code, out, errOut := runLift(t, "analyze", "--data", path, "--variant", "variant", "--metric", "y", "--covariate", "x", "--control", "a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Imbalance *analysis.Imbalance `json:"imbalance"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Imbalance == nil {
		t.Fatalf("%v in %s", err, out)
	}
	im := got.Imbalance
	if math.Abs(im.Statistic-14.781327176903872) > 1e-9 || math.Abs(im.PValue-0.0006169863925895406) > 1e-12 || im.DF != 2 || !im.Imbalanced {
		t.Errorf("imbalance %+v", im)
	}
	code, out, errOut = runLift(t, "analyze", "--data", path, "--variant", "variant", "--metric", "y", "--covariate", "x", "--format", "text")
	if code != 0 || !strings.Contains(out, "pre-exposure balance of x: chi-square 14.78 (df 2), p = 0.000617 (IMBALANCED") {
		t.Errorf("text: exit %d\n%s%s", code, out, errOut)
	}
}
