package analysis

import (
	"math"
	"sort"
)

// HolmAdjust returns Holm's (1979) step-down adjusted p-values, as R's
// p.adjust(p, "holm"): with p sorted increasingly, p̃_(i) = max_{j≤i} min(1, (m−j+1)p_(j)).
// Rejecting p̃ < α controls the family-wise error rate at α.
func HolmAdjust(p []float64) []float64 {
	m := len(p)
	idx := order(p)
	out := make([]float64, m)
	run := 0.0
	for rank, i := range idx {
		v := math.Min(1, float64(m-rank)*p[i])
		run = math.Max(run, v)
		out[i] = run
	}
	return out
}

// BHAdjust returns Benjamini & Hochberg's (1995) step-up adjusted p-values
// (q-values), as R's p.adjust(p, "BH"): with p sorted increasingly,
// p̃_(i) = min_{j≥i} min(1, m·p_(j)/j). Rejecting p̃ < q controls the false
// discovery rate at q for independent (or positively dependent) tests.
func BHAdjust(p []float64) []float64 {
	m := len(p)
	idx := order(p)
	out := make([]float64, m)
	run := 1.0
	for rank := m - 1; rank >= 0; rank-- {
		i := idx[rank]
		run = math.Min(run, math.Min(1, float64(m)*p[i]/float64(rank+1)))
		out[i] = run
	}
	return out
}

func order(p []float64) []int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	return idx
}

// Adjust applies a multiple-testing correction across every comparison of the
// given results (all metrics and variants together), separately for the
// absolute and the relative p-values, and stores them in each comparison's
// Adjusted field. Comparisons flagged as degenerate take part with p = 1.
func Adjust(results []*MetricResult, method Correction) {
	if method == NoCorrection {
		return
	}
	var abs, rel []float64
	for _, r := range results {
		for _, c := range r.Comparisons {
			abs = append(abs, c.Absolute.PValue)
			rel = append(rel, c.Relative.PValue)
		}
	}
	f := HolmAdjust
	if method == BenjaminiHochberg {
		f = BHAdjust
	}
	abs, rel = f(abs), f(rel)
	k := 0
	for _, r := range results {
		for i := range r.Comparisons {
			r.Comparisons[i].Adjusted = &Adjusted{Method: method, Absolute: abs[k], Relative: rel[k]}
			k++
		}
	}
}
