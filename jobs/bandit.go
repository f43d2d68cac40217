package jobs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/liftlab/lift/analysis/bandit"
	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/store"
)

// BanditState is what GET /v1/experiments/KEY/bandit shows: the weight
// history, the chance each arm is best now, the cohort-stratified effects
// against the first variant (analysis/bandit.Estimate), every arm's mean over
// the traffic mix, and the estimated cumulative regret.
type BanditState struct {
	Experiment string                     `json:"experiment"`
	Variants   []string                   `json:"variants"`
	Versions   []experiment.BanditVersion `json:"versions"`
	Cohorts    []bandit.Cohort            `json:"cohorts"`
	Effects    []BanditEffect             `json:"effects"`
	ArmMeans   []float64                  `json:"arm_means"`
	Regret     float64                    `json:"regret"`
	Unentered  int                        `json:"unentered" doc:"exposed units with no stored first version (exposures logged without /v1/assign), left out"`
}

// BanditEffect is one variant's effect against the first variant.
type BanditEffect struct {
	Variant string `json:"variant"`
	bandit.Effect
}

// banditSeed makes a version's posterior draws a function of stored state:
// the experiment's key and the version number.
func banditSeed(key string, version int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(assign.Fnv32a(key)), uint64(version)))
}

// LoadBandit reads a bandit experiment's state: its versions, and its reward
// sums per cohort (the version at which units entered) and arm, the per-unit
// rewards computed by eng (the server's metric engine).
func LoadBandit(ctx context.Context, db *store.DB, eng metric.Engine, key string) (*experiment.Experiment, *BanditState, error) {
	const op = "jobs.LoadBandit"
	e, err := db.GetExperiment(ctx, key)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	vs, err := db.BanditVersions(ctx, key)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	names := make([]string, len(e.Variants))
	index := map[string]int{}
	for i, v := range e.Variants {
		names[i], index[v.Name] = v.Name, i
	}
	st := &BanditState{Experiment: key, Variants: names, Versions: vs, Cohorts: make([]bandit.Cohort, len(vs))}
	for i := range st.Cohorts {
		st.Cohorts[i] = bandit.Cohort{Version: i, Arms: make([]bandit.ArmStats, len(names))}
	}
	first, err := db.BanditUnitVersions(ctx, key)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	values, _, err := db.UnitValues(ctx, eng, e, names, e.Allocation.Reward, "allocation.reward")
	if err != nil && !experiment.Is(err, experiment.InsufficientData) {
		return nil, nil, experiment.E(op, err)
	}
	for _, v := range values {
		ver, ok := first[v.Unit]
		if !ok || ver >= len(st.Cohorts) {
			st.Unentered++
			continue
		}
		a := &st.Cohorts[ver].Arms[index[v.Arm]]
		*a = a.Add(bandit.ArmStats{N: 1, Sum: v.Value, SumSq: v.Value * v.Value})
	}
	return e, st, nil
}

// BanditReport returns the state of a bandit experiment with its effects at
// the experiment's alpha (none yet when a cohort lacks data: Effects empty).
func BanditReport(ctx context.Context, db *store.DB, eng metric.Engine, key string) (*BanditState, error) {
	e, st, err := LoadBandit(ctx, db, eng, key)
	if err != nil {
		return nil, err
	}
	effs, err := bandit.Estimate(st.Cohorts, 0, e.Analysis.Alpha)
	if err != nil && !experiment.Is(err, experiment.InsufficientData) {
		return nil, err
	}
	for _, x := range effs {
		st.Effects = append(st.Effects, BanditEffect{Variant: st.Variants[x.Arm], Effect: x})
	}
	st.ArmMeans = bandit.ArmMeans(st.Cohorts)
	st.Regret = bandit.Regret(st.Cohorts)
	return st, nil
}

// RecomputeBandit computes the next weights of a running bandit experiment
// from all its reward sums so far and stores them as a new version. The
// posterior draws are seeded by the key and the new version's number, so the
// weights can be recomputed from stored state.
func RecomputeBandit(ctx context.Context, db *store.DB, eng metric.Engine, key string) (experiment.BanditVersion, error) {
	const op = "jobs.RecomputeBandit"
	e, st, err := LoadBandit(ctx, db, eng, key)
	if err != nil {
		return experiment.BanditVersion{}, err
	}
	if e.Status != experiment.Running {
		return experiment.BanditVersion{}, experiment.E(op, experiment.Conflict, experiment.Field("experiment"), experiment.Errorf("experiment %q is %s: only a running bandit moves its weights", key, e.Status))
	}
	total := make([]bandit.ArmStats, len(st.Variants))
	for _, c := range st.Cohorts {
		for a, s := range c.Arms {
			total[a] = total[a].Add(s)
		}
	}
	al := e.Allocation
	cfg := bandit.Config{Reward: bandit.Reward(al.RewardKind), MinShare: al.MinShare, BurnIn: al.BurnIn, TopTwo: al.TopTwo, Beta: al.Beta}
	next := st.Versions[len(st.Versions)-1].Version + 1
	w, err := bandit.Weights(cfg, total, banditSeed(key, next))
	if err != nil {
		return experiment.BanditVersion{}, experiment.E(op, err)
	}
	return db.AppendBanditVersion(ctx, key, w.Weights, w.ProbBest, w.BurnIn)
}

// AssignBandit replaces the variants of the units of bandit experiment e that
// are in the experiment (the plan has applied coverage, layer and holdout:
// units in the permanent holdout never enter the bandit) by their sticky
// bandit arm: the hash of the unit under the weights of the version at which
// it first entered (bandit.Arm), that version being recorded now, in one
// transaction, for units entering for the first time (store.EnterBandit).
func AssignBandit(ctx context.Context, db *store.DB, e *experiment.Experiment, as []experiment.Assignment) error {
	var units []string
	var idx []int
	for i := range as {
		if as[i].InExperiment {
			units, idx = append(units, as[i].Unit), append(idx, i)
		}
	}
	if len(units) == 0 {
		return nil
	}
	vs, err := db.BanditVersions(ctx, e.Key)
	if err != nil {
		return err
	}
	first, err := db.EnterBandit(ctx, e.Key, units, vs[len(vs)-1].Version)
	if err != nil {
		return err
	}
	for j, i := range idx {
		arm := bandit.Arm(e.Seed, units[j], vs[first[j]].Weights)
		name := e.Variants[arm].Name
		as[i].Variant, as[i].VariantIndex = &name, arm
	}
	return nil
}

// banditAllocation is the bandit_allocation job kind: every running bandit
// experiment (or the target) gets its next weight version, once its
// allocation period has passed since the last one.
func (d Deps) banditAllocation(ctx context.Context, j *experiment.Job, period time.Time) (any, error) {
	keys, err := d.targets(ctx, j)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, k := range keys {
		e, err := d.Store.GetExperiment(ctx, k)
		if err != nil {
			return nil, err
		}
		if !e.IsBandit() || e.Status != experiment.Running {
			continue
		}
		vs, err := d.Store.BanditVersions(ctx, k)
		if err != nil {
			return nil, err
		}
		if last := vs[len(vs)-1]; len(vs) > 1 && d.Now().Sub(last.CreatedAt) < e.Allocation.PeriodOr1h() {
			continue
		}
		v, err := RecomputeBandit(ctx, d.Store, d.results().Engine(), k)
		if err != nil {
			return nil, fmt.Errorf("bandit %s: %w", k, err)
		}
		out[k] = v.Version
	}
	return map[string]any{"versions": out}, nil
}
