package assign

import "unicode/utf8"

// FNV-1a 32-bit parameters (Fowler, Noll, Vo; http://www.isthe.com/chongo/tech/comp/fnv/).
// GrowthBook's JavaScript SDK multiplies by the prime as
//
//	hval += (hval<<1) + (hval<<4) + (hval<<7) + (hval<<8) + (hval<<24)
//
// which is hval *= 0x01000193 modulo 2³², since 1+2+16+128+256+2²⁴ = 16777619.
const (
	fnvOffset uint32 = 0x811c9dc5
	fnvPrime  uint32 = 0x01000193
)

// fnvString continues the FNV-1a state h over the UTF-16 code units of s, as a
// JavaScript engine sees the string: s is read as UTF-8, each rune below U+10000
// is one code unit and each rune above is its surrogate pair (RFC 2781 §2.1).
// Bytes that are not valid UTF-8 read as U+FFFD, one per byte, exactly as Go's
// for-range does; a JSON decoder has already made that replacement in any string
// that came from a request.
//
// Because FNV-1a is a left fold, fnv(a+b) = fnvString(fnvString(offset, a), b):
// concatenations are hashed piecewise, without building the joined string.
func fnvString(h uint32, s string) uint32 {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			h = (h ^ uint32(c)) * fnvPrime
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r < 0x10000 {
			h = (h ^ uint32(r)) * fnvPrime
			continue
		}
		r -= 0x10000
		h = (h ^ (0xd800 + uint32(r>>10))) * fnvPrime
		h = (h ^ (0xdc00 + uint32(r&0x3ff))) * fnvPrime
	}
	return h
}

// fnvDecimal continues h over the decimal digits of v (no sign, no leading zeros),
// the string JavaScript's String(v) gives for a 32-bit unsigned integer. Digits
// are single UTF-16 code units, so each is hashed as its ASCII code.
//
// Most values (all but 2.3% of uniform 32-bit values) have 9 or 10 digits. For
// them the digits are computed by constant divisions, which do not depend on
// each other or on h, and both the 10-digit and the 9-digit chains are run, so
// that the only serial work is the FNV chain and no branch depends on the
// digit count until the end.
func fnvDecimal(h uint32, v uint32) uint32 {
	if v < 100000000 {
		return fnvDecimalSlow(h, v)
	}
	d0 := v / 1000000000
	d1 := v / 100000000 % 10
	d2 := v / 10000000 % 10
	d3 := v / 1000000 % 10
	d4 := v / 100000 % 10
	d5 := v / 10000 % 10
	d6 := v / 1000 % 10
	d7 := v / 100 % 10
	d8 := v / 10 % 10
	d9 := v % 10
	h10 := (h ^ ('0' + d0)) * fnvPrime
	h10 = (h10 ^ ('0' + d1)) * fnvPrime
	h9 := (h ^ ('0' + d1)) * fnvPrime
	h10 = (h10 ^ ('0' + d2)) * fnvPrime
	h9 = (h9 ^ ('0' + d2)) * fnvPrime
	h10 = (h10 ^ ('0' + d3)) * fnvPrime
	h9 = (h9 ^ ('0' + d3)) * fnvPrime
	h10 = (h10 ^ ('0' + d4)) * fnvPrime
	h9 = (h9 ^ ('0' + d4)) * fnvPrime
	h10 = (h10 ^ ('0' + d5)) * fnvPrime
	h9 = (h9 ^ ('0' + d5)) * fnvPrime
	h10 = (h10 ^ ('0' + d6)) * fnvPrime
	h9 = (h9 ^ ('0' + d6)) * fnvPrime
	h10 = (h10 ^ ('0' + d7)) * fnvPrime
	h9 = (h9 ^ ('0' + d7)) * fnvPrime
	h10 = (h10 ^ ('0' + d8)) * fnvPrime
	h9 = (h9 ^ ('0' + d8)) * fnvPrime
	h10 = (h10 ^ ('0' + d9)) * fnvPrime
	h9 = (h9 ^ ('0' + d9)) * fnvPrime
	if d0 != 0 {
		return h10
	}
	return h9
}

// fnvDecimalSlow is fnvDecimal for any v: it writes the digits backwards into a
// buffer and hashes them forwards.
func fnvDecimalSlow(h uint32, v uint32) uint32 {
	var buf [10]byte
	i := len(buf)
	for v >= 10 {
		i--
		q := v / 10
		buf[i] = byte('0' + v - q*10)
		v = q
	}
	i--
	buf[i] = byte('0' + v)
	for _, c := range buf[i:] {
		h = (h ^ uint32(c)) * fnvPrime
	}
	return h
}

// fnvUnits continues h over UTF-16 code units prepared in advance (the fixed
// suffixes of a plan), with no decoding in the loop.
func fnvUnits(h uint32, units []uint16) uint32 {
	for _, c := range units {
		h = (h ^ uint32(c)) * fnvPrime
	}
	return h
}

// Fnv32a returns the 32-bit FNV-1a hash of s over its UTF-16 code units, the
// function GrowthBook's SDKs call hashFnv32a.
func Fnv32a(s string) uint32 { return fnvString(fnvOffset, s) }

// Hash returns GrowthBook's hash of value under seed, a number in [0, 1):
//
//	version 1:  fnv(value + seed) mod 1000 / 1000
//	version 2:  fnv(String(fnv(seed + value))) mod 10000 / 10000
//
// where fnv is Fnv32a, + joins strings and String writes an unsigned integer in
// decimal. Version 2 hashes twice to remove the correlation version 1 shows
// between similar seeds. ok is false for any other version. Hash does not
// allocate.
func Hash(seed, value string, version int) (v float64, ok bool) {
	switch version {
	case 1:
		return hashV1(fnvString(fnvOffset, value), seed), true
	case 2:
		return hashV2(fnvString(fnvOffset, seed), value), true
	}
	return 0, false
}

// hashV1 finishes a version-1 hash whose value part is already folded into h.
func hashV1(h uint32, seed string) float64 {
	return float64(fnvString(h, seed)%1000) / 1000
}

// hashV2 finishes a version-2 hash whose seed part is already folded into h.
func hashV2(h uint32, value string) float64 {
	return float64(fnvDecimal(fnvOffset, fnvString(h, value))%10000) / 10000
}
