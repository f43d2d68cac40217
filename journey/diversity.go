package journey

import (
	"math"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// diversityApplied is what the diversity constraint did to one decision's list,
// stored in its provenance.
type diversityApplied struct {
	Kind       string `json:"kind"`       // the constraint applied ("none" when there was none)
	Candidates int    `json:"candidates"` // items the model ranked for it
	// Changed is the number of slots whose item is not the model's item of that
	// rank; Relaxed the slots filled past the category quota because the
	// candidates could not fill k under it.
	Changed int `json:"changed_slots"`
	Relaxed int `json:"quota_relaxed_slots,omitempty"`
}

// diversityOf is the journey's diversity constraint; a journey stored before
// diversity existed has none.
func diversityOf(j *experiment.Journey) experiment.Diversity {
	d := j.Diversity
	if d.Kind == "" {
		d.Kind = experiment.DiversityNone
	}
	return d
}

// featureSet is the journey's signals for consent tier t (the default mapping
// for a journey stored before feature sets existed, or a tier it leaves out);
// nothing below tier 1.
func featureSet(j *experiment.Journey, t int) []string {
	t = min(t, experiment.ConsentEnhanced)
	if t < experiment.ConsentFunctional {
		return []string{}
	}
	if s, ok := j.FeatureSets[t]; ok {
		return s
	}
	return experiment.DefaultFeatureSets()[t]
}

// candidates is how many items the model ranks for a decision of journey j.
func candidates(j *experiment.Journey) int {
	if d := diversityOf(j); d.Kind != experiment.DiversityNone && d.Candidates > j.K {
		return d.Candidates
	}
	return j.K
}

func diversify(m *scorer.Model, j *experiment.Journey, scored []scorer.Scored, out *diversityApplied) []scorer.Scored {
	d := diversityOf(j)
	out.Kind, out.Candidates = d.Kind, len(scored)
	if d.Kind == experiment.DiversityNone {
		return scored
	}
	list, relaxed := Rerank(m, d, scored, j.K)
	out.Relaxed = relaxed
	for i := range list {
		if list[i].Item != scored[i].Item {
			out.Changed++
		}
	}
	return list
}

// withRest is the diversified list followed by the candidates it left out, in
// the model's order (Thompson sampling draws its slots from those).
func withRest(div, all []scorer.Scored) []scorer.Scored {
	if len(div) == len(all) {
		return div
	}
	in := make(map[int32]bool, len(div))
	for _, s := range div {
		in[s.Item] = true
	}
	out := append(make([]scorer.Scored, 0, len(all)), div...)
	for _, s := range all {
		if !in[s.Item] {
			out = append(out, s)
		}
	}
	return out
}

// Rerank chooses k of the candidates (the model's ranking, best first) under
// diversity constraint d, and reports how many slots had to break the category
// quota because the candidates could not fill k under it.
//
// category_quota keeps the model's order, skipping an item once d.MaxPerCategory
// items of its category (scorer.Model.CategoryOf; items without one are not
// limited) are in the list.
//
// mmr is maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998): the first
// item is the best candidate, and each next one is
//
//	argmax_{i ∈ R∖S}  λ·rel(i) − (1−λ)·max_{j ∈ S} cos(y_i, y_j)
//
// with rel the candidates' scores rescaled to [0, 1] (min-max over the
// candidates: 1 when all are equal), cos the cosine similarity of the items'
// vectors and ties to the better-ranked candidate; with d.MaxPerCategory > 0 it
// also keeps the quota. λ = 1 is the model's order.
//
// The scores of the chosen items are the model's. Items with negative indices
// (not model rows) are not allowed.
func Rerank(m *scorer.Model, d experiment.Diversity, cands []scorer.Scored, k int) ([]scorer.Scored, int) {
	k = min(k, len(cands))
	out := make([]scorer.Scored, 0, k)
	taken := make([]bool, len(cands))
	perCat := map[string]int{}
	quota := d.MaxPerCategory
	full := func(i int) bool {
		if quota <= 0 {
			return false
		}
		c := m.CategoryOf(m.ItemIDs[cands[i].Item])
		return c != "" && perCat[c] >= quota
	}
	take := func(i int) {
		taken[i] = true
		out = append(out, cands[i])
		if c := m.CategoryOf(m.ItemIDs[cands[i].Item]); c != "" {
			perCat[c]++
		}
	}
	switch d.Kind {
	case experiment.DiversityCategoryQuota:
		for i := range cands {
			if len(out) == k {
				break
			}
			if !full(i) {
				take(i)
			}
		}
	case experiment.DiversityMMR:
		rel := relevance(cands)
		norms := make([]float64, len(cands))
		for i, c := range cands {
			norms[i] = vecNorm(m.Item(int(c.Item)))
		}
		maxSim := make([]float64, len(cands)) // max cos with the chosen items, updated per pick
		for i := range maxSim {
			maxSim[i] = math.Inf(-1)
		}
		lam := d.Lambda
		for len(out) < k {
			best, bestV := -1, math.Inf(-1)
			for i := range cands {
				if taken[i] || full(i) {
					continue
				}
				v := rel[i]
				if len(out) > 0 {
					v = lam*rel[i] - (1-lam)*maxSim[i]
				}
				if v > bestV {
					best, bestV = i, v
				}
			}
			if best < 0 {
				break
			}
			take(best)
			yb := m.Item(int(cands[best].Item))
			for i := range cands {
				if !taken[i] {
					if s := cosine(m.Item(int(cands[i].Item)), yb, norms[i], norms[best]); s > maxSim[i] {
						maxSim[i] = s
					}
				}
			}
		}
	default:
		return cands[:k], 0
	}
	relaxed := 0
	for i := 0; i < len(cands) && len(out) < k; i++ {
		if !taken[i] {
			taken[i] = true
			out = append(out, cands[i])
			relaxed++
		}
	}
	return out, relaxed
}

// relevance rescales the candidates' scores to [0, 1].
func relevance(c []scorer.Scored) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c {
		lo, hi = math.Min(lo, float64(s.Score)), math.Max(hi, float64(s.Score))
	}
	out := make([]float64, len(c))
	for i, s := range c {
		out[i] = 1
		if hi > lo {
			out[i] = (float64(s.Score) - lo) / (hi - lo)
		}
	}
	return out
}

func vecNorm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// cosine is a·b/(‖a‖‖b‖), 0 when either is the zero vector.
func cosine(a, b []float32, na, nb float64) float64 {
	if na == 0 || nb == 0 {
		return 0
	}
	var dot float64
	for j := range a {
		dot += float64(a[j]) * float64(b[j])
	}
	return dot / (na * nb)
}
