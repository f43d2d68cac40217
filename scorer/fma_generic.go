//go:build !arm64

package scorer

import "math"

// dotLanes returns q·y in the canonical order above.
func dotLanes(q, y []float32) float32 {
	y = y[:len(q)]
	var l [8]float32
	for j := range q {
		// l[r] = fma32(q[j], y[j], l[r]), its fast path written out (a call per
		// product made this loop 4× slower).
		r := j & 7
		s := float64(q[j])*float64(y[j]) + float64(l[r])
		if math.Float64bits(s)&(1<<29-1) != 1<<28 && math.Abs(s) >= 0x1p-126 {
			l[r] = float32(s)
		} else {
			l[r] = fma32Slow(q[j], y[j], l[r])
		}
	}
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

// fma32 returns a·b + c rounded once to float32 (round to nearest, ties to even), as
// the float32 FMA instructions do. Go has no float32 FMA, and float32(math.FMA(…))
// rounds twice, which differs in rare halfway cases. Here the product is exact in
// float64 (24 + 24 bits) and the sum s is rounded to float64. Rounding to float64 is
// monotonic and every float32 midpoint is a float64, so the exact sum and s round to
// the same float32 unless s sits exactly on a midpoint (in a float32-normal binade:
// the 29 bits below float32's 23 are 1 then 28 zeros); that case, and float32
// subnormals, go to fma32Slow.
func fma32(a, b, c float32) float32 {
	s := float64(a)*float64(b) + float64(c)
	if math.Float64bits(s)&(1<<29-1) != 1<<28 && math.Abs(s) >= 0x1p-126 {
		return float32(s)
	}
	return fma32Slow(a, b, c)
}
