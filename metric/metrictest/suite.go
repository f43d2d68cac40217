// Package metrictest is the conformance suite of metric engines: Run loads the
// suite's datasets into an engine through the caller's factory and checks every
// method of metric.Engine against values derived by hand (the derivations are in
// the comments), numbers computed outside the project (numpy, scipy; the snippets
// are pasted) and, on generated data, the reference engine metric.Memory.
package metrictest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// NewEngine loads d into a fresh engine (a temp DuckDB file, a ClickHouse
// database, memory) and returns it; it fails t when it cannot.
type NewEngine func(t *testing.T, d metric.Dataset) metric.Engine

// Run runs the conformance suite against the engines newEngine makes.
func Run(t *testing.T, newEngine NewEngine) {
	t.Run("hand", func(t *testing.T) {
		eng := newEngine(t, handDataset())
		testHand(t, eng)
		t.Run("winsorized", func(t *testing.T) { testHandWinsorized(t, eng) })
		t.Run("matured", func(t *testing.T) { testHandMatured(t, eng) })
	})
	t.Run("large offset", func(t *testing.T) { testLargeOffset(t, newEngine) })
	t.Run("generated", func(t *testing.T) { testGenerated(t, newEngine) })
}

// T is the hand dataset's day 0.
var T = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// handDataset is small enough to compute every expected value by hand:
//
//	unit   exposures (experiment "exp" unless said)          purchases (dt from t₀)                     visits
//	a      control T, control T+2d (repeat)  [holdout v1]    10 @T−2d (pre), 30 @T+1h, 50 @T+3d         T−3d (pre), T+1h, T+2h
//	b      control T+1d                      [holdout v1]    4 @T (dt −1d, pre), 20 @T+1d+6h (dt 6h)    T+1d+1h
//	c      treatment T                       [holdout v1]    none                                       T−1d (pre), T+1h, T+4d
//	d      treatment T+12h                   [holdout v1]    8 @T−9.5d (dt −10d), 100 @T+12h (dt 0),
//	                                                         1000 @T+7.5d (dt exactly 7d)
//	late   treatment T+5d                                    5 @T+5d+1h
//	m      control T, treatment T+1h (two arms: excluded)    999 @T+2h
//	z      variant "legacy", not listed (left out)           777 @T+1h
//	never  not exposed                                       3 @T+1h, 2 @T+9d
//	k1     exp, in holdout v1, no variant                    7 @T+1h
//	k2     exp2, in holdout v1                               9 @T+1d+2h, 1 @T+10d
//	k3     exp, in holdout v2                                1000 @T+1h
//	k4     "unrelated", in holdout v1                        none
//	k5     exp3, exposed (control) T and in holdout T+1h, v3 none (both arms of holdout v3: excluded)
func handDataset() metric.Dataset {
	var d metric.Dataset
	x := func(exp, unit, variant string, ts time.Time, inHoldout bool, version int) {
		d.Exposures = append(d.Exposures, experiment.Exposure{Experiment: exp, Unit: unit, Variant: variant, TS: ts, InHoldout: inHoldout, HoldoutVersion: version})
	}
	x("exp", "a", "control", T, false, 1)
	x("exp", "a", "control", T.Add(2*day), false, 1)
	x("exp", "b", "control", T.Add(day), false, 1)
	x("exp", "c", "treatment", T, false, 1)
	x("exp", "d", "treatment", T.Add(12*hour), false, 1)
	x("exp", "late", "treatment", T.Add(5*day), false, 0)
	x("exp", "m", "control", T, false, 0)
	x("exp", "m", "treatment", T.Add(hour), false, 0)
	x("exp", "z", "legacy", T, false, 0)
	x("other", "never-here", "control", T, false, 0)
	x("exp", "k1", "", T, true, 1)
	x("exp2", "k2", "", T.Add(day), true, 1)
	x("exp", "k3", "", T, true, 2)
	x("unrelated", "k4", "", T, true, 1)
	x("exp3", "k5", "control", T, false, 3)
	x("exp3", "k5", "", T.Add(hour), true, 3)
	e := func(unit, typ string, ts time.Time, v float64) {
		d.Events = append(d.Events, experiment.Event{EventID: fmt.Sprintf("e%d", len(d.Events)), Unit: unit, Type: typ, TS: ts, Value: v})
	}
	p := func(unit string, ts time.Time, v float64) { e(unit, "purchase", ts, v) }
	v := func(unit string, ts time.Time) { e(unit, "visit", ts, 0) }
	p("a", T.Add(-2*day), 10)
	p("a", T.Add(hour), 30)
	p("a", T.Add(3*day), 50)
	v("a", T.Add(-3*day))
	v("a", T.Add(hour))
	v("a", T.Add(2*hour))
	p("b", T, 4)
	p("b", T.Add(day+6*hour), 20)
	v("b", T.Add(day+hour))
	v("c", T.Add(-day))
	v("c", T.Add(hour))
	v("c", T.Add(4*day))
	p("d", T.Add(-9*day-12*hour), 8)
	p("d", T.Add(12*hour), 100)
	p("d", T.Add(7*day+12*hour), 1000)
	p("late", T.Add(5*day+hour), 5)
	p("m", T.Add(2*hour), 999)
	p("z", T.Add(hour), 777)
	p("never", T.Add(hour), 3)
	p("never", T.Add(9*day), 2)
	p("k1", T.Add(hour), 7)
	p("k2", T.Add(day+2*hour), 9)
	p("k2", T.Add(10*day), 1)
	p("k3", T.Add(hour), 1000)
	return d
}

func handExperiment() *experiment.Experiment {
	return &experiment.Experiment{Key: "exp", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}
}

// handMetrics cover every aggregation, both caps, windows, covariates and ratios.
func handMetrics() (names []string, defs metric.Resolved) {
	ms := []*experiment.Metric{
		{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Covariate: &experiment.Covariate{Days: 7}},
		{Name: "orders", EventType: "purchase", Aggregation: experiment.Count},
		{Name: "buyer", EventType: "purchase", Aggregation: experiment.Binary, Window: &experiment.Window{StartDays: 0.25, EndDays: 3}},
		{Name: "aov", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Value: 60}, Covariate: &experiment.Covariate{Days: 7}},
		{Name: "visits", EventType: "visit", Aggregation: experiment.Count, Cap: &experiment.Cap{Percentile: 0.7}},
		{Name: "rpv", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "visits", Covariate: &experiment.Covariate{Days: 7}},
		{Name: "opv_1d", Aggregation: experiment.Ratio, Numerator: "orders", Denominator: "visits", Window: &experiment.Window{EndDays: 1}},
	}
	defs = metric.Resolved{}
	for _, m := range ms {
		names = append(names, m.Name)
		defs[m.Name] = m
	}
	return names, defs
}

// raw is an arm's unshifted sums (see Unshift), by analysis.Arm field name.
type raw map[string]float64

func testHand(t *testing.T, eng metric.Engine) {
	ctx := context.Background()
	names, defs := handMetrics()
	pop := metric.ExperimentPopulation(handExperiment())
	plan, err := metric.Compile(pop, names, defs)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("stats", func(t *testing.T) {
		st, err := eng.Stats(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		// Analyzed: control a, b; treatment c, d, late. m has two arms; z's arm is not listed.
		if want := map[string]int64{"control": 2, "treatment": 3}; !reflect.DeepEqual(st.Units, want) || st.MultipleArms != 1 {
			t.Errorf("units %v, multiple arms %d; want %v, 1", st.Units, st.MultipleArms, want)
		}
		// Per unit (control a, b | treatment c, d, late), by hand from the table of handDataset:
		//  revenue y [0, 7d): a 30+50, b 20 | c 0, d 100 (1000 is at dt = 7d, out), late 5
		//          x [−7d, 0): a 10, b 4 | 0, 0 (d's 8 is at −10d), 0
		//  orders [0, ∞): a 2, b 1 | 0, 2, 1
		//  buyer [6h, 3d): a 0 (1h, 3d: out), b 1 (dt 6h exactly) | 0, 0 (dt 0), 0
		//  aov mean, cap 60: a 40, b 20 | c none (left out), d 550 → 60, late 5
		//      x mean [−7d, 0): a 10, b 4 | d none → 0, late none → 0
		//  visits [0, ∞) 2, 1 | 2, 0, 0, capped at the 0.7 quantile of {2, 1, 2, 0, 0}:
		//      numpy.quantile([2, 1, 2, 0, 0], 0.7) = 1.7999999999999998 → 1.8, 1 | 1.8, 0, 0
		//      (z, unlisted, is not an analyzed unit: with its 0 the cap would be 1.5)
		//  visits [−7d, 0) 1, 0 | 1, 0, 0, at numpy.quantile([1, 0, 1, 0, 0], 0.7) = 0.8 → 0.8, 0 | 0.8, 0, 0
		//  orders [0, 1d) 1, 1 | 0, 1, 1; visits [0, 1d) 2, 1 | 1, 0, 0 at numpy.quantile([2, 1, 1, 0, 0], 0.7) = 1.0
		want := map[string][2]raw{
			"revenue": {{"N": 2, "Sum": 100, "SumSquares": 6800, "CovariateSum": 14, "CovariateSumSquares": 116, "CrossSum": 880},
				{"N": 3, "Sum": 105, "SumSquares": 10025}},
			"orders": {{"N": 2, "Sum": 3, "SumSquares": 5}, {"N": 3, "Sum": 3, "SumSquares": 5}},
			"buyer":  {{"N": 2, "Sum": 1, "SumSquares": 1}, {"N": 3}},
			"aov": {{"N": 2, "Sum": 60, "SumSquares": 2000, "CovariateSum": 14, "CovariateSumSquares": 116, "CrossSum": 480},
				{"N": 2, "Sum": 65, "SumSquares": 3625}},
			"visits": {{"N": 2, "Sum": 2.8, "SumSquares": 4.24}, {"N": 3, "Sum": 1.8, "SumSquares": 3.24}},
			"rpv": {{"N": 2, "Sum": 100, "SumSquares": 6800, "CovariateSum": 14, "CovariateSumSquares": 116, "CrossSum": 880,
				"DenominatorSum": 2.8, "DenominatorSumSquares": 4.24, "MetricDenominatorSum": 164,
				"DenominatorCovariateSum": 0.8, "DenominatorCovariateSumSquares": 0.64, "MetricDenominatorCovariateSum": 64,
				"CovariateDenominatorSum": 22, "CovariateDenominatorCovariateSum": 8, "DenominatorDenominatorCovariateSum": 1.44},
				{"N": 3, "Sum": 105, "SumSquares": 10025, "DenominatorSum": 1.8, "DenominatorSumSquares": 3.24,
					"DenominatorCovariateSum": 0.8, "DenominatorCovariateSumSquares": 0.64, "DenominatorDenominatorCovariateSum": 1.44}},
			"opv_1d": {{"N": 2, "Sum": 2, "SumSquares": 2, "DenominatorSum": 2, "DenominatorSumSquares": 2, "MetricDenominatorSum": 2},
				{"N": 3, "Sum": 2, "SumSquares": 2, "DenominatorSum": 1, "DenominatorSumSquares": 1}},
		}
		for _, n := range names {
			arms := st.Metrics[n]
			if len(arms) != 2 || arms[0].Name != "control" || arms[1].Name != "treatment" || arms[0].Weight != 0.5 {
				t.Fatalf("%s: arms %+v, want control and treatment with their weights", n, arms)
			}
			for i, w := range want[n] {
				checkRaw(t, n+" "+arms[i].Name, Unshift(arms[i]), w, 1e-12)
			}
		}
		// The pilot shift of revenue is its mean over the five analyzed units: (80+20+0+100+5)/5.
		for _, a := range st.Metrics["revenue"] {
			if math.Abs(a.Shift-41) > 1e-12 {
				t.Errorf("revenue %s: shift %g, want 41", a.Name, a.Shift)
			}
		}
		// Aov's covariate pilot: the mean of the units with a pre-period mean, (10+4)/2.
		if c := st.Metrics["aov"][1].CovariateShift; math.Abs(c-7) > 1e-12 {
			t.Errorf("aov covariate shift %g, want 7", c)
		}
		// Columns in plan order: revenue y, x; orders; buyer; aov y, x; visits; rpv's
		// d₀ (visits pre); opv_1d's orders and visits over [0, 1d). Σ round(v·10⁶)
		// per arm from the per-unit values above.
		wantSums := map[string]string{
			"control":   "100000000,14000000,3000000,1000000,60000000,14000000,2800000,800000,2000000,2000000",
			"treatment": "105000000,0,3000000,0,65000000,0,1800000,800000,2000000,1000000",
		}
		if !reflect.DeepEqual(st.Checksums, wantSums) {
			t.Errorf("checksums\n %v\nwant\n %v", st.Checksums, wantSums)
		}
		// Latest exposure: late's at T+5d; latest event: k2's at T+10d (any unit).
		checkTime(t, "latest exposure", st.Freshness.LatestExposure, T.Add(5*day))
		checkTime(t, "latest event", st.Freshness.LatestEvent, T.Add(10*day))
	})
	t.Run("until", func(t *testing.T) {
		// Cut at T+2d: late's exposure and every later event are ignored (a's repeat
		// exposure at T+2d exactly too); revenue y: a 30, b 20 | c 0, d 100.
		cut := pop
		cut.Until = T.Add(2 * day)
		p, err := metric.Compile(cut, []string{"revenue"}, defs)
		if err != nil {
			t.Fatal(err)
		}
		st, err := eng.Stats(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{"control": 2, "treatment": 2}; !reflect.DeepEqual(st.Units, want) {
			t.Errorf("units %v, want %v", st.Units, want)
		}
		checkRaw(t, "revenue control", Unshift(st.Metrics["revenue"][0]), raw{"N": 2, "Sum": 50, "SumSquares": 1300, "CovariateSum": 14, "CovariateSumSquares": 116, "CrossSum": 380}, 1e-12)
		checkRaw(t, "revenue treatment", Unshift(st.Metrics["revenue"][1]), raw{"N": 2, "Sum": 100, "SumSquares": 10000}, 1e-12)
		// b's exposure at T+1d is the latest before the cut; b's purchase at T+1d+6h the latest event.
		checkTime(t, "latest exposure", st.Freshness.LatestExposure, T.Add(day))
		checkTime(t, "latest event", st.Freshness.LatestEvent, T.Add(day+6*hour))
	})
	t.Run("no metrics", func(t *testing.T) {
		p, err := metric.Compile(pop, nil, defs)
		if err != nil {
			t.Fatal(err)
		}
		st, err := eng.Stats(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{"control": 2, "treatment": 3}; !reflect.DeepEqual(st.Units, want) || st.MultipleArms != 1 || len(st.Metrics) != 0 {
			t.Errorf("units %v, multiple arms %d, metrics %v; want %v, 1, none", st.Units, st.MultipleArms, st.Metrics, want)
		}
		checkTime(t, "latest exposure", st.Freshness.LatestExposure, T.Add(5*day))
	})
	t.Run("holdout", func(t *testing.T) {
		// Version 1 of the holdout over exp and exp2: holdout k1, k2; exposed a, b, c, d
		// (late, m, z are logged without a version; k3 is v2; k4's experiment is not listed).
		// revenue [0, 7d): k1 7, k2 9 (its 1 is at dt 9d) | a 80, b 20, c 0, d 100.
		h := metric.HoldoutPopulation(&experiment.Holdout{Name: "h", Fraction: 0.1}, 1, []string{"exp", "exp2"})
		p, err := metric.Compile(h, []string{"revenue", "orders"}, defs)
		if err != nil {
			t.Fatal(err)
		}
		st, err := eng.Stats(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{metric.HoldoutArm: 2, metric.ExposedArm: 4}; !reflect.DeepEqual(st.Units, want) || st.MultipleArms != 0 {
			t.Errorf("units %v, multiple %d; want %v, 0", st.Units, st.MultipleArms, want)
		}
		if a := st.Metrics["revenue"]; a[0].Name != metric.HoldoutArm || a[0].Weight != 0.1 || a[1].Weight != 0.9 {
			t.Errorf("arms %+v, want holdout (0.1) then exposed (0.9)", a)
		}
		checkRaw(t, "holdout revenue", Unshift(st.Metrics["revenue"][0]), raw{"N": 2, "Sum": 16, "SumSquares": 130}, 1e-12)
		checkRaw(t, "exposed revenue", Unshift(st.Metrics["revenue"][1]), raw{"N": 4, "Sum": 200, "SumSquares": 16800, "CovariateSum": 14, "CovariateSumSquares": 116, "CrossSum": 880}, 1e-12)
		checkRaw(t, "holdout orders", Unshift(st.Metrics["orders"][0]), raw{"N": 2, "Sum": 3, "SumSquares": 5}, 1e-12)
		// Version 3 over exp3: k5 was exposed and then held out, so it is in
		// both arms and counted as such, not analyzed.
		p3, err := metric.Compile(metric.HoldoutPopulation(&experiment.Holdout{Name: "h", Fraction: 0.1}, 3, []string{"exp3"}), []string{"revenue"}, defs)
		if err != nil {
			t.Fatal(err)
		}
		st3, err := eng.Stats(ctx, p3)
		if err != nil {
			t.Fatal(err)
		}
		if st3.MultipleArms != 1 || st3.Units[metric.HoldoutArm]+st3.Units[metric.ExposedArm] != 0 {
			t.Errorf("holdout v3: units %v, multiple %d; want none analyzed, 1 in both arms", st3.Units, st3.MultipleArms)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		bdefs := metric.Resolved{
			"b_revenue": {Name: "b_revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Bounds: &experiment.Bounds{Lower: 0, Upper: 50}},
			"b_buyer":   {Name: "b_buyer", EventType: "purchase", Aggregation: experiment.Binary, Window: &experiment.Window{StartDays: 0.25, EndDays: 3}},
			"b_aov":     {Name: "b_aov", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Value: 30}, Bounds: &experiment.Bounds{Lower: 10, Upper: 60}},
		}
		p, err := metric.CompileBounded(pop, []string{"b_revenue", "b_buyer", "b_aov"}, bdefs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := eng.Bounded(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		// revenue clamped to [0, 50]: a 50, b 20 | c 0, d 50, late 5; buyer in [0, 1] as
		// above; aov clamped to [10, 60], its cap 30 ignored: a 40, b 20 | d 60, late 10.
		want := []metric.BoundedMetric{
			{Name: "b_revenue", Bounds: experiment.Bounds{Lower: 0, Upper: 50}, Arms: []metric.BoundedArm{ba("control", 2, 70, 2900), ba("treatment", 3, 55, 2525)}},
			{Name: "b_buyer", Bounds: experiment.Bounds{Lower: 0, Upper: 1}, Arms: []metric.BoundedArm{ba("control", 2, 1, 1), ba("treatment", 3, 0, 0)}},
			{Name: "b_aov", Bounds: experiment.Bounds{Lower: 10, Upper: 60}, OwnCount: true, Arms: []metric.BoundedArm{ba("control", 2, 60, 2000), ba("treatment", 2, 70, 3700)}},
		}
		if u := map[string]int64{"control": 2, "treatment": 3}; !reflect.DeepEqual(b.Units, u) {
			t.Errorf("units %v, want %v", b.Units, u)
		}
		if !boundedClose(b.Metrics, want, 1e-12) {
			t.Errorf("bounded\n %+v\nwant\n %+v", b.Metrics, want)
		}
		none, err := metric.CompileBounded(pop, nil, bdefs)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := eng.Bounded(ctx, none); err != nil || !reflect.DeepEqual(b.Units, map[string]int64{"control": 2, "treatment": 3}) {
			t.Errorf("without metrics: %+v, %v; want the units all the same", b, err)
		}
	})
	t.Run("unit values", func(t *testing.T) {
		for _, tc := range []struct {
			metric string
			want   []metric.UnitValue
		}{
			// The visits as capped in Stats (the cap is over all analyzed units, both arms).
			{"visits", []metric.UnitValue{uv("a", "control", 1.8), uv("b", "control", 1), uv("c", "treatment", 1.8), uv("d", "treatment", 0), uv("late", "treatment", 0)}},
			// A mean metric leaves out c, which has no purchase.
			{"aov", []metric.UnitValue{uv("a", "control", 40), uv("b", "control", 20), uv("d", "treatment", 60), uv("late", "treatment", 5)}},
		} {
			p, err := metric.CompileUnitValues(pop, defs[tc.metric], "metric")
			if err != nil {
				t.Fatal(err)
			}
			got, err := eng.UnitValues(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if got.MultipleArms != 1 || len(got.Values) != len(tc.want) {
				t.Fatalf("%s: %+v, want %v and 1 unit in two arms", tc.metric, got, tc.want)
			}
			for i, w := range tc.want {
				g := got.Values[i]
				if g.Unit != w.Unit || g.Arm != w.Arm || math.Abs(g.Value-w.Value) > 1e-12 {
					t.Errorf("%s: value %d %+v, want %+v", tc.metric, i, g, w)
				}
			}
		}
	})
	t.Run("panel", func(t *testing.T) { testHandPanel(t, eng) })
	t.Run("freshness", func(t *testing.T) {
		f, err := eng.Freshness(ctx, pop)
		if err != nil {
			t.Fatal(err)
		}
		// First exposure T (a, c, m, z); latest late's T+5d; latest event k2's T+10d;
		// latest event of a population unit d's T+7.5d (never's T+9d is not exposed).
		checkTime(t, "first exposure", f.FirstExposure, T)
		checkTime(t, "latest exposure", f.LatestExposure, T.Add(5*day))
		checkTime(t, "latest event", f.LatestEvent, T.Add(10*day))
		checkTime(t, "latest unit event", f.LatestUnitEvent, T.Add(7*day+12*hour))
		empty, err := eng.Freshness(ctx, metric.Population{Experiment: "none", Arms: []string{"a"}, Weights: []float64{1}})
		if err != nil || empty.LatestExposure != nil || empty.FirstExposure != nil || empty.LatestUnitEvent != nil {
			t.Errorf("freshness of an empty population: %+v, %v; want no times", empty, err)
		}
	})
}

// testHandWinsorized checks caps at both tails, fixed and percentile, of sum,
// count and mean metrics and of a ratio through its numerator. The limits are
// numpy's type-7 quantiles of the values before capping and the values
// numpy.clip's (numpy 1.24; scipy's mstats.winsorize takes order statistics
// instead, no interpolation, and is not what Lift computes):
//
//	x = np.array([80, 20, 0, 100, 5.])            # revenue [0, 7d): a, b | c, d, late
//	np.quantile(x, 0.2), np.quantile(x, 0.8)      # 4.0 84.0
//	np.clip(x, 4.0, 84.0)                         # [80. 20.  4. 84.  5.]
//	o = np.array([2, 1, 0, 2, 1.])                # orders
//	np.clip(o, np.quantile(o, 0.5), None)         # [2. 1. 1. 2. 1.]
//	m = np.array([40, 20, 550, 5.])               # aov: a, b | d, late (c has none)
//	np.clip(m, 10, np.quantile(m, 0.5))           # [30. 20. 30. 10.]
func testHandWinsorized(t *testing.T, eng metric.Engine) {
	ctx := context.Background()
	_, hand := handMetrics()
	defs := metric.Resolved{
		"visits":     hand["visits"],
		"rev_w":      {Name: "rev_w", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Cap: &experiment.Cap{LowerPercentile: 0.2, Percentile: 0.8}},
		"rev_floor":  {Name: "rev_floor", EventType: "purchase", Aggregation: experiment.Sum, Cap: &experiment.Cap{Lower: ptr(25.0), Upper: ptr(500.0)}},
		"orders_low": {Name: "orders_low", EventType: "purchase", Aggregation: experiment.Count, Cap: &experiment.Cap{LowerPercentile: 0.5}},
		"aov_w":      {Name: "aov_w", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Lower: ptr(10.0), Percentile: 0.5}},
		"rpv_w":      {Name: "rpv_w", Aggregation: experiment.Ratio, Numerator: "rev_w", Denominator: "visits"},
	}
	names := []string{"rev_w", "rev_floor", "orders_low", "aov_w", "rpv_w"}
	pop := metric.ExperimentPopulation(handExperiment())
	p, err := metric.Compile(pop, names, defs)
	if err != nil {
		t.Fatal(err)
	}
	st, err := eng.Stats(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	// Per arm from the clipped values above (rev_floor: [0, ∞) sums 80, 20 | 0,
	// 1100, 5 clipped to [25, 500]; visits as in testHand: 1.8, 1 | 1.8, 0, 0).
	want := map[string][2]raw{
		"rev_w":      {{"N": 2, "Sum": 100, "SumSquares": 6800}, {"N": 3, "Sum": 93, "SumSquares": 7097}},
		"rev_floor":  {{"N": 2, "Sum": 105, "SumSquares": 7025}, {"N": 3, "Sum": 550, "SumSquares": 251250}},
		"orders_low": {{"N": 2, "Sum": 3, "SumSquares": 5}, {"N": 3, "Sum": 4, "SumSquares": 6}},
		"aov_w":      {{"N": 2, "Sum": 50, "SumSquares": 1300}, {"N": 2, "Sum": 40, "SumSquares": 1000}},
		"rpv_w": {{"N": 2, "Sum": 100, "SumSquares": 6800, "DenominatorSum": 2.8, "DenominatorSumSquares": 4.24, "MetricDenominatorSum": 164},
			{"N": 3, "Sum": 93, "SumSquares": 7097, "DenominatorSum": 1.8, "DenominatorSumSquares": 3.24, "MetricDenominatorSum": 7.2}},
	}
	for _, n := range names {
		for i, w := range want[n] {
			checkRaw(t, n+" "+st.Metrics[n][i].Name, Unshift(st.Metrics[n][i]), w, 1e-12)
		}
	}
	up, err := metric.CompileUnitValues(pop, defs["rev_w"], "metric")
	if err != nil {
		t.Fatal(err)
	}
	got, err := eng.UnitValues(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	wantUV := []metric.UnitValue{uv("a", "control", 80), uv("b", "control", 20), uv("c", "treatment", 4), uv("d", "treatment", 84), uv("late", "treatment", 5)}
	if len(got.Values) != len(wantUV) {
		t.Fatalf("rev_w unit values %+v, want %v", got.Values, wantUV)
	}
	for i, w := range wantUV {
		if g := got.Values[i]; g.Unit != w.Unit || math.Abs(g.Value-w.Value) > 1e-12 {
			t.Errorf("rev_w value %d: %+v, want %+v", i, g, w)
		}
	}
}

// testHandMatured checks a day-3 retention metric (a visit in [3d, 5d) from
// first exposure) and a ratio over the same matured-only window at analysis time
// T+5d+12h. Windows end at t₀+5d: a (t₀ T) and c (T) have matured, d (T+12h)
// exactly at the analysis time, so it counts; b (T+1d) and late (T+5d) have
// not. Retention: a 0 (visits at 1h, 2h), c 1 (a visit at 4d), d 0. The ratio's
// revenue over [3d, 5d): a 50 (at 3d exactly), c 0, d 0; its visits a 0, c 1,
// d 0, capped at numpy.quantile([0, 1, 0], 0.7) = 0.3999999999999999 over the
// matured units (the others have no value).
func testHandMatured(t *testing.T, eng metric.Engine) {
	ctx := context.Background()
	_, hand := handMetrics()
	matured := &experiment.Window{StartDays: 3, EndDays: 5, MaturedOnly: true}
	defs := metric.Resolved{
		"revenue": hand["revenue"], "visits": hand["visits"],
		"ret_d3":  {Name: "ret_d3", EventType: "visit", Aggregation: experiment.Binary, Window: matured},
		"ret_rpv": {Name: "ret_rpv", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "visits", Window: matured},
	}
	names := []string{"ret_d3", "ret_rpv"}
	at := T.Add(5*day + 12*hour)
	asOf := metric.ExperimentPopulation(handExperiment())
	asOf.AsOf = at
	until := metric.ExperimentPopulation(handExperiment())
	until.Until, until.AsOf = at, T.Add(30*day) // the earlier of the two counts
	for name, pop := range map[string]metric.Population{"as of": asOf, "until": until} {
		t.Run(name, func(t *testing.T) {
			p, err := metric.Compile(pop, names, defs)
			if err != nil {
				t.Fatal(err)
			}
			st, err := eng.Stats(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			// Every exposed unit is in Units; the metrics count the matured ones.
			if w := map[string]int64{"control": 2, "treatment": 3}; !reflect.DeepEqual(st.Units, w) {
				t.Errorf("units %v, want %v", st.Units, w)
			}
			want := map[string][2]raw{
				"ret_d3":  {{"N": 1}, {"N": 2, "Sum": 1, "SumSquares": 1}},
				"ret_rpv": {{"N": 1, "Sum": 50, "SumSquares": 2500}, {"N": 2, "DenominatorSum": 0.4, "DenominatorSumSquares": 0.16}},
			}
			for _, n := range names {
				for i, w := range want[n] {
					checkRaw(t, n+" "+st.Metrics[n][i].Name, Unshift(st.Metrics[n][i]), w, 1e-12)
				}
			}
			up, err := metric.CompileUnitValues(pop, defs["ret_d3"], "metric")
			if err != nil {
				t.Fatal(err)
			}
			got, err := eng.UnitValues(ctx, up)
			if err != nil {
				t.Fatal(err)
			}
			wantUV := []metric.UnitValue{uv("a", "control", 0), uv("c", "treatment", 1), uv("d", "treatment", 0)}
			if len(got.Values) != len(wantUV) {
				t.Fatalf("ret_d3 unit values %+v, want %v", got.Values, wantUV)
			}
			for i, w := range wantUV {
				if g := got.Values[i]; g.Unit != w.Unit || g.Value != w.Value {
					t.Errorf("ret_d3 value %d: %+v, want %+v", i, g, w)
				}
			}
			bp, err := metric.CompileBounded(pop, []string{"ret_d3"}, defs)
			if err != nil {
				t.Fatal(err)
			}
			b, err := eng.Bounded(ctx, bp)
			if err != nil {
				t.Fatal(err)
			}
			wantB := []metric.BoundedMetric{{Name: "ret_d3", Bounds: experiment.Bounds{Lower: 0, Upper: 1}, OwnCount: true,
				Arms: []metric.BoundedArm{ba("control", 1, 0, 0), ba("treatment", 2, 1, 1)}}}
			if !boundedClose(b.Metrics, wantB, 1e-12) {
				t.Errorf("bounded %+v, want %+v", b.Metrics, wantB)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func testHandPanel(t *testing.T, eng metric.Engine) {
	ctx := context.Background()
	orders := &experiment.Metric{Name: "orders", EventType: "purchase", Aggregation: experiment.Sum}
	count := &experiment.Metric{Name: "n", EventType: "purchase", Aggregation: experiment.Count}
	p90 := &experiment.Metric{Name: "orders_p90", EventType: "purchase", Aggregation: experiment.Sum, Cap: &experiment.Cap{Percentile: 0.9}}
	treatedAndRest := []metric.UnitGroup{{Experiment: "exp", Variant: "treatment"}, {Rest: true}}
	to := T.Add(3 * day)
	// Days 0–2 from T. Treated (any exposure to treatment): c, d, late, m. The rest:
	// every other unit with a purchase in [T, T+3d): a, b, k1, k2, k3, never, z.
	// Purchases by day: a 30 | 0 | 0 (50 is at T+3d, out); b 4 | 20 | 0; d 100 (1000 out);
	// k1 7; k2 0 | 9; k3 1000; m 999; never 3; z 777.
	units := []string{"a", "b", "c", "d", "k1", "k2", "k3", "late", "m", "never", "z"}
	group := []int{1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1}
	sums := []float64{30, 0, 0, 4, 20, 0, 0, 0, 0, 100, 0, 0, 7, 0, 0, 0, 9, 0, 1000, 0, 0, 0, 0, 0, 999, 0, 0, 3, 0, 0, 777, 0, 0}
	counts := make([]float64, len(sums))
	capped := make([]float64, len(sums))
	for i, v := range sums {
		if v > 0 {
			counts[i] = 1
		}
		// numpy.quantile(sums, 0.9) = 86.00000000000006 (33 cells, h = 28.8 between 30 and 100)
		capped[i] = min(v, 86.00000000000006)
	}
	for _, tc := range []struct {
		name     string
		q        metric.PanelQuery
		units    []string
		group    []int
		y        []float64
		periods  int
		overlap  int
		perGroup []int
	}{
		{"sum by day", metric.PanelQuery{Metric: orders, Groups: treatedAndRest, From: T, To: to, Period: metric.Day}, units, group, sums, 3, 0, []int{4, 7}},
		{"count by day", metric.PanelQuery{Metric: count, Groups: treatedAndRest, From: T, To: to, Period: metric.Day}, units, group, counts, 3, 0, []int{4, 7}},
		{"percentile cap", metric.PanelQuery{Metric: p90, Groups: treatedAndRest, From: T, To: to, Period: metric.Day}, units, group, capped, 3, 0, []int{4, 7}},
		// b is in both lists: left out and counted; zz has no event (zeros).
		{"lists", metric.PanelQuery{Metric: orders, Groups: []metric.UnitGroup{{Units: []string{"a", "b", "zz"}}, {Units: []string{"b", "c"}}}, From: T, To: to, Period: metric.Day},
			[]string{"a", "c", "zz"}, []int{0, 1, 0}, []float64{30, 0, 0, 0, 0, 0, 0, 0, 0}, 3, 1, []int{2, 1}},
		// One week from T−7d ends at T: a's 10 (T−2d), d's 8 (T−9.5d, out).
		{"week", metric.PanelQuery{Metric: orders, Groups: []metric.UnitGroup{{Rest: true}}, From: T.Add(-7 * day), To: T, Period: metric.Week},
			[]string{"a"}, []int{0}, []float64{10}, 1, 0, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := metric.CompilePanel(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			p, err := eng.Panel(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Units, tc.units) || !reflect.DeepEqual(p.Group, tc.group) || !reflect.DeepEqual(p.Y, tc.y) ||
				p.Periods != tc.periods || p.Overlap != tc.overlap || !reflect.DeepEqual(p.GroupUnits, tc.perGroup) {
				t.Errorf("panel units %v groups %v y %v periods %d overlap %d per group %v;\nwant %v %v %v %d %d %v",
					p.Units, p.Group, p.Y, p.Periods, p.Overlap, p.GroupUnits, tc.units, tc.group, tc.y, tc.periods, tc.overlap, tc.perGroup)
			}
			for i := range p.Y {
				if p.Unit[i] != i/tc.periods || p.Time[i] != i%tc.periods {
					t.Fatalf("row %d is (unit %d, period %d), want (%d, %d)", i, p.Unit[i], p.Time[i], i/tc.periods, i%tc.periods)
				}
			}
		})
	}
}

// testLargeOffset: a balance metric at offset 1e9 (cents, micros) or 1e13 (a
// timestamp in milliseconds), with its pre-period covariate and a ratio over
// visits, gives the exact Welch, CUPED and ratio results (raw sums would make its
// variance negative). The data are analysis.TestLargeOffset's (x, y, d of unit
// i), and so are the expected values: exact moments (fractions.Fraction) and
// scipy 1.10's t, the snippet is there (with 10**13 added to its offsets for the
// ratio at 1e13).
func testLargeOffset(t *testing.T, newEngine NewEngine) {
	// The mean and CUPED effects do not depend on the offset; [estimate, ci_low, ci_high, se, p].
	welch := [5]float64{0.7615625, 0.07844446854759946, 1.4446805314524007, 0.34804313491789635, 0.028930079089069447}
	cuped := [5]float64{0.7604452153351946, 0.28007034200987146, 1.2408200886605179, 0.24474666042904658, 0.0019519627601325942}
	for _, c := range []struct {
		off   float64
		ratio [5]float64
	}{
		{1e9, [5]float64{-719380.6256299665, -17248671.031599633, 15809909.7803397, 8421504.151477406, 0.9319460458624168}},
		{1e13, [5]float64{-7193808070.270362, -172486710074.7493, 158099093934.2086, 84215040467.61667, 0.9319460278997239}},
	} {
		t.Run(fmt.Sprintf("offset %g", c.off), func(t *testing.T) {
			var d metric.Dataset
			for _, arm := range []string{"control", "treatment"} {
				n := map[string]int{"control": 400, "treatment": 500}[arm]
				for i := range n {
					unit := fmt.Sprintf("%s-%03d", arm, i)
					x := c.off + float64((i*53)%97)/4
					y := c.off + float64((i*37)%101)/8 + float64((i*53)%97)/8
					if arm == "treatment" {
						y += 0.75
					}
					d.Exposures = append(d.Exposures, experiment.Exposure{Experiment: "offset", Unit: unit, Variant: arm, TS: T})
					d.Events = append(d.Events,
						experiment.Event{EventID: unit + "-pre", Unit: unit, Type: "balance", TS: T.Add(-day), Value: x},
						experiment.Event{EventID: unit + "-post", Unit: unit, Type: "balance", TS: T.Add(hour), Value: y})
					for k := range 1 + (i*13)%7 {
						d.Events = append(d.Events, experiment.Event{EventID: fmt.Sprintf("%s-v%d", unit, k), Unit: unit, Type: "visit", TS: T.Add(time.Duration(k+1) * hour)})
					}
				}
			}
			eng := newEngine(t, d)
			defs := metric.Resolved{
				"balance":           {Name: "balance", EventType: "balance", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Covariate: &experiment.Covariate{Days: 3}},
				"visits":            {Name: "visits", EventType: "visit", Aggregation: experiment.Count},
				"balance_per_visit": {Name: "balance_per_visit", Aggregation: experiment.Ratio, Numerator: "balance", Denominator: "visits"},
			}
			e := &experiment.Experiment{Key: "offset", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}
			p, err := metric.Compile(metric.ExperimentPopulation(e), []string{"balance", "balance_per_visit"}, defs)
			if err != nil {
				t.Fatal(err)
			}
			st, err := eng.Stats(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				in   analysis.Input
				want [5]float64
			}{
				{"welch", analysis.Input{Arms: st.Metrics["balance"]}, welch},
				{"cuped", analysis.Input{Arms: st.Metrics["balance"], Covariate: "balance_pre"}, cuped},
				{"ratio", analysis.Input{Type: analysis.Ratio, Arms: st.Metrics["balance_per_visit"]}, c.ratio},
			} {
				res, err := analysis.Analyze(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				g := res.Comparisons[0].Absolute
				tol := 1e-9 * tc.want[3]
				for i, got := range []float64{g.Estimate, g.CILow, g.CIHigh, g.SE, g.PValue} {
					if math.Abs(got-tc.want[i]) > tol {
						t.Errorf("%s: [estimate, ci_low, ci_high, se, p][%d] = %.12g, want %.12g (flags %v)", tc.name, i, got, tc.want[i], res.Comparisons[0].Flags)
					}
				}
			}
		})
	}
}

// Generate draws a dataset of units with one or two exposures (a few to both
// variants, some to an unlisted one), purchases and visits from 20 days before
// to 12 days after their exposure, holdout units, and events of units never
// exposed; values have two decimals.
func Generate(seed uint64, units int) metric.Dataset {
	r := rand.New(rand.NewPCG(seed, 2))
	var d metric.Dataset
	eid := 0
	ev := func(unit, typ string, ts time.Time, v float64) {
		eid++
		d.Events = append(d.Events, experiment.Event{EventID: fmt.Sprint("e", eid), Unit: unit, Type: typ, TS: ts.Truncate(time.Microsecond), Value: v})
	}
	for u := range units {
		unit := fmt.Sprintf("u%04d", u)
		variant := []string{"control", "treatment"}[r.IntN(2)]
		if u%41 == 0 {
			variant = "legacy"
		}
		first := T.Add(time.Duration(r.Int64N(int64(72 * time.Hour)))).Truncate(time.Microsecond)
		version := 1 + r.IntN(2)
		switch {
		case u%23 == 0: // never exposed
		case u%11 == 0: // in the holdout
			d.Exposures = append(d.Exposures, experiment.Exposure{Experiment: "gen", Unit: unit, TS: first, InHoldout: true, HoldoutVersion: version})
		default:
			d.Exposures = append(d.Exposures, experiment.Exposure{Experiment: "gen", Unit: unit, Variant: variant, TS: first, HoldoutVersion: version})
			if r.IntN(4) == 0 { // a repeat exposure, same variant, later
				d.Exposures = append(d.Exposures, experiment.Exposure{Experiment: "gen", Unit: unit, Variant: variant, TS: first.Add(time.Duration(r.Int64N(int64(96 * time.Hour)))).Truncate(time.Microsecond), HoldoutVersion: version})
			}
			if u%37 == 0 { // exposed to both variants: excluded
				other := map[string]string{"control": "treatment", "treatment": "control", "legacy": "control"}[variant]
				d.Exposures = append(d.Exposures, experiment.Exposure{Experiment: "gen", Unit: unit, Variant: other, TS: first.Add(time.Hour), HoldoutVersion: version})
			}
		}
		lift := 0.0
		if variant == "treatment" {
			lift = 3
		}
		for range r.IntN(8) {
			ev(unit, "purchase", first.Add(time.Duration((r.Float64()*32-20)*float64(day))), math.Round((r.ExpFloat64()*20+lift)*100)/100)
		}
		for range r.IntN(12) {
			ev(unit, "visit", first.Add(time.Duration((r.Float64()*32-20)*float64(day))), 0)
		}
	}
	return d
}

// GeneratedMetrics cover every aggregation, both caps, windows and covariates.
func GeneratedMetrics() (names []string, defs metric.Resolved) {
	ms := []*experiment.Metric{
		{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Cap: &experiment.Cap{Value: 60}, Covariate: &experiment.Covariate{Days: 14}},
		{Name: "orders", EventType: "purchase", Aggregation: experiment.Count},
		{Name: "converted", EventType: "purchase", Aggregation: experiment.Binary, Window: &experiment.Window{StartDays: 0.5, EndDays: 3}, Covariate: &experiment.Covariate{Days: 7}},
		{Name: "aov", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Percentile: 0.9}, Covariate: &experiment.Covariate{Days: 10}},
		{Name: "visits", EventType: "visit", Aggregation: experiment.Count, Cap: &experiment.Cap{Percentile: 0.95}},
		{Name: "rpv", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "visits", Covariate: &experiment.Covariate{Days: 7}},
		{Name: "rpv_week", Aggregation: experiment.Ratio, Numerator: "orders", Denominator: "visits", Window: &experiment.Window{StartDays: 1, EndDays: 8}},
	}
	defs = metric.Resolved{}
	for _, m := range ms {
		names = append(names, m.Name)
		defs[m.Name] = m
	}
	return names, defs
}

// testGenerated compares the engine with the reference engine on generated data.
func testGenerated(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	d := Generate(1, 600)
	eng, ref := newEngine(t, d), metric.NewMemory(d)
	names, defs := GeneratedMetrics()
	e := &experiment.Experiment{Key: "gen", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}
	pops := map[string]metric.Population{
		"experiment": metric.ExperimentPopulation(e),
		"holdout":    metric.HoldoutPopulation(&experiment.Holdout{Fraction: 0.1}, 2, []string{"gen"}),
	}
	cut := pops["experiment"]
	cut.Until = T.Add(2*day + 7*hour)
	pops["until"] = cut
	for name, pop := range pops {
		t.Run(name, func(t *testing.T) {
			p, err := metric.Compile(pop, names, defs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := eng.Stats(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Stats(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Units, want.Units) || got.MultipleArms != want.MultipleArms || !reflect.DeepEqual(got.Checksums, want.Checksums) {
				t.Errorf("units %v multiple %d checksums %v;\nwant %v %d %v", got.Units, got.MultipleArms, got.Checksums, want.Units, want.MultipleArms, want.Checksums)
			}
			if want.MultipleArms == 0 && name != "holdout" {
				t.Error("no unit in two arms: the data do not test the exclusion")
			}
			// Stats may leave LatestUnitEvent out (see the package doc of metric).
			gf, wf := got.Freshness, want.Freshness
			gf.LatestUnitEvent, wf.LatestUnitEvent = nil, nil
			if !reflect.DeepEqual(gf, wf) {
				t.Errorf("freshness %s, want %s", fmtFreshness(gf), fmtFreshness(wf))
			}
			for _, n := range names {
				for i, w := range want.Metrics[n] {
					g := got.Metrics[n][i]
					if g.Name != w.Name || g.Weight != w.Weight {
						t.Errorf("%s arm %d: %s (%g), want %s (%g)", n, i, g.Name, g.Weight, w.Name, w.Weight)
					}
					checkRaw(t, n+" "+w.Name+" shifted", armFields(g), armFields(w), 1e-9)
				}
			}
			f, err := eng.Freshness(ctx, pop)
			if err != nil {
				t.Fatal(err)
			}
			if wf, _ := ref.Freshness(ctx, pop); !reflect.DeepEqual(f, wf) {
				t.Errorf("Freshness %s, want %s", fmtFreshness(f), fmtFreshness(wf))
			}
			for _, n := range []string{"revenue", "converted", "aov", "visits"} {
				p, err := metric.CompileUnitValues(pop, defs[n], "metric")
				if err != nil {
					t.Fatal(err)
				}
				got, err := eng.UnitValues(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := ref.UnitValues(ctx, p)
				if got.MultipleArms != want.MultipleArms || len(got.Values) != len(want.Values) || len(want.Values) == 0 {
					t.Fatalf("%s: %d values, %d in two arms; want %d, %d", n, len(got.Values), got.MultipleArms, len(want.Values), want.MultipleArms)
				}
				for i, w := range want.Values {
					if g := got.Values[i]; g.Unit != w.Unit || g.Arm != w.Arm || math.Abs(g.Value-w.Value) > 1e-9*math.Max(1, math.Abs(w.Value)) {
						t.Errorf("%s value %d: %+v, want %+v", n, i, g, w)
						break
					}
				}
			}
		})
	}
	t.Run("tails and retention", func(t *testing.T) { testGeneratedTails(t, eng, ref, e) })
	t.Run("bounded", func(t *testing.T) {
		bdefs := metric.Resolved{}
		for n, m := range defs {
			if m.Aggregation != experiment.Ratio {
				b := *m
				b.Bounds = &experiment.Bounds{Lower: 1, Upper: 25}
				bdefs[n] = &b
			}
		}
		p, err := metric.CompileBounded(pops["until"], []string{"revenue", "orders", "converted", "aov", "visits"}, bdefs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := eng.Bounded(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.Bounded(ctx, p)
		if !reflect.DeepEqual(got.Units, want.Units) || !boundedClose(got.Metrics, want.Metrics, 1e-9) {
			t.Errorf("bounded %+v %+v,\nwant %+v %+v", got.Units, got.Metrics, want.Units, want.Metrics)
		}
	})
	t.Run("panel", func(t *testing.T) {
		for _, m := range []*experiment.Metric{defs["revenue"], defs["converted"], defs["visits"]} {
			q := metric.PanelQuery{Metric: m, From: T.Add(-5 * day), To: T.Add(9*day + 5*hour), Period: metric.Day,
				Groups: []metric.UnitGroup{{Experiment: "gen", Variant: "treatment"}, {Units: []string{"u0001", "u0002", "u0003", "nobody"}}, {Rest: true}}}
			p, err := metric.CompilePanel(q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := eng.Panel(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.Panel(ctx, p)
			if !reflect.DeepEqual(got.Units, want.Units) || !reflect.DeepEqual(got.Group, want.Group) || got.Overlap != want.Overlap ||
				!reflect.DeepEqual(got.GroupUnits, want.GroupUnits) || len(got.Y) != len(want.Y) {
				t.Fatalf("%s: panel of %d units (%v per group, %d overlap), want %d (%v, %d)", m.Name, len(got.Units), got.GroupUnits, got.Overlap, len(want.Units), want.GroupUnits, want.Overlap)
			}
			for i := range want.Y {
				if math.Abs(got.Y[i]-want.Y[i]) > 1e-9*math.Max(1, math.Abs(want.Y[i])) {
					t.Errorf("%s: y[%d] = %g, want %g", m.Name, i, got.Y[i], want.Y[i])
					break
				}
			}
		}
	})
}

// testGeneratedTails compares caps at both tails and matured-only windows with
// the reference engine on generated data, with and without a cut-off.
func testGeneratedTails(t *testing.T, eng, ref metric.Engine, e *experiment.Experiment) {
	ctx := context.Background()
	matured := func(start, end float64) *experiment.Window {
		return &experiment.Window{StartDays: start, EndDays: end, MaturedOnly: true}
	}
	ms := []*experiment.Metric{
		{Name: "rev_tails", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Cap: &experiment.Cap{LowerPercentile: 0.05, Percentile: 0.95}, Covariate: &experiment.Covariate{Days: 14}},
		{Name: "aov_tails", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Lower: ptr(5.0), Percentile: 0.9}},
		{Name: "orders_floor", EventType: "purchase", Aggregation: experiment.Count, Cap: &experiment.Cap{LowerPercentile: 0.3, Upper: ptr(6.0)}},
		{Name: "visits_tails", EventType: "visit", Aggregation: experiment.Count, Cap: &experiment.Cap{LowerPercentile: 0.2, Percentile: 0.9}},
		{Name: "orders", EventType: "purchase", Aggregation: experiment.Count},
		{Name: "rpv_tails", Aggregation: experiment.Ratio, Numerator: "rev_tails", Denominator: "visits_tails"},
		{Name: "ret_d2", EventType: "visit", Aggregation: experiment.Binary, Window: matured(2, 3), Covariate: &experiment.Covariate{Days: 7}},
		{Name: "ret_ratio", Aggregation: experiment.Ratio, Numerator: "orders", Denominator: "visits_tails", Window: matured(1, 4)},
	}
	defs := metric.Resolved{}
	var names []string
	for _, m := range ms {
		defs[m.Name] = m
		names = append(names, m.Name)
	}
	asOf := metric.ExperimentPopulation(e)
	asOf.AsOf = T.Add(5 * day)
	cut := asOf
	cut.Until, cut.AsOf = T.Add(4*day+7*hour), time.Time{}
	for name, pop := range map[string]metric.Population{"as of": asOf, "until": cut} {
		t.Run(name, func(t *testing.T) {
			p, err := metric.Compile(pop, names, defs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := eng.Stats(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.Stats(ctx, p)
			if !reflect.DeepEqual(got.Units, want.Units) || !reflect.DeepEqual(got.Checksums, want.Checksums) {
				t.Errorf("units %v checksums %v;\nwant %v %v", got.Units, got.Checksums, want.Units, want.Checksums)
			}
			for _, n := range names {
				for i, w := range want.Metrics[n] {
					checkRaw(t, n+" "+w.Name+" shifted", armFields(got.Metrics[n][i]), armFields(w), 1e-9)
				}
			}
			// The data must test the exclusion: some units have not matured, some have.
			for _, n := range []string{"ret_d2", "ret_ratio"} {
				if a := want.Metrics[n][0]; a.N == 0 || a.N == want.Units[a.Name] {
					t.Errorf("%s: %d of %d control units matured; the data do not test maturity", n, a.N, want.Units[a.Name])
				}
			}
			for _, n := range []string{"rev_tails", "aov_tails", "ret_d2"} {
				p, err := metric.CompileUnitValues(pop, defs[n], "metric")
				if err != nil {
					t.Fatal(err)
				}
				got, err := eng.UnitValues(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := ref.UnitValues(ctx, p)
				if len(got.Values) != len(want.Values) || len(want.Values) == 0 {
					t.Fatalf("%s: %d values, want %d", n, len(got.Values), len(want.Values))
				}
				for i, w := range want.Values {
					if g := got.Values[i]; g.Unit != w.Unit || g.Arm != w.Arm || math.Abs(g.Value-w.Value) > 1e-9*math.Max(1, math.Abs(w.Value)) {
						t.Errorf("%s value %d: %+v, want %+v", n, i, g, w)
						break
					}
				}
			}
		})
	}
}

// Unshift turns an arm's shifted sums back into raw sums (Σu·v = Σu'v' +
// c_vΣu' + c_uΣv' + n·c_u·c_v), by analysis.Arm field name.
func Unshift(a analysis.Arm) map[string]float64 {
	n := float64(a.N)
	one := func(c, s float64) float64 { return s + n*c }
	two := func(cu, su, cv, sv, suv float64) float64 { return suv + cv*su + cu*sv + n*cu*cv }
	cy, cx, cd, c0 := a.Shift, a.CovariateShift, a.DenominatorShift, a.DenominatorCovariateShift
	sy, sx, sd, s0 := a.Sum, a.CovariateSum, a.DenominatorSum, a.DenominatorCovariateSum
	return map[string]float64{"N": n,
		"Sum": one(cy, sy), "SumSquares": two(cy, sy, cy, sy, a.SumSquares),
		"CovariateSum": one(cx, sx), "CovariateSumSquares": two(cx, sx, cx, sx, a.CovariateSumSquares), "CrossSum": two(cx, sx, cy, sy, a.CrossSum),
		"DenominatorSum": one(cd, sd), "DenominatorSumSquares": two(cd, sd, cd, sd, a.DenominatorSumSquares), "MetricDenominatorSum": two(cy, sy, cd, sd, a.MetricDenominatorSum),
		"DenominatorCovariateSum": one(c0, s0), "DenominatorCovariateSumSquares": two(c0, s0, c0, s0, a.DenominatorCovariateSumSquares),
		"MetricDenominatorCovariateSum":      two(cy, sy, c0, s0, a.MetricDenominatorCovariateSum),
		"CovariateDenominatorSum":            two(cx, sx, cd, sd, a.CovariateDenominatorSum),
		"CovariateDenominatorCovariateSum":   two(cx, sx, c0, s0, a.CovariateDenominatorCovariateSum),
		"DenominatorDenominatorCovariateSum": two(cd, sd, c0, s0, a.DenominatorDenominatorCovariateSum),
	}
}

// armFields are an arm's fields as stored (shifted), by name.
func armFields(a analysis.Arm) map[string]float64 {
	v := reflect.ValueOf(a)
	out := map[string]float64{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		switch f.Type.Kind() {
		case reflect.Float64:
			out[f.Name] = v.Field(i).Float()
		case reflect.Int64:
			out[f.Name] = float64(v.Field(i).Int())
		}
	}
	delete(out, "Weight")
	return out
}

// checkRaw compares every field of got with want (fields want lacks are 0).
func checkRaw(t *testing.T, what string, got, want map[string]float64, tol float64) {
	t.Helper()
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w := want[k]
		if math.Abs(got[k]-w) > tol*math.Max(1, math.Abs(w)) {
			t.Errorf("%s: %s = %.15g, want %.15g", what, k, got[k], w)
		}
	}
}

func boundedClose(got, want []metric.BoundedMetric, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Bounds != w.Bounds || g.OwnCount != w.OwnCount || len(g.Arms) != len(w.Arms) {
			return false
		}
		for j := range w.Arms {
			ga, wa := g.Arms[j], w.Arms[j]
			if ga.Arm != wa.Arm || ga.N != wa.N || !close(ga.Sum, wa.Sum) || !close(ga.SumSq, wa.SumSq) {
				return false
			}
		}
	}
	return true
}

func checkTime(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil || !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s: %v, want %v (UTC)", what, got, want)
	}
}

func fmtFreshness(f metric.Freshness) string {
	s := func(t *time.Time) string {
		if t == nil {
			return "none"
		}
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{first exposure %s, latest exposure %s, latest event %s, latest unit event %s}",
		s(f.FirstExposure), s(f.LatestExposure), s(f.LatestEvent), s(f.LatestUnitEvent))
}

func ba(arm string, n int64, sum, sq float64) metric.BoundedArm {
	return metric.BoundedArm{Arm: arm, N: n, Sum: sum, SumSq: sq}
}

func uv(unit, arm string, v float64) metric.UnitValue {
	return metric.UnitValue{Unit: unit, Arm: arm, Value: v}
}

// RunSeries checks an engine's StatsSeries on generated data: at every
// cut-off (daily, from before the first exposure to after the last event,
// each cut at an odd hour so that some fall between a unit's exposures to two
// arms), for an experiment and a holdout population, every metric of
// GeneratedMetrics and a matured-only retention metric, each point must equal
// the reference engine's Stats at that cut-off (units, units in two arms,
// every shifted sum to 1e-9 relative), and the engine's own Stats too; the
// series of the units alone (no metric) has the same units.
func RunSeries(t *testing.T, newEngine func(t *testing.T, d metric.Dataset) metric.SeriesEngine) {
	ctx := context.Background()
	d := Generate(3, 400)
	eng, ref := newEngine(t, d), metric.NewMemory(d)
	names, defs := GeneratedMetrics()
	defs["retained"] = &experiment.Metric{Name: "retained", EventType: "visit", Aggregation: experiment.Binary,
		Window: &experiment.Window{StartDays: 1, EndDays: 3, MaturedOnly: true}, Covariate: &experiment.Covariate{Days: 5}}
	names = append(names, "retained")
	e := &experiment.Experiment{Key: "gen", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}
	var cuts []time.Time
	for c := T.Add(-day + 30*time.Minute); c.Before(T.Add(16 * day)); c = c.Add(day) {
		cuts = append(cuts, c)
	}
	pops := map[string]metric.Population{
		"experiment": metric.ExperimentPopulation(e),
		"holdout":    metric.HoldoutPopulation(&experiment.Holdout{Fraction: 0.1}, 2, []string{"gen"}),
	}
	for name, pop := range pops {
		t.Run(name, func(t *testing.T) {
			pop.AsOf = T.Add(5*day + 3*hour) // matured-only windows: by the earlier of this and each cut-off
			plans, err := metric.CompileSeries(pop, names, defs, cuts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := eng.StatsSeries(ctx, plans)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(plans) {
				t.Fatalf("%d points, want %d", len(got), len(plans))
			}
			// The units alone (no metric: a health check's looks) are the
			// same at each cut-off.
			bare, err := metric.CompileSeries(pop, nil, metric.Resolved{}, cuts)
			if err != nil {
				t.Fatal(err)
			}
			units, err := eng.StatsSeries(ctx, bare)
			if err != nil || len(units) != len(plans) {
				t.Fatalf("the units alone: %d points, %v; want %d", len(units), err, len(plans))
			}
			for k := range plans {
				if !reflect.DeepEqual(units[k].Units, got[k].Units) || units[k].MultipleArms != got[k].MultipleArms {
					t.Errorf("%s, the units alone: %v, %d in two arms; with the metrics %v, %d", cuts[k].Format(time.DateTime), units[k].Units, units[k].MultipleArms, got[k].Units, got[k].MultipleArms)
				}
			}
			multi, empty := false, 0
			for k, p := range plans {
				at := cuts[k].Format(time.DateTime)
				for which, w := range map[string]metric.Engine{"reference": ref, "own Stats": eng} {
					want, err := w.Stats(ctx, p)
					if err != nil {
						t.Fatal(err)
					}
					g := got[k]
					if !reflect.DeepEqual(g.Units, want.Units) || g.MultipleArms != want.MultipleArms {
						t.Errorf("%s: units %v, %d in two arms; %s: %v, %d", at, g.Units, g.MultipleArms, which, want.Units, want.MultipleArms)
					}
					multi = multi || (want.MultipleArms > 0 && k > 0 && want.MultipleArms != got[k-1].MultipleArms)
					if want.Units[pop.Arms[0]] == 0 {
						empty++
					}
					for _, n := range names {
						for i, wa := range want.Metrics[n] {
							checkRaw(t, at+" "+n+" "+wa.Name+" vs "+which, armFields(g.Metrics[n][i]), armFields(wa), 1e-9)
						}
					}
				}
			}
			if empty == 0 || empty == 2*len(plans) {
				t.Errorf("%d of %d points without units: the cut-offs do not span the data", empty/2, len(plans))
			}
			if name == "experiment" && !multi {
				t.Error("the count of units in two arms never changes between cut-offs: the data do not test it")
			}
		})
	}
}
