package als

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// DefaultMaxMIAAUC is the membership-inference AUC above which a model fails the
// training gate (BuildOptions.MaxMIAAUC).
const DefaultMaxMIAAUC = 0.6

// DefaultMIAHoldout is the share of users held out of the attack's training run
// as non-members (MIAOptions.Holdout).
const DefaultMIAHoldout = 0.2

// miaScoreText says what the attack scores, for the card.
const miaScoreText = "the mean predicted preference x·y_i of the folded-in vector x over the user's distinct items that the model knows"

// MIACannotDetect is what a passed gate does not show, for the card and docs.
const MIACannotDetect = "A passed gate bounds what this one attack learns from the scores of whole users; it is not a privacy guarantee " +
	"(only differential privacy is). It does not test a stronger attacker (shadow models trained on similar data, " +
	"the LiRA likelihood-ratio test of Carlini et al. 2022, or one who sees the trained user vectors), the membership of single " +
	"interactions of a member, what the catalog itself reveals (an item known only because one member had it), or data " +
	"other than the interactions. It audits a second model trained the same way on the other users, not the shipped weights, " +
	"and an AUC near the gate may pass or fail with a retrain (read the interval)."

// MIA is the result of a black-box, score-based membership-inference attack on
// users (Shokri et al. 2017, "Membership Inference Attacks Against Machine
// Learning Models", IEEE S&P; the user-level form for recommender systems is
// Zhang et al. 2021, "Membership Inference Attacks Against Recommender Systems",
// ACM CCS). The question is whether a user's data was in the training set, and
// the attacker, who knows the user's history, sees only what the model computes
// from it.
//
// A share of the users (MIAOptions.Holdout) is held out whole: the model is
// trained on the other users (members) only. For every user of both groups the
// attack computes the same thing from the same kind of input: the user's vector
// x̂ by fold-in, one ALS user step with the trained item factors Y fixed,
//
//	x̂ = (YᵀY + Yᵀ(Cᵘ − I)Y + λI)⁻¹ YᵀCᵘp(u)   (scorer.Model.FoldIn)
//
// over all of the user's interactions, and the user's score
//
//	s_u = (1/|I_u|) Σ_{i ∈ I_u} x̂ᵀy_i,
//
// the mean predicted preference on the user's distinct items I_u that the model
// knows: how well the model reconstructs the user's history. Members and
// non-members are drawn alike (by a hash of the user id), so the one asymmetry
// left is whether Y was fit to the user: the memorization the gate is for. A
// non-member's items that only non-members had are unknown to the model and not
// scored; a non-member with no known item is not scored (SkippedNonMembers).
//
// AUC is the probability that a random member scores above a random non-member
// (ties count one half): the Mann–Whitney U of the members over n₁·n₀ (Hanley &
// McNeil 1982). 0.5 means the scores reveal nothing about membership; a model
// that memorizes its users approaches 1. [Low, High] is the percentile bootstrap
// interval at Level over Bootstrap resamples of the users of each group (the
// unit of the attack); the model is not refitted per resample, so the interval
// is of the attack on this model, not of the training procedure.
type MIA struct {
	Members           int     // member users scored
	NonMembers        int     // non-member users scored
	SkippedNonMembers int     // non-member users none of whose items the model knows
	AUC               float64 // P(member score > non-member score) + ½ P(tie)
	Low, High         float64 // bootstrap interval of AUC
	Level             float64 // 0.95
	Bootstrap         int     // resamples
	Holdout           float64 // share of the users held out (MIAOptions.Holdout)

	MemberScores, NonMemberScores []float64 // s_u of each scored user, in order of first appearance
}

// MIAOptions configures the attack.
type MIAOptions struct {
	Bootstrap int     // resamples (default 1000)
	Level     float64 // interval level (default 0.95)
	Seed      uint64  // seed of the bootstrap and of the split of the users (default 1)
	// Holdout is the share of users held out as non-members (default
	// DefaultMIAHoldout; in (0, 1)).
	Holdout float64
}

func (o *MIAOptions) fill() {
	if o.Bootstrap <= 0 {
		o.Bootstrap = 1000
	}
	if o.Level <= 0 || o.Level >= 1 {
		o.Level = 0.95
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Holdout <= 0 || o.Holdout >= 1 {
		o.Holdout = DefaultMIAHoldout
	}
}

// SplitUsers splits interactions by user for the attack: the round(share·n) users
// (at least one, and at most n − 1) whose FNV-1a hash of (seed, user id) is
// smallest are non-members, every row of theirs goes to nonMembers, and the
// other users' rows to members. Row order is kept. The split depends on the
// user ids and the seed only, not on the order of the rows.
func SplitUsers(inter []Interaction, share float64, seed uint64) (members, nonMembers []Interaction) {
	type user struct {
		id string
		h  uint64
	}
	seen := map[string]bool{}
	var users []user
	var sb [8]byte
	binary.LittleEndian.PutUint64(sb[:], seed)
	for _, it := range inter {
		if seen[it.User] {
			continue
		}
		seen[it.User] = true
		h := fnv.New64a()
		h.Write(sb[:])
		h.Write([]byte(it.User))
		users = append(users, user{it.User, h.Sum64()})
	}
	if len(users) < 2 {
		return inter, nil
	}
	sort.Slice(users, func(a, b int) bool {
		if users[a].h != users[b].h {
			return users[a].h < users[b].h
		}
		return users[a].id < users[b].id
	})
	n := min(max(int(math.Round(share*float64(len(users)))), 1), len(users)-1)
	out := make(map[string]bool, n)
	for _, u := range users[:n] {
		out[u.id] = true
	}
	for _, it := range inter {
		if out[it.User] {
			nonMembers = append(nonMembers, it)
		} else {
			members = append(members, it)
		}
	}
	return members, nonMembers
}

// MembershipInference runs the attack on m, a model trained on the users of
// members and on none of the users of nonMembers (SplitUsers), scoring every user
// of both as MIA describes.
func MembershipInference(ctx context.Context, m *scorer.Model, members, nonMembers []Interaction, o MIAOptions) (MIA, error) {
	const op = "als.MembershipInference"
	o.fill()
	pos, _, err := userScores(ctx, m, members)
	if err != nil {
		return MIA{}, experiment.E(op, err)
	}
	neg, skipped, err := userScores(ctx, m, nonMembers)
	if err != nil {
		return MIA{}, experiment.E(op, err)
	}
	if len(pos) == 0 || len(neg) == 0 {
		return MIA{}, experiment.E(op, experiment.InsufficientData,
			experiment.Errorf("the attack needs member and non-member users the model can score, got %d members and %d non-members (%d non-members know no item of the model)", len(pos), len(neg), skipped))
	}
	res := MIA{Members: len(pos), NonMembers: len(neg), SkippedNonMembers: skipped, AUC: AUC(pos, neg),
		Level: o.Level, Bootstrap: o.Bootstrap, Holdout: o.Holdout, MemberScores: pos, NonMemberScores: neg}
	if res.Low, res.High, err = aucInterval(ctx, pos, neg, o); err != nil {
		return MIA{}, experiment.E(op, experiment.Unavailable, err)
	}
	return res, nil
}

// userScores returns s_u (see MIA) for each user of inter that has an item m
// knows, in order of first appearance, and the number of users without one.
func userScores(ctx context.Context, m *scorer.Model, inter []Interaction) (scores []float64, skipped int, err error) {
	type hist struct {
		items []int32
		r     []float32
		pos   map[int32]int
	}
	byUser := map[string]*hist{}
	var order []string
	for _, it := range inter {
		h := byUser[it.User]
		if h == nil {
			h = &hist{pos: map[int32]int{}}
			byUser[it.User] = h
			order = append(order, it.User)
		}
		i, ok := m.ItemIndex(it.Item)
		if !ok {
			continue
		}
		if p, ok := h.pos[i]; ok {
			h.r[p] += it.Weight
			continue
		}
		h.pos[i] = len(h.items)
		h.items = append(h.items, i)
		h.r = append(h.r, it.Weight)
	}
	scores = make([]float64, 0, len(order))
	for n, u := range order {
		if n%256 == 0 && ctx.Err() != nil {
			return nil, 0, experiment.E(experiment.Unavailable, ctx.Err())
		}
		h := byUser[u]
		if len(h.items) == 0 {
			skipped++
			continue
		}
		x, err := m.FoldIn(h.items, h.r)
		if err != nil {
			return nil, 0, experiment.E(experiment.Field("user "+u), err)
		}
		var s float64
		for _, i := range h.items {
			s += dot32(x, m.Item(int(i)))
		}
		scores = append(scores, s/float64(len(h.items)))
	}
	return scores, skipped, nil
}

func dot32(a, b []float32) float64 {
	var s float64
	for j, v := range a {
		s += float64(v) * float64(b[j])
	}
	return s
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
