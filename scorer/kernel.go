package scorer

import "math"

// The score kernel. Every backend path on the CPU computes q·y in one fixed order,
// so results do not depend on the path (assembly or Go, block, worker, batch):
// eight lane sums, lane l accumulating the products q[j]·y[j] for j ≡ l (mod 8) in
// increasing j with a fused multiply-add (one rounding per step: l ← fl(q·y + l)),
// then
//
//	s = ((l₀+l₄) + (l₂+l₆)) + ((l₁+l₅) + (l₃+l₇))
//
// which is the order of an 8-wide SIMD dot product with FMA and its horizontal sum.
// On amd64 with AVX2 and FMA the assembly kernels
// (kernel_amd64.s) do two queries × four items (dot2x4FMA) or one query × eight
// items (dot1x8FMA) per pass with VFMADD231PS and reduce the eight sums of a pass
// together; elsewhere dotLanes does the same in Go, with fma32 rounding exactly as
// the hardware does.

// fma32Slow is fma32 by "round to odd": the float64 sum, with its last bit forced to
// 1 when it was inexact, rounds correctly to float32 because float64 keeps more
// than 24 + 1 bits (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums:
// proved algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008).
func fma32Slow(a, b, cf float32) float32 {
	p, c := float64(a)*float64(b), float64(cf) // p is exact
	s := p + c
	// TwoSum (Knuth): e is the exact error of s = fl(p + c).
	bv := s - p
	e := (p - (s - bv)) + (c - bv)
	if e != 0 && !math.IsInf(s, 0) {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			// Move s one ulp towards the exact sum: up in magnitude when e has s's sign.
			if (e > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

// dot2 writes s0[i] = q0·y_i + b_i and s1[i] = q1·y_i + b_i for the rows y_i of
// items, where b_i = bias[i] (bias nil: no bias). The bias is added after the
// canonical sum, in one float32 addition. While it computes, the assembly kernel
// prefetches the cache lines of pf into the L2 cache (pf may be nil), spread
// evenly over its passes.
func dot2(q0, q1, items, bias, s0, s1, pf []float32) {
	d := len(q0)
	nb := len(s0)
	i := 0
	if useAsm && nb >= 4 {
		i = nb &^ 3
		var mask [8]int32
		p, lines, per := pfArgs(pf, i/4)
		dot2x4FMA(&q0[0], &q1[0], &items[0], first(bias), d, i, &s0[0], &s1[0], p, lines, per, tailMask(d, &mask), 4*(d&^7))
	}
	for ; i < nb; i++ {
		y := items[i*d : i*d+d]
		s0[i] = dotLanes(q0, y)
		s1[i] = dotLanes(q1, y)
		if bias != nil {
			s0[i] += bias[i]
			s1[i] += bias[i]
		}
	}
}

// dot1 writes s[i] = q·y_i + b_i, as dot2 does.
func dot1(q, items, bias, s, pf []float32) {
	d := len(q)
	nb := len(s)
	i := 0
	if useAsm && nb >= 8 {
		i = nb &^ 7
		var mask [8]int32
		p, lines, per := pfArgs(pf, i/8)
		dot1x8FMA(&q[0], &items[0], first(bias), d, i, &s[0], p, lines, per, tailMask(d, &mask))
	}
	for ; i < nb; i++ {
		s[i] = dotLanes(q, items[i*d:i*d+d])
		if bias != nil {
			s[i] += bias[i]
		}
	}
}

// first returns &s[0], or nil for an empty s (a nil bias: none).
func first(s []float32) *float32 {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// tailMask returns nil when d is a multiple of 8, else m with its first d mod 8
// lanes set (−1): the kernels load the last d mod 8 dimensions under it.
func tailMask(d int, m *[8]int32) *int32 {
	r := d % 8
	if r == 0 {
		return nil
	}
	for i := range r {
		m[i] = -1
	}
	return &m[0]
}

// pfArgs returns the kernel's prefetch arguments for pf spread over a kernel call
// of the given number of passes: the first line, the number of 64-byte lines and
// the lines per pass.
func pfArgs(pf []float32, passes int) (*float32, int, int) {
	lines := (len(pf)*4 + 63) / 64
	return first(pf), lines, (lines + passes - 1) / passes
}

// firstNotBelow returns the index of the first s[i] that is not below thr (!(s[i] <
// thr), so a NaN counts), or len(s) if there is none.
func firstNotBelow(s []float32, thr float32) int {
	i := 0
	if useAsm && len(s) >= 16 {
		i = firstNotBelowAVX(&s[0], len(s)&^15, thr)
		if i < len(s)&^15 {
			return i
		}
	}
	for ; i < len(s); i++ {
		if !(s[i] < thr) {
			return i
		}
	}
	return len(s)
}
