package scorer

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestKernelsMatchDotLanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ d, nb int }{{8, 4}, {64, 37}, {16, 3}, {24, 101}, {13, 9}, {64, 1}, {64, 16}, {8, 8}, {1, 17}, {3, 8}, {7, 12}, {50, 40}, {100, 9}, {61, 33}} {
		items := make([]float32, tc.nb*tc.d)
		q0 := make([]float32, tc.d)
		q1 := make([]float32, tc.d)
		for i := range items {
			items[i] = float32(rng.NormFloat64())
		}
		for j := range q0 {
			q0[j], q1[j] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		bias := make([]float32, tc.nb)
		for i := range bias {
			bias[i] = float32(rng.NormFloat64())
		}
		s0 := make([]float32, tc.nb)
		s1 := make([]float32, tc.nb)
		s2 := make([]float32, tc.nb)
		b0 := make([]float32, tc.nb)
		b1 := make([]float32, tc.nb)
		b2 := make([]float32, tc.nb)
		dot2(q0, q1, items, nil, s0, s1, nil)
		dot1(q1, items, nil, s2, nil)
		dot2(q0, q1, items, bias, b0, b1, items)
		dot1(q1, items, bias, b2, items)
		for i := range tc.nb {
			y := items[i*tc.d : (i+1)*tc.d]
			w0, w1 := dotLanes(q0, y), dotLanes(q1, y)
			if s0[i] != w0 || s1[i] != w1 || s2[i] != w1 {
				t.Fatalf("d=%d item %d: kernels %v %v %v, dotLanes %v %v (asm=%v)", tc.d, i, s0[i], s1[i], s2[i], w0, w1, useAsm)
			}
			if b0[i] != w0+bias[i] || b1[i] != w1+bias[i] || b2[i] != w1+bias[i] {
				t.Fatalf("d=%d item %d: kernels with bias %v %v %v, dotLanes + bias %v %v (asm=%v)", tc.d, i, b0[i], b1[i], b2[i], w0+bias[i], w1+bias[i], useAsm)
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

func TestFirstNotBelow(t *testing.T) {
	nan := float32(math.NaN())
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100} {
		for at := -1; at < n; at++ { // at = -1: every value below thr
			s := make([]float32, n)
			for i := range s {
				s[i] = float32(i%7) - 10
			}
			for _, v := range []float32{0.5, 0.25, nan} {
				want := n
				if at >= 0 {
					s[at] = v
					want = at
				}
				if got := firstNotBelow(s, 0.25); got != want {
					t.Fatalf("n=%d, %v at %d: firstNotBelow = %d, want %d (asm=%v)", n, v, at, got, want, useAsm)
				}
			}
		}
	}
}

// TestFMA32 checks fma32 against a·b + c computed exactly (math/big) and rounded
// once to float32 (big.Float.Float32 rounds to nearest, ties to even).
func TestFMA32(t *testing.T) {
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(400).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(400).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	one := float32(1)
	ulp := float32(math.Ldexp(1, -23))
	cases := []struct {
		name    string
		a, b, c float32
	}{
		// a·b + c = (1+2⁻²³) + 2⁻²⁴ − 2⁻⁷⁰: just below the float32 midpoint, so the
		// answer is 1+2⁻²³; rounding to float64 first lands on the midpoint, and ties
		// to even then give 1+2⁻²² (float32(math.FMA(a, b, c)) does that).
		{"double-rounding", one + ulp, float32(math.Ldexp(1, -24)) * (one - ulp), one + ulp},
		{"just above midpoint", one + ulp, float32(math.Ldexp(1, -24)) * (one + ulp), one},
		{"exact", 3, 5, 7},
		{"cancel", 1.5, 2, -3},
		{"negative", -(one + ulp), float32(math.Ldexp(1, -24)) * (one - ulp), -(one + ulp)},
		{"tiny", float32(math.Ldexp(1, -75)), float32(math.Ldexp(1, -75)), float32(math.Ldexp(1, -149))},
		{"overflow", math.MaxFloat32, 2, 0},
		{"inf", float32(math.Inf(1)), 1, 1},
	}
	for _, tc := range cases {
		if got, want := fma32(tc.a, tc.b, tc.c), exact(tc.a, tc.b, tc.c); got != want {
			t.Errorf("%s: fma32(%g, %g, %g) = %g, exact %g", tc.name, tc.a, tc.b, tc.c, got, want)
		}
	}
	// The first case is one where rounding twice is wrong (so the check above can fail).
	if c := cases[0]; float32(math.FMA(float64(c.a), float64(c.b), float64(c.c))) == exact(c.a, c.b, c.c) {
		t.Fatalf("double-rounding case does not round differently twice")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 200000 {
		a, b, c := float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())
		if i%2 == 1 { // products and addends near each other's rounding boundaries
			b = float32(math.Ldexp(float64(b), -24-rng.IntN(8)))
		}
		if got, want := fma32(a, b, c), exact(a, b, c); got != want {
			t.Fatalf("fma32(%g, %g, %g) = %g, exact %g", a, b, c, got, want)
		}
	}
}
