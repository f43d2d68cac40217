package scorer

import "testing"

func TestNearest(t *testing.T) {
	// Items on the unit circle and beyond: cosines with item 0 = (1, 0) are
	// item 1 (0, 2): 0; item 2 (1, 1): 1/√2 ≈ 0.7071; item 3 (−1, 0): −1; item 4 (0, 0): skipped.
	m := &Model{Dim: 2, ItemIDs: []string{"a", "b", "c", "d", "e"}, Items: []float32{1, 0, 0, 2, 1, 1, -1, 0, 0, 0}}
	tests := []struct {
		history []int32
		best    int32
		sim     float32
		ok      bool
	}{
		{[]int32{1, 2, 3}, 2, 0.70710677, true},
		{[]int32{3, 1}, 1, 0, true},
		{[]int32{0, 4}, 0, 0, false},
		{nil, 0, 0, false},
	}
	for _, tc := range tests {
		best, sim, ok := m.Nearest(0, tc.history)
		if best != tc.best || ok != tc.ok || (ok && sim != tc.sim) {
			t.Errorf("history %v: got %d %v %v, want %d %v %v", tc.history, best, sim, ok, tc.best, tc.sim, tc.ok)
		}
	}
}
