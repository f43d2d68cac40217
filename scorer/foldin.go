package scorer

import (
	"math"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer/internal/linalg"
)

// PrepareFoldIn computes YᵀY, the Gram matrix of the item factors that every
// fold-in needs (O(n_items·d²), about a second for 1M×64). It runs once; servers
// call it at start-up so that the first unknown user does not pay for it.
func (m *Model) PrepareFoldIn() {
	m.gramOnce.Do(func() { m.gram = linalg.Gram(m.Items, m.Dim) })
}

// FoldIn returns the vector of a user the model was not trained on, from the items
// the user interacted with (rows of the item matrix) and their strengths r (nil
// means 1 each; repeats add up). It is one user-side step of implicit-feedback ALS
// with the item factors Y fixed (Hu, Koren & Volinsky 2008, "Collaborative Filtering
// for Implicit Feedback Datasets", ICDM, §4 eq. 4):
//
//	x = (YᵀY + Yᵀ(Cᵘ − I)Y + λI)⁻¹ YᵀCᵘp(u)
//
// where Cᵘ is diagonal with c_i = 1 + α·r_i and p(i) = 1 for the given items and 0
// elsewhere, so Yᵀ(Cᵘ − I)Y = Σ α·r_i·y_i y_iᵀ and YᵀCᵘp(u) = Σ c_i·y_i over the
// given items only. λ and α come from the model's metadata (defaults DefaultLambda,
// DefaultAlpha). The d×d system is solved by Cholesky in float64.
func (m *Model) FoldIn(items []int32, r []float32) ([]float32, error) {
	const op = "scorer.Model.FoldIn"
	if r != nil && len(r) != len(items) {
		panic("scorer: FoldIn: len(r) != len(items)")
	}
	if len(items) == 0 {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Errorf("no items to fold in"))
	}
	strength := make(map[int32]float64, len(items))
	order := make([]int32, 0, len(items))
	for j, it := range items {
		if it < 0 || int(it) >= m.NItems() {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("items"), experiment.Errorf("item index %d out of range [0, %d)", it, m.NItems()))
		}
		w := 1.0
		if r != nil {
			w = float64(r[j])
			if !(w >= 0) || math.IsInf(w, 0) {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field("r"), experiment.Errorf("strength %v of item %d must be finite and non-negative", r[j], it))
			}
		}
		if _, seen := strength[it]; !seen {
			order = append(order, it)
		}
		strength[it] += w
	}
	m.PrepareFoldIn()
	d := m.Dim
	a := make([]float64, d*d)
	copy(a, m.gram)
	lambda, alpha := m.lambda(), m.alpha()
	for i := range d {
		a[i*d+i] += lambda
	}
	b := make([]float64, d)
	y := make([]float64, d)
	for _, it := range order {
		for j, v := range m.Item(int(it)) {
			y[j] = float64(v)
		}
		c := 1 + alpha*strength[it]
		linalg.AddOuter(a, y, c-1)
		for j := range d {
			b[j] += c * y[j]
		}
	}
	x, err := linalg.SolveSPD(a, b)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	out := make([]float32, d)
	for j, v := range x {
		out[j] = float32(v)
	}
	return out, nil
}

// Query returns the query vector of a user: the trained row when the model knows
// userID, else the fold-in (FoldIn) of the recent items the model knows, with
// folded true. Unknown recent item ids are ignored. When the user is unknown and
// none of the recent items is known the error has kind experiment.InsufficientData.
func (m *Model) Query(userID string, recent []string) (q []float32, folded bool, err error) {
	if u, ok := m.UserIndex(userID); ok {
		return append([]float32(nil), m.User(int(u))...), false, nil
	}
	idx := make([]int32, 0, len(recent))
	for _, id := range recent {
		if i, ok := m.ItemIndex(id); ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, false, experiment.E("scorer.Model.Query", experiment.InsufficientData,
			experiment.Errorf("user %q is not in the model and none of its %d recent items is", userID, len(recent)))
	}
	q, err = m.FoldIn(idx, nil)
	return q, true, err
}
