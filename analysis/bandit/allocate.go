package bandit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/liftlab/lift/experiment"
)

// Reward is the kind of reward metric: it selects the posterior.
type Reward string

const (
	// Binary rewards (a conversion): Beta–Binomial.
	Binary Reward = "binary"
	// Continuous rewards: normal with unknown variance.
	Continuous Reward = "continuous"
)

// ArmStats are one arm's sufficient statistics: units, Σy and Σy² (for a
// binary reward Σy² = Σy, the count of successes).
type ArmStats struct {
	N     float64 `json:"n"`
	Sum   float64 `json:"sum"`
	SumSq float64 `json:"sum_sq"`
}

// Mean returns Σy/n (0 for an empty arm).
func (a ArmStats) Mean() float64 {
	if a.N == 0 {
		return 0
	}
	return a.Sum / a.N
}

// Var returns the sample variance Σ(y − ȳ)²/(n − 1) (0 when n < 2).
func (a ArmStats) Var() float64 {
	if a.N < 2 {
		return 0
	}
	v := (a.SumSq - a.Sum*a.Sum/a.N) / (a.N - 1)
	return math.Max(v, 0)
}

// Add returns the sums of a and b.
func (a ArmStats) Add(b ArmStats) ArmStats {
	return ArmStats{N: a.N + b.N, Sum: a.Sum + b.Sum, SumSq: a.SumSq + b.SumSq}
}

// Config is the allocation policy of a bandit.
type Config struct {
	Reward   Reward  `json:"reward_kind"`
	MinShare float64 `json:"min_share"` // the floor per arm, in [0, 1/K]
	BurnIn   int     `json:"burn_in"`   // units every arm needs before the weights move
	TopTwo   bool    `json:"top_two"`   // top-two Thompson sampling
	Beta     float64 `json:"beta"`      // top-two: probability of playing the leader, default 0.5
	Draws    int     `json:"draws"`     // posterior draws for the probability best, default 10,000
}

// DefaultDraws is the number of posterior draws when Config.Draws is 0: the
// Monte-Carlo standard error of a probability is then at most 0.005.
const DefaultDraws = 10000

// Allocation is one period's answer: the weights to serve and why.
type Allocation struct {
	Weights  []float64 `json:"weights"`
	ProbBest []float64 `json:"prob_best"`
	BurnIn   bool      `json:"burn_in"` // true: equal weights, some arm has fewer than BurnIn units
}

func (c Config) validate(k int) error {
	const op = "bandit.Config"
	if k < 2 {
		return experiment.E(op, experiment.Invalid, experiment.Field("arms"), fmt.Errorf("a bandit needs at least 2 arms, got %d", k))
	}
	if c.Reward != Binary && c.Reward != Continuous {
		return experiment.E(op, experiment.Invalid, experiment.Field("reward_kind"), fmt.Errorf("must be %q or %q, got %q", Binary, Continuous, c.Reward))
	}
	if !(c.MinShare >= 0) || c.MinShare*float64(k) > 1 {
		return experiment.E(op, experiment.Invalid, experiment.Field("min_share"), fmt.Errorf("must be in [0, 1/%d], got %v", k, c.MinShare))
	}
	if c.BurnIn < 0 {
		return experiment.E(op, experiment.Invalid, experiment.Field("burn_in"), fmt.Errorf("must be at least 0, got %d", c.BurnIn))
	}
	if c.TopTwo && (c.Beta < 0 || c.Beta > 1) {
		return experiment.E(op, experiment.Invalid, experiment.Field("beta"), fmt.Errorf("must be in [0, 1], got %v", c.Beta))
	}
	if c.Draws < 0 {
		return experiment.E(op, experiment.Invalid, experiment.Field("draws"), fmt.Errorf("must be at least 0, got %d", c.Draws))
	}
	return nil
}

// Weights computes the next period's weights from every arm's sums so far.
func Weights(c Config, arms []ArmStats, rng *rand.Rand) (Allocation, error) {
	k := len(arms)
	if err := c.validate(k); err != nil {
		return Allocation{}, err
	}
	equal := make([]float64, k)
	for i := range equal {
		equal[i] = 1 / float64(k)
	}
	for _, a := range arms {
		if a.N < float64(c.BurnIn) || (c.Reward == Continuous && a.N < 2) {
			return Allocation{Weights: equal, ProbBest: append([]float64(nil), equal...), BurnIn: true}, nil
		}
	}
	draws := c.Draws
	if draws == 0 {
		draws = DefaultDraws
	}
	pi, err := ProbBest(c.Reward, arms, draws, rng)
	if err != nil {
		return Allocation{}, err
	}
	psi := pi
	if c.TopTwo {
		beta := c.Beta
		if beta == 0 {
			beta = 0.5
		}
		psi = TopTwo(pi, beta)
	}
	w := make([]float64, k)
	for i := range w {
		w[i] = c.MinShare + (1-float64(k)*c.MinShare)*psi[i]
	}
	return Allocation{Weights: w, ProbBest: pi}, nil
}

// ProbBest estimates, by draws from the posteriors, the probability that each
// arm has the largest mean. Ties (possible only with identical draws) go to
// the first arm.
func ProbBest(kind Reward, arms []ArmStats, draws int, rng *rand.Rand) ([]float64, error) {
	const op = "bandit.ProbBest"
	if draws < 1 {
		panic("bandit: ProbBest needs at least one draw")
	}
	samplers := make([]func() float64, len(arms))
	for i, a := range arms {
		field := fmt.Sprintf("arms[%d]", i)
		if a.N < 0 || a.Sum < 0 && kind == Binary || kind == Binary && a.Sum > a.N {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(field), fmt.Errorf("sums out of range: n=%v sum=%v", a.N, a.Sum))
		}
		switch kind {
		case Binary:
			b := distuv.Beta{Alpha: 1 + a.Sum, Beta: 1 + a.N - a.Sum, Src: rng}
			samplers[i] = b.Rand
		case Continuous:
			if a.N < 2 {
				return nil, experiment.E(op, experiment.InsufficientData, experiment.Field(field+".n"), fmt.Errorf("a continuous reward needs at least 2 units per arm, got %v", a.N))
			}
			t := distuv.StudentsT{Mu: a.Mean(), Sigma: math.Sqrt(a.Var() / a.N), Nu: a.N - 1, Src: rng}
			samplers[i] = t.Rand
		default:
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("reward_kind"), fmt.Errorf("unknown reward kind %q", kind))
		}
	}
	wins := make([]float64, len(arms))
	for range draws {
		best, bestV := 0, math.Inf(-1)
		for i, s := range samplers {
			if v := s(); v > bestV {
				best, bestV = i, v
			}
		}
		wins[best]++
	}
	for i := range wins {
		wins[i] /= float64(draws)
	}
	return wins, nil
}

// TopTwo turns probabilities best π into top-two Thompson allocation
// probabilities with leader probability beta: ψ_j = β·π_j + (1 − β)·π_j·Σ_{i≠j}
// π_i/(1 − π_i). An arm with π_i = 1 has no challenger among the others; the
// challenger share then goes to the others equally.
func TopTwo(pi []float64, beta float64) []float64 {
	k := len(pi)
	psi := make([]float64, k)
	for j := range pi {
		psi[j] = beta * pi[j]
	}
	for i, p := range pi {
		if p == 0 {
			continue
		}
		if p >= 1 {
			for j := range psi {
				if j != i {
					psi[j] += (1 - beta) * p / float64(k-1)
				}
			}
			continue
		}
		for j := range psi {
			if j != i {
				psi[j] += (1 - beta) * p * pi[j] / (1 - p)
			}
		}
	}
	return psi
}
