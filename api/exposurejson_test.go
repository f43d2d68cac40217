package api

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The timestamp cache of decodeExposuresFast must give exactly what
// time.Time.UnmarshalJSON (through encoding/json) gives, for rows that share
// the "YYYY-MM-DDTHH:MM:SS" of the row before and for rows that do not.
func TestDecodeExposuresFastTimestamps(t *testing.T) {
	seq := []string{
		"2026-03-01T12:00:00Z",
		"2026-03-01T12:00:00.5Z",
		"2026-03-01T12:00:00.123456789Z",
		"2026-03-01T12:00:00.000001Z",
		"2026-03-01T12:00:00Z",
		"2026-03-01T12:00:00.1234567891Z", // 10 digits: not the cache's, still the fast path's
		"2026-03-01T12:00:00+02:00",
		"2026-03-01T12:00:00.25+02:00",
		"2026-03-01T12:00:00.25Z",
		"2026-03-01T12:00:01.25Z",
		"1969-12-31T23:59:59.999Z", // before the epoch: negative Unix seconds
		"1969-12-31T23:59:59.001Z",
		"2026-02-28T23:59:59.9Z",
		"2024-02-29T00:00:00.010Z",
	}
	rows := make([]string, len(seq))
	for i, ts := range seq {
		rows[i] = fmt.Sprintf(`{"experiment":"e","unit":"u%d","variant":"a","ts":%q}`, i, ts)
	}
	body := `{"exposures":[` + strings.Join(rows, ",") + `]}`
	if !fastMatchesSlow(t, []byte(body)) {
		t.Fatalf("fast path refused %s", body)
	}
	// A fraction the cache cannot complete is refused or parsed like encoding/json.
	for _, bad := range []string{"2026-03-01T12:00:00.Z", "2026-03-01T12:00:00.1a2Z", "2026-03-01T12:00:00.5z", "2026-02-30T12:00:00.5Z"} {
		b := `{"exposures":[{"unit":"a","ts":"2026-03-01T12:00:00.1Z"},{"unit":"b","ts":"` + bad + `"}]}`
		fastMatchesSlow(t, []byte(b))
	}
	// Random runs of timestamps sharing prefixes (seeded).
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200; n++ {
		var rs []string
		for i := 0; i < 20; i++ {
			ts := fmt.Sprintf("2026-03-0%dT12:00:0%d", 1+rng.IntN(2), rng.IntN(2))
			if d := rng.IntN(11); d > 0 {
				ts += "." + fmt.Sprintf("%09d", rng.IntN(1e9))[:min(d, 9)]
			}
			ts += []string{"Z", "Z", "Z", "+01:00"}[rng.IntN(4)]
			rs = append(rs, fmt.Sprintf(`{"experiment":"e","unit":"u%d","variant":"v%d","ts":%q}`, i, rng.IntN(3), ts))
		}
		if body := `{"exposures":[` + strings.Join(rs, ",") + `]}`; !fastMatchesSlow(t, []byte(body)) {
			t.Fatalf("fast path refused %s", body)
		}
	}
}

// BenchmarkDecodeExposures compares decodeExposuresFast with encoding/json on a
// body of 1,000 exposures like BenchmarkHTTPExposures sends; ns/op is per body.
func BenchmarkDecodeExposures(b *testing.B) {
	rows := make([]string, 1000)
	for j := range rows {
		rows[j] = fmt.Sprintf(`{"experiment":"checkout","unit":"user-1-%d","variant":%q,"ts":"2026-03-01T12:00:%02d.%03dZ"}`,
			j, []string{"control", "treatment"}[j%2], j/1000, j%1000)
	}
	body := []byte(`{"exposures":[` + strings.Join(rows, ",") + `]}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var xs []exposureIn
			if !decodeExposuresFast(body, &xs) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var batch exposureBatch
			if err := decodeJSON(body, &batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
