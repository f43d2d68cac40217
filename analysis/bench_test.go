package analysis

import "testing"

// BenchmarkAnalyzeCUPED times one two-arm CUPED analysis from sums, the part of
// "lift analyze" after DuckDB has computed them.
func BenchmarkAnalyzeCUPED(b *testing.B) {
	a := Arm{Name: "a", N: 3001, Sum: 300, SumSquares: 600, CovariateSum: 210, CovariateSumSquares: 415, CrossSum: -20}
	c := Arm{Name: "b", N: 3000, Sum: 222, SumSquares: 555, CovariateSum: 120, CovariateSumSquares: 405, CrossSum: -10}
	for b.Loop() {
		if _, err := Analyze(Input{Arms: []Arm{a, c}, Covariate: "x"}); err != nil {
			b.Fatal(err)
		}
	}
}
