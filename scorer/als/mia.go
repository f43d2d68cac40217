package als

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// DefaultMaxMIAAUC is the membership-inference AUC above which a model fails the
// training gate (BuildOptions.MaxMIAAUC).
const DefaultMaxMIAAUC = 0.6

// MIA is the result of a black-box, score-based membership-inference attack
// (Shokri et al. 2017, "Membership Inference Attacks Against Machine Learning
// Models", IEEE S&P; in its threshold form, Yeom et al. 2018, CSF): an attacker
// who sees only the model's scores guesses that a (user, item) pair was a training
// interaction when its score is high. Members are the training interactions of
// the evaluated users, non-members their held-out interactions (never seen in
// training, drawn from the same users' behaviour), all scored by the model
// trained on the training split.
//
// AUC is the probability that a random member scores above a random non-member
// (ties count one half): the Mann–Whitney U of the members over n₁·n₀ (Hanley &
// McNeil 1982). 0.5 means the scores reveal nothing about membership; a model
// that memorizes its training pairs approaches 1. [Low, High] is the percentile
// bootstrap interval at Level over Bootstrap resamples of each group.
type MIA struct {
	Members    int     // training pairs scored
	NonMembers int     // held-out pairs scored
	AUC        float64 // P(member score > non-member score) + ½ P(tie)
	Low, High  float64 // bootstrap interval of AUC
	Level      float64 // 0.95
	Bootstrap  int     // resamples
}

// MIAOptions configures MembershipInference.
type MIAOptions struct {
	Bootstrap int     // resamples (default 1000)
	Level     float64 // interval level (default 0.95)
	Seed      uint64  // seed of the bootstrap (default 1)
}

// MembershipInference runs the attack on m, the model trained on train, with the
// held-out interactions test (from LeaveLastOut). A held-out pair is scored
// when m knows both its user and its item; members are the training pairs of those
// users. The score of (u, i) is x_u·y_i + b_i, what the scorer ranks by.
func MembershipInference(ctx context.Context, m *scorer.Model, train *Dataset, test []Interaction, o MIAOptions) (MIA, error) {
	const op = "als.MembershipInference"
	if o.Bootstrap <= 0 {
		o.Bootstrap = 1000
	}
	if o.Level <= 0 || o.Level >= 1 {
		o.Level = 0.95
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	trainUser := make(map[string]int, len(train.Users))
	for u, id := range train.Users {
		trainUser[id] = u
	}
	var members, non []float64
	done := map[string]bool{}
	for _, it := range test {
		u, ok := m.UserIndex(it.User)
		i, iok := m.ItemIndex(it.Item)
		tu, tok := trainUser[it.User]
		if !ok || !iok || !tok {
			continue
		}
		non = append(non, pairScore(m, u, i))
		if done[it.User] {
			continue
		}
		done[it.User] = true
		for _, e := range train.byUser[tu] {
			if j, ok := m.ItemIndex(train.Items[e.idx]); ok {
				s := pairScore(m, u, j)
				for range e.n {
					members = append(members, s)
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return MIA{}, experiment.E(op, experiment.Unavailable, err)
		}
	}
	if len(members) == 0 || len(non) == 0 {
		return MIA{}, experiment.E(op, experiment.InsufficientData,
			experiment.Errorf("no held-out interactions of users and items the model knows (%d members, %d non-members)", len(members), len(non)))
	}
	res := MIA{Members: len(members), NonMembers: len(non), AUC: AUC(members, non), Level: o.Level, Bootstrap: o.Bootstrap}
	var err error
	if res.Low, res.High, err = aucInterval(ctx, members, non, o); err != nil {
		return MIA{}, experiment.E(op, experiment.Unavailable, err)
	}
	return res, nil
}

// aucInterval is the percentile bootstrap interval of AUC(pos, neg): each group
// resampled with replacement o.Bootstrap times from a PCG source seeded o.Seed.
func aucInterval(ctx context.Context, pos, neg []float64, o MIAOptions) (lo, hi float64, err error) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x3141))
	aucs := make([]float64, o.Bootstrap)
	bp, bn := make([]float64, len(pos)), make([]float64, len(neg))
	for b := range aucs {
		if b%64 == 0 && ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		for j := range bp {
			bp[j] = pos[rng.IntN(len(pos))]
		}
		for j := range bn {
			bn[j] = neg[rng.IntN(len(neg))]
		}
		aucs[b] = AUC(bp, bn)
	}
	sort.Float64s(aucs)
	return quantile(aucs, (1-o.Level)/2), quantile(aucs, 1-(1-o.Level)/2), nil
}

func pairScore(m *scorer.Model, u, i int32) float64 {
	x, y := m.User(int(u)), m.Item(int(i))
	var s float64
	for j, v := range x {
		s += float64(v) * float64(y[j])
	}
	if m.Bias != nil {
		s += float64(m.Bias[i])
	}
	return s
}

// AUC returns the probability that a draw from pos exceeds one from neg, ties
// counting one half: U/(n₁·n₀), with U the Mann–Whitney statistic of pos computed
// from mid-ranks of the pooled sample (R₁ − n₁(n₁+1)/2). It panics on an empty
// group (a caller bug).
func AUC(pos, neg []float64) float64 {
	n1, n0 := len(pos), len(neg)
	if n1 == 0 || n0 == 0 {
		panic("als.AUC: empty group")
	}
	type obs struct {
		v   float64
		pos bool
	}
	all := make([]obs, 0, n1+n0)
	for _, v := range pos {
		all = append(all, obs{v, true})
	}
	for _, v := range neg {
		all = append(all, obs{v, false})
	}
	sort.Slice(all, func(a, b int) bool { return all[a].v < all[b].v })
	var r1 float64 // sum of the mid-ranks of pos (1-based)
	for lo := 0; lo < len(all); {
		hi := lo + 1
		for hi < len(all) && all[hi].v == all[lo].v {
			hi++
		}
		mid := float64(lo+hi+1) / 2 // mean of ranks lo+1 … hi
		for k := lo; k < hi; k++ {
			if all[k].pos {
				r1 += mid
			}
		}
		lo = hi
	}
	u := r1 - float64(n1)*float64(n1+1)/2
	return u / (float64(n1) * float64(n0))
}

// quantile is the type-7 (linear interpolation) quantile of sorted xs.
func quantile(xs []float64, p float64) float64 {
	h := p * float64(len(xs)-1)
	lo := math.Floor(h)
	if int(lo) >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[int(lo)] + (h-lo)*(xs[int(lo)+1]-xs[int(lo)])
}
