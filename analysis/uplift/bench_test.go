package uplift

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// BenchmarkXLearner1M trains the X-learner with boosted trees (defaults:
// 100 rounds, depth 4, learning rate 0.1, 255 bins) on 1,000,000 rows × 20
// features, half treated: four boosted models on about 500,000 rows each.
// Goal: under 60 s on 2 cores. Run it once:
//
//	go test ./analysis/uplift -run '^$' -bench XLearner1M -benchtime 1x
func BenchmarkXLearner1M(b *testing.B) {
	const n, p = 1_000_000, 20
	rng := rand.New(rand.NewPCG(1, 2))
	x := mat.NewDense(n, p, nil)
	w := make([]bool, n)
	y := make([]float64, n)
	for i := 0; i < n; i++ {
		r := x.RawRowView(i)
		for j := range r {
			r[j] = rng.NormFloat64()
		}
		w[i] = rng.IntN(2) == 1
		y[i] = r[0] + 0.5*r[1]*r[2] + rng.NormFloat64()
		if w[i] {
			y[i] += 0.5 + r[3]
			if r[4] > 0 {
				y[i]++
			}
		}
	}
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for range b.N {
		m, err := XLearner{Outcome: DefaultBoosting()}.Fit(x, w, y)
		if err != nil {
			b.Fatal(err)
		}
		_ = m
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
}

// cpuSeconds is the process's user + system CPU time: on a shared machine it
// is a steadier measure of the work than the wall clock.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
