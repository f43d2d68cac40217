package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
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

// quantileCont is DuckDB's quantile_cont (R type 7): linear interpolation between
// the order statistics at h = (n−1)p.
func quantileCont(xs []float64, p float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	h := float64(len(s)-1) * p
	lo := math.Floor(h)
	if int(lo)+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[int(lo)] + (h-lo)*(s[int(lo)+1]-s[int(lo)])
}

// naiveStats computes, unit by unit in Go, what MetricStats computes in SQL.
func naiveStats(s *synth, arms []string, names []string, defs map[string]*experiment.Metric) (map[string][]analysis.Arm, int64) {
	type unitInfo struct {
		t0   time.Time
		arms map[string]bool
	}
	units := map[string]*unitInfo{}
	for _, x := range s.exposures {
		u := units[x.Unit]
		if u == nil {
			u = &unitInfo{t0: x.TS, arms: map[string]bool{}}
			units[x.Unit] = u
		}
		if x.TS.Before(u.t0) {
			u.t0 = x.TS
		}
		u.arms[x.Variant] = true
	}
	var multi int64
	var keep []string
	armOf := map[string]string{}
	for name, u := range units {
		if len(u.arms) > 1 {
			multi++
			continue
		}
		keep = append(keep, name)
		for a := range u.arms {
			armOf[name] = a
		}
	}
	sort.Strings(keep)
	byUnit := map[string][]experiment.Event{}
	for _, e := range s.events {
		byUnit[e.Unit] = append(byUnit[e.Unit], e)
	}
	// value returns each kept unit's value (NaN for "no value", mean metrics) of m
	// over [lo, hi) days since t₀, capped.
	value := func(m *experiment.Metric, lo, hi float64) []float64 {
		out := make([]float64, len(keep))
		for i, u := range keep {
			sum, n := 0.0, 0
			for _, e := range byUnit[u] {
				d := float64(e.TS.Sub(units[u].t0).Microseconds()) / dayMicros
				if e.Type == m.EventType && d >= lo && d < hi {
					sum += e.Value
					n++
				}
			}
			switch m.Aggregation {
			case experiment.Sum:
				out[i] = sum
			case experiment.Count:
				out[i] = float64(n)
			case experiment.Binary:
				out[i] = 0
				if n > 0 {
					out[i] = 1
				}
			case experiment.Mean:
				out[i] = math.NaN()
				if n > 0 {
					out[i] = sum / float64(n)
				}
			}
		}
		if c := m.Cap; c != nil {
			cp := c.Value
			if c.Percentile > 0 {
				var present []float64
				for _, v := range out {
					if !math.IsNaN(v) {
						present = append(present, v)
					}
				}
				cp = quantileCont(present, c.Percentile)
			}
			for i := range out {
				out[i] = math.Min(out[i], cp)
			}
		}
		return out
	}
	post := func(m, parent *experiment.Metric) []float64 {
		w := m.Window
		if parent != nil && parent.Window != nil {
			w = parent.Window
		}
		if w == nil {
			return value(m, 0, math.Inf(1))
		}
		return value(m, w.StartDays, w.EndDays)
	}
	res := map[string][]analysis.Arm{}
	for _, n := range names {
		m := defs[n]
		out := make([]analysis.Arm, len(arms))
		idx := map[string]int{}
		for i, a := range arms {
			out[i].Name = a
			idx[a] = i
		}
		var y, x, d, d0 []float64
		if m.Aggregation == experiment.Ratio {
			y, d = post(defs[m.Numerator], m), post(defs[m.Denominator], m)
			if m.Covariate != nil {
				x = value(defs[m.Numerator], -m.Covariate.Days, 0)
				d0 = value(defs[m.Denominator], -m.Covariate.Days, 0)
			}
		} else {
			y = post(m, nil)
			if m.Covariate != nil {
				x = value(m, -m.Covariate.Days, 0)
			}
		}
		for i, u := range keep {
			if math.IsNaN(y[i]) {
				continue
			}
			a := &out[idx[armOf[u]]]
			a.N++
			a.Sum += y[i]
			a.SumSquares += y[i] * y[i]
			if x != nil {
				xi := x[i]
				if math.IsNaN(xi) {
					xi = 0
				}
				a.CovariateSum += xi
				a.CovariateSumSquares += xi * xi
				a.CrossSum += xi * y[i]
			}
			if d != nil {
				a.DenominatorSum += d[i]
				a.DenominatorSumSquares += d[i] * d[i]
				a.MetricDenominatorSum += y[i] * d[i]
			}
			if d0 != nil {
				a.DenominatorCovariateSum += d0[i]
				a.DenominatorCovariateSumSquares += d0[i] * d0[i]
				a.MetricDenominatorCovariateSum += y[i] * d0[i]
				a.CovariateDenominatorSum += x[i] * d[i]
				a.CovariateDenominatorCovariateSum += x[i] * d0[i]
				a.DenominatorDenominatorCovariateSum += d[i] * d0[i]
			}
		}
		res[n] = out
	}
	return res, multi
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
	pop := ExperimentPopulation(e)
	st, err := db.MetricStats(context.Background(), pop, names)
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
			g := unshift(st.Metrics[n][i])
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
	fa := []float64{a.Sum, a.SumSquares, a.CovariateSum, a.CovariateSumSquares, a.CrossSum, a.DenominatorSum, a.DenominatorSumSquares, a.MetricDenominatorSum,
		a.DenominatorCovariateSum, a.DenominatorCovariateSumSquares, a.MetricDenominatorCovariateSum, a.CovariateDenominatorSum, a.CovariateDenominatorCovariateSum, a.DenominatorDenominatorCovariateSum}
	fb := []float64{b.Sum, b.SumSquares, b.CovariateSum, b.CovariateSumSquares, b.CrossSum, b.DenominatorSum, b.DenominatorSumSquares, b.MetricDenominatorSum,
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
	_, err = db.MetricStats(context.Background(), ExperimentPopulation(e), []string{"revenue"})
	if experiment.KindOf(err) != experiment.Invalid || !strings.Contains(err.Error(), `"revenue" is not defined`) {
		t.Errorf("err = %v, want Invalid naming revenue", err)
	}
}

// unshift turns an arm's shifted sums back into raw sums (Σu·v = Σu'v' +
// c_vΣu' + c_uΣv' + n·c_u·c_v), for comparison with naive raw sums.
func unshift(a analysis.Arm) analysis.Arm {
	n := float64(a.N)
	one := func(c, s float64) float64 { return s + n*c }
	two := func(cu, su, cv, sv, suv float64) float64 { return suv + cv*su + cu*sv + n*cu*cv }
	cy, cx, cd, c0 := a.Shift, a.CovariateShift, a.DenominatorShift, a.DenominatorCovariateShift
	sy, sx, sd, s0 := a.Sum, a.CovariateSum, a.DenominatorSum, a.DenominatorCovariateSum
	r := analysis.Arm{Name: a.Name, Weight: a.Weight, N: a.N,
		Sum: one(cy, sy), SumSquares: two(cy, sy, cy, sy, a.SumSquares),
		CovariateSum: one(cx, sx), CovariateSumSquares: two(cx, sx, cx, sx, a.CovariateSumSquares), CrossSum: two(cx, sx, cy, sy, a.CrossSum),
		DenominatorSum: one(cd, sd), DenominatorSumSquares: two(cd, sd, cd, sd, a.DenominatorSumSquares), MetricDenominatorSum: two(cy, sy, cd, sd, a.MetricDenominatorSum),
		DenominatorCovariateSum: one(c0, s0), DenominatorCovariateSumSquares: two(c0, s0, c0, s0, a.DenominatorCovariateSumSquares),
		MetricDenominatorCovariateSum:      two(cy, sy, c0, s0, a.MetricDenominatorCovariateSum),
		CovariateDenominatorSum:            two(cx, sx, cd, sd, a.CovariateDenominatorSum),
		CovariateDenominatorCovariateSum:   two(cx, sx, c0, s0, a.CovariateDenominatorCovariateSum),
		DenominatorDenominatorCovariateSum: two(cd, sd, c0, s0, a.DenominatorDenominatorCovariateSum),
	}
	return r
}

// Item 1 of issue 14 through DuckDB: a balance metric at offset 1e9 (cents,
// micros) or 1e13 (a timestamp in milliseconds), with its pre-period covariate
// and a ratio over visits, gives the exact Welch, CUPED and ratio results
// (before, the raw sums made its variance negative and the result "0, p = 1",
// and at 1e13 the checksums' BIGINT overflowed). The data are
// analysis.TestLargeOffset's (x, y, d of unit i), and so are the expected
// values: exact moments (fractions.Fraction) and scipy 1.10's t, the snippet is
// there (with 10**13 added to its offsets for the ratio at 1e13).
func TestMetricStatsLargeOffset(t *testing.T) {
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
		t.Run(fmt.Sprintf("offset %g", c.off), func(t *testing.T) { testMetricStatsOffset(t, c.off, welch, cuped, c.ratio) })
	}
}

func testMetricStatsOffset(t *testing.T, off float64, welch, cuped, ratio [5]float64) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	ms := []*experiment.Metric{
		{Name: "balance", EventType: "balance", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Covariate: &experiment.Covariate{Days: 3}},
		{Name: "visits", EventType: "visit", Aggregation: experiment.Count},
		{Name: "balance_per_visit", Aggregation: experiment.Ratio, Numerator: "balance", Denominator: "visits"},
	}
	s := &synth{}
	for arm, n := range map[string]int{"control": 400, "treatment": 500} {
		for i := range n {
			unit := fmt.Sprintf("%s-%03d", arm, i)
			x := off + float64((i*53)%97)/4
			y := off + float64((i*37)%101)/8 + float64((i*53)%97)/8
			if arm == "treatment" {
				y += 0.75
			}
			s.exposures = append(s.exposures, experiment.Exposure{Experiment: "offset", Unit: unit, Variant: arm, TS: t0})
			s.events = append(s.events,
				ev(unit+"-pre", unit, "balance", t0.Add(-24*time.Hour), x),
				ev(unit+"-post", unit, "balance", t0.Add(time.Hour), y))
			for k := range 1 + (i*13)%7 {
				s.events = append(s.events, ev(fmt.Sprintf("%s-v%d", unit, k), unit, "visit", t0.Add(time.Duration(k+1)*time.Hour), 0))
			}
		}
	}
	e := loadSynth(t, db, "offset", s, ms)
	st, err := db.MetricStats(ctx, ExperimentPopulation(e), []string{"balance", "balance_per_visit"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   analysis.Input
		want [5]float64
	}{
		{"welch", analysis.Input{Arms: st.Metrics["balance"]}, welch},
		{"cuped", analysis.Input{Arms: st.Metrics["balance"], Covariate: "balance_pre"}, cuped},
		{"ratio", analysis.Input{Type: analysis.Ratio, Arms: st.Metrics["balance_per_visit"]}, ratio},
	}
	for _, c := range cases {
		res, err := analysis.Analyze(c.in)
		if err != nil {
			t.Fatal(err)
		}
		g := res.Comparisons[0].Absolute
		tol := 1e-9 * c.want[3]
		for i, got := range []float64{g.Estimate, g.CILow, g.CIHigh, g.SE, g.PValue} {
			if math.Abs(got-c.want[i]) > tol {
				t.Errorf("%s: [estimate, ci_low, ci_high, se, p][%d] = %.12g, want %.12g (flags %v)", c.name, i, got, c.want[i], res.Comparisons[0].Flags)
			}
		}
	}
}
