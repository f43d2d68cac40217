package scorer

import "golang.org/x/sys/cpu"

// useAsm selects the assembly kernel (the CPU and the OS support AVX2 and FMA).
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasAVX && cpu.X86.HasFMA

// dot2x4FMA writes s0[i] = q0·y_i + b[i] and s1[i] = q1·y_i + b[i] for i < nb, where
// y_i is the i-th row of d floats at y and b is nil (no bias) or nb floats; nb must
// be a multiple of 4. When d is not a multiple of 8, mask points to 8 int32 whose
// first d mod 8 are −1 and dfull = 4·(d − d mod 8); otherwise mask is nil and dfull
// = 4·d. After each pass of four items it prefetches up to
// pfPerPass of the pfLines 64-byte lines at pf into the L2 cache.
//
//go:noescape
func dot2x4FMA(q0, q1, y, b *float32, d, nb int, s0, s1, pf *float32, pfLines, pfPerPass int, mask *int32, dfull int)

// firstNotBelowAVX returns the index of the first of the n floats at s that is not
// below thr, or n; n must be a multiple of 16.
//
//go:noescape
func firstNotBelowAVX(s *float32, n int, thr float32) int

// dot1x8FMA writes s[i] = q·y_i + b[i] for i < nb, as dot2x4FMA does for one query
// and eight items per pass; nb must be a multiple of 8.
//
//go:noescape
func dot1x8FMA(q, y, b *float32, d, nb int, s, pf *float32, pfLines, pfPerPass int, mask *int32)

// useAsmF16 selects the half-precision kernel (AVX2, FMA and F16C).
var useAsmF16 = useAsm && cpu.X86.HasF16C

// dot1x8F16 writes s[i] = q·y_i + b[i] for i < nb, as dot1x8FMA does, for rows
// of d half-precision floats at y; d and nb must be multiples of 8.
//
//go:noescape
func dot1x8F16(q *float32, y *uint16, b *float32, d, nb int, s, pf *float32, pfLines, pfPerPass int)
