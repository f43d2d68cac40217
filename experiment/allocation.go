package experiment

import (
	"math"
	"time"
)

// Allocation is how an experiment's traffic is split. Absent (or kind
// "fixed"), the variants' weights hold for the whole experiment. Kind "bandit"
// makes them the first period's weights: each Period the weights are
// recomputed from the Reward metric's posterior per arm by Thompson sampling
// (analysis/bandit; docs/bandits.md), and every recomputation is a stored
// weight version. A unit keeps the arm of the version at which it first
// entered.
type Allocation struct {
	Kind       string  `json:"kind"`                  // "fixed" or "bandit"
	Reward     string  `json:"reward,omitempty"`      // the reward metric, one of the experiment's metrics
	RewardKind string  `json:"reward_kind,omitempty"` // "binary" (default) or "continuous"
	Period     string  `json:"period,omitempty"`      // a Go duration, at least 1m, default "1h"
	MinShare   float64 `json:"min_share,omitempty"`   // the floor per arm, in [0, 1/K]
	BurnIn     int     `json:"burn_in,omitempty"`     // units every arm needs before the weights move
	TopTwo     bool    `json:"top_two,omitempty"`     // top-two Thompson sampling
	Beta       float64 `json:"beta,omitempty"`        // top-two: probability of the leader, default 0.5
}

// The allocation kinds.
const (
	AllocationFixed  = "fixed"
	AllocationBandit = "bandit"
)

// IsBandit reports whether the experiment's allocation is adaptive.
func (e *Experiment) IsBandit() bool {
	return e.Allocation != nil && e.Allocation.Kind == AllocationBandit
}

// PeriodOr1h returns the allocation's period, one hour when unset.
func (a *Allocation) PeriodOr1h() time.Duration {
	d, err := time.ParseDuration(a.Period)
	if a.Period == "" || err != nil {
		return time.Hour
	}
	return d
}

func (a *Allocation) applyDefaults() {
	if a.Kind != AllocationBandit {
		return
	}
	if a.RewardKind == "" {
		a.RewardKind = "binary"
	}
	if a.Period == "" {
		a.Period = "1h"
	}
	if a.TopTwo && a.Beta == 0 {
		a.Beta = 0.5
	}
}

// validate checks an allocation of an experiment with k variants whose
// metrics are names.
func (a *Allocation) validate(op string, k int, names map[string]bool) error {
	switch a.Kind {
	case AllocationFixed:
		return nil
	case AllocationBandit:
	default:
		return invalid(op, "allocation.kind", `must be "fixed" or "bandit", got %q`, a.Kind)
	}
	if a.Reward == "" {
		return invalid(op, "allocation.reward", "must name the reward metric")
	}
	if !names[a.Reward] {
		return invalid(op, "allocation.reward", "%q is not among the experiment's metrics", a.Reward)
	}
	if a.RewardKind != "binary" && a.RewardKind != "continuous" {
		return invalid(op, "allocation.reward_kind", `must be "binary" or "continuous", got %q`, a.RewardKind)
	}
	d, err := time.ParseDuration(a.Period)
	if err != nil {
		return invalid(op, "allocation.period", "must be a duration such as \"1h\", got %q", a.Period)
	}
	if d < time.Minute {
		return invalid(op, "allocation.period", "must be at least 1m, got %s", d)
	}
	if max := 1 / float64(k); math.IsNaN(a.MinShare) || a.MinShare < 0 || a.MinShare > max+1e-12 {
		return invalid(op, "allocation.min_share", "must be in [0, 1/%d], got %g", k, a.MinShare)
	}
	if a.BurnIn < 0 {
		return invalid(op, "allocation.burn_in", "must be at least 0, got %d", a.BurnIn)
	}
	if math.IsNaN(a.Beta) || a.Beta < 0 || a.Beta > 1 {
		return invalid(op, "allocation.beta", "must be in [0, 1], got %g", a.Beta)
	}
	return nil
}

// BanditVersion is one stored weight version of a bandit experiment: the
// weights served from CreatedAt until the next version, in variant order, and
// the probability each arm was best when they were computed. Version 0 is the
// experiment's declared weights.
type BanditVersion struct {
	Experiment string    `json:"experiment"`
	Version    int       `json:"version"`
	Weights    []float64 `json:"weights"`
	ProbBest   []float64 `json:"prob_best"`
	BurnIn     bool      `json:"burn_in"`
	CreatedAt  time.Time `json:"created_at"`
}
