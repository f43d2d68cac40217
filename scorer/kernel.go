package scorer

// The score kernel. Every backend path on the CPU computes q·y in one fixed order,
// so results do not depend on the path (assembly or Go, block, worker, batch):
// eight lane sums, lane l adding the float32 products q[j]·y[j] for j ≡ l (mod 8)
// in increasing j, then
//
//	s = ((l₀+l₄) + (l₂+l₆)) + ((l₁+l₅) + (l₃+l₇))
//
// which is the order of an 8-wide SIMD dot product and its horizontal sum. On
// amd64 with AVX2 and d a multiple of 8 the assembly kernel (kernel_amd64.s) does
// two queries × four items per pass with VMULPS/VADDPS (no FMA, so that its
// rounding equals the Go code's); elsewhere dotLanes does the same in Go.

// dotLanes returns q·y in the canonical order above.
func dotLanes(q, y []float32) float32 {
	y = y[:len(q)]
	var l [8]float32
	j := 0
	for ; j+8 <= len(q); j += 8 {
		l[0] += float32(q[j] * y[j])
		l[1] += float32(q[j+1] * y[j+1])
		l[2] += float32(q[j+2] * y[j+2])
		l[3] += float32(q[j+3] * y[j+3])
		l[4] += float32(q[j+4] * y[j+4])
		l[5] += float32(q[j+5] * y[j+5])
		l[6] += float32(q[j+6] * y[j+6])
		l[7] += float32(q[j+7] * y[j+7])
	}
	for r := 0; j < len(q); j, r = j+1, r+1 {
		l[r] += float32(q[j] * y[j])
	}
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

// dot2 writes s0[i] = q0·y_i and s1[i] = q1·y_i for the rows y_i of items.
func dot2(q0, q1, items, s0, s1 []float32) {
	d := len(q0)
	nb := len(s0)
	i := 0
	if useAVX2 && d%8 == 0 && nb >= 4 {
		i = nb &^ 3
		dot2x4AVX(&q0[0], &q1[0], &items[0], d, i, &s0[0], &s1[0])
	}
	for ; i < nb; i++ {
		y := items[i*d : i*d+d]
		s0[i] = dotLanes(q0, y)
		s1[i] = dotLanes(q1, y)
	}
}

// dot1 writes s[i] = q·y_i.
func dot1(q, items, s []float32) {
	d := len(q)
	nb := len(s)
	i := 0
	if useAVX2 && d%8 == 0 && nb >= 4 {
		i = nb &^ 3
		// The two-query kernel with the query twice: both outputs are the same values.
		dot2x4AVX(&q[0], &q[0], &items[0], d, i, &s[0], &s[0])
	}
	for ; i < nb; i++ {
		s[i] = dotLanes(q, items[i*d:i*d+d])
	}
}
