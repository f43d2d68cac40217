package assign_test

import (
	"hash/fnv"
	"strconv"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/liftlab/lift/assign"
)

// jsFnv32a is a line-by-line port of GrowthBook's JavaScript hashFnv32a
// (packages/sdk-js/src/util.ts): it walks the UTF-16 code units (charCodeAt)
// and multiplies by the FNV prime with shifts and adds, truncating to 32 bits
// as JavaScript's bitwise operators do. It is the slow reference for Fnv32a.
func jsFnv32a(s string) uint32 {
	hval := uint32(0x811c9dc5)
	for _, c := range utf16.Encode([]rune(s)) {
		hval ^= uint32(c)
		hval += (hval << 1) + (hval << 4) + (hval << 7) + (hval << 8) + (hval << 24)
	}
	return hval
}

// jsHash is GrowthBook's hash(seed, value, version) built from jsFnv32a with
// string concatenation, as the JavaScript SDK writes it.
func jsHash(seed, value string, version int) (float64, bool) {
	switch version {
	case 1:
		return float64(jsFnv32a(value+seed)%1000) / 1000, true
	case 2:
		return float64(jsFnv32a(strconv.FormatUint(uint64(jsFnv32a(seed+value)), 10))%10000) / 10000, true
	}
	return 0, false
}

func TestHashNonASCII(t *testing.T) {
	// Vectors from GrowthBook's newer cross-SDK spec (cases.json "hash" section,
	// added with the UTF-16 fix): multi-byte, CJK, astral (surrogate pair) and a
	// non-ASCII seed.
	tests := []struct {
		seed, value string
		version     int
		want        float64
	}{
		{"", "josé", 1, 0.586},
		{"", "josé", 2, 0.1315},
		{"", "用户123", 2, 0.3071},
		{"", "😀", 2, 0.4971},
		{"expérience", "123", 2, 0.9001},
	}
	for _, tt := range tests {
		got, ok := assign.Hash(tt.seed, tt.value, tt.version)
		if !ok || got != tt.want {
			t.Errorf("Hash(%q, %q, %d) = %v, %v; want %v", tt.seed, tt.value, tt.version, got, ok, tt.want)
		}
	}
}

func TestFnv32aMatchesStdlibOnASCII(t *testing.T) {
	// For ASCII text UTF-16 code units equal bytes, so Go's hash/fnv (New32a) is
	// an independent reference.
	for _, s := range []string{"", "a", "foobar", "user-123", "my-test1", "___)((*\":&"} {
		h := fnv.New32a()
		h.Write([]byte(s))
		if got, want := assign.Fnv32a(s), h.Sum32(); got != want {
			t.Errorf("Fnv32a(%q) = %#x, hash/fnv says %#x", s, got, want)
		}
	}
}

func TestFnv32aSurrogatePairs(t *testing.T) {
	// U+1F600 is the surrogate pair D83D DE00 in UTF-16 (RFC 2781); hashing the
	// Go string must equal folding those two code units, not the rune or its
	// four UTF-8 bytes.
	want := uint32(0x811c9dc5)
	for _, c := range []uint32{0xd83d, 0xde00} {
		want = (want ^ c) * 0x01000193
	}
	if got := assign.Fnv32a("😀"); got != want {
		t.Errorf("Fnv32a(U+1F600) = %#x, want %#x", got, want)
	}
	h := fnv.New32a()
	h.Write([]byte("😀"))
	if assign.Fnv32a("😀") == h.Sum32() {
		t.Error("Fnv32a hashed UTF-8 bytes instead of UTF-16 code units")
	}
}

func TestHashUnknownVersion(t *testing.T) {
	for _, v := range []int{-1, 0, 3, 99} {
		if _, ok := assign.Hash("abc", "def", v); ok {
			t.Errorf("Hash with version %d: ok = true, want false", v)
		}
	}
}

func TestHashDoesNotAllocate(t *testing.T) {
	for _, v := range []int{1, 2} {
		allocs := testing.AllocsPerRun(100, func() { assign.Hash("expérience", "用户123😀", v) })
		if allocs != 0 {
			t.Errorf("Hash version %d allocates %v times per call", v, allocs)
		}
	}
}

func FuzzHash(f *testing.F) {
	f.Add("", "a")
	f.Add("seed", "josé")
	f.Add("expérience", "😀用户")
	f.Add("\x96\x84", "\xe8")
	f.Fuzz(func(t *testing.T, seed, value string) {
		// No JavaScript string holds invalid UTF-8; Hash reads each invalid byte
		// as U+FFFD, seed and value separately (TestHashInvalidUTF8), which is
		// what Go's string → []rune conversion does.
		jsSeed, jsValue := seed, value
		if !utf8.ValidString(seed) || !utf8.ValidString(value) {
			jsSeed, jsValue = string([]rune(seed)), string([]rune(value))
		}
		for _, v := range []int{1, 2} {
			got, _ := assign.Hash(seed, value, v)
			want, _ := jsHash(jsSeed, jsValue, v)
			if got != want {
				t.Fatalf("Hash(%q, %q, %d) = %v, the JavaScript port says %v", seed, value, v, got, want)
			}
		}
	})
}

func TestHashInvalidUTF8(t *testing.T) {
	// Seed and value are decoded separately, each invalid byte as U+FFFD, so a
	// split multi-byte sequence does not join across them: "\xe8" + "\x96\x84"
	// would be the valid "薄" (U+8584) if concatenated first.
	got, _ := assign.Hash("\x96\x84", "\xe8", 1)
	want := float64(jsFnv32a("\ufffd\ufffd\ufffd")%1000) / 1000
	if got != want {
		t.Errorf("Hash of split UTF-8 = %v, want %v (three U+FFFD)", got, want)
	}
}
