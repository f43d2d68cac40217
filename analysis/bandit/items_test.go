package bandit

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPickItemsProbability: with one slot, an item is picked with its
// posterior probability of being the better one. Item a was clicked 3 times
// in 10, item b once in 10: P(Beta(4, 8) > Beta(2, 10)) = 0.8446115288220547
// (scipy 1.10: a, b = stats.beta(4, 8), stats.beta(2, 10);
// integrate.quad(lambda x: a.pdf(x)*b.cdf(x), 0, 1)). 20,000 picks: within 6
// standard deviations of a binomial share, a false failure is negligible.
func TestPickItemsProbability(t *testing.T) {
	const want, n = 0.8446115288220547, 20000
	rng := rand.New(rand.NewPCG(7, 11))
	items := []ArmStats{{N: 10, Sum: 3, SumSq: 3}, {N: 10, Sum: 1, SumSq: 1}}
	wins := 0
	for range n {
		p := PickItems(items, 1, rng)
		if len(p) != 1 {
			t.Fatalf("picked %v, want one item", p)
		}
		if p[0] == 0 {
			wins++
		}
	}
	got, sd := float64(wins)/n, math.Sqrt(want*(1-want)/n)
	if math.Abs(got-want) > 6*sd {
		t.Errorf("item a picked %.4f of the time, want %.4f ± %.4f", got, want, 6*sd)
	}
	if p := PickItems(items, 5, rng); len(p) != 2 || p[0] == p[1] {
		t.Errorf("b above the candidates: %v, want both, once each", p)
	}
}

// TestPickItemsConverges simulates the journeys' exploration slots: 2 slots
// per decision over 20 candidate items whose true click rates are 0.30 and
// 0.25 for items 0 and 1 and 0.05 for the rest, 4,000 decisions, 40 seeded
// replications. Thompson sampling must converge onto the two best items: in
// the last 1,000 decisions they fill at least 85% of the slots in every
// replication (a uniform choice fills 10%), and the clicks lost to the best
// pair (regret) grow more slowly in the second half than in the first.
func TestPickItemsConverges(t *testing.T) {
	rate := func(i int) float64 {
		switch i {
		case 0:
			return 0.30
		case 1:
			return 0.25
		}
		return 0.05
	}
	const decisions, reps = 4000, 40
	var regretFirst, regretSecond float64
	for rep := range reps {
		rng := rand.New(rand.NewPCG(uint64(rep), 99))
		items := make([]ArmStats, 20)
		best := 0
		for d := range decisions {
			for _, i := range PickItems(items, 2, rng) {
				click := 0.0
				if rng.Float64() < rate(i) {
					click = 1
				}
				items[i] = items[i].Add(ArmStats{N: 1, Sum: click, SumSq: click})
				lost := rate(0) + rate(1)
				lost = lost/2 - rate(i)
				if d < decisions/2 {
					regretFirst += lost
				} else {
					regretSecond += lost
				}
				if d >= decisions-1000 && i < 2 {
					best++
				}
			}
		}
		if share := float64(best) / 2000; share < 0.85 {
			t.Errorf("replication %d: the two best items filled %.3f of the last 1,000 decisions' slots, want ≥ 0.85", rep, share)
		}
	}
	t.Logf("regret per replication: first half %.1f clicks, second half %.1f", regretFirst/reps, regretSecond/reps)
	if !(regretSecond < regretFirst/2) {
		t.Errorf("regret first half %.1f, second half %.1f: want the second under half the first (convergence)", regretFirst/reps, regretSecond/reps)
	}
}
