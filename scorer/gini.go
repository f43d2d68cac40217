package scorer

import "sort"

// Gini returns the Gini coefficient of non-negative exposure counts x (one per
// catalog item, zeros included): 0 when every item is shown equally often, → 1 when
// one item takes every exposure. With x sorted ascending and i = 1…n,
//
//	G = Σᵢ (2i − n − 1)·x₍ᵢ₎ / (n·Σᵢ x₍ᵢ₎)
//
// (the mean-difference form; Damgaard & Weiner 2000, Ecology 81:1139). It is 0 for
// an empty or all-zero x. A rising Gini of item exposures means recommendations are
// narrowing onto fewer items.
func Gini(x []float64) float64 {
	n := len(x)
	if n == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	var num, sum float64
	for i, v := range s {
		num += float64(2*(i+1)-n-1) * v
		sum += v
	}
	if sum == 0 {
		return 0
	}
	return num / (float64(n) * sum)
}
