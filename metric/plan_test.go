package metric_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		p    float64
		want float64 // numpy.quantile(xs, p) (numpy's default "linear", type 7)
	}{
		{[]float64{10, 0, 2, 1}, 0.5, 1.5}, // position 0.5·3 = 1.5 between 1 and 2
		{[]float64{2, 1, 2, 0, 0}, 0.7, 1.7999999999999998},
		{[]float64{5}, 0.99, 5},
		{[]float64{3, 1, 2}, 1, 3},
		{[]float64{3, 1, 2}, 0, 1},
	} {
		if got := metric.Quantile(tc.xs, tc.p); got != tc.want {
			t.Errorf("Quantile(%v, %g) = %.17g, want %.17g", tc.xs, tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(metric.Quantile(nil, 0.5)) {
		t.Error("Quantile of nothing is not NaN")
	}
}

func TestApplyCap(t *testing.T) {
	// The 0.5 quantile of the present values {10, 0, 2, 1} is 1.5; NaN (no value) stays.
	v := []float64{10, 0, math.NaN(), 2, 1}
	metric.ApplyCap(v, metric.Cap{Kind: metric.PercentileCap, Percentile: 0.5})
	want := []float64{1.5, 0, math.NaN(), 1.5, 1}
	for i := range want {
		if v[i] != want[i] && !(math.IsNaN(v[i]) && math.IsNaN(want[i])) {
			t.Errorf("capped %v, want %v", v, want)
			break
		}
	}
}

func TestWinsorize(t *testing.T) {
	nan := math.NaN()
	// Limits are numpy's type-7 quantiles of the present values before capping
	// (numpy 1.24):
	//   x = np.array([10, 0, 2, 1, -4.])
	//   np.quantile(x, 0.25), np.quantile(x, 0.75)   # 0.0 2.0
	//   np.clip(x, 0.0, 2.0)                         # [2. 0. 2. 1. 0.]
	//   np.clip(x, -1, np.quantile(x, 0.75))         # [ 2.  0.  2.  1. -1.]
	pct := func(p float64) metric.Cap { return metric.Cap{Kind: metric.PercentileCap, Percentile: p} }
	fixed := func(v float64) metric.Cap { return metric.Cap{Kind: metric.FixedCap, Value: v} }
	for _, tc := range []struct {
		name         string
		lower, upper metric.Cap
		want         []float64
	}{
		{"both percentiles", pct(0.25), pct(0.75), []float64{2, 0, nan, 2, 1, 0}},
		{"lower percentile only", pct(0.25), metric.Cap{}, []float64{10, 0, nan, 2, 1, 0}},
		{"fixed lower, percentile upper", fixed(-1), pct(0.75), []float64{2, 0, nan, 2, 1, -1}},
		{"fixed both", fixed(0.5), fixed(5), []float64{5, 0.5, nan, 2, 1, 0.5}},
		{"upper at zero", metric.Cap{}, fixed(0), []float64{0, 0, nan, 0, 0, -4}},
		{"none", metric.Cap{}, metric.Cap{}, []float64{10, 0, nan, 2, 1, -4}},
	} {
		v := []float64{10, 0, nan, 2, 1, -4}
		metric.Winsorize(v, tc.lower, tc.upper)
		for i := range tc.want {
			if v[i] != tc.want[i] && !(math.IsNaN(v[i]) && math.IsNaN(tc.want[i])) {
				t.Errorf("%s: %v, want %v", tc.name, v, tc.want)
				break
			}
		}
	}
}

func fieldOf(err error) string {
	var e *experiment.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

func TestCompileInvalid(t *testing.T) {
	pop := metric.Population{Experiment: "x", Arms: []string{"a", "b"}, Weights: []float64{0.5, 0.5}}
	defs := metric.Resolved{
		"rev":      {Name: "rev", EventType: "p", Aggregation: experiment.Sum},
		"aov":      {Name: "aov", EventType: "p", Aggregation: experiment.Mean},
		"rpa":      {Name: "rpa", Aggregation: experiment.Ratio, Numerator: "rev", Denominator: "aov"},
		"bounded":  {Name: "bounded", EventType: "p", Aggregation: experiment.Sum, Bounds: &experiment.Bounds{Upper: 1}},
		"ratio_ok": {Name: "ratio_ok", Aggregation: experiment.Ratio, Numerator: "rev", Denominator: "rev"},
		"ret":      {Name: "ret", EventType: "v", Aggregation: experiment.Binary, Window: &experiment.Window{StartDays: 7, EndDays: 8, MaturedOnly: true}},
		"rev7":     {Name: "rev7", EventType: "p", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7, MaturedOnly: true}},
		"mixed":    {Name: "mixed", Aggregation: experiment.Ratio, Numerator: "rev7", Denominator: "rev"},
	}
	dated := pop
	dated.AsOf = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		compile func() error
		field   string
	}{
		{"unknown metric", func() error { _, err := metric.Compile(pop, []string{"rev", "nope"}, defs); return err }, "metrics[1]"},
		{"ratio of a mean", func() error { _, err := metric.Compile(pop, []string{"rpa"}, defs); return err }, "metrics[0]"},
		{"bounded without bounds", func() error { _, err := metric.CompileBounded(pop, []string{"bounded", "rev"}, defs); return err }, "metrics[1]"},
		{"bounded ratio", func() error { _, err := metric.CompileBounded(pop, []string{"ratio_ok"}, defs); return err }, "metrics[0]"},
		{"unit values of a ratio", func() error { _, err := metric.CompileUnitValues(pop, defs["ratio_ok"], "metric"); return err }, "metric"},
		{"retention without an analysis time", func() error { _, err := metric.Compile(pop, []string{"rev", "ret"}, defs); return err }, "metrics[1]"},
		{"retention values without an analysis time", func() error { _, err := metric.CompileUnitValues(pop, defs["ret"], "metric"); return err }, "metric"},
		{"ratio of matured and open parts", func() error { _, err := metric.Compile(dated, []string{"mixed"}, defs); return err }, "metrics[0]"},
	} {
		err := tc.compile()
		if experiment.KindOf(err) != experiment.Invalid || fieldOf(err) != tc.field {
			t.Errorf("%s: %v, want Invalid naming %s", tc.name, err, tc.field)
		}
	}
}

// TestCompileSharesColumns: a ratio over parts that are metrics of the plan too
// reuses their columns, and the sums name their fields.
func TestCompileSharesColumns(t *testing.T) {
	pop := metric.Population{Experiment: "x", Arms: []string{"a", "b"}, Weights: []float64{0.5, 0.5}}
	defs := metric.Resolved{
		"rev":    {Name: "rev", EventType: "p", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}},
		"orders": {Name: "orders", EventType: "p", Aggregation: experiment.Count},
		"aov":    {Name: "aov", Aggregation: experiment.Ratio, Numerator: "rev", Denominator: "orders"},
		"aov_1d": {Name: "aov_1d", Aggregation: experiment.Ratio, Numerator: "rev", Denominator: "orders", Window: &experiment.Window{EndDays: 1}},
	}
	p, err := metric.Compile(pop, []string{"rev", "orders", "aov", "aov_1d"}, defs)
	if err != nil {
		t.Fatal(err)
	}
	// rev [0, 7d), orders [0, ∞), then aov_1d's rev and orders over [0, 1d).
	if len(p.Columns) != 4 || p.Metrics[2].Y != 0 || p.Metrics[2].D != 1 || p.Metrics[3].Y != 2 || p.Metrics[3].D != 3 {
		t.Fatalf("columns %+v, metrics %+v", p.Columns, p.Metrics)
	}
	if c := p.Columns[3]; c.Lo != 0 || c.Hi != metric.DayMicros || c.Aggregation != experiment.Count {
		t.Errorf("aov_1d's denominator column %+v, want a count over [0, 1 day)", c)
	}
	if s := p.Metrics[2].Sums[7]; s.Field != metric.FieldMetricDenominatorSum || s.Field.Op() != metric.OpProduct || s.A != 0 || s.B != 1 {
		t.Errorf("aov's eighth sum %+v, want Σ(y−c_y)(d−c_d) of columns 0 and 1", s)
	}
}
