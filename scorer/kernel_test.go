package scorer

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestKernelsMatchDotLanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ d, nb int }{{8, 4}, {64, 37}, {16, 3}, {24, 101}, {13, 9}, {64, 1}} {
		items := make([]float32, tc.nb*tc.d)
		q0 := make([]float32, tc.d)
		q1 := make([]float32, tc.d)
		for i := range items {
			items[i] = float32(rng.NormFloat64())
		}
		for j := range q0 {
			q0[j], q1[j] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		s0 := make([]float32, tc.nb)
		s1 := make([]float32, tc.nb)
		s2 := make([]float32, tc.nb)
		dot2(q0, q1, items, s0, s1)
		dot1(q1, items, s2)
		for i := range tc.nb {
			y := items[i*tc.d : (i+1)*tc.d]
			w0, w1 := dotLanes(q0, y), dotLanes(q1, y)
			if s0[i] != w0 || s1[i] != w1 || s2[i] != w1 {
				t.Fatalf("d=%d item %d: kernels %v %v %v, dotLanes %v %v (avx2=%v)", tc.d, i, s0[i], s1[i], s2[i], w0, w1, useAVX2)
			}
			// dotLanes is a dot product: within float32 rounding of the float64 sum.
			var exact, abs float64
			for j := range y {
				exact += float64(q0[j]) * float64(y[j])
				abs += math.Abs(float64(q0[j]) * float64(y[j]))
			}
			if math.Abs(float64(w0)-exact) > 1e-6*abs*float64(tc.d) {
				t.Fatalf("d=%d item %d: dotLanes %v, float64 %v", tc.d, i, w0, exact)
			}
		}
	}
}
