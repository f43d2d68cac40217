package scorer_test

import (
	"context"
	"fmt"

	"github.com/liftlab/lift/scorer"
)

func Example() {
	// Four items in two dimensions; a user who likes the first dimension.
	m := &scorer.Model{
		Dim:     2,
		ItemIDs: []string{"boots", "scarf", "hat", "gloves"},
		Items:   []float32{1, 0, 0, 1, 0.5, 0.5, 1, 0},
		Bias:    []float32{0, 0, 0, 0.25},
	}
	ctx := context.Background()
	s, err := scorer.Open(ctx, scorer.KindCPU, m, scorer.Options{Workers: 1})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	lists, err := s.Score(ctx, [][]float32{{2, 1}}, 3, [][]int32{{2}}) // the user already has the hat
	if err != nil {
		panic(err)
	}
	for _, it := range lists[0] {
		fmt.Printf("%s %.2f\n", m.ItemIDs[it.Item], it.Score)
	}
	// Output:
	// gloves 2.25
	// boots 2.00
	// scarf 1.00
}

func ExampleGini() {
	fmt.Printf("%.2f %.2f\n", scorer.Gini([]float64{5, 5, 5, 5}), scorer.Gini([]float64{0, 0, 0, 20}))
	// Output: 0.00 0.75
}
