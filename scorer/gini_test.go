package scorer

import (
	"math"
	"testing"
)

func TestGini(t *testing.T) {
	tests := []struct {
		name string
		x    []float64
		want float64
	}{
		// Equal shares: no concentration.
		{"equal", []float64{3, 3, 3, 3}, 0},
		// One of n items takes everything: (n−1)/n.
		{"one of four", []float64{0, 0, 0, 8}, 0.75},
		// x = 1,2,3,4: Σ(2i−5)x = −3−2+3+12 = 10; 10/(4·10) = 0.25 (by hand; also
		// ineq::Gini(c(1,2,3,4)) in R gives 0.25).
		{"1..4", []float64{4, 1, 3, 2}, 0.25},
		{"empty", nil, 0},
		{"all zero", []float64{0, 0}, 0},
	}
	for _, tc := range tests {
		if got := Gini(tc.x); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: Gini = %g, want %g", tc.name, got, tc.want)
		}
	}
}
