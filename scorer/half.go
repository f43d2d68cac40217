package scorer

import "math"

// The precisions the cpu backend scores in (Options.Precision).
const (
	PrecisionF32 = "f32" // the model's float32 item vectors (default)
	PrecisionF16 = "f16" // item vectors rounded to IEEE 754 half precision: half the memory
)

// toHalf rounds f to the nearest IEEE 754 binary16 value (ties to even),
// overflowing to ±Inf, with subnormals; NaN stays NaN.
func toHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e <= 0 { // subnormal half (or zero)
		if e < -10 {
			return sign
		}
		m := man | 0x800000
		shift := uint(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(h)
}

// fromHalf widens a binary16 value to float32 (exactly).
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(man) * (1.0 / (1 << 24)) // man · 2⁻²⁴, exact
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// halfItems is the item matrix rounded to half precision.
func halfItems(items []float32) []uint16 {
	out := make([]uint16, len(items))
	for i, v := range items {
		out[i] = toHalf(v)
	}
	return out
}

// dot1h writes s[i] = q·ŷ_i + b_i for the half-precision rows ŷ_i of items, in
// the canonical order of kernel.go over the widened row: the assembly kernel
// when d is a multiple of 8 (AVX2, FMA, F16C), else dotLanes over a widened
// copy, which gives the same bits.
func dot1h(q []float32, items []uint16, bias, s, pf []float32, row []float32) {
	d := len(q)
	nb := len(s)
	i := 0
	if useAsmF16 && nb >= 8 && d%8 == 0 {
		i = nb &^ 7
		p, lines, per := pfArgs(pf, i/8)
		dot1x8F16(&q[0], &items[0], first(bias), d, i, &s[0], p, lines, per)
	}
	for ; i < nb; i++ {
		for j, h := range items[i*d : i*d+d] {
			row[j] = fromHalf(h)
		}
		s[i] = dotLanes(q, row)
		if bias != nil {
			s[i] += bias[i]
		}
	}
}
