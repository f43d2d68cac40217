package journey_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
)

// rankAll is the model's ranking of every item for q (ties by index).
func rankAll(m *scorer.Model, q []float32) []scorer.Scored {
	out := make([]scorer.Scored, m.NItems())
	for i := range out {
		var s float32
		for j, v := range m.Item(i) {
			s += v * q[j]
		}
		if m.Bias != nil {
			s += m.Bias[i]
		}
		out[i] = scorer.Scored{Item: int32(i), Score: s}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Score > out[b].Score })
	return out
}

func itemsOf(s []scorer.Scored) []int32 {
	out := make([]int32, len(s))
	for i, x := range s {
		out[i] = x.Item
	}
	return out
}

// TestRerankMMRAgainstNumpy checks MMR's selection on a small catalog against an
// outside reimplementation. The expected lists are the output of this numpy
// snippet (numpy 1.24, Debian's python3):
//
//	import numpy as np
//	Y = np.array([[1.0,0.1,0.0],[0.9,0.2,0.0],[0.8,0.0,0.3],[0.0,1.0,0.1],[0.1,0.9,0.0],
//	              [0.0,0.1,1.0],[0.5,0.5,0.0],[0.2,0.2,0.9]], dtype=np.float32)
//	q = np.array([1.0,0.6,0.3], dtype=np.float32)
//	s = (Y @ q).astype(np.float64)
//	order = sorted(range(len(s)), key=lambda i: (-s[i], i))
//	rel = (s - s.min()) / (s.max() - s.min())
//	Yd = Y.astype(np.float64)
//	C = (Yd @ Yd.T) / np.outer(np.linalg.norm(Yd, axis=1), np.linalg.norm(Yd, axis=1))
//	def mmr(lam, k):
//	    S = []
//	    while len(S) < k:
//	        best, bv = None, -np.inf
//	        for i in order:
//	            if i in S: continue
//	            v = rel[i] if not S else lam*rel[i] - (1-lam)*max(C[i, j] for j in S)
//	            if v > bv: best, bv = i, v
//	        S.append(best)
//	    return S
//	for lam in (1.0, 0.7, 0.5, 0.3): print(lam, mmr(lam, 4))
//
// which prints the model order [0, 1, 2, 6, 4, 3, 7, 5] and
// 1.0 [0, 1, 2, 6] / 0.7 [0, 1, 2, 3] / 0.5 [0, 3, 7, 1] / 0.3 [0, 3, 7, 6].
func TestRerankMMRAgainstNumpy(t *testing.T) {
	m := &scorer.Model{Dim: 3, Meta: scorer.Metadata{Name: "mmr", Version: "1", Extra: map[string]string{
		scorer.MetaItemCategories: `{"i0": "a", "i1": "a", "i2": "a", "i6": "a", "i3": "b", "i4": "b"}`}}}
	for i, y := range [][]float32{{1.0, 0.1, 0.0}, {0.9, 0.2, 0.0}, {0.8, 0.0, 0.3}, {0.0, 1.0, 0.1}, {0.1, 0.9, 0.0}, {0.0, 0.1, 1.0}, {0.5, 0.5, 0.0}, {0.2, 0.2, 0.9}} {
		m.ItemIDs = append(m.ItemIDs, "i"+strconv.Itoa(i))
		m.Items = append(m.Items, y...)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	cands := rankAll(m, []float32{1.0, 0.6, 0.3})
	if got := itemsOf(cands); !slices.Equal(got, []int32{0, 1, 2, 6, 4, 3, 7, 5}) {
		t.Fatalf("model order %v, want numpy's [0 1 2 6 4 3 7 5]", got)
	}
	for _, tc := range []struct {
		d       experiment.Diversity
		want    []int32
		relaxed int
	}{
		{experiment.Diversity{Kind: experiment.DiversityMMR, Lambda: 1}, []int32{0, 1, 2, 6}, 0},   // numpy
		{experiment.Diversity{Kind: experiment.DiversityMMR, Lambda: 0.7}, []int32{0, 1, 2, 3}, 0}, // numpy
		{experiment.Diversity{Kind: experiment.DiversityMMR, Lambda: 0.5}, []int32{0, 3, 7, 1}, 0}, // numpy
		{experiment.Diversity{Kind: experiment.DiversityMMR, Lambda: 0.3}, []int32{0, 3, 7, 6}, 0}, // numpy
		// The quota by hand: category a is 0, 1, 2, 6 and b is 3, 4; 7 and 5 have none.
		{experiment.Diversity{Kind: experiment.DiversityCategoryQuota, MaxPerCategory: 1}, []int32{0, 4, 7, 5}, 0},
		{experiment.Diversity{Kind: experiment.DiversityCategoryQuota, MaxPerCategory: 2}, []int32{0, 1, 4, 3}, 0},
		// MMR at λ = 1 under a quota of 1 is the quota's list.
		{experiment.Diversity{Kind: experiment.DiversityMMR, Lambda: 1, MaxPerCategory: 1}, []int32{0, 4, 7, 5}, 0},
	} {
		got, relaxed := journey.Rerank(m, tc.d, cands, 4)
		if !slices.Equal(itemsOf(got), tc.want) || relaxed != tc.relaxed {
			t.Errorf("%+v: %v (relaxed %d), want %v (relaxed %d)", tc.d, itemsOf(got), relaxed, tc.want, tc.relaxed)
		}
	}
	// Only two categories' worth under a quota of 1 among the first five: the
	// list is filled past the quota in model order (by hand: 0, 4 fit; then 1, 2).
	got, relaxed := journey.Rerank(m, experiment.Diversity{Kind: experiment.DiversityCategoryQuota, MaxPerCategory: 1}, cands[:5], 4)
	if !slices.Equal(itemsOf(got), []int32{0, 4, 1, 2}) || relaxed != 2 {
		t.Errorf("short candidates: %v (relaxed %d), want [0 4 1 2] (relaxed 2)", itemsOf(got), relaxed)
	}
}

// simulatedCatalog is a demo catalog where recommendations crowd onto a few
// categories: n items in c categories, each item's vector its category's
// centroid plus N(0, 0.5²) noise; each user's taste is N(0, I) plus the mean of
// the centroids of categories 0-2 (the blockbusters everyone likes). A user's
// held-out relevant items are the top r by true utility u·y + ε, ε ~ N(0, σ²)
// with σ the standard deviation of the user's scores, which the model (the same
// vectors) does not see.
func simulatedCatalog(t testing.TB, n, c, d, users, r int) (*scorer.Model, [][]float32, []map[int32]bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(18, 4))
	cent := make([][]float64, c)
	for i := range cent {
		cent[i] = make([]float64, d)
		for j := range cent[i] {
			cent[i][j] = rng.NormFloat64()
		}
	}
	m := &scorer.Model{Dim: d, Meta: scorer.Metadata{Name: "sim", Version: "1"}}
	cats := map[string]string{}
	for i := range n {
		id := "item-" + strconv.Itoa(i)
		m.ItemIDs = append(m.ItemIDs, id)
		k := i % c
		cats[id] = "cat-" + strconv.Itoa(k)
		for j := range d {
			m.Items = append(m.Items, float32(cent[k][j]+0.5*rng.NormFloat64()))
		}
	}
	b, _ := json.Marshal(cats)
	m.Meta.Extra = map[string]string{scorer.MetaItemCategories: string(b)}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	qs := make([][]float32, users)
	rel := make([]map[int32]bool, users)
	for u := range users {
		q := make([]float32, d)
		for j := range q {
			q[j] = float32(rng.NormFloat64())
		}
		for j := range q {
			q[j] += float32((cent[0][j] + cent[1][j] + cent[2][j]) / 3) // the blockbuster categories everyone likes
		}
		qs[u] = q
		all := rankAll(m, q)
		var mean, ss float64
		for _, s := range all {
			mean += float64(s.Score)
		}
		mean /= float64(len(all))
		for _, s := range all {
			ss += (float64(s.Score) - mean) * (float64(s.Score) - mean)
		}
		sigma := math.Sqrt(ss / float64(len(all)))
		noisy := make([]scorer.Scored, len(all))
		for i, s := range all {
			noisy[i] = scorer.Scored{Item: s.Item, Score: s.Score + float32(sigma*rng.NormFloat64())}
		}
		sort.SliceStable(noisy, func(a, b int) bool { return noisy[a].Score > noisy[b].Score })
		rel[u] = map[int32]bool{}
		for _, s := range noisy[:r] {
			rel[u][s.Item] = true
		}
	}
	return m, qs, rel
}

// giniPairwise is the Gini coefficient by its pairwise definition,
// G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n² x̄), independent of scorer.Gini's sorted form.
func giniPairwise(x []float64) float64 {
	var num, sum float64
	for _, a := range x {
		sum += a
		for _, b := range x {
			num += math.Abs(a - b)
		}
	}
	if sum == 0 {
		return 0
	}
	n := float64(len(x))
	return num / (2 * n * sum)
}

// TestDiversityLowersGini measures, on the simulated catalog (1,000 items in 20
// categories, 16 dimensions, 500 users, k = 10 chosen from the model's top 100),
// the item-exposure Gini over the whole catalog (never-shown items count as 0,
// checked against the pairwise definition) and the recall@10 against each
// user's held-out relevant items. Seeded, so the figures are exact (also in
// docs/journeys.md):
//
//	constraint                Gini     recall@10
//	none (the model's order)  0.8824   0.2204
//	category_quota, max 3     0.8396   0.1570 (−28.8%)
//	category_quota, max 2     0.8253   0.1416 (−35.8%)
//	mmr, λ = 0.9              0.8821   0.2204 (±0%)
//	mmr, λ = 0.7              0.8787   0.2166 (−1.7%)
//	mmr, λ = 0.5              0.8638   0.1972 (−10.5%)
//
// The test holds that every constraint lowers the Gini, at a cost in recall
// (not above the model order's) that keeps at least half of it.
func TestDiversityLowersGini(t *testing.T) {
	const n, c, d, users, k, cands = 1000, 20, 16, 500, 10, 100
	m, qs, rel := simulatedCatalog(t, n, c, d, users, k)
	type result struct{ gini, recall float64 }
	run := func(div experiment.Diversity) result {
		counts := make([]float64, n)
		var hits int
		for u, q := range qs {
			list, _ := journey.Rerank(m, div, rankAll(m, q)[:cands], k)
			for _, s := range list {
				counts[s.Item]++
				if rel[u][s.Item] {
					hits++
				}
			}
		}
		g := scorer.Gini(counts)
		if p := giniPairwise(counts); math.Abs(g-p) > 1e-12 {
			t.Fatalf("Gini %v, pairwise definition %v", g, p)
		}
		return result{g, float64(hits) / float64(users*k)}
	}
	base := run(experiment.Diversity{Kind: experiment.DiversityNone})
	t.Logf("none: Gini %.4f, recall@%d %.4f", base.gini, k, base.recall)
	for _, div := range []experiment.Diversity{
		{Kind: experiment.DiversityCategoryQuota, MaxPerCategory: 3},
		{Kind: experiment.DiversityCategoryQuota, MaxPerCategory: 2},
		{Kind: experiment.DiversityMMR, Lambda: 0.9},
		{Kind: experiment.DiversityMMR, Lambda: 0.7},
		{Kind: experiment.DiversityMMR, Lambda: 0.5},
	} {
		r := run(div)
		t.Logf("%s max_per_category=%d lambda=%g: Gini %.4f (%+.4f), recall@%d %.4f (%+.1f%%)", div.Kind, div.MaxPerCategory, div.Lambda,
			r.gini, r.gini-base.gini, k, r.recall, 100*(r.recall/base.recall-1))
		if r.gini >= base.gini {
			t.Errorf("%+v: Gini %.4f, want below the model order's %.4f", div, r.gini, base.gini)
		}
		if r.recall > base.recall || r.recall < base.recall/2 {
			t.Errorf("%+v: recall %.4f, want a cost: in [%.4f, %.4f]", div, r.recall, base.recall/2, base.recall)
		}
	}
}

// TestDecideDiversity serves a journey with MMR: the list is Rerank of the
// model's top candidates, and the provenance records the rule and what it did.
func TestDecideDiversity(t *testing.T) {
	div := experiment.Diversity{Kind: experiment.DiversityMMR, Lambda: 0.5, Candidates: 20}
	f := newFixture(t, nil, experiment.Journey{K: 5, Exploration: experiment.Exploration{Kind: experiment.ExploreNone}, Diversity: div})
	ctx := context.Background()
	unit := f.knownUnitIn(t, inVariant("personalized"))
	d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{ConsentTier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := f.m.Query(unit, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := journey.Rerank(f.m, div, rankAll(f.m, q)[:20], 5)
	var got []string
	for _, it := range d.Items {
		got = append(got, it.ID)
	}
	var wantIDs []string
	for _, s := range want {
		wantIDs = append(wantIDs, f.m.ItemIDs[s.Item])
	}
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("items %v, want MMR's %v", got, wantIDs)
	}
	if top := bruteTopK(f.m, q, 5, nil); slices.Equal(top, got) {
		t.Fatalf("MMR at λ = 0.5 left the model's top 5 %v as it was: the test shows nothing", top)
	}
	rec, err := f.db.GetDecision(ctx, "home", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Rules struct {
			Diversity  experiment.Diversity `json:"diversity"`
			FeatureSet []string             `json:"feature_set"`
		} `json:"rules"`
		Diversity struct {
			Kind       string `json:"kind"`
			Candidates int    `json:"candidates"`
			Changed    int    `json:"changed_slots"`
		} `json:"diversity"`
	}
	if err := json.Unmarshal(rec.Provenance, &p); err != nil {
		t.Fatal(err)
	}
	if p.Rules.Diversity != div || p.Diversity.Kind != "mmr" || p.Diversity.Candidates != 20 || p.Diversity.Changed == 0 ||
		!slices.Equal(p.Rules.FeatureSet, []string{"session_items", "stored_history"}) {
		t.Errorf("provenance %s: want the MMR rule, 20 candidates, changed slots and the tier-2 feature set", rec.Provenance)
	}
}
