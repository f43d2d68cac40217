package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

func ptr[T any](v T) *T { return &v }

func TestCreateMetric(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	ok := []*experiment.Metric{
		{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Covariate: &experiment.Covariate{Days: 14}},
		{Name: "visits", EventType: "visit", Aggregation: experiment.Count},
		{Name: "aov", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Percentile: 0.99}},
		{Name: "rpv", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "visits"},
	}
	for _, m := range ok {
		if _, err := db.CreateMetric(ctx, "alice", m); err != nil {
			t.Fatalf("CreateMetric(%s): %v", m.Name, err)
		}
	}
	bad := []struct {
		name  string
		m     *experiment.Metric
		kind  experiment.Kind
		field string
	}{
		{"taken name", &experiment.Metric{Name: "visits", EventType: "visit", Aggregation: experiment.Count}, experiment.Conflict, "name"},
		{"unknown aggregation", &experiment.Metric{Name: "x", EventType: "visit", Aggregation: "median"}, experiment.Invalid, "aggregation"},
		{"no event type", &experiment.Metric{Name: "x", Aggregation: experiment.Sum}, experiment.Invalid, "event_type"},
		{"ratio of unknown metric", &experiment.Metric{Name: "x", Aggregation: experiment.Ratio, Numerator: "nope", Denominator: "visits"}, experiment.Invalid, "numerator"},
		{"ratio of a mean", &experiment.Metric{Name: "x", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "aov"}, experiment.Invalid, "denominator"},
		{"ratio of a ratio", &experiment.Metric{Name: "x", Aggregation: experiment.Ratio, Numerator: "rpv", Denominator: "visits"}, experiment.Invalid, "numerator"},
		{"capped ratio", &experiment.Metric{Name: "x", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "visits", Cap: &experiment.Cap{Value: 3}}, experiment.Invalid, "cap"},
		{"bad window", &experiment.Metric{Name: "x", EventType: "visit", Aggregation: experiment.Count, Window: &experiment.Window{StartDays: 3, EndDays: 1}}, experiment.Invalid, "window"},
	}
	for _, c := range bad {
		_, err := db.CreateMetric(ctx, "alice", c.m)
		var le *experiment.Error
		if experiment.KindOf(err) != c.kind || !errors.As(err, &le) || le.Field != c.field {
			t.Errorf("%s: err = %v, want %v naming %s", c.name, err, c.kind, c.field)
		}
	}
	ms, err := db.ListMetrics(ctx)
	if err != nil || len(ms) != len(ok) {
		t.Fatalf("ListMetrics: %d, %v; want %d", len(ms), err, len(ok))
	}
	got, err := db.GetMetric(ctx, "revenue")
	if err != nil || got.Covariate == nil || got.Covariate.Days != 14 || got.Window.EndDays != 7 {
		t.Errorf("GetMetric(revenue) = %+v, %v", got, err)
	}
	if _, err := db.GetMetric(ctx, "nope"); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("GetMetric(nope): %v, want NotFound", err)
	}
	au, err := db.Audit(ctx, "metric", "rpv", 10)
	if err != nil || len(au) != 1 || au[0].Action != "metric.create" || au[0].Actor != "alice" {
		t.Errorf("audit of rpv: %+v, %v", au, err)
	}
}

// synth is a generated experiment: exposures and events, kept in Go so that a
// naive computation can check the SQL.
type synth struct {
	exposures []experiment.Exposure
	events    []experiment.Event
}

// genSynth draws units with one or two exposures (a few to both variants), and
// purchase and visit events before and after their exposure, plus events of
// units never exposed.
func genSynth(r *rand.Rand, key string, units int, start time.Time) *synth {
	s := &synth{}
	eid := 0
	for u := range units {
		unit := fmt.Sprintf("u%04d", u)
		variant := []string{"control", "treatment"}[r.IntN(2)]
		first := start.Add(time.Duration(r.Int64N(int64(72 * time.Hour))))
		exposed := u%23 != 0 // every 23rd unit is never exposed
		if exposed {
			s.exposures = append(s.exposures, experiment.Exposure{Experiment: key, Unit: unit, Variant: variant, TS: first})
			if r.IntN(4) == 0 { // a repeat exposure, same variant, later
				s.exposures = append(s.exposures, experiment.Exposure{Experiment: key, Unit: unit, Variant: variant, TS: first.Add(time.Duration(r.Int64N(int64(96 * time.Hour))))})
			}
			if u%37 == 0 { // exposed to both variants: excluded
				other := map[string]string{"control": "treatment", "treatment": "control"}[variant]
				s.exposures = append(s.exposures, experiment.Exposure{Experiment: key, Unit: unit, Variant: other, TS: first.Add(time.Hour)})
			}
		}
		lift := 0.0
		if variant == "treatment" {
			lift = 3
		}
		for range r.IntN(8) {
			// from 20 days before to 12 days after the first exposure
			ts := first.Add(time.Duration((r.Float64()*32 - 20) * float64(24*time.Hour))).Truncate(time.Microsecond)
			eid++
			s.events = append(s.events, ev(fmt.Sprintf("p%d", eid), unit, "purchase", ts, math.Round((r.ExpFloat64()*20+lift)*100)/100))
		}
		for range r.IntN(12) {
			ts := first.Add(time.Duration((r.Float64()*32 - 20) * float64(24*time.Hour))).Truncate(time.Microsecond)
			eid++
			s.events = append(s.events, ev(fmt.Sprintf("v%d", eid), unit, "visit", ts, 0))
		}
	}
	return s
}

// naiveStats computes, unit by unit in Go with the reference engine
// (metric.Memory, the oracle of the conformance suite), what MetricStats
// computes through the store: the per-arm statistics and the units exposed to
// several arms.
func naiveStats(s *synth, arms []string, names []string, defs map[string]*experiment.Metric) (map[string][]analysis.Arm, int64) {
	pop := metric.Population{Experiment: s.exposures[0].Experiment, Arms: arms, Weights: make([]float64, len(arms))}
	p, err := metric.Compile(pop, names, defs)
	if err != nil {
		panic(err)
	}
	st, err := metric.NewMemory(metric.Dataset{Exposures: s.exposures, Events: s.events}).Stats(context.Background(), p)
	if err != nil {
		panic(err)
	}
	return st.Metrics, st.MultipleArms
}

// testMetrics covers every aggregation, both caps, windows and covariates.
func testMetrics() []*experiment.Metric {
	return []*experiment.Metric{
		{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Cap: &experiment.Cap{Value: 60}, Covariate: &experiment.Covariate{Days: 14}},
		{Name: "orders", EventType: "purchase", Aggregation: experiment.Count},
		{Name: "converted", EventType: "purchase", Aggregation: experiment.Binary, Window: &experiment.Window{StartDays: 0.5, EndDays: 3}, Covariate: &experiment.Covariate{Days: 7}},
		{Name: "aov", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Percentile: 0.9}, Covariate: &experiment.Covariate{Days: 10}},
		{Name: "visits", EventType: "visit", Aggregation: experiment.Count, Cap: &experiment.Cap{Percentile: 0.95}},
		{Name: "rpv", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "visits", Covariate: &experiment.Covariate{Days: 7}},
		{Name: "rpv_week", Aggregation: experiment.Ratio, Numerator: "orders", Denominator: "visits", Window: &experiment.Window{StartDays: 1, EndDays: 8}},
	}
}

// loadSynth registers the experiment and metrics and stores the synthetic rows.
func loadSynth(t testing.TB, db *DB, key string, s *synth, ms []*experiment.Metric) *experiment.Experiment {
	t.Helper()
	ctx := context.Background()
	e := abExperiment(key)
	e.Metrics = nil
	for _, m := range ms {
		if _, err := db.CreateMetric(ctx, "test", m); err != nil && experiment.KindOf(err) != experiment.Conflict {
			t.Fatal(err)
		}
		e.Metrics = append(e.Metrics, experiment.MetricRef{Name: m.Name})
	}
	e, err := db.CreateExperiment(ctx, "test", e)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.LogExposures(ctx, s.exposures); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(s.events); i += 5000 {
		if _, _, err := db.IngestEvents(ctx, s.events[i:min(i+5000, len(s.events))]); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func TestMetricStatsMatchesNaive(t *testing.T) {
	db, _ := openTest(t, nil)
	ms := testMetrics()
	s := genSynth(rand.New(rand.NewPCG(1, 2)), "checkout", 600, t0)
	e := loadSynth(t, db, "checkout", s, ms)
	var names []string
	defs := map[string]*experiment.Metric{}
	for _, m := range ms {
		names = append(names, m.Name)
		defs[m.Name] = m
	}
	pop := metric.ExperimentPopulation(e)
	st, err := svc(db).Stats(context.Background(), pop, names)
	if err != nil {
		t.Fatal(err)
	}
	want, multi := naiveStats(s, pop.Arms, names, defs)
	if st.MultipleArms != multi || multi == 0 {
		t.Errorf("units in both variants: %d, want %d (> 0)", st.MultipleArms, multi)
	}
	var total int64
	for _, a := range st.Metrics["orders"] {
		if st.Units[a.Name] != a.N {
			t.Errorf("units[%s] = %d, want %d", a.Name, st.Units[a.Name], a.N)
		}
		total += a.N
	}
	if total == 0 {
		t.Fatal("no analyzed units")
	}
	for _, n := range names {
		for i, w := range want[n] {
			g := st.Metrics[n][i]
			g.Weight = 0
			if !armsClose(g, w, 1e-9) {
				t.Errorf("%s arm %s:\n got %+v\nwant %+v", n, w.Name, g, w)
			}
		}
	}
}

func armsClose(a, b analysis.Arm, tol float64) bool {
	if a.Name != b.Name || a.N != b.N {
		return false
	}
	fa := []float64{a.Shift, a.CovariateShift, a.DenominatorShift, a.DenominatorCovariateShift, a.Sum, a.SumSquares, a.CovariateSum, a.CovariateSumSquares, a.CrossSum, a.DenominatorSum, a.DenominatorSumSquares, a.MetricDenominatorSum,
		a.DenominatorCovariateSum, a.DenominatorCovariateSumSquares, a.MetricDenominatorCovariateSum, a.CovariateDenominatorSum, a.CovariateDenominatorCovariateSum, a.DenominatorDenominatorCovariateSum}
	fb := []float64{b.Shift, b.CovariateShift, b.DenominatorShift, b.DenominatorCovariateShift, b.Sum, b.SumSquares, b.CovariateSum, b.CovariateSumSquares, b.CrossSum, b.DenominatorSum, b.DenominatorSumSquares, b.MetricDenominatorSum,
		b.DenominatorCovariateSum, b.DenominatorCovariateSumSquares, b.MetricDenominatorCovariateSum, b.CovariateDenominatorSum, b.CovariateDenominatorCovariateSum, b.DenominatorDenominatorCovariateSum}
	for i := range fa {
		if math.Abs(fa[i]-fb[i]) > tol*math.Max(1, math.Abs(fb[i])) {
			return false
		}
	}
	return true
}

func TestMetricStatsUnknownMetric(t *testing.T) {
	db, _ := openTest(t, nil)
	e, err := db.CreateExperiment(context.Background(), "t", abExperiment("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc(db).Stats(context.Background(), metric.ExperimentPopulation(e), []string{"revenue"})
	if experiment.KindOf(err) != experiment.Invalid || !strings.Contains(err.Error(), `"revenue" is not defined`) {
		t.Errorf("err = %v, want Invalid naming revenue", err)
	}
}
