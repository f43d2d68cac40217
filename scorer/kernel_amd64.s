#include "textflag.h"

// MERGE(A, B, T): A = [A.lo+A.hi | B.lo+B.hi], the first step of the canonical
// horizontal sum of two accumulators at once: (l0+l4, l1+l5, l2+l6, l3+l7) of A in
// the low lane, of B in the high lane; T is clobbered.
#define MERGE(A, B, T) \
	VPERM2F128 $0x31, B, A, T \
	VPERM2F128 $0x20, B, A, A \
	VADDPS     T, A, A

// REDUCE8 sums the lanes of Y0 … Y7 in the canonical order
// ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)), leaving in Y0 (sum(Y0), sum(Y1), sum(Y2),
// sum(Y3) | sum(Y4), …, sum(Y7)); Y1–Y3 and Y8–Y11 are clobbered.
#define REDUCE8 \
	MERGE(Y0, Y4, Y8)          \
	MERGE(Y1, Y5, Y9)          \
	MERGE(Y2, Y6, Y10)         \
	MERGE(Y3, Y7, Y11)         \
	VPERMILPS $0xD8, Y0, Y0    \
	VPERMILPS $0xD8, Y1, Y1    \
	VPERMILPS $0xD8, Y2, Y2    \
	VPERMILPS $0xD8, Y3, Y3    \
	VHADDPS   Y1, Y0, Y0       \
	VHADDPS   Y3, Y2, Y2       \
	VHADDPS   Y2, Y0, Y0

// func dot2x4FMA(q0, q1, y, b *float32, d, nb int, s0, s1, pf *float32, pfLines, pfPerPass int, mask *int32, dfull int)
//
// Each pass scores four items (rows y_i … y_i+3) against two queries with eight
// 8-lane accumulators, Y0–Y3 for q0 and Y4–Y7 for q1: lane l of each accumulator
// holds fl(q[j]·y[j] + l) over j ≡ l (mod 8). The pass then reduces all eight in the
// canonical order ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)) with vector shuffles and
// VHADDPS, adds the four items' bias (when b is not nil), and stores four scores to
// s0 and four to s1. Then it prefetches up to pfPerPass lines of the pfLines at pf
// (PREFETCHT1: into L2, leaving L1 to the block being scored). When d is not a
// multiple of 8, the last d mod 8 dimensions (from byte dfull of a row) are loaded
// with VMASKMOVPS under mask (lanes 0 … d mod 8 − 1 set), the other lanes as zeros:
// fl(0·0 + l) = l, so that is the canonical order too.
TEXT ·dot2x4FMA(SB), NOSPLIT, $0-104
	MOVQ q0+0(FP), SI
	MOVQ q1+8(FP), DI
	MOVQ y+16(FP), BX
	MOVQ b+24(FP), CX
	MOVQ d+32(FP), R10
	MOVQ dfull+96(FP), DX // bytes of a row's whole 8-dimension steps
	MOVQ s0+48(FP), R8
	MOVQ s1+56(FP), R9
	MOVQ pf+64(FP), R14
	MOVQ pfLines+72(FP), R15
	SHLQ $2, R10 // row bytes
	MOVQ mask+88(FP), AX
	TESTQ AX, AX
	JZ   items
	VMOVUPS (AX), Y15

items:
	CMPQ   nb+40(FP), $4 // items left (the argument counts down)
	JL     done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	LEAQ   (BX)(R10*1), R11
	LEAQ   (R11)(R10*1), R12
	LEAQ   (R12)(R10*1), R13
	XORQ   AX, AX
	CMPQ   AX, DX
	JGE    tail

inner:
	VMOVUPS     (SI)(AX*1), Y8
	VMOVUPS     (DI)(AX*1), Y9
	VMOVUPS     (BX)(AX*1), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y4
	VMOVUPS     (R11)(AX*1), Y11
	VFMADD231PS Y8, Y11, Y1
	VFMADD231PS Y9, Y11, Y5
	VMOVUPS     (R12)(AX*1), Y12
	VFMADD231PS Y8, Y12, Y2
	VFMADD231PS Y9, Y12, Y6
	VMOVUPS     (R13)(AX*1), Y13
	VFMADD231PS Y8, Y13, Y3
	VFMADD231PS Y9, Y13, Y7
	ADDQ        $32, AX
	CMPQ        AX, DX
	JL          inner

tail:
	CMPQ        mask+88(FP), $0
	JEQ         reduce
	VMASKMOVPS  (SI)(AX*1), Y15, Y8
	VMASKMOVPS  (DI)(AX*1), Y15, Y9
	VMASKMOVPS  (BX)(AX*1), Y15, Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y4
	VMASKMOVPS  (R11)(AX*1), Y15, Y11
	VFMADD231PS Y8, Y11, Y1
	VFMADD231PS Y9, Y11, Y5
	VMASKMOVPS  (R12)(AX*1), Y15, Y12
	VFMADD231PS Y8, Y12, Y2
	VFMADD231PS Y9, Y12, Y6
	VMASKMOVPS  (R13)(AX*1), Y15, Y13
	VFMADD231PS Y8, Y13, Y3
	VFMADD231PS Y9, Y13, Y7

reduce:
	// Y0 = (q0·y_i, q0·y_i+1, q0·y_i+2, q0·y_i+3 | q1·y_i, …, q1·y_i+3): the MERGE
	// step pairs y_i's two accumulators (m = (l0+l4, l1+l5, l2+l6, l3+l7)), VPERMILPS
	// reorders each lane to (m0, m2, m1, m3) so that VHADDPS adds m0+m2 and m1+m3.
	REDUCE8
	TESTQ   CX, CX
	JZ      store
	VBROADCASTF128 (CX), Y1 // (b_i … b_i+3 | b_i … b_i+3)
	VADDPS  Y1, Y0, Y0
	ADDQ    $16, CX

store:
	VMOVUPS      X0, (R8)
	VEXTRACTF128 $1, Y0, (R9)

	MOVQ pfPerPass+80(FP), AX

prefetch:
	TESTQ      R15, R15
	JZ         next
	TESTQ      AX, AX
	JZ         next
	PREFETCHT1 (R14)
	ADDQ       $64, R14
	DECQ       R15
	DECQ       AX
	JMP        prefetch

next:

	LEAQ (R13)(R10*1), BX
	ADDQ $16, R8
	ADDQ $16, R9
	SUBQ $4, nb+40(FP)
	JMP  items

done:
	VZEROUPPER
	RET

// func firstNotBelowAVX(s *float32, n int, thr float32) int
//
// Sixteen floats per pass: VCMPPS with predicate NLT_US (not less than, true for
// NaN) against thr in every lane; the first pass with any lane set is searched
// with BSF.
TEXT ·firstNotBelowAVX(SB), NOSPLIT, $0-32
	MOVQ         s+0(FP), SI
	MOVQ         n+8(FP), DX
	VBROADCASTSS thr+16(FP), Y2
	XORQ         AX, AX

scan:
	CMPQ      AX, DX
	JGE       none
	VMOVUPS   (SI)(AX*4), Y0
	VMOVUPS   32(SI)(AX*4), Y1
	VCMPPS    $5, Y2, Y0, Y0
	VCMPPS    $5, Y2, Y1, Y1
	VORPS     Y1, Y0, Y3
	VTESTPS   Y3, Y3
	JNZ       found
	ADDQ      $16, AX
	JMP       scan

found:
	VMOVMSKPS Y0, BX
	VMOVMSKPS Y1, CX
	SHLQ      $8, CX
	ORQ       CX, BX
	BSFQ      BX, BX
	ADDQ      BX, AX

none:
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET

// func dot1x8FMA(q, y, b *float32, d, nb int, s, pf *float32, pfLines, pfPerPass int, mask *int32)
//
// One query against eight items per pass: Y0–Y7 hold the lane sums of items
// i … i+7 (rows i … i+3 at BX, R11, R12, R13 and rows i+4 … i+7 four rows further),
// reduced as in dot2x4FMA; the reduction leaves the eight scores in item order, so
// one store writes them. Prefetching and the masked last dimensions as in dot2x4FMA.
TEXT ·dot1x8FMA(SB), NOSPLIT, $0-80
	MOVQ q+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ b+16(FP), CX
	MOVQ d+24(FP), R10
	MOVQ nb+32(FP), DX
	MOVQ s+40(FP), R8
	MOVQ pf+48(FP), R14
	MOVQ pfLines+56(FP), R15
	SHLQ $2, R10 // row bytes
	MOVQ mask+72(FP), AX
	TESTQ AX, AX
	JZ   items8
	VMOVUPS (AX), Y15

items8:
	CMPQ   DX, $8
	JL     done8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   DI, BX
	LEAQ   (BX)(R10*1), R11
	LEAQ   (R11)(R10*1), R12
	LEAQ   (R12)(R10*1), R13
	MOVQ   SI, R9
	MOVQ   R10, AX
	SHRQ   $5, AX // whole 8-dimension steps
	TESTQ  AX, AX
	JZ     tail8

inner8:
	VMOVUPS     (R9), Y8
	VFMADD231PS (BX), Y8, Y0
	VFMADD231PS (R11), Y8, Y1
	VFMADD231PS (R12), Y8, Y2
	VFMADD231PS (R13), Y8, Y3
	VFMADD231PS (BX)(R10*4), Y8, Y4
	VFMADD231PS (R11)(R10*4), Y8, Y5
	VFMADD231PS (R12)(R10*4), Y8, Y6
	VFMADD231PS (R13)(R10*4), Y8, Y7
	ADDQ        $32, R9
	ADDQ        $32, BX
	ADDQ        $32, R11
	ADDQ        $32, R12
	ADDQ        $32, R13
	DECQ        AX
	JNZ         inner8

tail8:
	CMPQ        mask+72(FP), $0
	JEQ         reduce8
	VMASKMOVPS  (R9), Y15, Y8
	VMASKMOVPS  (BX), Y15, Y9
	VFMADD231PS Y9, Y8, Y0
	VMASKMOVPS  (R11), Y15, Y9
	VFMADD231PS Y9, Y8, Y1
	VMASKMOVPS  (R12), Y15, Y9
	VFMADD231PS Y9, Y8, Y2
	VMASKMOVPS  (R13), Y15, Y9
	VFMADD231PS Y9, Y8, Y3
	VMASKMOVPS  (BX)(R10*4), Y15, Y9
	VFMADD231PS Y9, Y8, Y4
	VMASKMOVPS  (R11)(R10*4), Y15, Y9
	VFMADD231PS Y9, Y8, Y5
	VMASKMOVPS  (R12)(R10*4), Y15, Y9
	VFMADD231PS Y9, Y8, Y6
	VMASKMOVPS  (R13)(R10*4), Y15, Y9
	VFMADD231PS Y9, Y8, Y7

reduce8:
	// Y0 = (q·y_i, …, q·y_i+3 | q·y_i+4, …, q·y_i+7).
	REDUCE8
	TESTQ     CX, CX
	JZ        store8
	VADDPS    (CX), Y0, Y0
	ADDQ      $32, CX

store8:
	VMOVUPS Y0, (R8)
	MOVQ    pfPerPass+64(FP), AX

prefetch8:
	TESTQ      R15, R15
	JZ         next8
	TESTQ      AX, AX
	JZ         next8
	PREFETCHT1 (R14)
	ADDQ       $64, R14
	DECQ       R15
	DECQ       AX
	JMP        prefetch8

next8:
	LEAQ (DI)(R10*8), DI
	ADDQ $32, R8
	SUBQ $8, DX
	JMP  items8

done8:
	VZEROUPPER
	RET

// func dot1x8F16(q *float32, y *uint16, b *float32, d, nb int, s, pf *float32, pfLines, pfPerPass int)
//
// dot1x8FMA over items stored as IEEE half-precision floats: each 8-dimension
// step of a row is widened to float32 with VCVTPH2PS (exactly) and accumulated
// with VFMADD231PS, so a score is the canonical-order sum over the widened row
// (see kernel.go). d must be a multiple of 8 and nb of 8.
TEXT ·dot1x8F16(SB), NOSPLIT, $0-72
	MOVQ q+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ b+16(FP), CX
	MOVQ d+24(FP), R10
	MOVQ nb+32(FP), DX
	MOVQ s+40(FP), R8
	MOVQ pf+48(FP), R14
	MOVQ pfLines+56(FP), R15
	SHLQ $1, R10 // row bytes

h8:
	CMPQ   DX, $8
	JL     hdone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   DI, BX
	LEAQ   (BX)(R10*1), R11
	LEAQ   (R11)(R10*1), R12
	LEAQ   (R12)(R10*1), R13
	MOVQ   SI, R9
	MOVQ   R10, AX
	SHRQ   $4, AX // 8-dimension steps: 16 bytes each

hinner:
	VMOVUPS     (R9), Y8
	VCVTPH2PS   (BX), Y9
	VFMADD231PS Y9, Y8, Y0
	VCVTPH2PS   (R11), Y10
	VFMADD231PS Y10, Y8, Y1
	VCVTPH2PS   (R12), Y11
	VFMADD231PS Y11, Y8, Y2
	VCVTPH2PS   (R13), Y12
	VFMADD231PS Y12, Y8, Y3
	VCVTPH2PS   (BX)(R10*4), Y9
	VFMADD231PS Y9, Y8, Y4
	VCVTPH2PS   (R11)(R10*4), Y10
	VFMADD231PS Y10, Y8, Y5
	VCVTPH2PS   (R12)(R10*4), Y11
	VFMADD231PS Y11, Y8, Y6
	VCVTPH2PS   (R13)(R10*4), Y12
	VFMADD231PS Y12, Y8, Y7
	ADDQ        $32, R9
	ADDQ        $16, BX
	ADDQ        $16, R11
	ADDQ        $16, R12
	ADDQ        $16, R13
	DECQ        AX
	JNZ         hinner

	REDUCE8
	TESTQ  CX, CX
	JZ     hstore
	VADDPS (CX), Y0, Y0
	ADDQ   $32, CX

hstore:
	VMOVUPS Y0, (R8)
	MOVQ    pfPerPass+64(FP), AX

hprefetch:
	TESTQ      R15, R15
	JZ         hnext
	TESTQ      AX, AX
	JZ         hnext
	PREFETCHT1 (R14)
	ADDQ       $64, R14
	DECQ       R15
	DECQ       AX
	JMP        hprefetch

hnext:
	LEAQ (DI)(R10*8), DI
	ADDQ $32, R8
	SUBQ $8, DX
	JMP  h8

hdone:
	VZEROUPPER
	RET
