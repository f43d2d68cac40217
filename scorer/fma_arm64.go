package scorer

// On arm64 the Go compiler fuses a float32 a*b + c into one FMADDS instruction
// (one rounding), which is exactly fma32 (the language allows the fusion; an
// explicit float32(a*b) conversion would prevent it). TestFMA32 checks it with a
// case where rounding twice gives another answer, so a compiler that stopped fusing
// would fail it; the emulation in fma_generic.go is 4× slower than the instruction.

// fma32 returns a·b + c rounded once to float32.
func fma32(a, b, c float32) float32 { return a*b + c }

// dotLanes returns q·y in the canonical order (see kernel.go).
func dotLanes(q, y []float32) float32 {
	y = y[:len(q)]
	var l0, l1, l2, l3, l4, l5, l6, l7 float32
	j := 0
	for ; j+8 <= len(q); j += 8 {
		l0 = fma32(q[j], y[j], l0)
		l1 = fma32(q[j+1], y[j+1], l1)
		l2 = fma32(q[j+2], y[j+2], l2)
		l3 = fma32(q[j+3], y[j+3], l3)
		l4 = fma32(q[j+4], y[j+4], l4)
		l5 = fma32(q[j+5], y[j+5], l5)
		l6 = fma32(q[j+6], y[j+6], l6)
		l7 = fma32(q[j+7], y[j+7], l7)
	}
	l := [8]float32{l0, l1, l2, l3, l4, l5, l6, l7}
	for r := 0; j < len(q); j, r = j+1, r+1 {
		l[r] = fma32(q[j], y[j], l[r])
	}
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}
