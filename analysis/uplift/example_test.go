package uplift_test

import (
	"fmt"

	"github.com/liftlab/lift/analysis/uplift"
)

// The six-row example of the package tests: Qini coefficient 5/14 and AUUC
// 31/42 by causalml's normalized definitions.
func ExampleEvaluate() {
	score := []float64{0.9, 0.8, 0.7, 0.6, 0.5, 0.4}
	y := []float64{1, 0, 1, 1, 0, 0}
	treated := []bool{true, false, true, false, true, false}
	ev, err := uplift.Evaluate(score, y, treated, uplift.EvalOptions{Bins: 2, Bootstrap: -1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("Qini %.4f, AUUC %.4f, top-half uplift %.1f\n", ev.Qini, ev.AUUC, ev.Bins[0].Uplift)
	// Output: Qini 0.3571, AUUC 0.7381, top-half uplift 1.0
}
