package scorer

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func quietOptions() Options { return Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))} }

// requireCUDA reports whether LIFT_REQUIRE_CUDA=1 is set (bench/gpu.sh sets it on
// the GPU machine): then a cuda backend that cannot start fails the GPU tests and
// benchmarks instead of skipping them, so that a kernel that does not compile or
// load there is reported as a failure.
func requireCUDA() bool { return os.Getenv("LIFT_REQUIRE_CUDA") == "1" }

// openCUDA opens the cuda backend or skips the test, saying why.
func openCUDA(t *testing.T, m *Model, opts Options) Scorer {
	t.Helper()
	s, err := NewCUDA(context.Background(), m, opts)
	if err != nil {
		if experiment.Is(err, experiment.Unavailable) && !requireCUDA() {
			t.Skipf("CUDA unavailable on this machine, test skipped: %v", err)
		}
		t.Fatalf("NewCUDA: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	t.Logf("backend: %s", s.Name())
	return s
}

func TestCUDAAbsentIsUnavailable(t *testing.T) {
	m := randomModel(t, 100, 8, 1, 0, false, 1)
	s, err := NewCUDA(context.Background(), m, quietOptions())
	if err == nil {
		s.Close()
		t.Skip("a CUDA device is present; the absence path is not exercised here")
	}
	if requireCUDA() {
		t.Fatalf("LIFT_REQUIRE_CUDA=1 but the cuda backend did not start: %v", err)
	}
	if !experiment.Is(err, experiment.Unavailable) || err.Error() == "" {
		t.Fatalf("without CUDA: err = %v, want an unavailable error that says why", err)
	}
	t.Logf("as expected: %v", err)
	auto, err := Open(context.Background(), KindAuto, m, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(auto.Name(), "cpu") {
		t.Fatalf("auto without CUDA chose %q, want cpu", auto.Name())
	}
}

func TestOpenUnknownKind(t *testing.T) {
	m := randomModel(t, 10, 2, 0, 0, false, 1)
	if _, err := Open(context.Background(), "tpu", m, Options{}); !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("err = %v, want invalid", err)
	}
}

// TestParity checks that the cuda backend returns the cpu backend's top-k on the
// same models: random factors with exact duplicates (ties, which must break by item
// index), a bias, exclusions, batches cut into several GPU chunks, small catalogs
// and k up to the cuda limit. Scores may differ in the last bits (cuBLAS sums in
// another order), so where the lists differ at a rank the two items must be a near
// tie: within 1e-5·(1+|score|) of each other by the CPU's exact scores. Skipped,
// with the reason, where CUDA is unavailable. Run it on a GPU machine with
//
//	go test -c -ldflags='-s -w' -o scorer.test ./scorer && ./scorer.test -test.run Parity -test.v
func TestParity(t *testing.T) {
	cases := []struct {
		name             string
		n, d, users, dup int
		bias             bool
		ks               []int
		excl             int
		chunkUsers       int // 0: default chunking
	}{
		{"catalog 200k x 64", 200_000, 64, 300, 7, true, []int{1, 10, 100, 256}, 20, 64},
		{"catalog 1M x 64, batch 256", 1_000_000, 64, 256, 0, false, []int{10}, 5, 0},
		{"small catalog, k above n", 50, 16, 9, 3, true, []int{10, 64, 256}, 3, 0},
		{"odd dimension", 10_007, 13, 33, 5, false, []int{17}, 0, 8},
	}
	// Probe with a tiny model first, so that machines without CUDA skip at once.
	openCUDA(t, randomModel(t, 10, 2, 0, 0, false, 1), quietOptions())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, tc.n, tc.d, tc.users, tc.dup, tc.bias, 42)
			opts := quietOptions()
			if tc.chunkUsers > 0 {
				opts.MaxGPUScoreBytes = int64(tc.chunkUsers) * int64(tc.n) * 4
			}
			gpu := openCUDA(t, m, opts)
			cpu, _ := NewCPU(m, Options{})
			rng := rand.New(rand.NewPCG(8, 9))
			queries := make([][]float32, tc.users)
			exclude := make([][]int32, tc.users)
			for u := range queries {
				queries[u] = m.User(u)
				for range tc.excl {
					exclude[u] = append(exclude[u], int32(rng.IntN(tc.n)))
				}
			}
			for _, k := range tc.ks {
				want, err := cpu.Score(context.Background(), queries, k, exclude)
				if err != nil {
					t.Fatal(err)
				}
				got, err := gpu.Score(context.Background(), queries, k, exclude)
				if err != nil {
					t.Fatal(err)
				}
				same, nearTies := 0, 0
				for u := range queries {
					if len(got[u]) != len(want[u]) {
						t.Fatalf("k=%d user %d: %d items from cuda, %d from cpu", k, u, len(got[u]), len(want[u]))
					}
					identical := true
					for r := range want[u] {
						g, c := got[u][r], want[u][r]
						// The GPU's own score must be the item's score (to float32
						// rounding of a sum in another order), not just in the right rank.
						if exact := naiveScore(m, queries[u], int(g.Item)); math.Abs(float64(g.Score-exact)) > 1e-5*(1+math.Abs(float64(exact))) {
							t.Errorf("k=%d user %d rank %d: cuda score %g for item %d, cpu-exact %g", k, u, r, g.Score, g.Item, exact)
						}
						if g.Item == c.Item {
							continue
						}
						identical = false
						exact := naiveScore(m, queries[u], int(g.Item))
						if math.Abs(float64(exact-c.Score)) > 1e-5*(1+math.Abs(float64(c.Score))) {
							t.Errorf("k=%d user %d rank %d: cuda item %d (score %g, cpu-exact %g), cpu item %d (score %g)",
								k, u, r, g.Item, g.Score, exact, c.Item, c.Score)
						}
						nearTies++
					}
					if identical {
						same++
					}
				}
				t.Logf("k=%d: %d of %d users identical lists; %d near-tie swaps", k, same, len(queries), nearTies)
			}
		})
	}
}

func TestParityAllTies(t *testing.T) {
	// Every item the same vector: all scores tie exactly, on any device, so the
	// top-k must be the lowest item indices not excluded, in order.
	n, d := 5000, 32
	m := &Model{Dim: d, ItemIDs: make([]string, n), Items: make([]float32, n*d)}
	for i := range n {
		m.ItemIDs[i] = "i" + itoaTest(i)
		for j := range d {
			m.Items[i*d+j] = 0.25
		}
	}
	gpu := openCUDA(t, m, quietOptions())
	q := make([]float32, d)
	for j := range q {
		q[j] = 1
	}
	got, err := gpu.Score(context.Background(), [][]float32{q}, 10, [][]int32{{0, 3}})
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{1, 2, 4, 5, 6, 7, 8, 9, 10, 11}
	if len(got) != 1 || len(got[0]) != len(want) {
		t.Fatalf("got %v, want one list of %d items", got, len(want))
	}
	for r, s := range got[0] {
		if s.Item != want[r] || s.Score != 8 {
			t.Fatalf("rank %d: got %+v, want item %d score 8 (all: %v)", r, s, want[r], got[0])
		}
	}
}

func naiveScore(m *Model, q []float32, i int) float32 {
	s := dotLanes(q, m.Item(i))
	if m.Bias != nil {
		s += m.Bias[i]
	}
	return s
}

func itoaTest(i int) string { return fieldIndex("", i) }
