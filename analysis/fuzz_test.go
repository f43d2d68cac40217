package analysis

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// FuzzAnalyze checks that any sums either give an error or a result whose JSON
// holds only finite numbers, for every metric type, with and without CUPED and
// sequential testing.
func FuzzAnalyze(f *testing.F) {
	f.Add(int64(3000), 1396.87, 52377.9767, 16.87, 527.9767, 1.0, int64(3461), 2422.7, 134698.29, 22.7, 1348.29, 1.0, uint8(0))
	f.Add(int64(2), 1396.87, 52377.9767, 0.0, 0.0, 0.0, int64(3461), 2422.7, 134698.29, 0.0, 0.0, 0.0, uint8(5))
	f.Add(int64(28), 14.0, 14.0, 10.0, 10.0, 5.0, int64(30), 16.0, 16.0, 12.0, 12.0, 7.0, uint8(3))
	f.Add(int64(0), 0.0, 0.0, 0.0, 0.0, 0.0, int64(1), 1.0, 1.0, 1.0, 1.0, 1.0, uint8(7))
	f.Fuzz(func(t *testing.T, na int64, sa, ssa, xa, xxa, xya float64, nb int64, sb, ssb, xb, xxb, xyb float64, mode uint8) {
		arms := []Arm{
			{Name: "a", N: na, Sum: sa, SumSquares: ssa, CovariateSum: xa, CovariateSumSquares: xxa, CrossSum: xya,
				DenominatorSum: xa, DenominatorSumSquares: xxa, MetricDenominatorSum: xya},
			{Name: "b", N: nb, Sum: sb, SumSquares: ssb, CovariateSum: xb, CovariateSumSquares: xxb, CrossSum: xyb,
				DenominatorSum: xb, DenominatorSumSquares: xxb, MetricDenominatorSum: xyb},
		}
		in := Input{Arms: arms, Type: []Type{Mean, Proportion, Ratio}[mode%3]}
		if mode&4 != 0 {
			in.Covariate = "x"
		}
		if mode&8 != 0 {
			in.SequentialTuning = 1000
		}
		if mode&16 != 0 {
			in.Alternative = Greater
		}
		res, err := Analyze(in)
		if err != nil {
			return
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if s := string(b); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
			t.Fatalf("non-finite JSON: %s", s)
		}
		for _, c := range res.Comparisons {
			for _, e := range []Effect{c.Absolute, c.Relative} {
				if math.IsNaN(e.PValue) || e.PValue < 0 || e.PValue > 1 {
					t.Fatalf("p-value %v", e.PValue)
				}
			}
		}
	})
}
