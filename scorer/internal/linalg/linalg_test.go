package linalg

import (
	"math"
	"testing"
)

func TestSolveSPD(t *testing.T) {
	// The worked example of the Wikipedia article "Cholesky decomposition":
	// A = [[4,12,−16],[12,37,−43],[−16,−43,98]] = LLᵀ with L = [[2,0,0],[6,1,0],[−8,5,3]].
	// b = A·[1, 2, 3] = [−20, −43, 192], so x = [1, 2, 3].
	a := []float64{4, 12, -16, 12, 37, -43, -16, -43, 98}
	x, err := SolveSPD(a, []float64{-20, -43, 192})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{1, 2, 3} {
		if math.Abs(x[i]-want) > 1e-12 {
			t.Errorf("x[%d] = %g, want %g", i, x[i], want)
		}
	}
	for i, want := range []float64{2, 6, 1, -8, 5, 3} {
		idx := []int{0, 3, 4, 6, 7, 8}[i]
		if math.Abs(a[idx]-want) > 1e-12 {
			t.Errorf("L entry %d = %g, want %g", idx, a[idx], want)
		}
	}
	if _, err := SolveSPD([]float64{1, 2, 2, 1}, []float64{1, 1}); err == nil {
		t.Error("an indefinite matrix was accepted")
	}
}

func TestGram(t *testing.T) {
	// Y = [[1,2],[3,4],[5,6]]: YᵀY = [[35,44],[44,56]] (by hand).
	y32 := []float32{1, 2, 3, 4, 5, 6}
	y64 := []float64{1, 2, 3, 4, 5, 6}
	want := []float64{35, 44, 44, 56}
	for name, g := range map[string][]float64{"Gram": Gram(y32, 2), "GramF64": GramF64(y64, 2)} {
		for i := range want {
			if g[i] != want[i] {
				t.Errorf("%s = %v, want %v", name, g, want)
				break
			}
		}
	}
}
