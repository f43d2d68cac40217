package bandit

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/liftlab/lift/experiment"
)

// Cohort is the sums per arm of the units that entered at one weight version.
type Cohort struct {
	Version int        `json:"version"`
	Arms    []ArmStats `json:"arms"`
}

// Effect is one arm's effect against the control arm.
type Effect struct {
	Arm            int     `json:"arm"`
	Estimate       float64 `json:"estimate"`
	SE             float64 `json:"se"`
	Lower          float64 `json:"lower"`
	Upper          float64 `json:"upper"`
	Naive          float64 `json:"naive"` // difference of pooled means: biased under adaptive allocation, shown for contrast
	Cohorts        int     `json:"cohorts"`
	SkippedCohorts int     `json:"skipped_cohorts"`
}

// Estimate returns every arm's effect against arm control, combining the
// cohorts' differences in means with traffic weights (see the package doc),
// with a two-sided 1 − alpha normal interval.
func Estimate(cohorts []Cohort, control int, alpha float64) ([]Effect, error) {
	const op = "bandit.Estimate"
	if len(cohorts) == 0 {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Field("cohorts"), fmt.Errorf("no cohorts"))
	}
	k := len(cohorts[0].Arms)
	if control < 0 || control >= k {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("control"), fmt.Errorf("must be in [0, %d), got %d", k, control))
	}
	if !(alpha > 0 && alpha < 1) {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("alpha"), fmt.Errorf("must be in (0, 1), got %v", alpha))
	}
	for i, c := range cohorts {
		if len(c.Arms) != k {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(fmt.Sprintf("cohorts[%d].arms", i)), fmt.Errorf("has %d arms, cohort 0 has %d", len(c.Arms), k))
		}
	}
	z := distuv.UnitNormal.Quantile(1 - alpha/2)
	var out []Effect
	for a := range k {
		if a == control {
			continue
		}
		e := Effect{Arm: a}
		var total, est, v float64
		var pa, pc ArmStats
		for _, c := range cohorts {
			pa, pc = pa.Add(c.Arms[a]), pc.Add(c.Arms[control])
			ta, tc := c.Arms[a], c.Arms[control]
			if ta.N < 2 || tc.N < 2 {
				e.SkippedCohorts++
				continue
			}
			var n float64
			for _, s := range c.Arms {
				n += s.N
			}
			total += n
			est += n * (ta.Mean() - tc.Mean())
			v += n * n * (ta.Var()/ta.N + tc.Var()/tc.N)
			e.Cohorts++
		}
		if e.Cohorts == 0 {
			return nil, experiment.E(op, experiment.InsufficientData, experiment.Field(fmt.Sprintf("arms[%d]", a)), fmt.Errorf("no cohort has 2 units in both this arm and the control"))
		}
		e.Estimate = est / total
		e.SE = math.Sqrt(v) / total
		e.Lower, e.Upper = e.Estimate-z*e.SE, e.Estimate+z*e.SE
		e.Naive = pa.Mean() - pc.Mean()
		out = append(out, e)
	}
	return out, nil
}

// ArmMeans returns each arm's mean with the same traffic weights over the
// cohorts in which the arm has units (an estimate of the arm's mean over the
// traffic mix, unbiased like Estimate).
func ArmMeans(cohorts []Cohort) []float64 {
	if len(cohorts) == 0 {
		return nil
	}
	k := len(cohorts[0].Arms)
	means := make([]float64, k)
	for a := range k {
		var total, s float64
		for _, c := range cohorts {
			if c.Arms[a].N == 0 {
				continue
			}
			var n float64
			for _, x := range c.Arms {
				n += x.N
			}
			total += n
			s += n * c.Arms[a].Mean()
		}
		if total > 0 {
			means[a] = s / total
		}
	}
	return means
}

// Regret returns the estimated cumulative regret of the allocation so far,
// Σ_a n_a·(max_b μ̂_b − μ̂_a), with μ̂ from ArmMeans and n_a every cohort's units
// in arm a: the reward lost against serving the best arm to everyone.
func Regret(cohorts []Cohort) float64 {
	means := ArmMeans(cohorts)
	if len(means) == 0 {
		return 0
	}
	best := math.Inf(-1)
	for _, m := range means {
		best = math.Max(best, m)
	}
	var r float64
	for _, c := range cohorts {
		for a, s := range c.Arms {
			r += s.N * (best - means[a])
		}
	}
	return r
}
