package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestGeoPower runs "lift geo power" on a seeded panel of 12 markets × 70
// days where market m03 is 20 times noisier than the others: the best
// candidates avoid it and reach a small MDE, every candidate holds the
// --include market and none the --exclude one, and bad flags are named.
func TestGeoPower(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	var b strings.Builder
	b.WriteString("market,day,sales\n")
	for u := range 12 {
		sd := 10.0
		if u == 3 {
			sd = 200
		}
		base, amp := 1000+100*rng.NormFloat64(), 50+10*rng.NormFloat64()
		for d := range 70 {
			v := base + amp*math.Sin(2*math.Pi*float64(d)/7) + sd*rng.NormFloat64()
			fmt.Fprintf(&b, "m%02d,2024-%02d-%02d,%.3f\n", u, 1+d/28, 1+d%28, v)
		}
	}
	path := writeTemp(t, "panel.csv", b.String())
	args := []string{"geo", "power", "--data", path, "--unit", "market", "--time", "day", "--outcome", "sales",
		"--sizes", "2", "--durations", "7", "--include", "m00", "--exclude", "m05", "--candidates", "10", "--lookback", "2", "--intercept"}
	code, stdout, stderr := runQuasi(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		NEvaluated int `json:"n_evaluated"`
		Candidates []struct {
			Rank    int
			Markets []string
			MDE     *float64
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.NEvaluated != 10 || len(out.Candidates) != 10 {
		t.Fatalf("%d evaluated, %d printed; want 10, 10", out.NEvaluated, len(out.Candidates))
	}
	for i, c := range out.Candidates {
		if c.Rank != i+1 || !slices.Contains(c.Markets, "m00") || slices.Contains(c.Markets, "m05") {
			t.Errorf("candidate %+v", c)
		}
	}
	best := out.Candidates[0]
	if slices.Contains(best.Markets, "m03") || best.MDE == nil || *best.MDE > 0.05 {
		t.Errorf("best candidate %v MDE %v: want one without the noisy m03 and an MDE ≤ 5%%", best.Markets, best.MDE)
	}
	code, text, _ := runQuasi(t, append(args, "--format", "text", "--top", "3")...)
	if code != 0 || !strings.Contains(text, "Market selection: 12 markets × 70 periods") || strings.Count(text, "m00") != 3 {
		t.Errorf("text output:\n%s", text)
	}
	for _, c := range []struct{ flag, value string }{
		{"--sizes", "0"}, {"--durations", "x"}, {"--include", "zz"}, {"--exclude", "m00"}, {"--power", "1.5"}, {"--effects", "0.2,0.1"}, {"--sizes", "12"},
	} {
		code, _, stderr := runQuasi(t, append(append([]string{}, args...), c.flag, c.value)...)
		if code == 0 || !strings.Contains(stderr, c.flag) {
			t.Errorf("%s %s: exit %d, %q", c.flag, c.value, code, stderr)
		}
	}
}
