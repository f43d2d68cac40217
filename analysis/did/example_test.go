package did_test

import (
	"fmt"

	"github.com/liftlab/lift/analysis/did"
)

// Two stores per state, before and after: the treated stores gain 3, the
// control stores 1, so the difference in differences is 2.
func ExampleRegress() {
	y := []float64{10, 13, 12, 15, 9, 10, 11, 12}
	treated := []bool{true, true, true, true, false, false, false, false}
	post := []bool{false, true, false, true, false, true, false, true}
	store := []int{1, 1, 2, 2, 3, 3, 4, 4}
	r, err := did.Regress(y, treated, post, store, did.Classical, 0.05)
	if err != nil {
		panic(err)
	}
	fmt.Printf("DiD %.2f = (%.1f − %.1f) − (%.1f − %.1f)\n", r.Effect.Estimate,
		r.Cells.TreatedPost.Mean, r.Cells.TreatedPre.Mean, r.Cells.ControlPost.Mean, r.Cells.ControlPre.Mean)
	// Output: DiD 2.00 = (14.0 − 11.0) − (11.0 − 10.0)
}
