//go:build unix

package scorer

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// benchModel is the speed scenario: a catalog of 1M items × 64 dimensions with a
// bias, and 256 users; built once per test binary run.
var benchModel = sync.OnceValue(func() *Model {
	const n, d, users = 1_000_000, 64, 256
	rng := rand.New(rand.NewPCG(1, 2))
	m := &Model{Dim: d, ItemIDs: make([]string, n), Items: make([]float32, n*d), Bias: make([]float32, n),
		UserIDs: make([]string, users), Users: make([]float32, users*d)}
	for i := range n {
		m.ItemIDs[i] = "i" + strconv.Itoa(i)
		m.Bias[i] = rng.Float32() * 0.01
	}
	for i := range m.Items {
		m.Items[i] = rng.Float32() - 0.5
	}
	for u := range users {
		m.UserIDs[u] = "u" + strconv.Itoa(u)
	}
	for i := range m.Users {
		m.Users[i] = rng.Float32() - 0.5
	}
	return m
})

// benchScore reports users scored per second and the effective read rate of the
// item matrix (n·d·4 bytes per Score call).
func benchScore(b *testing.B, s Scorer, m *Model, batch int) {
	queries := make([][]float32, batch)
	for u := range queries {
		queries[u] = m.User(u % m.NUsers())
	}
	ctx := context.Background()
	if _, err := s.Score(ctx, queries, 10, nil); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		if _, err := s.Score(ctx, queries, 10, nil); err != nil {
			b.Fatal(err)
		}
	}
	sec := time.Since(start).Seconds()
	b.ReportMetric(float64(batch*b.N)/sec, "users/s")
	// Users per second of this process's CPU time (user + system, all threads): on a
	// shared machine, what the backend would do per core it had to itself.
	b.ReportMetric(float64(batch*b.N)/(cpuTime()-cpu0).Seconds(), "users/cpu-s")
	b.ReportMetric(float64(len(m.Items)*4)*float64(b.N)/sec/1e9, "itemGB/s")
}

// cpuTime returns the CPU time this process has used (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCPUScore: catalog 1M × 64, k = 10, batch sizes 1 to 256 (a journey
// server at a few hundred decisions/s forms batches of about 8–32).
//
//	go test -run '^$' -bench 'CPUScore|MemCopy' -benchtime 5x ./scorer
func BenchmarkCPUScore(b *testing.B) {
	m := benchModel()
	s, _ := NewCPU(m, Options{})
	for _, batch := range []int{1, 8, 16, 32, 64, 256} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) { benchScore(b, s, m, batch) })
	}
}

// BenchmarkCUDAScore is BenchmarkCPUScore on the GPU; it skips without CUDA.
func BenchmarkCUDAScore(b *testing.B) {
	m := benchModel()
	s, err := NewCUDA(context.Background(), m, quietOptions())
	if err != nil {
		if requireCUDA() {
			b.Fatalf("LIFT_REQUIRE_CUDA=1 but the cuda backend did not start: %v", err)
		}
		b.Skipf("CUDA unavailable: %v", err)
	}
	defer s.Close()
	b.Logf("backend: %s", s.Name())
	for _, batch := range []int{1, 64, 256} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) { benchScore(b, s, m, batch) })
	}
}

// BenchmarkMemCopy measures this machine's memory bandwidth with a 256 MB copy
// (the size of the 1M × 64 item matrix), counting bytes read plus bytes written,
// over as many goroutines as cores (copy is what STREAM calls "Copy").
func BenchmarkMemCopy(b *testing.B) {
	const size = 256 << 20
	src := make([]byte, size)
	dst := make([]byte, size)
	for i := range src {
		src[i] = byte(i)
		dst[i] = 1 // fault the pages in before timing
	}
	workers := DefaultOptions().Workers
	b.SetBytes(2 * size)
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lo, hi := w*size/workers, (w+1)*size/workers
				copy(dst[lo:hi], src[lo:hi])
			}()
		}
		wg.Wait()
	}
}

// BenchmarkKernel compares, on one cache-resident block (2048 items × 64, 64
// users), the cpu backend's kernel (AVX2 assembly where available) with gonum's SGEMM
// (blas32.Gemm, whose inner dot product is SSE assembly).
func BenchmarkKernel(b *testing.B) {
	const nb, d, users = 2048, 64, 64
	rng := rand.New(rand.NewPCG(1, 1))
	items := make([]float32, nb*d)
	q := make([]float32, users*d)
	for i := range items {
		items[i] = rng.Float32()
	}
	for i := range q {
		q[i] = rng.Float32()
	}
	out := make([]float32, users*nb)
	flops := float64(2 * nb * d * users)
	b.Run("lift-kernel", func(b *testing.B) {
		for b.Loop() {
			for u := 0; u < users; u += 2 {
				dot2(q[u*d:(u+1)*d], q[(u+1)*d:(u+2)*d], items, nil, out[u*nb:(u+1)*nb], out[(u+1)*nb:(u+2)*nb], nil)
			}
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("gonum-sgemm", func(b *testing.B) {
		A := blas32.General{Rows: users, Cols: d, Stride: d, Data: q}
		B := blas32.General{Rows: nb, Cols: d, Stride: d, Data: items}
		C := blas32.General{Rows: users, Cols: nb, Stride: nb, Data: out}
		for b.Loop() {
			blas32.Gemm(blas.NoTrans, blas.Trans, 1, A, B, 0, C)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
