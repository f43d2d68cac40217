package analysis_test

import (
	"fmt"

	"github.com/liftlab/lift/analysis"
)

// A two-arm mean metric from per-variant sums (GrowthBook's
// TestTwoSidedTTest inputs).
func ExampleAnalyze() {
	res, err := analysis.Analyze(analysis.Input{
		Metric: "revenue",
		Arms: []analysis.Arm{
			{Name: "control", Weight: 0.5, N: 3407, Sum: 1396.87, SumSquares: 52377.9767},
			{Name: "treatment", Weight: 0.5, N: 3461, Sum: 2422.7, SumSquares: 134698.29},
		},
	})
	if err != nil {
		panic(err)
	}
	c := res.Comparisons[0]
	fmt.Printf("absolute %.2f [%.5f, %.5f] p=%.5f\n", c.Absolute.Estimate, c.Absolute.CILow, c.Absolute.CIHigh, c.Absolute.PValue)
	fmt.Printf("relative %.5f [%.5f, %.5f] p=%.5f\n", c.Relative.Estimate, c.Relative.CILow, c.Relative.CIHigh, c.Relative.PValue)
	fmt.Printf("SRM p=%.3f mismatch=%v\n", res.SRM.PValue, res.SRM.Mismatch)
	// Output:
	// absolute 0.29 [0.04538, 0.53462] p=0.02016
	// relative 0.70732 [-0.03526, 1.44989] p=0.06191
	// SRM p=0.515 mismatch=false
}

// CUPED with θ pooled over both arms (GrowthBook's test_analyze_metric_df_ra).
func ExampleAnalyze_cuped() {
	res, _ := analysis.Analyze(analysis.Input{
		Metric:    "purchases",
		Covariate: "purchases_before",
		Arms: []analysis.Arm{
			{Name: "zero", N: 3001, Sum: 300, SumSquares: 600, CovariateSum: 210, CovariateSumSquares: 415, CrossSum: -20},
			{Name: "one", N: 3000, Sum: 222, SumSquares: 555, CovariateSum: 120, CovariateSumSquares: 405, CrossSum: -10},
		},
	})
	c := res.Comparisons[0]
	fmt.Printf("theta %.6f, relative %.6f, p %.6f\n", res.CUPED.Theta, c.Relative.Estimate, c.Relative.PValue)
	// Output:
	// theta -0.073212, relative -0.281707, p 0.003733
}

func ExampleWelchFromSamples() {
	e, _ := analysis.WelchFromSamples([]float64{19.1, 21.5, 22.0, 24.3, 25.9}, []float64{17.2, 18.3, 19.9, 20.1}, 0.05)
	fmt.Printf("%.3f ± %.3f (dof %.2f), p = %.4f\n", e.Estimate, e.SE, e.DF, e.PValue)
	// Output:
	// 3.685 ± 1.361 (dof 6.24), p = 0.0339
}

func ExampleSRM() {
	// 1,000 vs 1,200 units on a 50/50 split: a sample-ratio mismatch.
	p := analysis.SRM([]float64{1000, 1200}, []float64{0.5, 0.5})
	fmt.Printf("p = %.9f, mismatch = %v\n", p, p < analysis.DefaultSRMThreshold)
	// Output:
	// p = 0.000020079, mismatch = true
}

func ExampleSampleSize() {
	// Units per arm to detect a difference of one standard deviation with 90%
	// power (R: power.t.test(power = .90, delta = 1) gives n = 22.02110), and
	// with CUPED removing 40% of the variance.
	n, _ := analysis.SampleSize(1, analysis.PowerOptions{SD: 1, Power: 0.9})
	nc, _ := analysis.SampleSize(1, analysis.PowerOptions{SD: 1, Power: 0.9, VarianceReduction: 0.4})
	days, _ := analysis.Duration(n, 2, 10, 1)
	fmt.Printf("n = %.4f per arm, with CUPED %.4f; %d days at 10 units/day\n", n, nc, days)
	// Output:
	// n = 22.0211 per arm, with CUPED 13.6450; 5 days at 10 units/day
}

func ExampleBHAdjust() {
	fmt.Printf("%.4f\n", analysis.BHAdjust([]float64{0.01, 0.04, 0.03, 0.20}))
	fmt.Printf("%.4f\n", analysis.HolmAdjust([]float64{0.01, 0.04, 0.03, 0.20}))
	// Output:
	// [0.0400 0.0533 0.0533 0.2000]
	// [0.0400 0.0900 0.0900 0.2000]
}
