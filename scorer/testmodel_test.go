package scorer

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// randomModel returns a seeded model with n items of dimension d and users users;
// every dup-th item copies the vector of the item before it, so exact score ties occur.
func randomModel(t testing.TB, n, d, users, dup int, bias bool, seed uint64) *Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	m := &Model{Dim: d, Meta: Metadata{Name: "random", Version: "1"}}
	m.ItemIDs = make([]string, n)
	m.Items = make([]float32, n*d)
	for i := range n {
		m.ItemIDs[i] = "item-" + strconv.Itoa(i)
		if dup > 0 && i > 0 && i%dup == 0 {
			copy(m.Items[i*d:(i+1)*d], m.Items[(i-1)*d:i*d])
			continue
		}
		for j := range d {
			m.Items[i*d+j] = float32(rng.NormFloat64())
		}
	}
	if bias {
		m.Bias = make([]float32, n)
		for i := range m.Bias {
			m.Bias[i] = float32(rng.NormFloat64() * 0.1)
			if dup > 0 && i > 0 && i%dup == 0 {
				m.Bias[i] = m.Bias[i-1]
			}
		}
	}
	m.UserIDs = make([]string, users)
	m.Users = make([]float32, users*d)
	for u := range users {
		m.UserIDs[u] = "user-" + strconv.Itoa(u)
		for j := range d {
			m.Users[u*d+j] = float32(rng.NormFloat64())
		}
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// naiveTopK is the reference ranking: every score computed by dotLanes (the
// scalar definition of the kernels' order) plus the bias, a full sort
// by score descending then item ascending, exclusions dropped, the first k kept.
func naiveTopK(m *Model, q []float32, k int, exclude []int32) []Scored {
	all := make([]Scored, 0, m.NItems())
	for i := range m.NItems() {
		if slices.Contains(exclude, int32(i)) {
			continue
		}
		s := dotLanes(q, m.Item(i))
		if m.Bias != nil {
			s += m.Bias[i]
		}
		all = append(all, Scored{Item: int32(i), Score: s})
	}
	slices.SortFunc(all, func(a, b Scored) int {
		switch {
		case better(a.Score, a.Item, b.Score, b.Item):
			return -1
		case better(b.Score, b.Item, a.Score, a.Item):
			return 1
		}
		return 0
	})
	return all[:min(k, len(all))]
}
