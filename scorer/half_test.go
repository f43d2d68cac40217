package scorer

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestToHalf checks the rounding to half precision against numpy (1.24):
//
//	vals = np.array([0.0, -0.0, 1.0, -2.5, 0.1, 1/3, 65504.0, 65520.0, 65519.0, 1e-5, 6.0e-8, 2.98e-8,
//	                 3.0e-8, 5.96e-8, -1.5e-7, 2049.0, 2051.0, 0.33325195, 1e6, 6.1035156e-05, 6.097e-05], dtype=np.float32)
//	print([hex(x) for x in vals.astype(np.float16).view(np.uint16)])
func TestToHalf(t *testing.T) {
	vals := []float32{0.0, float32(math.Copysign(0, -1)), 1.0, -2.5, 0.1, 1.0 / 3, 65504.0, 65520.0, 65519.0, 1e-5, 6.0e-8, 2.98e-8,
		3.0e-8, 5.96e-8, -1.5e-7, 2049.0, 2051.0, 0.33325195, 1e6, 6.1035156e-05, 6.097e-05}
	want := []uint16{0x0, 0x8000, 0x3c00, 0xc100, 0x2e66, 0x3555, 0x7bff, 0x7c00, 0x7bff, 0xa8, 0x1, 0x0, 0x1, 0x1, 0x8003, 0x6800, 0x6802,
		0x3555, 0x7c00, 0x400, 0x3ff} // numpy
	for i, v := range vals {
		if h := toHalf(v); h != want[i] {
			t.Errorf("toHalf(%g) = %#x, want numpy's %#x", v, h, want[i])
		}
	}
	// Widening is exact: every finite half round-trips.
	for h := range uint16(0x7c00) {
		for _, s := range []uint16{0, 0x8000} {
			if got := toHalf(fromHalf(h | s)); got != h|s {
				t.Fatalf("toHalf(fromHalf(%#x)) = %#x", h|s, got)
			}
		}
	}
}

// TestF16KernelMatchesGo: the assembly kernel gives the bits of dotLanes over
// the widened rows, with and without bias.
func TestF16KernelMatchesGo(t *testing.T) {
	if !useAsmF16 {
		t.Skip("no AVX2/FMA/F16C on this CPU: only the Go path runs")
	}
	rng := rand.New(rand.NewPCG(16, 1))
	for _, tc := range []struct{ d, nb int }{{8, 8}, {64, 37}, {16, 3}, {24, 101}, {64, 16}} {
		items := make([]float32, tc.nb*tc.d)
		q := make([]float32, tc.d)
		bias := make([]float32, tc.nb)
		for i := range items {
			items[i] = float32(rng.NormFloat64())
		}
		for j := range q {
			q[j] = float32(rng.NormFloat64())
		}
		for i := range bias {
			bias[i] = float32(rng.NormFloat64())
		}
		h := halfItems(items)
		for _, b := range [][]float32{nil, bias} {
			s := make([]float32, tc.nb)
			dot1h(q, h, b, s, nil, make([]float32, tc.d))
			for i := range s {
				row := make([]float32, tc.d)
				for j := range row {
					row[j] = fromHalf(h[i*tc.d+j])
				}
				want := dotLanes(q, row)
				if b != nil {
					want += b[i]
				}
				if math.Float32bits(s[i]) != math.Float32bits(want) {
					t.Fatalf("d=%d item %d: %g, want %g", tc.d, i, s[i], want)
				}
			}
		}
	}
}

// TestCPUF16 ranks like the reference ranking over the half-precision items, and
// measures the accuracy change against float32 on a 100,000 × 64 random model
// (200 queries, k = 10): recall@10 (the share of float32's top 10 that f16
// returns) and the share of queries whose top 10, in order, is float32's. The
// figures (seeded) are in BENCHMARKS.md; the test holds recall ≥ 0.95.
func TestCPUF16(t *testing.T) {
	if _, err := NewCPU(randomModel(t, 10, 8, 1, 0, false, 1), Options{Precision: "bf16"}); err == nil {
		t.Error("precision bf16: no error")
	}
	m := randomModel(t, 100000, 64, 200, 0, true, 16)
	f32, err := NewCPU(m, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	f16, err := NewCPU(m, Options{Workers: 2, Precision: PrecisionF16})
	if err != nil {
		t.Fatal(err)
	}
	rounded := &Model{Dim: m.Dim, ItemIDs: m.ItemIDs, Bias: m.Bias, Items: make([]float32, len(m.Items))}
	for i, v := range m.Items {
		rounded.Items[i] = fromHalf(toHalf(v))
	}
	qs := make([][]float32, m.NUsers())
	for u := range qs {
		qs[u] = m.User(u)
	}
	ctx := context.Background()
	a, err := f32.Score(ctx, qs, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	excl := make([][]int32, len(qs))
	excl[0] = []int32{1, 2, 3}
	b, err := f16.Score(ctx, qs, 10, excl)
	if err != nil {
		t.Fatal(err)
	}
	if want := naiveTopK(rounded, qs[0], 10, []int32{1, 2, 3}); !slices.Equal(b[0], want) {
		t.Fatalf("f16 query 0: %v, want the reference over the rounded items %v", b[0], want)
	}
	if b, err = f16.Score(ctx, qs, 10, nil); err != nil {
		t.Fatal(err)
	}
	for u := 1; u < 5; u++ {
		if want := naiveTopK(rounded, qs[u], 10, nil); !slices.Equal(b[u], want) {
			t.Fatalf("f16 query %d: %v, want %v", u, b[u], want)
		}
	}
	var hits, same int
	for u := range qs {
		ia, ib := itemsOfScored(a[u]), itemsOfScored(b[u])
		for _, it := range ib {
			if slices.Contains(ia, it) {
				hits++
			}
		}
		if slices.Equal(ia, ib) {
			same++
		}
	}
	recall, agree := float64(hits)/float64(10*len(qs)), float64(same)/float64(len(qs))
	t.Logf("f16 vs f32 (100,000 × 64, %d queries): recall@10 %.4f, identical top-10 order %.3f; %s", len(qs), recall, agree, f16.Name())
	if recall < 0.95 {
		t.Errorf("recall@10 %.4f, want at least 0.95", recall)
	}
}

func itemsOfScored(s []Scored) []int32 {
	out := make([]int32, len(s))
	for i, x := range s {
		out[i] = x.Item
	}
	return out
}

// BenchmarkCPUScoreF16 is BenchmarkCPUScore in half precision, beside float32
// in the same run:
//
//	go test -run '^$' -bench 'CPUScoreF16' -benchtime 5x ./scorer
func BenchmarkCPUScoreF16(b *testing.B) {
	m := benchModel()
	s32, _ := NewCPU(m, Options{})
	s16, _ := NewCPU(m, Options{Precision: PrecisionF16})
	for _, batch := range []int{1, 8, 32} {
		for _, s := range []struct {
			name string
			s    *CPU
		}{{"f32", s32}, {"f16", s16}} {
			b.Run(s.name+"/batch="+strconv.Itoa(batch), func(b *testing.B) { benchScore(b, s.s, m, batch) })
		}
	}
}
