package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/results"
)

// TestExperimentResults checks the wiring from SQL to analysis: every metric's
// result must equal analysis.Analyze over the naively computed statistics (with
// and without the CUPED covariate), Holm-adjusted across all metrics, and the
// snapshot must give back the same document.
func TestExperimentResults(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	ms := testMetrics()
	s := genSynth(rand.New(rand.NewPCG(3, 4)), "checkout", 500, t0)
	e := loadSynth(t, db, "checkout", s, ms)
	r, err := svc(db).ExperimentResults(ctx, e.Key, results.Options{CodeVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	checkNaive(t, r, s, ms, 0.05, 0, analysis.Holm)
	if r.Snapshot == 0 || r.CodeVersion != "test" || len(r.InputHash) != 64 || !r.ComputedAt.Equal(c.Now()) {
		t.Errorf("snapshot %d, code version %q, hash %q, computed at %v", r.Snapshot, r.CodeVersion, r.InputHash, r.ComputedAt)
	}
	if r.Freshness.LatestEvent == nil || r.Freshness.LatestExposure == nil {
		t.Errorf("freshness %+v, want both times", r.Freshness)
	}

	// The snapshot reads back as the same document.
	old, err := svc(db).ResultSnapshot(ctx, "experiment", e.Key, r.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(old)
	if string(a) != string(b) {
		t.Errorf("snapshot differs from the computed results:\n%s\n%s", a, b)
	}
	if _, err := svc(db).ResultSnapshot(ctx, "experiment", "other", r.Snapshot); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("snapshot of another experiment: %v, want NotFound", err)
	}

	// Same data, same hash; one more event, another hash and a new snapshot.
	c.Advance(time.Hour)
	r2, err := svc(db).ExperimentResults(ctx, e.Key, results.Options{CodeVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if r2.InputHash != r.InputHash || r2.Snapshot == r.Snapshot {
		t.Errorf("recomputation: hash %s vs %s, snapshot %d vs %d", r2.InputHash, r.InputHash, r2.Snapshot, r.Snapshot)
	}
	var unit string
	for _, x := range s.exposures {
		unit = x.Unit
	}
	if _, _, err := db.IngestEvents(ctx, []experiment.Event{ev("late", unit, "purchase", s.exposures[len(s.exposures)-1].TS.Add(time.Hour), 5)}); err != nil {
		t.Fatal(err)
	}
	r3, err := svc(db).ExperimentResults(ctx, e.Key, results.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r3.InputHash == r.InputHash {
		t.Error("input hash unchanged after a new event")
	}
	list, err := db.ResultSnapshots(ctx, "experiment", e.Key, 0)
	if err != nil || len(list) != 3 || list[0].ID != r3.Snapshot {
		t.Errorf("ResultSnapshots: %+v, %v", list, err)
	}
}

// checkNaive compares every metric of r with analysis.Analyze over the naive
// statistics of s under the given plan.
func checkNaive(t *testing.T, r *results.Results, s *synth, ms []*experiment.Metric, alpha, tuning float64, corr analysis.Correction) {
	t.Helper()
	names, defs := []string{}, map[string]*experiment.Metric{}
	for _, m := range ms {
		names = append(names, m.Name)
		defs[m.Name] = m
	}
	want, multi := naiveStats(s, []string{"control", "treatment"}, names, defs)
	if r.ExcludedMultiple != multi {
		t.Errorf("excluded %d units exposed to both variants, want %d", r.ExcludedMultiple, multi)
	}
	if len(r.Metrics) != len(ms) {
		t.Fatalf("%d metric results, want %d", len(r.Metrics), len(ms))
	}
	var all []*analysis.MetricResult
	for i, m := range ms {
		arms := want[m.Name]
		arms[0].Weight, arms[1].Weight = 0.5, 0.5
		in := analysis.Input{Metric: m.Name, Type: aggType(m.Aggregation), Arms: arms, Alpha: alpha, SequentialTuning: tuning}
		plain, err := analysis.Analyze(in)
		if err != nil {
			t.Fatal(err)
		}
		exp := plain
		if m.Covariate != nil {
			in.Covariate = r.Metrics[i].CUPED.Covariate
			in.CovariateType = analysis.Mean
			if m.Aggregation == experiment.Binary {
				in.CovariateType = analysis.Proportion
			}
			if exp, err = analysis.Analyze(in); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, &exp)
		got := r.Metrics[i]
		if got.Name != m.Name || got.Error != "" {
			t.Fatalf("metric %d: %q, error %q", i, got.Name, got.Error)
		}
		if m.Covariate != nil && !closeComparisons(got.Unadjusted, plain.Comparisons) {
			t.Errorf("%s unadjusted:\n got %+v\nwant %+v", m.Name, got.Unadjusted, plain.Comparisons)
		}
		if m.Covariate == nil && got.Unadjusted != nil {
			t.Errorf("%s has unadjusted comparisons without a covariate", m.Name)
		}
	}
	analysis.Adjust(all, corr)
	for i := range ms {
		if !closeComparisons(r.Metrics[i].Comparisons, all[i].Comparisons) {
			t.Errorf("%s comparisons:\n got %+v\nwant %+v", ms[i].Name, r.Metrics[i].Comparisons, all[i].Comparisons)
		}
	}
}

// TestResultsPlan: a sequential plan with Benjamini–Hochberg at α = 0.1 reaches
// the analysis as such.
func TestResultsPlan(t *testing.T) {
	db, _ := openTest(t, nil)
	ms := testMetrics()[:3]
	s := genSynth(rand.New(rand.NewPCG(11, 12)), "seq", 300, t0)
	e := abExperiment("seq")
	e.Analysis = experiment.AnalysisPlan{Alpha: 0.1, Sequential: true, Tuning: 2000, Correction: "bh"}
	e.Metrics = nil
	for _, m := range ms {
		if _, err := db.CreateMetric(context.Background(), "t", m); err != nil {
			t.Fatal(err)
		}
		e.Metrics = append(e.Metrics, experiment.MetricRef{Name: m.Name})
	}
	if _, err := db.CreateExperiment(context.Background(), "t", e); err != nil {
		t.Fatal(err)
	}
	if err := db.LogExposures(context.Background(), s.exposures); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(context.Background(), s.events); err != nil {
		t.Fatal(err)
	}
	r, err := svc(db).ExperimentResults(context.Background(), "seq", results.Options{NoSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Sequential || r.Correction != "bh" || r.Alpha != 0.1 || r.Snapshot != 0 || !r.Metrics[0].Sequential {
		t.Errorf("plan not applied: sequential %v, correction %q, alpha %g, snapshot %d", r.Sequential, r.Correction, r.Alpha, r.Snapshot)
	}
	checkNaive(t, r, s, ms, 0.1, 2000, analysis.BenjaminiHochberg)
}

func closeComparisons(a, b []analysis.Comparison) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Variant != y.Variant || !reflect.DeepEqual(x.Adjusted == nil, y.Adjusted == nil) {
			return false
		}
		for _, p := range [][2]analysis.Effect{{x.Absolute, y.Absolute}, {x.Relative, y.Relative}} {
			for j, v := range []float64{p[0].Estimate, p[0].SE, p[0].CILow, p[0].CIHigh, p[0].PValue} {
				w := []float64{p[1].Estimate, p[1].SE, p[1].CILow, p[1].CIHigh, p[1].PValue}[j]
				if math.Abs(v-w) > 1e-8*math.Max(1, math.Abs(w)) {
					return false
				}
			}
		}
		if x.Adjusted != nil && math.Abs(x.Adjusted.Absolute-y.Adjusted.Absolute) > 1e-9 {
			return false
		}
	}
	return true
}

// TestResultsKnownEffect: a sum metric whose treatment adds a known constant per
// unit; the CUPED interval must cover it and be narrower than the plain one.
func TestResultsKnownEffect(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	const effect = 2.0
	var xs []experiment.Exposure
	var evs []experiment.Event
	for u := range 3000 {
		unit := fmt.Sprintf("k%d", u)
		v := []string{"control", "treatment"}[u%2]
		first := t0.Add(time.Duration(u) * time.Second)
		xs = append(xs, experiment.Exposure{Experiment: "known", Unit: unit, Variant: v, TS: first})
		base := 10 + 5*r.NormFloat64() // the unit's level, seen before and after exposure
		evs = append(evs, ev(unit+"-pre", unit, "spend", first.Add(-48*time.Hour), base+r.NormFloat64()))
		y := base + r.NormFloat64()
		if v == "treatment" {
			y += effect
		}
		evs = append(evs, ev(unit+"-post", unit, "spend", first.Add(time.Hour), y))
	}
	m := &experiment.Metric{Name: "spend", EventType: "spend", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Covariate: &experiment.Covariate{Days: 7}}
	e := loadSynth(t, db, "known", &synth{exposures: xs, events: evs}, []*experiment.Metric{m})
	res, err := svc(db).ExperimentResults(ctx, e.Key, results.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Metrics[0]
	adj, plain := got.Comparisons[0].Absolute, got.Unadjusted[0].Absolute
	if !(adj.CILow < effect && effect < adj.CIHigh) {
		t.Errorf("CUPED interval [%g, %g] misses the true effect %g", adj.CILow, adj.CIHigh, effect)
	}
	// Var(y) = 25 + 1, Var(y | x) ≈ 1 + 25·1/26: CUPED shrinks the SE about 3.6×.
	if !(adj.SE < plain.SE/2) {
		t.Errorf("CUPED SE %g not below half the plain SE %g", adj.SE, plain.SE)
	}
	if res.Exposures["control"] != 1500 || res.Exposures["treatment"] != 1500 || res.SRM.Mismatch {
		t.Errorf("exposures %v, SRM %+v", res.Exposures, res.SRM)
	}
}

func TestHoldoutResults(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	if _, err := db.CreateHoldout(ctx, "t", &experiment.Holdout{Name: "global", Fraction: 0.1}); err != nil {
		t.Fatal(err)
	}
	m := &experiment.Metric{Name: "orders", EventType: "purchase", Aggregation: experiment.Count}
	if _, err := db.CreateMetric(ctx, "t", m); err != nil {
		t.Fatal(err)
	}
	var xs []experiment.Exposure
	var evs []experiment.Event
	r := rand.New(rand.NewPCG(7, 8))
	for i, key := range []string{"exp-a", "exp-b"} {
		e := abExperiment(key)
		e.Holdout = "global"
		e.Metrics = []experiment.MetricRef{{Name: "orders"}}
		if _, err := db.CreateExperiment(ctx, "t", e); err != nil {
			t.Fatal(err)
		}
		for u := range 400 {
			unit := fmt.Sprintf("h%d", u+i*200) // units 200..399 are in both experiments
			x := experiment.Exposure{Experiment: key, Unit: unit, TS: t0}
			if u%10 == 0 {
				x.InHoldout = true
			} else {
				x.Variant = "control"
			}
			xs = append(xs, x)
		}
	}
	for u := range 600 {
		unit := fmt.Sprintf("h%d", u)
		for k := range r.IntN(4) {
			evs = append(evs, ev(fmt.Sprintf("%s-%d", unit, k), unit, "purchase", t0.Add(time.Hour), 1))
		}
	}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	res, err := svc(db).HoldoutResults(ctx, "global", 0, nil, results.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Naive: a unit's arm over both experiments; one in the holdout of one and
	// exposed in the other would be excluded.
	arm := map[string]map[string]bool{}
	for _, x := range xs {
		if arm[x.Unit] == nil {
			arm[x.Unit] = map[string]bool{}
		}
		arm[x.Unit][map[bool]string{true: metric.HoldoutArm, false: metric.ExposedArm}[x.InHoldout]] = true
	}
	n := map[string]int64{}
	sum := map[string]float64{}
	var multi int64
	perUnit := map[string]float64{}
	for _, e := range evs {
		perUnit[e.Unit]++
	}
	for u, as := range arm {
		if len(as) > 1 {
			multi++
			continue
		}
		for a := range as {
			n[a]++
			sum[a] += perUnit[u]
		}
	}
	if res.Version != 1 || res.Holdout != "global" || res.ExcludedMultiple != multi {
		t.Errorf("version %d, holdout %q, excluded %d (want %d)", res.Version, res.Holdout, res.ExcludedMultiple, multi)
	}
	if len(res.Metrics) != 1 || res.Metrics[0].Name != "orders" {
		t.Fatalf("metrics %+v", res.Metrics)
	}
	for _, v := range res.Metrics[0].Variants {
		if v.N != n[v.Name] || math.Abs(v.Mean-sum[v.Name]/float64(n[v.Name])) > 1e-12 {
			t.Errorf("arm %s: n %d mean %g; want %d, %g", v.Name, v.N, v.Mean, n[v.Name], sum[v.Name]/float64(n[v.Name]))
		}
	}
	if _, err := svc(db).HoldoutResults(ctx, "global", 2, nil, results.Options{}); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("version 2: %v, want NotFound", err)
	}
}

// TestDailyResults: each day's point must equal the analysis of the rows before
// the end of that day, computed naively.
func TestDailyResults(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	ms := testMetrics()[:2] // revenue (fixed cap, CUPED) and orders
	s := genSynth(rand.New(rand.NewPCG(9, 10)), "daily", 300, t0)
	e := loadSynth(t, db, "daily", s, ms)
	d, err := svc(db).DailyResults(ctx, e.Key, "revenue")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Days) < 5 {
		t.Fatalf("%d days, want the days from first exposure to the last event", len(d.Days))
	}
	defs := map[string]*experiment.Metric{"revenue": ms[0]}
	for _, i := range []int{1, 3, len(d.Days) - 1} {
		p := d.Days[i]
		day, _ := time.Parse("2006-01-02", p.Date)
		cut := day.Add(24 * time.Hour)
		sub := &synth{}
		for _, x := range s.exposures {
			if x.TS.Before(cut) {
				sub.exposures = append(sub.exposures, x)
			}
		}
		for _, ev := range s.events {
			if ev.TS.Before(cut) {
				sub.events = append(sub.events, ev)
			}
		}
		want, _ := naiveStats(sub, []string{"control", "treatment"}, []string{"revenue"}, defs)
		arms := want["revenue"]
		arms[0].Weight, arms[1].Weight = 0.5, 0.5
		res, err := analysis.Analyze(analysis.Input{Metric: "revenue", Arms: arms, Alpha: 0.05, Covariate: "revenue over 14 days before exposure", CovariateType: analysis.Mean})
		if err != nil {
			t.Fatal(err)
		}
		if p.Units["control"]+p.Units["treatment"] != arms[0].N+arms[1].N || !closeComparisons(p.Comparisons, res.Comparisons) {
			t.Errorf("day %s: units %v, comparisons\n got %+v\nwant %+v", p.Date, p.Units, p.Comparisons, res.Comparisons)
		}
	}
	if _, err := svc(db).DailyResults(ctx, e.Key, "nope"); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("unknown metric: %v, want NotFound", err)
	}
}

// perDay hides the engine's StatsSeries: the results service then computes
// a series one Stats per day, as it does over an engine without series.
type perDay struct{ metric.Engine }

// TestDailyResultsOneQuery: the daily series computed in one query
// (metric.SeriesEngine) must equal, day by day, the series computed one
// cut-off at a time, for every metric of testMetrics (caps, CUPED, ratios).
func TestDailyResultsOneQuery(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	ms := testMetrics()
	s := genSynth(rand.New(rand.NewPCG(11, 12)), "series", 300, t0)
	e := loadSynth(t, db, "series", s, ms)
	if _, ok := db.Engine().(metric.SeriesEngine); !ok {
		t.Fatal("the DuckDB engine does not evaluate series")
	}
	slow := results.New(db, db, perDay{db.Engine()}, db.opt.Now)
	for _, m := range e.Metrics {
		got, err := svc(db).DailyResults(ctx, e.Key, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := slow.DailyResults(ctx, e.Key, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Days) != len(want.Days) || len(want.Days) < 5 {
			t.Fatalf("%s: %d days, want %d (at least 5)", m.Name, len(got.Days), len(want.Days))
		}
		compared := 0
		for i, w := range want.Days {
			g := got.Days[i]
			if g.Date != w.Date || !reflect.DeepEqual(g.Units, w.Units) || g.Error != w.Error || !closeComparisons(g.Comparisons, w.Comparisons) {
				t.Errorf("%s %s: units %v error %q comparisons %+v;\nper day: %s units %v error %q comparisons %+v", m.Name, g.Date, g.Units, g.Error, g.Comparisons, w.Date, w.Units, w.Error, w.Comparisons)
			}
			compared += len(w.Comparisons)
		}
		if compared < 3 {
			t.Errorf("%s: %d days with a comparison: the series tests nothing", m.Name, compared)
		}
	}
}

// BenchmarkResults computes the results of a generated experiment
// (LIFT_BENCH_UNITS exposed units, default 100,000; LIFT_BENCH_EVENTS events,
// default 5,000,000; 3 metrics with CUPED) with ExperimentResults (metric SQL,
// analysis and snapshot), and in the same iteration the bare DuckDB aggregation
// that computes the same sufficient statistics by hand; it reports both times
// and their ratio.
func BenchmarkResults(b *testing.B) {
	ctx := context.Background()
	units := benchSize("LIFT_BENCH_UNITS", 100_000)
	events := benchSize("LIFT_BENCH_EVENTS", 5_000_000)
	db, err := Open(ctx, b.TempDir()+"/bench.duckdb", DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t := time.Now()
	o := SynthOptions{Experiment: "bench", Units: units, Events: events}
	if _, err := db.GenerateSynthetic(ctx, "bench", o); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d units, %d events in %s", units, events, time.Since(t))
	if _, err := db.SQL().ExecContext(ctx, `CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
	var liftT, bareT, statsT time.Duration
	e, err := db.GetExperiment(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		t := time.Now()
		if _, err := svc(db).Stats(ctx, metric.ExperimentPopulation(e), []string{"revenue", "orders", "converted"}); err != nil {
			b.Fatal(err)
		}
		statsT += time.Since(t)
		t = time.Now()
		r, err := svc(db).ExperimentResults(ctx, "bench", results.Options{})
		if err != nil || len(r.Metrics) != 3 || r.Metrics[0].Error != "" {
			b.Fatalf("results: %v", err)
		}
		liftT += time.Since(t)
		t = time.Now()
		rows, err := db.SQL().QueryContext(ctx, bareAggregation(o.withDefaults()))
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		bareT += time.Since(t)
	}
	b.ReportMetric(liftT.Seconds()/float64(b.N), "lift_s/op")
	b.ReportMetric(bareT.Seconds()/float64(b.N), "bare_s/op")
	b.ReportMetric(statsT.Seconds()/float64(b.N), "stats_s/op")
	b.ReportMetric(liftT.Seconds()/bareT.Seconds(), "lift/bare")
}

// bareAggregation is the hand-written query a DuckDB user would write for the
// sufficient statistics of revenue, orders and converted with their pre-period
// covariates: first exposure per unit, events joined once, per-unit sums, per-arm sums.
func bareAggregation(o SynthOptions) string {
	post, pre := int64(o.PostDays*dayMicros), int64(o.PreDays*dayMicros)
	return fmt.Sprintf(`WITH u AS (
	SELECT unit, min(variant) AS v, min(ts) AS t0 FROM exposures
	WHERE experiment = 'bench' AND variant IS NOT NULL GROUP BY unit HAVING count(DISTINCT variant) = 1
), pu AS (
	SELECT e.unit,
		sum(e.value) FILTER (WHERE d >= 0 AND d < %[1]d) AS rev, count(*) FILTER (WHERE d >= 0 AND d < %[1]d) AS ord,
		sum(e.value) FILTER (WHERE d >= -%[2]d AND d < 0) AS rev0, count(*) FILTER (WHERE d >= -%[2]d AND d < 0) AS ord0
	FROM (SELECT e.unit, e.value, epoch_us(e.ts) - epoch_us(u.t0) AS d FROM events e JOIN u ON e.unit = u.unit WHERE e.type = 'purchase') e
	GROUP BY e.unit
), y AS (
	SELECT u.v, coalesce(rev, 0) AS rev, coalesce(ord, 0) AS ord, CASE WHEN ord > 0 THEN 1 ELSE 0 END AS conv,
		coalesce(rev0, 0) AS rev0, coalesce(ord0, 0) AS ord0, CASE WHEN ord0 > 0 THEN 1 ELSE 0 END AS conv0
	FROM u LEFT JOIN pu ON u.unit = pu.unit
)
SELECT v, count(*),
	sum(rev), sum(rev*rev), sum(rev0), sum(rev0*rev0), sum(rev*rev0),
	sum(ord), sum(ord*ord), sum(ord0), sum(ord0*ord0), sum(ord*ord0),
	sum(conv), sum(conv*conv), sum(conv0), sum(conv0*conv0), sum(conv*conv0)
FROM y GROUP BY v`, post, pre)
}

// aggType is the statistic type of an aggregation's per-unit values.
func aggType(a experiment.Aggregation) analysis.Type {
	switch a {
	case experiment.Binary:
		return analysis.Proportion
	case experiment.Ratio:
		return analysis.Ratio
	}
	return analysis.Mean
}
