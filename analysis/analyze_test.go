package analysis

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/refdata"
)

// Benjamini & Hochberg (1995), JRSS B 57:289–300, section 4: fifteen p-values
// from a myocardial-infarction study (testdata/benjamini-hochberg-1995-section4.csv).
// At 0.05 the BH procedure rejects the four smallest, while the Bonferroni-type
// procedures reject three; Holm's step-down rejects the same three.
func TestMultipleTestingBH1995(t *testing.T) {
	var p []float64
	var wantBH, wantFWER []bool
	for _, r := range refdata.Table(t, "benjamini-hochberg-1995-section4.csv") {
		p = append(p, r.Float(t, "p_value"))
		wantBH, wantFWER = append(wantBH, r.Float(t, "fdr") == 1), append(wantFWER, r.Float(t, "fwer") == 1)
	}
	if len(p) != 15 {
		t.Fatalf("%d p-values, want the paper's 15", len(p))
	}
	bh, holm := BHAdjust(p), HolmAdjust(p)
	for i := range p {
		if got := bh[i] <= 0.05; got != wantBH[i] {
			t.Errorf("p = %g: BH rejects %v (adjusted %g), the paper %v", p[i], got, bh[i], wantBH[i])
		}
		if got := holm[i] <= 0.05; got != wantFWER[i] {
			t.Errorf("p = %g: Holm rejects %v (adjusted %g), the paper's Bonferroni-type procedures %v", p[i], got, holm[i], wantFWER[i])
		}
	}
	// From the definitions (R p.adjust): BH p̃_(4) = min_{j≥4} 15·p_(j)/j =
	// 15·0.0095/4 = 0.035625; Holm p̃_(1) = 15·0.0001 = 0.0015 and
	// p̃_(4) = max(…, 12·0.0095) = 0.114.
	near(t, "bh[3]", bh[3], 0.035625, 1e-15)
	near(t, "holm[0]", holm[0], 0.0015, 1e-15)
	near(t, "holm[3]", holm[3], 0.114, 1e-15)
	// Order does not matter.
	rev := make([]float64, len(p))
	for i := range p {
		rev[len(p)-1-i] = p[i]
	}
	if got := BHAdjust(rev); got[len(p)-4] != bh[3] {
		t.Errorf("BH depends on order: %g vs %g", got[len(p)-4], bh[3])
	}
}

func TestAdjustAcrossMetrics(t *testing.T) {
	r1, err := Analyze(Input{Metric: "m1", Arms: armsA5()})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Analyze(Input{Metric: "m2", Arms: []Arm{mean3("a", 3407, 1396.87, 52377.9767), mean3("b", 3461, 2422.7, 134698.29)}})
	if err != nil {
		t.Fatal(err)
	}
	Adjust([]*MetricResult{&r1, &r2}, Holm)
	want := HolmAdjust([]float64{r1.Comparisons[0].Absolute.PValue, r2.Comparisons[0].Absolute.PValue})
	if a := r2.Comparisons[0].Adjusted; a == nil || a.Method != Holm || a.Absolute != want[1] {
		t.Errorf("adjusted = %+v, want absolute %g", a, want[1])
	}
}

func TestAnalyzeInvalid(t *testing.T) {
	two := func() []Arm { return []Arm{mean3("a", 10, 5, 10), mean3("b", 10, 6, 12)} }
	cases := []struct {
		name  string
		in    Input
		field string
		kind  experiment.Kind
	}{
		{"one arm", Input{Arms: two()[:1]}, "arms", experiment.InsufficientData},
		{"unknown control", Input{Arms: two(), Control: "c"}, "control", experiment.Invalid},
		{"bad alpha", Input{Arms: two(), Alpha: 1.5}, "alpha", experiment.Invalid},
		{"bad type", Input{Arms: two(), Type: "median"}, "type", experiment.Invalid},
		{"duplicate", Input{Arms: []Arm{mean3("a", 10, 5, 10), mean3("a", 10, 5, 10)}}, "arms[1].name", experiment.Invalid},
		{"negative n", Input{Arms: []Arm{mean3("a", -1, 5, 10), mean3("b", 10, 5, 10)}}, "arms[0].n", experiment.Invalid},
		{"nan sum", Input{Arms: []Arm{mean3("a", 10, math.NaN(), 10), mean3("b", 10, 5, 10)}}, "arms[0].sum", experiment.Invalid},
		{"alternative", Input{Arms: two(), Alternative: "bigger"}, "alternative", experiment.Invalid},
		{"proportion above n", Input{Type: Proportion, Arms: []Arm{{Name: "a", N: 5, Sum: 6}, {Name: "b", N: 5, Sum: 2}}}, "arms[0].sum", experiment.Invalid},
	}
	for _, c := range cases {
		_, err := Analyze(c.in)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if k := experiment.KindOf(err); k != c.kind {
			t.Errorf("%s: kind %v, want %v (%v)", c.name, k, c.kind, err)
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %q does not name %q", c.name, err, c.field)
		}
	}
}

// Degenerate data give flagged comparisons whose JSON has no NaN or Inf.
func TestDegenerateFlags(t *testing.T) {
	cases := []struct {
		name string
		in   Input
		flag string
	}{
		{"n<2", Input{Arms: []Arm{mean3("a", 1, 5, 25), mean3("b", 10, 6, 12)}}, FlagInsufficientData},
		{"zero variance", Input{Arms: []Arm{mean3("a", 10, 10, 10), mean3("b", 10, 10, 10)}}, FlagZeroVariance},
		{"zero control mean", Input{Arms: []Arm{mean3("a", 4, 0, 8), mean3("b", 4, 2, 9)}}, FlagZeroControlMean},
		{"empty arm", Input{Arms: []Arm{{Name: "a"}, mean3("b", 4, 2, 9)}}, FlagInsufficientData},
		{"constant covariate", Input{Arms: []Arm{
			{Name: "a", N: 4, Sum: 2, SumSquares: 9, CovariateSum: 4, CovariateSumSquares: 4, CrossSum: 2},
			{Name: "b", N: 4, Sum: 3, SumSquares: 9, CovariateSum: 4, CovariateSumSquares: 4, CrossSum: 3},
		}, Covariate: "x"}, FlagCUPEDNotApplied},
	}
	for _, c := range cases {
		res, err := Analyze(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		found := false
		for _, f := range res.Comparisons[0].Flags {
			found = found || f == c.flag
		}
		if !found {
			t.Errorf("%s: flags %v, want %s", c.name, res.Comparisons[0].Flags, c.flag)
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s := string(b); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
			t.Errorf("%s: JSON has a non-finite number: %s", c.name, s)
		}
	}
}

func TestEffectJSONOneSided(t *testing.T) {
	res, err := Analyze(Input{Arms: armsA5(), Alternative: Greater})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res.Comparisons[0].Absolute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"ci_high":null`) {
		t.Errorf("one-sided JSON %s: want ci_high null", b)
	}
	var back Effect
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != res.Comparisons[0].Absolute {
		t.Errorf("round trip %+v != %+v", back, res.Comparisons[0].Absolute)
	}
}

// The JSON shape: these keys, in this nesting.
func TestMetricResultJSONShape(t *testing.T) {
	a := Arm{Name: "control", N: 3000, Sum: 1396.87, SumSquares: 52377.9767, CovariateSum: 16.87, CovariateSumSquares: 527.9767, CrossSum: 100}
	b := Arm{Name: "treatment", N: 3461, Sum: 2422.7, SumSquares: 134698.29, CovariateSum: 22.7, CovariateSumSquares: 1348.29, CrossSum: 120}
	res, err := Analyze(Input{Metric: "revenue", Arms: []Arm{a, b}, Covariate: "pre"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"metric", "control", "alpha", "variants", "srm", "cuped", "comparisons"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q in %s", k, raw)
		}
	}
	v := m["variants"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "n", "mean", "variance"} {
		if _, ok := v[k]; !ok {
			t.Errorf("variants[0] lacks %q", k)
		}
	}
	cu := m["cuped"].(map[string]any)
	for _, k := range []string{"covariate", "theta", "variance_reduction"} {
		if _, ok := cu[k]; !ok {
			t.Errorf("cuped lacks %q", k)
		}
	}
	c := m["comparisons"].([]any)[0].(map[string]any)
	for _, eff := range []string{"absolute", "relative"} {
		e := c[eff].(map[string]any)
		for _, k := range []string{"estimate", "se", "ci_low", "ci_high", "p_value"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%s lacks %q", eff, k)
			}
		}
	}
}

func TestWelchFromSamples(t *testing.T) {
	// Worked by hand from the definitions: means 112.8/5 = 22.56 and 75.5/4 =
	// 18.875; sums of squared deviations 27.592 and 5.6875, so s² = 6.898 and
	// 5.6875/3; se = sqrt(s₁²/5 + s₀²/4) and Welch–Satterthwaite dof.
	e, err := WelchFromSamples([]float64{19.1, 21.5, 22.0, 24.3, 25.9}, []float64{17.2, 18.3, 19.9, 20.1}, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "estimate", e.Estimate, 3.685, 1e-12)
	v1, v0 := 6.898/5, 5.6875/3/4
	se := math.Sqrt(v1 + v0)
	near(t, "se", e.SE, se, 1e-12)
	df := (v1 + v0) * (v1 + v0) / (v1*v1/4 + v0*v0/3)
	near(t, "dof", e.DF, df, 1e-9)
	if _, err := WelchFromSamples([]float64{1}, []float64{1, 2}, 0.05); experiment.KindOf(err) != experiment.InsufficientData {
		t.Errorf("one treated unit: err = %v", err)
	}
	if _, err := WelchFromSamples([]float64{1, 1}, []float64{2, 2}, 0.05); experiment.KindOf(err) != experiment.InsufficientData {
		t.Errorf("zero variance: err = %v", err)
	}
}
