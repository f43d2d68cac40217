//go:build !amd64

package scorer

const useAsm = false

func dot2x4FMA(q0, q1, y, b *float32, d, nb int, s0, s1, pf *float32, pfLines, pfPerPass int, mask *int32, dfull int) {
	panic("scorer: no assembly kernel on this architecture")
}

func firstNotBelowAVX(s *float32, n int, thr float32) int {
	panic("scorer: no assembly kernel on this architecture")
}

func dot1x8FMA(q, y, b *float32, d, nb int, s, pf *float32, pfLines, pfPerPass int, mask *int32) {
	panic("scorer: no assembly kernel on this architecture")
}

const useAsmF16 = false

func dot1x8F16(q *float32, y *uint16, b *float32, d, nb int, s, pf *float32, pfLines, pfPerPass int) {
	panic("scorer: no assembly kernel on this architecture")
}
