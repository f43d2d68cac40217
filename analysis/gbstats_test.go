package analysis

import (
	"math"
	"testing"
)

// The vectors in this file are GrowthBook's published stats-engine tests
// (github.com/growthbook/growthbook, packages/stats, gbstats 0.8.0, MIT licence).
// Each expected number names its source test. The tests round to 5 decimals
// (tests/frequentist/test_tests.py, DECIMALS = 5) or 9 decimals
// (tests/test_gbstats.py), so the tolerance is half a unit of the last digit.

const (
	tol5 = 5.000001e-6
	tol9 = 5.000001e-10
)

var inf = math.Inf(1)

func mean3(name string, n int64, sum, ss float64) Arm {
	return Arm{Name: name, N: n, Sum: sum, SumSquares: ss}
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsInf(want, 0) {
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
		return
	}
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, want %.12g (±%g)", what, got, want, tol)
	}
}

// want is an expected effect; NaN fields are not checked.
type want struct{ est, lo, hi, se, p float64 }

var nan = math.NaN()

func checkEffect(t *testing.T, what string, got Effect, w want, tol float64) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want float64
	}{{"estimate", got.Estimate, w.est}, {"ci_low", got.CILow, w.lo}, {"ci_high", got.CIHigh, w.hi}, {"se", got.SE, w.se}, {"p_value", got.PValue, w.p}} {
		if !math.IsNaN(f.want) {
			near(t, what+"."+f.name, f.got, f.want, tol)
		}
	}
}

// armsA5 are the inputs of TestOneSidedGreaterTTest and friends
// (tests/frequentist/test_tests.py): a = (n 3000, Σ 1396.87, Σ² 52377.9767),
// b = (n 3461, Σ 2422.7, Σ² 134698.29).
func armsA5() []Arm {
	return []Arm{mean3("a", 3000, 1396.87, 52377.9767), mean3("b", 3461, 2422.7, 134698.29)}
}

func TestGBStatsTTests(t *testing.T) {
	ab1 := []Arm{mean3("a", 3407, 1396.87, 52377.9767), mean3("b", 3461, 2422.7, 134698.29)}
	prop := []Arm{{Name: "a", N: 28, Sum: 14}, {Name: "b", N: 30, Sum: 16}}
	cases := []struct {
		name     string
		in       Input
		relative bool
		want     want
		tol      float64
	}{
		// #1 TestTwoSidedTTest.test_two_sided_ttest
		{"two_sided_relative", Input{Arms: ab1}, true, want{0.70732, -0.03526, 1.44989, 0.37879, 0.06191}, tol5},
		// #2 TestTwoSidedTTest.test_two_sided_ttest_absolute
		{"two_sided_absolute", Input{Arms: ab1}, false, want{0.29, 0.04538, 0.53462, 0.12478, 0.02016}, tol5},
		// #3 TestTwoSidedTTest.test_two_sided_ttest_binom
		{"two_sided_binom", Input{Type: Proportion, Arms: prop}, true, want{0.06667, -0.47767, 0.61101, 0.2717, 0.80707}, tol5},
		// #5 TestOneSidedGreaterTTest.test_one_sided_ttest (full precision in the test)
		{"greater_relative", Input{Arms: armsA5(), Alternative: Greater}, true, want{0.5033610858562358, -0.045136675850396046, inf, 0.3334122146400735, 0.06558262868467746}, 1e-9},
		// #6 TestOneSidedGreaterTTest.test_one_sided_ttest_absolute
		{"greater_absolute", Input{Arms: armsA5(), Alternative: Greater}, false, want{0.23437666666666668, 0.020791480063255735, inf, 0.12983081254184736, 0.03554272489873023}, 1e-9},
		// #7 TestOneSidedLesserTTest.test_one_sided_ttest
		{"less_relative", Input{Arms: armsA5(), Alternative: Less}, true, want{0.5033610858562358, -inf, 1.0518588475628676, 0.3334122146400735, 0.9344173713153225}, 1e-9},
		// #7 TestOneSidedLesserTTest.test_one_sided_ttest_absolute
		{"less_absolute", Input{Arms: armsA5(), Alternative: Less}, false, want{0.23437666666666668, -inf, 0.44796185327007765, 0.12983081254184736, 0.9644572751012698}, 1e-9},
		// #8 TestSequentialTTest.test_sequential_test_runs (tuning 1000)
		{"sequential", Input{Arms: armsA5(), SequentialTuning: 1000}, true, want{0.50336, -0.55844, 1.56516, 0.33341, 1}, tol5},
		// #9 TestSequentialTTest.test_sequential_test_runs_prop (default tuning 5000)
		{"sequential_prop", Input{Type: Proportion, Arms: []Arm{{Name: "a", N: 3000, Sum: 1396}, {Name: "b", N: 3461, Sum: 2422}}, SequentialTuning: 5000}, true, want{0.50386, 0.40098, 0.60675, 0.03386, 0.0}, tol5},
		// #11 TestSequentialOneSidedGreaterTTest.test_one_sided_ttest
		{"sequential_greater", Input{Arms: armsA5(), SequentialTuning: 5000, Alternative: Greater}, true, want{0.5033610858562358, -0.42356454602790883, inf, 0.3334122146400735, 0.4999}, 1e-9},
		// TestSequentialOneSidedGreaterTTest.test_one_sided_ttest_absolute: the p-value is
		// the bisection's result, so it is compared to the test's tolerance only.
		{"sequential_greater_absolute", Input{Arms: armsA5(), SequentialTuning: 5000, Alternative: Greater}, false, want{0.23437666666666668, -0.12656844172804982, inf, 0.12983081254184736, 0.46316491943359384}, 1e-9},
		// TestSequentialOneSidedLesserTTest.test_one_sided_ttest
		{"sequential_less", Input{Arms: armsA5(), SequentialTuning: 5000, Alternative: Less}, true, want{0.5033610858562358, -inf, 1.4302867177403806, 0.3334122146400735, 0.4999}, 1e-9},
		// TestSequentialOneSidedLesserTTest.test_one_sided_ttest_absolute
		{"sequential_less_absolute", Input{Arms: armsA5(), SequentialTuning: 5000, Alternative: Less}, false, want{0.23437666666666668, -inf, 0.5953217750613832, 0.12983081254184736, 0.4999}, 1e-9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Analyze(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Comparisons) != 1 {
				t.Fatalf("got %d comparisons", len(res.Comparisons))
			}
			cmp := res.Comparisons[0]
			if len(cmp.Flags) != 0 {
				t.Errorf("flags %v", cmp.Flags)
			}
			got := cmp.Absolute
			if c.relative {
				got = cmp.Relative
			}
			checkEffect(t, c.name, got, c.want, c.tol)
		})
	}
}

// #4 TestTwoSidedTTest.test_two_sided_ttest_missing_variance: a control with n=2
// and Σ² < (Σ)²/n has negative variance; gbstats returns its default output
// (estimate 0, CI (0, 0), p 1) with ZERO_NEGATIVE_VARIANCE.
func TestGBStatsMissingVariance(t *testing.T) {
	res, err := Analyze(Input{Arms: []Arm{mean3("a", 2, 1396.87, 52377.9767), mean3("b", 3461, 2422.7, 134698.29)}})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Comparisons[0]
	if len(c.Flags) != 1 || c.Flags[0] != FlagZeroVariance {
		t.Errorf("flags = %v, want [%s]", c.Flags, FlagZeroVariance)
	}
	for _, e := range []Effect{c.Absolute, c.Relative} {
		if e != (Effect{PValue: 1}) {
			t.Errorf("effect = %+v, want the default output", e)
		}
	}
}

// #10 TestSequentialTTest.test_sequential_test_runs_ra: CUPED with the pre-period
// sums below and Σxy = 1 in each arm, tuning 5000, relative.
func TestGBStatsSequentialCUPED(t *testing.T) {
	a := Arm{Name: "a", N: 3000, Sum: 1396.87, SumSquares: 52377.9767, CovariateSum: 16.87, CovariateSumSquares: 527.9767, CrossSum: 1}
	b := Arm{Name: "b", N: 3461, Sum: 2422.7, SumSquares: 134698.29, CovariateSum: 22.7, CovariateSumSquares: 1348.29, CrossSum: 1}
	res, err := Analyze(Input{Arms: []Arm{a, b}, Covariate: "pre", SequentialTuning: 5000})
	if err != nil {
		t.Fatal(err)
	}
	checkEffect(t, "relative", res.Comparisons[0].Relative, want{0.50338, -0.50969, 1.51646, 0.33341, 1}, tol5)
}

// ratioRAArms are the RegressionAdjustedRatioStatistic inputs of
// test_two_sided_ttest_test_runs_ratio_ra (tests/frequentist/test_tests.py).
// bPreDenPost and bPreDenPre differ in the last digits between that file and
// RATIO_RA_STATISTICS_DF in tests/test_gbstats.py; each test passes its own.
func ratioRAArms(bPreDenPost, bPreDenPre float64) []Arm {
	return []Arm{{
		Name: "zero", N: 100,
		Sum: 485.112236689623, SumSquares: 2715.484666118136,
		DenominatorSum: 679.9093275844917, DenominatorSumSquares: 4939.424001640236,
		CovariateSum: 192.59138069991536, CovariateSumSquares: 460.076026390857,
		DenominatorCovariateSum: 290.1398399750233, DenominatorCovariateSumSquares: 920.9461385038898,
		CrossSum:                           1113.6215759318352,
		DenominatorDenominatorCovariateSum: 2130.9404074446747,
		CovariateDenominatorCovariateSum:   634.239482353647,
		MetricDenominatorSum:               3602.146836776702,
		MetricDenominatorCovariateSum:      1559.2878434944676,
		CovariateDenominatorSum:            1460.3181079276983,
	}, {
		Name: "one", N: 100,
		Sum: 514.7757826608777, SumSquares: 2994.897482705013,
		DenominatorSum: 705.4090874383759, DenominatorSumSquares: 5291.36604146392,
		CovariateSum: 206.94157227402536, CovariateSumSquares: 514.2903702246757,
		DenominatorCovariateSum: 302.54389139107326, DenominatorCovariateSumSquares: 994.4506208125663,
		CrossSum:                           1237.0953021125997,
		DenominatorDenominatorCovariateSum: 2292.081739775257,
		CovariateDenominatorCovariateSum:   bPreDenPre,
		MetricDenominatorSum:               3918.1561431600717,
		MetricDenominatorCovariateSum:      1701.0287270040265,
		CovariateDenominatorSum:            bPreDenPost,
	}}
}

// #12 test_two_sided_ttest_test_runs_ratio_ra and
// TestSequentialTTest.test_sequential_test_runs_ratio_ra.
func TestGBStatsRatioCUPED(t *testing.T) {
	arms := ratioRAArms(1604.0759503266522, 698.4173425817908)
	res, err := Analyze(Input{Type: Ratio, Arms: arms, Covariate: "pre"})
	if err != nil {
		t.Fatal(err)
	}
	checkEffect(t, "fixed", res.Comparisons[0].Relative, want{-0.0007, -0.00841, 0.00700, 0.00391, 0.85771}, tol5)
	res, err = Analyze(Input{Type: Ratio, Arms: arms, Covariate: "pre", SequentialTuning: 5000})
	if err != nil {
		t.Fatal(err)
	}
	checkEffect(t, "sequential", res.Comparisons[0].Relative, want{-0.0007, -0.02063, 0.01923, 0.00391, 1}, tol5)
}

// The full analyze_metric_df pipeline (tests/test_gbstats.py, 9 decimals).
func TestGBStatsPipeline(t *testing.T) {
	count := []Arm{mean3("zero", 100, 270, 848.79), mean3("one", 120, 300, 869)}
	ra := []Arm{
		{Name: "zero", N: 3001, Sum: 300, SumSquares: 600, CovariateSum: 210, CovariateSumSquares: 415, CrossSum: -20},
		{Name: "one", N: 3000, Sum: 222, SumSquares: 555, CovariateSum: 120, CovariateSumSquares: 405, CrossSum: -10},
	}
	ratio := []Arm{
		{Name: "zero", N: 100, Sum: 270, SumSquares: 848.79, DenominatorSum: 510, DenominatorSumSquares: 810, MetricDenominatorSum: -900},
		{Name: "one", N: 120, Sum: 300, SumSquares: 869, DenominatorSum: 500, DenominatorSumSquares: 800, MetricDenominatorSum: -905},
	}
	cases := []struct {
		name          string
		in            Input
		crA, crB, exp float64
		p, ciLow      float64
		theta         float64
	}{
		// #13 TestAnalyzeMetricDfFrequentist.test_get_metric_dfs_frequentist, dimension "one"
		{"frequentist", Input{Arms: count}, 2.7, 2.5, -0.074074074, 0.145219005, nan, nan},
		// #14 TestAnalyzeMetricDfSequential (tuning 600)
		{"sequential", Input{Arms: count, SequentialTuning: 600}, 2.7, 2.5, -0.074074074, 0.892332229, -0.233322085, nan},
		// #15 TestAnalyzeMetricDfRegressionAdjustment.test_analyze_metric_df_ra
		{"ra", Input{Arms: ra, Covariate: "pre"}, 0.099966678, 0.074, -0.281707154, 0.003732549, nan, -0.073211940},
		// #16 TestAnalyzeMetricDfRegressionAdjustment.test_analyze_metric_df_ra_proportion
		{"ra_proportion", Input{Type: Proportion, Arms: ra, Covariate: "pre"}, nan, nan, -0.31620216, 0.000000353, nan, nan},
		// #17 TestAnalyzeMetricDfRegressionAdjustment.test_analyze_metric_df_ratio_ra
		{"ratio_ra", Input{Type: Ratio, Arms: ratioRAArms(1604.075950326651, 698.4173425817913), Covariate: "pre"}, 0.713495487, 0.729754963, -0.000701483, 0.857710405, nan, nan},
		// #18 TestAnalyzeMetricDfFrequentist.test_get_metric_dfs_frequentist_ratio
		{"ratio", Input{Type: Ratio, Arms: ratio}, 0.529411765, 0.6, 0.133333333, 0.610663339, nan, nan},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Analyze(c.in)
			if err != nil {
				t.Fatal(err)
			}
			cmp := res.Comparisons[0]
			if !math.IsNaN(c.crA) {
				near(t, "cr[0]", res.Variants[0].Mean, c.crA, tol9)
				near(t, "cr[1]", res.Variants[1].Mean, c.crB, tol9)
			}
			near(t, "expected", cmp.Relative.Estimate, c.exp, tol9)
			near(t, "p_value", cmp.Relative.PValue, c.p, tol9)
			if !math.IsNaN(c.ciLow) {
				near(t, "ci[0]", cmp.Relative.CILow, c.ciLow, tol9)
			}
			if !math.IsNaN(c.theta) {
				near(t, "theta", cmp.CUPED.Theta, c.theta, tol9)
			}
		})
	}
}

// SRM vectors: GrowthBook back-end checkSrm tests (packages/back-end/test/stats.test.ts,
// 9 decimals); the first also appeared in an older gbstats check_srm test.
func TestSRMGrowthBook(t *testing.T) {
	cases := []struct {
		users, weights []float64
		p              float64
	}{
		{[]float64{1000, 1200}, []float64{0.5, 0.5}, 0.000020079},
		{[]float64{135, 115}, []float64{0.5, 0.5}, 0.205903211},
		{[]float64{310, 98}, []float64{0.75, 0.25}, 0.647434186},
		{[]float64{1000}, []float64{0.5, 0.5}, 1},
		{[]float64{1000, 900, 800}, []float64{1, 0, 0}, 1},
		{[]float64{1000, 1200, 900}, []float64{0.5, 0.5, 0}, 0.000020079},
		{[]float64{0, 0, 0}, []float64{0.34, 0.33, 0.33}, 1},
		{[]float64{0, 10, 10}, []float64{0.34, 0.33, 0.33}, 0.005790624},
		{[]float64{500, 500, 600}, []float64{0.34, 0.33, 0.33}, 0.000592638},
		{[]float64{500, 500}, []float64{0.5, 0.5}, 1},
	}
	for _, c := range cases {
		near(t, "SRM", SRM(c.users, c.weights), c.p, tol9)
	}
}
