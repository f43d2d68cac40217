package journey

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/liftlab/lift/analysis/bandit"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// Exploration applied to a decision, as its provenance states it.
const (
	ExploredNone     = "none"           // the model's greedy order only
	ExploredEpsilon  = "epsilon_greedy" // slots replaced, each with probability ε, by random catalog items
	ExploredThompson = "thompson"       // the budget's slots filled by Thompson sampling over items
)

// Lifecycle stages of a unit under thompson exploration.
const (
	StageNew         = "new"         // fewer known recent items than min_history: Thompson sampling
	StageEstablished = "established" // the others: ε-greedy
)

// thompsonPool is how many candidates beyond k the scorer returns for Thompson
// sampling, as a multiple of k: the exploration slots are drawn from the
// model's ranks k−b+1 … 4k, so exploration stays among items the model finds
// relevant for the unit.
const thompsonPool = 3

// itemRewards is the per-item click record of a journey, cached.
type itemRewards struct {
	stats map[string]bandit.ArmStats // Beta–Bernoulli sufficient statistics: shown (N), clicked (Sum)
	at    time.Time
}

// rewardsOf returns journey l's item rewards (store.ItemRewards). The first
// decision of a journey (and the first after Invalidate) reads them, the
// others waiting; once they are older than Options.RewardTTL, one decision
// starts a read in the background and every decision uses the previous ones
// until it is done, so that the read does not spend a decision's budget.
func (d *Decider) rewardsOf(ctx context.Context, l *loaded) (map[string]bandit.ArmStats, error) {
	key := l.j.Key
	d.mu.RLock()
	r := d.rewards[key]
	d.mu.RUnlock()
	if r != nil && time.Since(r.at) < d.opt.RewardTTL {
		return r.stats, nil
	}
	if r != nil {
		if !d.closed.Load() && d.rewardMu.TryLock() { // else closing, or another read is under way
			d.bg.Add(1)
			go func() {
				defer d.bg.Done()
				defer d.rewardMu.Unlock()
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				if _, err := d.readRewards(ctx, l); err != nil {
					d.opt.Logger.Warn("journey item rewards", "journey", key, "err", err)
				}
			}()
		}
		return r.stats, nil
	}
	d.rewardMu.Lock()
	defer d.rewardMu.Unlock()
	d.mu.RLock()
	r = d.rewards[key]
	d.mu.RUnlock()
	if r != nil {
		return r.stats, nil
	}
	return d.readRewards(ctx, l)
}

// readRewards reads journey l's item rewards and caches them.
func (d *Decider) readRewards(ctx context.Context, l *loaded) (map[string]bandit.ArmStats, error) {
	rows, err := d.db.ItemRewards(ctx, l.j.Key, l.j.Exploration.RewardEvent)
	if err != nil {
		return nil, err
	}
	stats := make(map[string]bandit.ArmStats, len(rows))
	for _, x := range rows {
		c := float64(min(x.Clicked, x.Shown))
		stats[x.Item] = bandit.ArmStats{N: float64(x.Shown), Sum: c, SumSq: c}
	}
	d.mu.Lock()
	d.rewards[l.j.Key] = &itemRewards{stats: stats, at: time.Now()}
	d.mu.Unlock()
	return stats, nil
}

// plan is the exploration a decision gets: the stage of the unit, and under
// thompson the number of slots the bandit fills.
type explorePlan struct {
	applied string // ExploredNone, ExploredEpsilon or ExploredThompson
	stage   string // under thompson: StageNew or StageEstablished
	slots   int    // Thompson slots
	eps     float64
}

// planExploration chooses a decision's exploration from the journey's policy
// and the unit's known recent items (its lifecycle stage): thompson gives new
// units ⌊budget·k⌋ Thompson slots (at least one while budget > 0) and
// established ones ε-greedy; epsilon_greedy gives everyone ε-greedy.
func planExploration(x experiment.Exploration, k, history int) explorePlan {
	p := explorePlan{applied: ExploredNone}
	switch x.Kind {
	case experiment.ExploreEpsilonGreedy:
		if x.Epsilon > 0 {
			p.applied, p.eps = ExploredEpsilon, x.Epsilon
		}
	case experiment.ExploreThompson:
		if history < x.MinHistory {
			p.stage = StageNew
			if x.Budget > 0 {
				p.applied, p.slots = ExploredThompson, min(k, max(1, int(x.Budget*float64(k))))
			}
		} else {
			p.stage = StageEstablished
			if x.Epsilon > 0 {
				p.applied, p.eps = ExploredEpsilon, x.Epsilon
			}
		}
	}
	return p
}

// candidates is how many items to ask the scorer for.
func (p explorePlan) candidates(k int) int {
	if p.applied == ExploredThompson {
		return k + thompsonPool*k
	}
	return k
}

// thompsonItems keeps the model's first k − b items and fills the last b slots
// by Thompson sampling (bandit.PickItems) over the other candidates, each
// item's posterior Beta(1 + clicked, 1 + shown − clicked) from the journey's
// record. A picked item i is returned as Item = −(i+1), so that the caller can
// tell it apart; the list is k long or, with fewer candidates, all of them.
func thompsonItems(m *scorer.Model, scored []scorer.Scored, k, b int, rewards map[string]bandit.ArmStats, rng *mrand.Rand) []scorer.Scored {
	keep := max(0, min(k-b, len(scored)))
	pool := scored[keep:]
	stats := make([]bandit.ArmStats, len(pool))
	for i, s := range pool {
		stats[i] = rewards[m.ItemIDs[s.Item]]
	}
	out := append(make([]scorer.Scored, 0, k), scored[:keep]...)
	for _, i := range bandit.PickItems(stats, k-keep, rng) {
		s := pool[i]
		out = append(out, scorer.Scored{Item: -(s.Item + 1), Score: s.Score})
	}
	return out
}

// thompsonReason explains a slot Thompson sampling filled.
func thompsonReason(a bandit.ArmStats) string {
	if a.N == 0 {
		return exploredReason
	}
	return fmt.Sprintf("exploring: clicked %d of %d times shown", int64(a.Sum), int64(a.N))
}
