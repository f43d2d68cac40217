package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestGeoCLIMatchesAPI: "lift geo" on a CSV and POST /v1/analyses/geo on the
// same rows answer the same report (weights, path, inference, diagnostics),
// for both methods with two test markets: one pipeline (synth.FromLong,
// synth.Run).
func TestGeoCLIMatchesAPI(t *testing.T) {
	_, hs := pipelineServer(t)
	rng := rand.New(rand.NewPCG(8, 8))
	var csv strings.Builder
	csv.WriteString("market,week,sales\n")
	var rows []map[string]any
	for u := range 10 {
		base, amp := 100+20*rng.NormFloat64(), 5+rng.NormFloat64()
		for w := range 24 {
			v := base + amp*math.Sin(float64(w)/2) + rng.NormFloat64()
			if u < 2 && w >= 18 {
				v += 8
			}
			s := strconv.FormatFloat(v, 'g', -1, 64)
			fmt.Fprintf(&csv, "m%d,2025-W%02d,%s\n", u, w+1, s)
			rows = append(rows, map[string]any{"unit": fmt.Sprintf("m%d", u), "period": fmt.Sprintf("2025-W%02d", w+1), "value": v})
		}
	}
	path := writeTemp(t, "geo.csv", csv.String())
	for _, method := range []string{"scm", "augmented"} {
		t.Run(method, func(t *testing.T) {
			code, out, errs := runQuasi(t, "geo", "--data", path, "--unit", "market", "--time", "week", "--outcome", "sales",
				"--treated", "m0,m1", "--start", "2025-W19", "--method", method)
			if code != 0 {
				t.Fatalf("lift geo: exit %d: %s", code, errs)
			}
			var cli map[string]any
			if err := json.Unmarshal([]byte(out), &cli); err != nil {
				t.Fatal(err)
			}
			got := postJSON(t, hs, "/v1/analyses/geo", map[string]any{"rows": rows, "treated": []string{"m0", "m1"}, "start": "2025-W19", "method": method})
			sameFields(t, "geo", got, cli)
			if len(cli) < 10 || cli["markets"] == nil {
				t.Errorf("CLI answer too small to compare: %v", cli)
			}
		})
	}
}
