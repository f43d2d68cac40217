// Package linalg holds the small dense linear algebra that fold-in and ALS share:
// Gram matrices, rank-one updates and Cholesky solves of d×d systems in float64.
package linalg

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// gramChunks is the fixed number of row ranges Gram sums separately; the partial
// sums are added in range order, so the result does not depend on the number of
// cores.
const gramChunks = 64

// Gram returns the d×d matrix YᵀY (row-major, float64) of the row-major n×d
// float32 matrix y, computed over up to GOMAXPROCS goroutines. The result depends
// only on y.
func Gram(y []float32, d int) []float64 {
	n := len(y) / d
	chunks := min(gramChunks, max(n, 1))
	parts := make([][]float64, chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), chunks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			row := make([]float64, d)
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				acc := make([]float64, d*d)
				for i := c * n / chunks; i < (c+1)*n/chunks; i++ {
					for j, v := range y[i*d : (i+1)*d] {
						row[j] = float64(v)
					}
					for a := range d {
						ra := row[a]
						acc := acc[a*d : (a+1)*d]
						for b := a; b < d; b++ {
							acc[b] += ra * row[b]
						}
					}
				}
				parts[c] = acc
			}
		}()
	}
	wg.Wait()
	g := parts[0]
	for _, p := range parts[1:] {
		for i := range g {
			g[i] += p[i]
		}
	}
	for a := range d {
		for b := range a {
			g[a*d+b] = g[b*d+a]
		}
	}
	return g
}

// GramF64 is Gram for a float64 matrix.
func GramF64(y []float64, d int) []float64 {
	n := len(y) / d
	g := make([]float64, d*d)
	for i := range n {
		row := y[i*d : (i+1)*d]
		for a := range d {
			ra := row[a]
			acc := g[a*d : (a+1)*d]
			for b := a; b < d; b++ {
				acc[b] += ra * row[b]
			}
		}
	}
	for a := range d {
		for b := range a {
			g[a*d+b] = g[b*d+a]
		}
	}
	return g
}

// AddOuter adds w·y yᵀ to the lower triangle (j ≤ i) of the row-major d×d
// matrix a: the part SolveSPD reads, at half the cost of the full update.
func AddOuter(a, y []float64, w float64) {
	d := len(y)
	for i := range d {
		wi := w * y[i]
		row := a[i*d : i*d+i+1]
		for j := range row {
			row[j] += wi * y[j]
		}
	}
}

// SolveSPD solves a·x = b for a symmetric positive-definite row-major d×d matrix
// by Cholesky factorization a = LLᵀ. Only the lower triangle of a is read; it is
// overwritten by L.
func SolveSPD(a, b []float64) ([]float64, error) {
	d := len(b)
	for j := range d {
		s := a[j*d+j]
		for k := range j {
			s -= a[j*d+k] * a[j*d+k]
		}
		if !(s > 0) {
			return nil, fmt.Errorf("matrix is not positive definite (pivot %d = %g)", j, s)
		}
		ljj := math.Sqrt(s)
		a[j*d+j] = ljj
		for i := j + 1; i < d; i++ {
			s := a[i*d+j]
			for k := range j {
				s -= a[i*d+k] * a[j*d+k]
			}
			a[i*d+j] = s / ljj
		}
	}
	x := make([]float64, d)
	for i := range d { // L z = b
		s := b[i]
		for k := range i {
			s -= a[i*d+k] * x[k]
		}
		x[i] = s / a[i*d+i]
	}
	for i := d - 1; i >= 0; i-- { // Lᵀ x = z
		s := x[i]
		for k := i + 1; k < d; k++ {
			s -= a[k*d+i] * x[k]
		}
		x[i] = s / a[i*d+i]
	}
	return x, nil
}
