package bandit

import (
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// PickItems is Thompson sampling over items with binary rewards (Chapelle &
// Li 2011; Russo et al. 2018 §3): each candidate i, shown n_i times and
// clicked c_i of them, gets a draw θ_i ~ Beta(1 + c_i, 1 + n_i − c_i) (the
// posterior under a uniform prior), and the b candidates with the largest
// draws are returned, best draw first, as indexes into items (all of them
// when b ≥ len(items)). An item is chosen with its posterior probability of
// being among the b best, so items that are rarely clicked fade and unseen
// ones are tried. It panics when a count is out of range (a caller bug).
func PickItems(items []ArmStats, b int, rng *rand.Rand) []int {
	type draw struct {
		i     int
		theta float64
	}
	ds := make([]draw, len(items))
	for i, a := range items {
		if a.N < 0 || a.Sum < 0 || a.Sum > a.N {
			panic("bandit: PickItems needs 0 ≤ clicks ≤ shown")
		}
		ds[i] = draw{i, distuv.Beta{Alpha: 1 + a.Sum, Beta: 1 + a.N - a.Sum, Src: rng}.Rand()}
	}
	slices.SortStableFunc(ds, func(x, y draw) int {
		switch {
		case x.theta > y.theta:
			return -1
		case x.theta < y.theta:
			return 1
		}
		return 0
	})
	out := make([]int, 0, min(b, len(ds)))
	for _, d := range ds[:min(b, len(ds))] {
		out = append(out, d.i)
	}
	return out
}
