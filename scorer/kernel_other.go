//go:build !amd64

package scorer

const useAVX2 = false

func dot2x4AVX(q0, q1, y *float32, d, nb int, s0, s1 *float32) {
	panic("scorer: no assembly kernel on this architecture")
}
