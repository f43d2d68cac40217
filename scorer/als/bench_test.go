package als

import (
	"context"
	"testing"
)

// BenchmarkTrain fits d = 64 ALS, 15 sweeps, with each solver, on 10,000 users × 2,000 items with
// 20 events each (the planted-cluster generator).
//
//	go test -run '^$' -bench Train -benchtime 1x ./scorer/als
func BenchmarkTrain(b *testing.B) {
	ds, err := NewDataset(planted(10_000, 100, 20, 20, 1))
	if err != nil {
		b.Fatal(err)
	}
	for _, solver := range []string{SolverCholesky, SolverCG} {
		b.Run(solver, func(b *testing.B) {
			for b.Loop() {
				if _, err := Train(context.Background(), ds, Options{Factors: 64, Iterations: 15, Solver: solver}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
