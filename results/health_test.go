package results

import (
	"math"
	"testing"

	"github.com/liftlab/lift/analysis"
)

// TestAdjustInteractions: the interaction tests of all of an experiment's
// overlaps (every other experiment, shared metric and pair of arms) are one
// family, adjusted by the experiment's correction; a pair is flagged when its
// adjusted p-value is below alpha. Tests that could not run take no part.
// Expected values from statsmodels 0.13:
//
//	multipletests([0.01, 0.04, 0.03, 0.5], method='holm')[1]   → [0.04, 0.09, 0.09, 0.5]
//	multipletests([0.01, 0.04, 0.03, 0.5], method='fdr_bh')[1] → [0.04, 0.05333…, 0.05333…, 0.5]
func TestAdjustInteractions(t *testing.T) {
	mk := func() *Overlaps {
		ir := func(p float64) *analysis.InteractionResult {
			return &analysis.InteractionResult{PValue: p, Interacts: p < 0.05, Alpha: 0.05}
		}
		return &Overlaps{Overlaps: []Overlap{
			{Experiment: "a", Interactions: []MetricInteraction{{InteractionResult: ir(0.01)}, {Error: "no unit in cell (0, 1)"}, {InteractionResult: ir(0.04)}}},
			{Experiment: "b", Interactions: []MetricInteraction{{InteractionResult: ir(0.03)}, {InteractionResult: ir(0.5)}}},
		}}
	}
	for _, c := range []struct {
		correction string
		adjusted   []float64 // in order, the tests that ran
		flagged    []bool
	}{
		{"holm", []float64{0.04, 0.09, 0.09, 0.5}, []bool{true, false, false, false}},
		{"bh", []float64{0.04, 0.05333333333333334, 0.05333333333333334, 0.5}, []bool{true, false, false, false}},
		{"none", []float64{0.01, 0.04, 0.03, 0.5}, []bool{true, true, true, false}},
	} {
		ov := mk()
		adjustInteractions(ov, analysisPlan{Alpha: 0.05, Correction: c.correction})
		if ov.Correction != c.correction {
			t.Errorf("%s: correction %q", c.correction, ov.Correction)
		}
		k := 0
		for _, o := range ov.Overlaps {
			for _, mi := range o.Interactions {
				if mi.InteractionResult == nil {
					if mi.AdjustedPValue != nil || mi.Flagged {
						t.Errorf("%s: a test that did not run was adjusted: %+v", c.correction, mi)
					}
					continue
				}
				if mi.AdjustedPValue == nil || math.Abs(*mi.AdjustedPValue-c.adjusted[k]) > 1e-15 || mi.Flagged != c.flagged[k] {
					t.Errorf("%s: test %d adjusted %v flagged %v, want %v %v", c.correction, k, mi.AdjustedPValue, mi.Flagged, c.adjusted[k], c.flagged[k])
				}
				k++
			}
		}
		if k != len(c.adjusted) {
			t.Errorf("%s: %d tests adjusted, want %d", c.correction, k, len(c.adjusted))
		}
	}
}
