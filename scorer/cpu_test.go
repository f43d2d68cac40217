package scorer

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func TestCPUMatchesNaive(t *testing.T) {
	tests := []struct {
		name                    string
		n, d, users, dup        int
		bias                    bool
		k, workers, block, excl int
	}{
		{"small one worker", 50, 8, 3, 0, false, 5, 1, 16, 0},
		{"ties and bias", 1000, 16, 7, 3, true, 10, 3, 64, 0},
		{"exclusions", 1000, 16, 5, 2, true, 10, 2, 100, 30},
		{"k above catalog", 20, 4, 2, 0, false, 50, 2, 8, 5},
		{"odd dim, odd block", 777, 13, 9, 5, true, 17, 4, 33, 3},
		{"block larger than catalog", 30, 64, 4, 0, true, 3, 8, 4096, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, tc.n, tc.d, tc.users, tc.dup, tc.bias, 7)
			c, err := NewCPU(m, Options{Workers: tc.workers, BlockItems: tc.block})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			queries := make([][]float32, tc.users)
			exclude := make([][]int32, tc.users)
			for u := range queries {
				queries[u] = m.User(u)
				for range tc.excl {
					exclude[u] = append(exclude[u], int32(rng.IntN(tc.n)))
				}
			}
			got, err := c.Score(context.Background(), queries, tc.k, exclude)
			if err != nil {
				t.Fatal(err)
			}
			for u := range queries {
				want := naiveTopK(m, queries[u], tc.k, exclude[u])
				if !slices.Equal(got[u], want) {
					t.Errorf("user %d:\n got %v\nwant %v", u, got[u], want)
				}
			}
		})
	}
}

func TestCPUTiesByItem(t *testing.T) {
	// Every item has the same vector, so every score ties and the top-k must be
	// items 0..k-1 in order.
	m := &Model{Dim: 2, ItemIDs: []string{"a", "b", "c", "d", "e"}, Items: []float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}
	c, err := NewCPU(m, Options{Workers: 2, BlockItems: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Score(context.Background(), [][]float32{{0.5, 0.25}}, 3, [][]int32{{1}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Scored{{0, 0.75}, {2, 0.75}, {3, 0.75}}
	if !slices.Equal(got[0], want) {
		t.Fatalf("got %v, want %v", got[0], want)
	}
}

func TestScoreRequestErrors(t *testing.T) {
	m := randomModel(t, 10, 4, 1, 0, false, 1)
	c, _ := NewCPU(m, Options{})
	ctx := context.Background()
	q := [][]float32{{1, 2, 3, 4}}
	tests := []struct {
		name    string
		queries [][]float32
		k       int
		exclude [][]int32
		field   string
	}{
		{"k zero", q, 0, nil, "k"},
		{"wrong dim", [][]float32{{1, 2, 3, 4}, {1, 2}}, 3, nil, "queries[1]"},
		{"exclude length", q, 3, [][]int32{{1}, {2}}, "exclude"},
		{"exclude range", q, 3, [][]int32{{1, 10}}, "exclude[0][1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Score(ctx, tc.queries, tc.k, tc.exclude)
			var e *experiment.Error
			if !experiment.Is(err, experiment.Invalid) || !asError(err, &e) || e.Field != tc.field {
				t.Fatalf("err = %v, want invalid on field %q", err, tc.field)
			}
		})
	}
	c.Close()
	if _, err := c.Score(ctx, q, 1, nil); !experiment.Is(err, experiment.Unavailable) {
		t.Fatalf("after Close: err = %v, want unavailable", err)
	}
}

func TestScoreCancelled(t *testing.T) {
	m := randomModel(t, 5000, 8, 1, 0, false, 1)
	c, _ := NewCPU(m, Options{BlockItems: 16})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Score(ctx, [][]float32{m.User(0)}, 3, nil); err == nil {
		t.Fatal("Score with a cancelled context succeeded")
	}
}
