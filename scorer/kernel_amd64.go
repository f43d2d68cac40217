package scorer

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernel (the CPU and the OS support AVX2).
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasAVX

// dot2x4AVX writes s0[i] = q0·y_i and s1[i] = q1·y_i for i < nb, where y_i is the
// i-th row of d floats at y; d must be a multiple of 8 and nb of 4.
//
//go:noescape
func dot2x4AVX(q0, q1, y *float32, d, nb int, s0, s1 *float32)
