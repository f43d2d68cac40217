package assign

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestFnvDecimal checks both digit paths against hashing strconv's decimal form.
func TestFnvDecimal(t *testing.T) {
	values := []uint32{0, 1, 9, 10, 99, 100, 99999999, 100000000, 100000001, 999999999,
		1000000000, 1000000001, 1999999999, 2147483648, math.MaxUint32}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, rng.Uint32(), rng.Uint32()>>uint(rng.IntN(32)))
	}
	for _, v := range values {
		want := fnvString(fnvOffset, strconv.FormatUint(uint64(v), 10))
		if got := fnvDecimal(fnvOffset, v); got != want {
			t.Fatalf("fnvDecimal(%d) = %#x, want %#x", v, got, want)
		}
		if got := fnvDecimalSlow(fnvOffset, v); got != want {
			t.Fatalf("fnvDecimalSlow(%d) = %#x, want %#x", v, got, want)
		}
	}
}
